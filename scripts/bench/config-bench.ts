/**
 * Config micro-benchmarks (SPEC §9): getConfig() median ns, setByte() against a bare positioned
 * 2-byte write measured in the same run on the same file system, toggleFeature() (lock + re-read
 * + write). Timings are per-call averages of batches (so the ~30 ns timer cost and its resolution
 * do not dominate), and the median over batches; setByte and the bare write alternate batch by
 * batch so machine noise hits both alike.
 */
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigFile, createConfigFile, defaultFields } from '../../plugins/registry-core/index';
import { formatTable, makeRow, median } from './report';
import type { BenchRow } from './types';

const nowNs = (): bigint => process.hrtime.bigint();

function timeBatch(calls: number, body: (i: number) => void): number {
  const start = nowNs();
  for (let i = 0; i < calls; i++) body(i);
  return Number(nowNs() - start) / calls;
}

async function timeBatchAsync(calls: number, body: (i: number) => Promise<unknown>): Promise<number> {
  const start = nowNs();
  for (let i = 0; i < calls; i++) await body(i);
  return Number(nowNs() - start) / calls;
}

export async function runConfigBench(options: { quick: boolean }): Promise<BenchRow[]> {
  const dir = mkdtempSync(join(tmpdir(), 'config-bench-'));
  const lockb = join(dir, 'registry.lockb');
  const scratch = join(dir, 'scratch.bin');
  createConfigFile(lockb, defaultFields());
  writeFileSync(scratch, Buffer.alloc(17));
  const config = ConfigFile.open(lockb);
  const scratchFd = openSync(scratch, 'r+');
  const batches = options.quick ? 25 : 101;
  try {
    // getConfig(): read from memory. `sink` keeps the JIT from removing the loop.
    let sink = 0;
    const readOnce = (): void => {
      sink += config.getConfig().fields.rows;
    };
    timeBatch(200_000, readOnce); // warm-up
    const getConfigNs = median(Array.from({ length: batches }, () => timeBatch(20_000, readOnce)));

    // setByte() vs a bare positioned 2-byte write, alternating batches.
    const rowsValues = [24, 25];
    const two = Buffer.from([24, 0]);
    const setOnce = (i: number): void => void config.setByte(14, rowsValues[i & 1]);
    const bareOnce = (i: number): void => {
      two[0] = rowsValues[i & 1];
      writeSync(scratchFd, two, 0, 2, 14);
    };
    timeBatch(2_000, setOnce);
    timeBatch(2_000, bareOnce);
    const setNs: number[] = [];
    const bareNs: number[] = [];
    for (let b = 0; b < batches; b++) {
      if (b % 2 === 0) {
        setNs.push(timeBatch(500, setOnce));
        bareNs.push(timeBatch(500, bareOnce));
      } else {
        bareNs.push(timeBatch(500, bareOnce));
        setNs.push(timeBatch(500, setOnce));
      }
    }
    const setByteNs = median(setNs);
    const bareWriteNs = median(bareNs);

    // The same with a watcher attached (what a running dashboard does): inotify makes the kernel
    // queue an event per write. Informative; the SPEC row above is the plain call.
    const stopWatching = config.watchConfig(() => undefined);
    const watchedNs: number[] = [];
    const bareAgainNs: number[] = [];
    for (let b = 0; b < Math.ceil(batches / 2); b++) {
      watchedNs.push(timeBatch(500, setOnce));
      bareAgainNs.push(timeBatch(500, bareOnce));
    }
    stopWatching();

    // toggleFeature(): cross-process lock (mkdir/rmdir), re-read, write.
    const toggleBatches = options.quick ? 5 : 15;
    await timeBatchAsync(10, () => config.toggleFeature('DEBUG'));
    const toggleUs: number[] = [];
    for (let b = 0; b < toggleBatches; b++) toggleUs.push((await timeBatchAsync(20, () => config.toggleFeature('DEBUG'))) / 1000);
    if (sink === 0) throw new Error('unreachable: getConfig returned no rows');

    return [
      makeRow('config: getConfig() in process', getConfigNs, null, 'ns', '≤ 100 ns median'),
      makeRow('config: setByte() (no fsync) vs bare 2-byte pwrite', setByteNs, bareWriteNs, 'ns', '≤ 2× bare write'),
      makeRow('config: setByte() with a watcher attached (info)', median(watchedNs), median(bareAgainNs), 'ns', 'info'),
      makeRow('config: toggleFeature() (lock + re-read + write)', median(toggleUs), null, 'µs', 'info'),
    ];
  } finally {
    closeSync(scratchFd);
    config.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module) {
  runConfigBench({ quick: process.argv.includes('--quick') }).then(
    (rows) => process.stdout.write(`${formatTable(rows)}\n`),
    (error: unknown) => {
      process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
