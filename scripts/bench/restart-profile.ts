/**
 * Restart with many packages, reproducible (issue 17): seed once, restart many times.
 *
 *   node build/scripts/bench/restart-profile.js seed <base> [--packages N]
 *     seeds <base>/ours and <base>/stock with N packages (raw PUTs, concurrency 4, as the scale
 *     group does) and starts <base>/ours-empty and <base>/stock-empty once (state + compile cache);
 *   node build/scripts/bench/restart-profile.js measure <base> [--rounds R] [--sides ours-empty,ours,stock,stock-empty] [--cpu-prof <dir> [--require <preload>]]
 *     R interleaved rounds (the order of the sides rotates per round): spawn → first /-/ping 200
 *     wall, CPU to ready (utime + stime, all threads, from /proc at that 200), VmRSS 1 s later,
 *     then a graceful stop. `--cpu-prof` profiles ours' starts (the profile is written at exit).
 * The folders are reused as they are: a restart changes nothing in them but the start-up state
 * files (`.registry-verified`, the compile cache), as any restart does.
 */
import { Agent } from 'node:http';
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { median } from './report';
import {
  addUser,
  freePort,
  makeTarball,
  packageFiles,
  processCpuMs,
  publishBody,
  putPublish,
  sleep,
  spawnServer,
  startServer,
  statusMiB,
  stopChild,
  waitForPing,
  writeOursConfig,
  writeStockConfig,
  type ServerKind,
} from './stock';

type Flavour = 'ours' | 'ours-empty' | 'stock' | 'stock-empty';
const KIND: Record<Flavour, Exclude<ServerKind, 'ceiling'>> = { ours: 'ours', 'ours-empty': 'ours', stock: 'stock-jwt', 'stock-empty': 'stock-jwt' };


async function seed(base: string, packages: number): Promise<void> {
  for (const flavour of ['ours', 'stock', 'ours-empty', 'stock-empty'] as const) {
    const dir = join(base, flavour);
    if (existsSync(join(dir, 'config.yaml'))) throw new Error(`${dir} already holds a registry: seed into a new folder`);
    mkdirSync(dir, { recursive: true });
    const server = await startServer(KIND[flavour], dir);
    try {
      if (flavour.endsWith('-empty')) continue;
      const token = await addUser(server.url, 'scale-user', 'scale-password-1');
      const agent = new Agent({ keepAlive: true, maxSockets: 4 });
      const startedAt = performance.now();
      for (let from = 0; from < packages; from += 100) {
        const names = Array.from({ length: Math.min(100, packages - from) }, (_, i) => `@mycompany/scale-${from + i + 1}`);
        const bodies = names.map((name) => publishBody(server.url, name, '1.0.0', makeTarball(packageFiles(name, '1.0.0'))).body);
        let next = 0;
        const worker = async (): Promise<void> => {
          while (next < names.length) {
            const i = next;
            next += 1;
            await putPublish(server.url, agent, token, names[i], bodies[i]);
          }
        };
        await Promise.all(Array.from({ length: 4 }, worker));
      }
      agent.destroy();
      console.log(`${flavour}: ${packages} packages in ${((performance.now() - startedAt) / 1000).toFixed(1)} s`);
    } finally {
      await server.stop();
    }
  }
}

interface Sample {
  ms: number;
  cpuMs: number | null;
  rssMiB: number | null;
}

async function restartOnce(flavour: Flavour, dir: string, cpuProfDir?: string, preload?: string): Promise<Sample> {
  if (KIND[flavour] === 'ours') writeOursConfig(dir);
  else writeStockConfig(dir, { jwt: true });
  const port = await freePort();
  const startedAt = performance.now();
  const profiled = KIND[flavour] === 'ours' && cpuProfDir !== undefined;
  // a preload (`--require`, e.g. marks of `listening` and the first request for the profile's windows) goes to ours only, like the profile
  const env = profiled && preload ? { NODE_OPTIONS: `--require ${preload}`, MARK_DIR: cpuProfDir } : undefined;
  const { child, logs } = spawnServer(KIND[flavour], dir, port, profiled ? { cpuProfDir, env } : {});
  try {
    await waitForPing(`http://127.0.0.1:${port}`, child, logs, 60000);
    const ms = performance.now() - startedAt;
    const cpuMs = processCpuMs(child.pid);
    await sleep(1000);
    return { ms, cpuMs, rssMiB: statusMiB(child.pid, 'VmRSS') };
  } finally {
    await stopChild(child);
  }
}

async function measure(base: string, rounds: number, flavours: Flavour[], cpuProfDir?: string, preload?: string): Promise<void> {
  const samples = new Map<Flavour, Sample[]>(flavours.map((f) => [f, []]));
  for (let round = 0; round < rounds; round += 1) {
    const order = flavours.map((_, i) => flavours[(i + round) % flavours.length]);
    for (const flavour of order) {
      const sample = await restartOnce(flavour, join(base, flavour), cpuProfDir, preload);
      samples.get(flavour)?.push(sample);
      console.log(`round ${round + 1} ${flavour}: ${sample.ms.toFixed(0)} ms, CPU ${sample.cpuMs ?? '?'} ms, RSS ${sample.rssMiB?.toFixed(0) ?? '?'} MiB`);
    }
  }
  console.log('medians:');
  for (const [flavour, list] of samples) {
    const pick = (f: (s: Sample) => number | null): string => median(list.flatMap((s) => (f(s) === null ? [] : [f(s) as number]))).toFixed(0);
    console.log(`  ${flavour.padEnd(12)} wall ${pick((s) => s.ms)} ms, CPU to ready ${pick((s) => s.cpuMs)} ms, RSS +1 s ${pick((s) => s.rssMiB)} MiB`);
  }
}

const USAGE = 'usage: restart-profile.js seed <base> [--packages N] | measure <base> [--rounds R] [--sides a,b] [--cpu-prof <dir> [--require <preload>]]';
const FLAVOURS: readonly Flavour[] = ['ours', 'ours-empty', 'stock', 'stock-empty'];

function usageError(message: string): never {
  console.error(`${message}\n${USAGE}`);
  process.exit(2);
}

/** A positive whole number of a flag, or the default; anything else is a usage error, not a NaN run. */
function count(value: string | undefined, fallback: number, flag: string): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  return Number.isInteger(parsed) && parsed > 0 ? parsed : usageError(`${flag} wants a positive whole number, not ${JSON.stringify(value)}`);
}

async function main(): Promise<void> {
  // util.parseArgs: an unknown flag or a flag without its value is an error, not a silently ignored word
  let parsed: ReturnType<typeof parseCommandLine>;
  try {
    parsed = parseCommandLine();
  } catch (error) {
    usageError(error instanceof Error ? error.message : String(error));
  }
  const { values, positionals } = parsed;
  const [command, baseArg, ...extra] = positionals;
  if (!baseArg || extra.length > 0 || (command !== 'seed' && command !== 'measure')) usageError('expected seed or measure, then one folder');
  const base = resolve(baseArg);
  if (command === 'seed') await seed(base, count(values.packages, 3000, '--packages'));
  else {
    const sides = (values.sides ?? 'ours-empty,ours,stock').split(',');
    const unknown = sides.filter((side) => !FLAVOURS.includes(side as Flavour));
    if (unknown.length > 0) usageError(`unknown side(s) ${unknown.join(', ')}; the sides are ${FLAVOURS.join(', ')}`);
    const preload = values.require;
    if (preload !== undefined && values['cpu-prof'] === undefined) usageError('--require goes with --cpu-prof');
    await measure(base, count(values.rounds, 5, '--rounds'), sides as Flavour[], values['cpu-prof'] ? resolve(values['cpu-prof']) : undefined, preload ? resolve(preload) : undefined);
  }
}

function parseCommandLine() {
  return parseArgs({
    allowPositionals: true,
    options: {
      packages: { type: 'string' },
      rounds: { type: 'string' },
      sides: { type: 'string' },
      'cpu-prof': { type: 'string' },
      require: { type: 'string' },
    },
  });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
