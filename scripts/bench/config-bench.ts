/**
 * Config micro-benchmarks (docs/targets.md):
 *   - getConfig() median ns (a read from memory), and what keeping that memory fresh costs: the
 *     idle CPU of the change detection (the 50 ms poll every open ConfigFile runs, plus inotify
 *     while a watcher is attached), as process CPU with vs without it over idle windows,
 *     extrapolated to CPU ms per hour;
 *   - a config write through the real path — `ConfigFile.update()` with a watcher attached, what
 *     `registry config set`, the dashboard API and the terminal call — against a bare locked
 *     positioned write measured in the same run on the same file system: the same lock
 *     (proper-lockfile, same options), one 13-byte pwrite, release;
 *   - toggleFeature() against the same bare write, and setByteUnlocked() (no lock, called by nothing in
 *     the product) against a bare 13-byte pwrite, both as info;
 *   - `registry config get` as a command (spawn → exit of the package bin) against `node -e 0`.
 * Timings are per-call averages of batches (so timer cost and resolution do not dominate), and the
 * median over batches; each pair alternates batch by batch so machine noise hits both alike.
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import lockfile from 'proper-lockfile';
import { ConfigFile, WATCH_POLL_MS, createConfigFile, defaultFields, withByte } from '../../plugins/registry-core/index';
import { NODE_BIN, PROJECT_ROOT, cleanEnv } from '../lib/child-env';
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

/** Alternates batches of `a` and `b` (a first on even batches, b first on odd); per-call ns medians. */
async function alternate(batches: number, calls: number, a: (i: number) => Promise<unknown>, b: (i: number) => Promise<unknown>): Promise<[number, number]> {
  const aNs: number[] = [];
  const bNs: number[] = [];
  for (let batch = 0; batch < batches; batch++) {
    if (batch % 2 === 0) {
      aNs.push(await timeBatchAsync(calls, a));
      bNs.push(await timeBatchAsync(calls, b));
    } else {
      bNs.push(await timeBatchAsync(calls, b));
      aNs.push(await timeBatchAsync(calls, a));
    }
  }
  return [median(aNs), median(bNs)];
}

/** The lock options of plugins/registry-core/lock.ts (uncontended here, so the retry schedule only gets built, never waited on). */
const LOCK_OPTIONS = {
  realpath: false,
  stale: 5_000,
  retries: { retries: 1_000, factor: 1.2, minTimeout: 1, maxTimeout: 20, randomize: true },
  onCompromised: () => undefined,
} as const;

/** CPU (user + system, every thread of this process) over an idle wait of `ms`, in ms. */
async function idleCpuMs(ms: number): Promise<number> {
  const before = process.cpuUsage();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1000;
}

/**
 * Idle CPU of the change detection: windows with no ConfigFile open vs one open with a watcher
 * (what a running server holds), nothing writing. A first window is thrown away (V8's background
 * threads are still busy after the bench's own start-up), then pairs alternate without/with,
 * with/without…; the result is the median per-pair difference, extrapolated to CPU ms per hour.
 */
async function changeDetectionIdleCpu(lockb: string, quick: boolean): Promise<number> {
  const windowMs = quick ? 1_000 : 2_000;
  const pairs = quick ? 2 : 4;
  await idleCpuMs(500);
  const watched = async (): Promise<number> => {
    const idle = ConfigFile.open(lockb);
    const stop = idle.watchConfig(() => undefined);
    try {
      return await idleCpuMs(windowMs);
    } finally {
      stop();
      idle.close();
    }
  };
  const differences: number[] = [];
  for (let pair = 0; pair < pairs; pair++) {
    let without: number;
    let withWatcher: number;
    if (pair % 2 === 0) {
      without = await idleCpuMs(windowMs);
      withWatcher = await watched();
    } else {
      withWatcher = await watched();
      without = await idleCpuMs(windowMs);
    }
    differences.push(withWatcher - without);
  }
  return (median(differences) / windowMs) * 3_600_000;
}

/** Spawn → exit of one command on the project's Node, in ms; throws on a non-zero exit. */
function timeCommand(args: readonly string[], cwd: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(NODE_BIN, args, { cwd, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      const ms = performance.now() - started;
      if (code === 0) resolve(ms);
      else reject(new Error(`node ${args.join(' ')} exited ${code}: ${output.trim().split('\n').slice(-3).join(' | ')}`));
    });
  });
}

/**
 * `registry config get` as a user runs it (the package bin, `config --file <lockb> get`) against
 * `node -e 0` on the same Node — the floor of any command — alternating, medians.
 */
async function configGetCommand(lockb: string, cwd: string, quick: boolean): Promise<[number, number]> {
  const bin = join(PROJECT_ROOT, 'bin', 'registry.js');
  const get = (): Promise<number> => timeCommand([bin, 'config', '--file', lockb, 'get'], cwd);
  const floor = (): Promise<number> => timeCommand(['-e', '0'], cwd);
  await get(); // the first call may fill the OS page cache for both
  await floor();
  const rounds = quick ? 6 : 15;
  const getMs: number[] = [];
  const floorMs: number[] = [];
  for (let round = 0; round < rounds; round++) {
    if (round % 2 === 0) {
      getMs.push(await get());
      floorMs.push(await floor());
    } else {
      floorMs.push(await floor());
      getMs.push(await get());
    }
  }
  return [median(getMs), median(floorMs)];
}

export const CONFIG_ROWS = {
  getConfig: 'config: getConfig() in process',
  idleCpu: `config: getConfig() freshness cost — idle CPU of the ${WATCH_POLL_MS} ms poll + inotify watcher, nothing changing (median of with − without, extrapolated to 1 h)`,
  realWrite: 'config: write via ConfigFile.update() (the CLI / dashboard / terminal path, watcher attached) vs bare locked 13-byte pwrite',
  toggle: 'config: toggleFeature() vs bare locked 13-byte pwrite (info)',
  setByteUnlocked: 'config: setByteUnlocked() (no lock; unused by the product) vs bare 13-byte pwrite (info)',
  command: '`registry config get` as a command (bin/registry.js, spawn → exit) vs `node -e 0`',
} as const;

export async function runConfigBench(options: { quick: boolean }): Promise<BenchRow[]> {
  const dir = mkdtempSync(join(tmpdir(), 'config-bench-'));
  const lockb = join(dir, 'registry.lockb');
  const idleLockb = join(dir, 'idle.lockb');
  const scratch = join(dir, 'scratch.bin');
  createConfigFile(lockb, defaultFields());
  createConfigFile(idleLockb, defaultFields());
  writeFileSync(scratch, Buffer.alloc(17));
  // First, with no ConfigFile open yet in this process: the "without" windows then see none.
  const idleMsPerHour = await changeDetectionIdleCpu(idleLockb, options.quick);
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
    if (sink === 0) throw new Error('unreachable: getConfig returned no rows');

    // The real write path vs a bare locked positioned write, both through proper-lockfile.
    const stopWatching = config.watchConfig(() => undefined);
    const header = Buffer.alloc(13);
    const rowsValues = [24, 25];
    const realWrite = (i: number): Promise<unknown> => config.update((fields) => withByte(fields, 14, rowsValues[i & 1]));
    const bareLockedWrite = async (i: number): Promise<void> => {
      const release = await lockfile.lock(scratch, LOCK_OPTIONS);
      try {
        header[10] = rowsValues[i & 1];
        writeSync(scratchFd, header, 0, 13, 4);
      } finally {
        await release();
      }
    };
    const lockedBatches = options.quick ? 11 : 31;
    await timeBatchAsync(20, realWrite); // warm-up both paths
    await timeBatchAsync(20, bareLockedWrite);
    const [realNs, bareLockedNs] = await alternate(lockedBatches, 20, realWrite, bareLockedWrite);
    const toggle = (): Promise<unknown> => config.toggleFeature('DEBUG');
    await timeBatchAsync(10, toggle);
    const [toggleNs, bareLockedAgainNs] = await alternate(options.quick ? 5 : 15, 20, toggle, bareLockedWrite);
    stopWatching();

    // setByteUnlocked() vs a bare positioned 13-byte write (what it writes: bytes 4..16), no lock.
    const setOnce = (i: number): void => void config.setByteUnlocked(14, rowsValues[i & 1]);
    const bareOnce = (i: number): void => {
      header[10] = rowsValues[i & 1];
      writeSync(scratchFd, header, 0, 13, 4);
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

    const [commandMs, nodeFloorMs] = await configGetCommand(lockb, dir, options.quick);

    return [
      makeRow(CONFIG_ROWS.getConfig, getConfigNs, null, 'ns', '≤ 100 ns median'),
      makeRow(CONFIG_ROWS.idleCpu, idleMsPerHour, null, 'ms CPU/h', 'info'),
      makeRow(CONFIG_ROWS.realWrite, realNs / 1000, bareLockedNs / 1000, 'µs', '≤ 2× bare locked write'),
      makeRow(CONFIG_ROWS.toggle, toggleNs / 1000, bareLockedAgainNs / 1000, 'µs', 'info'),
      makeRow(CONFIG_ROWS.setByteUnlocked, median(setNs), median(bareNs), 'ns', 'info'),
      makeRow(CONFIG_ROWS.command, commandMs, nodeFloorMs, 'ms', '≤ 1.3× node -e 0 time'),
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
