/**
 * `node build/scripts/bench/burst-rss.js [--rounds N] [--publishes C] [--mb S] [--base <checkout>] [--ours-env KEY=VALUE]`
 *
 * The scale group's burst (C concurrent raw `PUT`s of S "MB" tarballs, scale-bench.ts burstOnce)
 * on a fresh stock (JWT mode) and a fresh ours per round, the sides interleaved (rotated each
 * round), with memory-sampler.js in each server: VmHWM after the burst, and the peaks of
 * `process.memoryUsage()` (rss, heapTotal, heapUsed, external) with the split at the RSS peak, so
 * a gap can be put on the V8 heap or off it. `--base` adds a side "base": ours as built in another
 * checkout (an A/B of a change); `--ours-env` adds "ours+env": ours with that variable set.
 * Defaults: 6 rounds of 20 × 5 MB (the full run's burst). Prints one line per burst and the
 * medians; the box's load at start and end.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as local from './stock';
import { median } from './report';

type Launch = (dir: string, env: Record<string, string>) => Promise<local.BenchServer>;

/** The command line (util.parseArgs: an unknown flag is an error, not a silently ignored word). */
const { values: flags } = parseArgs({
  options: { rounds: { type: 'string' }, publishes: { type: 'string' }, mb: { type: 'string' }, base: { type: 'string' }, 'ours-env': { type: 'string' } },
});

const MIB = 1024 * 1024;
const SAMPLER = join(__dirname, 'memory-sampler.js');

interface Peaks {
  hwm: number;
  before: number;
  wallMs: number;
  cpuMs: number;
  rss: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
  atPeak: { heapTotal: number; heapUsed: number; external: number };
}

function peaksOf(samples: number[][]): Omit<Peaks, 'hwm' | 'before' | 'wallMs' | 'cpuMs'> {
  const max = (k: number): number => Math.max(...samples.map((s) => s[k])) / MIB;
  const top = samples.reduce((a, b) => (b[1] > a[1] ? b : a));
  return { rss: max(1), heapTotal: max(2), heapUsed: max(3), external: max(4), atPeak: { heapTotal: top[2] / MIB, heapUsed: top[3] / MIB, external: top[4] / MIB } };
}

async function burst(launch: Launch, label: string, tarball: Buffer, publishes: number): Promise<Peaks> {
  const dir = local.tempDir(`burst-rss-${label.replace(/\W/g, '')}`);
  const out = join(dir, 'memory-samples.json');
  const server = await launch(dir, { NODE_OPTIONS: `--require ${SAMPLER}`, SAMPLER_OUT: out });
  try {
    const pid = server.child.pid;
    const token = await local.addUser(server.url, 'bench', 'bench-password-1');
    const agent = new Agent({ keepAlive: true, maxSockets: publishes });
    const names = Array.from({ length: publishes }, (_, i) => `@mycompany/burst-${i + 1}`);
    const bodies = names.map((name) => Buffer.from(local.publishBody(server.url, name, '1.0.0', tarball).body));
    const before = local.statusMiB(pid, 'VmRSS') ?? Number.NaN;
    const cpu0 = local.processCpuMs(pid) ?? Number.NaN;
    const t0 = performance.now();
    await Promise.all(names.map((name, i) => local.putPublish(server.url, agent, token, name, bodies[i])));
    const wallMs = performance.now() - t0;
    const cpuMs = (local.processCpuMs(pid) ?? Number.NaN) - cpu0;
    const hwm = local.statusMiB(pid, 'VmHWM') ?? Number.NaN;
    agent.destroy();
    await server.stop(); // the sampler writes its file at exit
    return { hwm, before, wallMs, cpuMs, ...peaksOf(JSON.parse(readFileSync(out, 'utf8')) as number[][]) };
  } finally {
    await server.stop();
    local.removeDir(dir);
  }
}

async function main(): Promise<void> {
  const rounds = Number(flags.rounds ?? 6);
  const publishes = Number(flags.publishes ?? 20);
  const megabytes = Number(flags.mb ?? 5);
  const sides: Array<[string, Launch]> = [
    ['stock', (dir, env) => local.startServer('stock-jwt', dir, { env })],
    ['ours', (dir, env) => local.startServer('ours', dir, { env })],
  ];
  const base = flags.base;
  if (base !== undefined) {
    const other = (await import(join(base, 'build', 'scripts', 'bench', 'stock.js'))) as typeof local;
    sides.push(['base', (dir, env) => other.startServer('ours', dir, { env })]);
  }
  const oursEnv = flags['ours-env'];
  if (oursEnv !== undefined) {
    const [key, ...value] = oursEnv.split('=');
    sides.push([`ours+${key}`, (dir, env) => local.startServer('ours', dir, { env: { ...env, [key]: value.join('=') } })]);
  }
  // scale-bench.ts burstPart's tarball: S MiB of random bytes as hex (≈ 1.1·S MB gzipped)
  const blob = randomBytes(Math.round(megabytes * MIB)).toString('hex');
  const tarball = local.makeTarball({ ...local.packageFiles('@mycompany/burst', '1.0.0'), 'blob.txt': blob });
  const load = (): string => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  console.log(`${rounds} rounds × ${sides.length} sides, ${publishes} × ${tarball.length} B tarballs; load ${load()}`);
  const hwm = new Map<string, number[]>(sides.map(([label]) => [label, []]));
  const f = (n: number): string => n.toFixed(0);
  for (let round = 0; round < rounds; round += 1) {
    const k = round % sides.length;
    for (const [label, launch] of [...sides.slice(k), ...sides.slice(0, k)]) {
      const p = await burst(launch, label, tarball, publishes);
      hwm.get(label)?.push(p.hwm);
      console.log(
        `r${round} ${label}: VmHWM ${f(p.hwm)} MiB (before ${f(p.before)}), wall ${f(p.wallMs)} ms, CPU ${f(p.cpuMs)} ms; peaks rss ${f(p.rss)} heapTotal ${f(p.heapTotal)} heapUsed ${f(p.heapUsed)} external ${f(p.external)}; ` +
          `at the rss peak heapTotal ${f(p.atPeak.heapTotal)} heapUsed ${f(p.atPeak.heapUsed)} external ${f(p.atPeak.external)}`,
      );
    }
  }
  for (const [label, values] of hwm) console.log(`${label}: VmHWM median ${f(median(values))} MiB [${values.map(f).join(', ')}]`);
  console.log(`load ${load()}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
