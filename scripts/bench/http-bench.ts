/**
 * HTTP rows: autocannon throughput for ping (info), packument GET and tarball GET (each also as a
 * fraction of the ceiling — a bare node:http server replaying ours' bytes — measured in the same
 * rounds), `GET /-/whoami` with a Bearer token (ours vs stock in JWT mode; stock's default AES
 * mode as info); and the latency of the first packument GET right after a publish.
 * Client and servers share the machine, so connections stay at 10 and every figure is a median
 * of interleaved rounds.
 */
import { createHash } from 'node:crypto';
import { cpus } from 'node:os';
import autocannon from 'autocannon';
import { monotonicUs, type ProfileWindow } from './profile';
import { makeRow, median } from './report';
import { Agent, request } from 'node:http';
import {
  CLOCK_TICKS_PER_SECOND,
  cpuSnapshot,
  errorSummary,
  foreignCpuPercent,
  interleave,
  interleaveSides,
  probe,
  publishRaw,
  rawGet,
  removeDir,
  sleep,
  startCeiling,
  tempDir,
  type BenchServer,
  type Budget,
  type Log,
  type ServerKind,
  type Side,
} from './stock';
import type { BenchRow } from './types';

/** Above this much foreign CPU (% of one core) a load row is flagged NOISY in the table notes. */
export const NOISY_CPU_PERCENT = 25;

export interface CannonResult {
  rps: number;
  p50: number;
  p99: number;
  requests: number;
  non2xx: number;
  errors: number;
  timeouts: number;
}

export interface HttpBenchSettings {
  rounds: number;
  durationSec: number;
  warmupSec: number;
  connections: number;
  /** Also the info-only load rows that have no target (full runs). */
  infoRows?: boolean;
}

export const HTTP_SETTINGS: Record<'quick' | 'full', HttpBenchSettings> = {
  // An even number of rounds: the order flips every round, so neither side always runs on the warmer JIT.
  quick: { rounds: 2, durationSec: 1.5, warmupSec: 0.5, connections: 10 },
  full: { rounds: 4, durationSec: 4, warmupSec: 2, connections: 10, infoRows: true },
};

export async function cannon(
  url: string,
  options: { durationSec: number; connections: number; headers?: Record<string, string> },
): Promise<CannonResult> {
  const result = await autocannon({
    url,
    connections: options.connections,
    duration: options.durationSec,
    headers: options.headers,
    timeout: 10,
  });
  return {
    // total / duration, not the mean of per-second samples: a slow server's first second can be empty.
    rps: result.requests.total / result.duration,
    p50: result.latency.p50,
    p99: result.latency.p99,
    requests: result.requests.total,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
  };
}

/** After an overloaded run (stock AES whoami) the server keeps working through its backlog: wait for it. */
async function drain(server: BenchServer, maxMs = 15000): Promise<void> {
  const deadline = Date.now() + maxMs;
  while (Date.now() < deadline) {
    const started = performance.now();
    if ((await probe(`${server.url}/-/ping`, 5000)) === 200 && performance.now() - started < 50) return;
    await sleep(100);
  }
}

export interface Endpoint {
  name: string;
  path: string;
  headers?: Record<string, string>;
  /** Checks one real response before any load is measured: a benchmark of 404s is worthless. */
  check(status: number, body: Buffer): string | null;
}

async function checkEndpoint(server: BenchServer, endpoint: Endpoint): Promise<string | null> {
  const response = await fetch(`${server.url}${endpoint.path}`, { headers: endpoint.headers });
  const body = Buffer.from(await response.arrayBuffer());
  const problem = endpoint.check(response.status, body);
  return problem ? `${server.kind} ${endpoint.path}: ${problem}` : null;
}

function problemsOf(side: Side | 'ceiling', results: readonly CannonResult[]): string[] {
  const bad = results.filter((r) => r.non2xx > 0 || r.errors > 0);
  return bad.map((r) => `ERROR ${side}: ${r.non2xx} non-2xx, ${r.errors} errors (${r.timeouts} timeouts) of ${r.requests} requests`);
}

/** When a load run hit a server, so its CPU profile can be cut to that run (`--profile`). */
export interface LoadWindow extends ProfileWindow {
  row: string;
  kind: ServerKind;
  requests: number;
}

/** A measured curve (y against x) for both sides, e.g. publish latency against the version count; drawn by chart.ts. */
export interface Curve {
  name: string;
  xLabel: string;
  yLabel: string;
  x: number[];
  stock: number[];
  ours: number[];
}

export interface RowOutcome {
  rows: BenchRow[];
  notes: Record<string, string[]>;
  samples: Record<string, { stock: number[]; ours: number[] }>;
  windows?: LoadWindow[];
  curves?: Curve[];
}

export function emptyOutcome(): RowOutcome {
  return { rows: [], notes: {}, samples: {}, windows: [], curves: [] };
}

export function mergeOutcome(into: RowOutcome, from: RowOutcome): void {
  into.rows.push(...from.rows);
  Object.assign(into.notes, from.notes);
  Object.assign(into.samples, from.samples);
  (into.windows ??= []).push(...(from.windows ?? []));
  (into.curves ??= []).push(...(from.curves ?? []));
}

/** The ceiling measured in the same rounds as a stock-vs-ours row: a second row, ours ÷ ceiling. */
export interface CeilingRow {
  rowName: string;
  server: BenchServer;
  endpoint: Endpoint;
  target: string;
}

type LoadSide = Side | 'ceiling';

/**
 * One endpoint, stock vs ours (and, with `ceiling`, the bare replay server too), interleaved
 * rounds of autocannon; the row is ours/stock req/s, the ceiling row ours/ceiling req/s, both
 * from the same runs of ours.
 */
export async function throughputRow(
  rowName: string,
  servers: Record<Side, BenchServer>,
  endpoints: Record<Side, Endpoint>,
  target: string,
  settings: HttpBenchSettings,
  budget: Budget,
  log: Log,
  ceiling?: CeilingRow,
): Promise<RowOutcome> {
  const notes: string[] = [];
  const sides: LoadSide[] = ceiling ? ['stock', 'ours', 'ceiling'] : ['stock', 'ours'];
  const serverOf = (side: LoadSide): BenchServer => (side === 'ceiling' ? (ceiling as CeilingRow).server : servers[side]);
  const endpointOf = (side: LoadSide): Endpoint => (side === 'ceiling' ? (ceiling as CeilingRow).endpoint : endpoints[side]);
  for (const side of sides) {
    const problem = await checkEndpoint(serverOf(side), endpointOf(side));
    if (problem) notes.push(`ERROR ${problem}`);
  }
  if (notes.length > 0) {
    log(`  ${rowName}: not measured — ${notes.join('; ')}`);
    const outcome: RowOutcome = { rows: [makeRow(rowName, Number.NaN, Number.NaN, 'req/s', target)], notes: { [rowName]: notes }, samples: {} };
    if (ceiling) {
      outcome.rows.push(makeRow(ceiling.rowName, Number.NaN, Number.NaN, 'req/s', ceiling.target));
      outcome.notes[ceiling.rowName] = notes;
    }
    return outcome;
  }
  for (const side of sides) {
    if (settings.warmupSec <= 0) break;
    await cannon(`${serverOf(side).url}${endpointOf(side).path}`, {
      durationSec: settings.warmupSec,
      connections: settings.connections,
      headers: endpointOf(side).headers,
    });
  }
  const windows: LoadWindow[] = [];
  const foreignCpu: number[] = [];
  const cpuPerRequest: Record<LoadSide, number[]> = { stock: [], ours: [], ceiling: [] };
  const { runs, skippedRounds } = await interleaveSides(sides, settings.rounds, budget, async (side) => {
    const server = serverOf(side);
    const endpoint = endpointOf(side);
    const startUs = monotonicUs();
    const pids = [process.pid, server.child.pid ?? 0];
    const before = cpuSnapshot(pids);
    const serverBefore = cpuSnapshot([server.child.pid ?? 0]);
    const result = await cannon(`${server.url}${endpoint.path}`, {
      durationSec: settings.durationSec,
      connections: settings.connections,
      headers: endpoint.headers,
    });
    const foreign = foreignCpuPercent(before, cpuSnapshot(pids), cpus().length);
    if (foreign !== null) foreignCpu.push(foreign);
    const serverAfter = cpuSnapshot([server.child.pid ?? 0]);
    if (serverBefore && serverAfter && result.requests > 0) {
      // Server CPU per request: what a busy neighbour cannot inflate much, unlike req/s.
      cpuPerRequest[side].push(((serverAfter.ownTicks - serverBefore.ownTicks) * (1000 / CLOCK_TICKS_PER_SECOND)) / result.requests);
    }
    windows.push({ row: rowName, kind: server.kind, requests: result.requests, startUs, endUs: monotonicUs() });
    log(
      `  ${rowName} ${side}: ${result.rps.toFixed(0)} req/s, p50 ${result.p50} ms, p99 ${result.p99} ms` +
        (foreign === null ? '' : `, other CPU ${foreign.toFixed(0)} %`),
    );
    await sleep(200);
    return result;
  });
  const stockRuns = runs.stock;
  const oursRuns = runs.ours;
  notes.push(...problemsOf('stock', stockRuns), ...problemsOf('ours', oursRuns));
  if (skippedRounds > 0) notes.push(`${skippedRounds} round(s) skipped: time budget`);
  const rps = (list: readonly CannonResult[]): number[] => list.map((r) => r.rps);
  const p50 = (list: readonly CannonResult[]): number => median(list.map((r) => r.p50));
  const total = (list: readonly CannonResult[]): number => list.reduce((sum, r) => sum + r.requests, 0);
  const cpuNote = (baseline: LoadSide): string | null => {
    if (cpuPerRequest[baseline].length === 0 || cpuPerRequest.ours.length === 0) return null;
    const baseCpu = median(cpuPerRequest[baseline]);
    const oursCpu = median(cpuPerRequest.ours);
    return `server CPU per request: ${baseline} ${baseCpu.toFixed(3)} ms, ours ${oursCpu.toFixed(3)} ms (${baseline}/ours ${(baseCpu / oursCpu).toFixed(2)}×)`;
  };
  const stockCpu = cpuNote('stock');
  if (stockCpu) notes.push(stockCpu);
  let noisy: string | null = null;
  if (foreignCpu.length > 0) {
    const worst = Math.max(...foreignCpu);
    // 100 % = one of the cores was busy with work that is neither the server nor the bench.
    noisy = `${worst > NOISY_CPU_PERCENT ? 'NOISY: ' : ''}other CPU during the runs: max ${worst.toFixed(0)} % of a core, median ${median(foreignCpu).toFixed(0)} %`;
    notes.push(noisy);
  }
  notes.push(
    `p50 latency ms: stock ${p50(stockRuns)}, ours ${p50(oursRuns)}; requests: stock ${total(stockRuns)}, ours ${total(oursRuns)}; ` +
      `${settings.connections} connections, ${settings.durationSec} s × ${oursRuns.length} round(s)`,
  );
  const outcome: RowOutcome = {
    rows: [makeRow(rowName, median(rps(oursRuns)), median(rps(stockRuns)), 'req/s', target)],
    notes: { [rowName]: notes },
    samples: { [rowName]: { stock: rps(stockRuns), ours: rps(oursRuns) } },
    windows,
  };
  if (ceiling) {
    const ceilingRuns = runs.ceiling;
    const ceilingNotes = [...problemsOf('ours', oursRuns), ...problemsOf('ceiling', ceilingRuns)];
    if (skippedRounds > 0) ceilingNotes.push(`${skippedRounds} round(s) skipped: time budget`);
    const ceilingCpu = cpuNote('ceiling');
    if (ceilingCpu) ceilingNotes.push(ceilingCpu);
    if (noisy) ceilingNotes.push(noisy);
    ceilingNotes.push(
      `the "stock" column is the ceiling; p50 latency ms: ceiling ${p50(ceilingRuns)}, ours ${p50(oursRuns)}; requests: ceiling ${total(ceilingRuns)}, ours ${total(oursRuns)}`,
    );
    outcome.rows.push(makeRow(ceiling.rowName, median(rps(oursRuns)), median(rps(ceilingRuns)), 'req/s', ceiling.target));
    outcome.notes[ceiling.rowName] = ceilingNotes;
    outcome.samples[ceiling.rowName] = { stock: rps(ceilingRuns), ours: rps(oursRuns) };
  }
  return outcome;
}

export interface SeededPackage {
  name: string;
  tarballPath: string;
  tarballSha1: string;
}

function jsonNamed(name: string): Endpoint['check'] {
  return (status, body) => {
    if (status !== 200) return `status ${status}`;
    try {
      const parsed = JSON.parse(body.toString('utf8')) as { name?: unknown };
      return parsed.name === name ? null : `packument name ${String(parsed.name)}`;
    } catch {
      return 'body is not JSON';
    }
  };
}

function tarballWithSha1(sha1: string): Endpoint['check'] {
  return (status, body) => {
    if (status !== 200) return `status ${status}`;
    const actual = createHash('sha1').update(body).digest('hex');
    return actual === sha1 ? null : `tarball sha1 ${actual}, published ${sha1}`;
  };
}

const both = <T>(value: T): Record<Side, T> => ({ stock: value, ours: value });

/** docs/targets.md: packument and tarball GET ≥ 0.6× the ceiling. */
export const CEILING_TARGET = '≥ 0.6× ceiling req/s';

/** Row names of the read group (the smoke test checks they exist). */
export const READ_ROWS = {
  ping: 'GET /-/ping (framework floor)',
  packument: 'packument GET (full document, cache warm)',
  packumentCeiling: 'packument GET ÷ ceiling (bare node:http replaying the same bytes)',
  abbreviated: 'packument GET, npm install headers (abbreviated, gzip)',
  tarball: 'tarball GET (one few-KB tarball, repeated)',
  tarballCeiling: 'tarball GET ÷ ceiling (bare node:http replaying the same bytes)',
  firstRead: 'first packument GET right after a publish (cache miss), latency',
} as const;

/**
 * ping (info), packument GET, tarball GET — against servers seeded with the same packages — and,
 * in the same rounds, the ceiling: a bare node:http child replaying ours' bytes for both paths.
 */
export async function runReadBench(
  servers: Record<Side, BenchServer>,
  seeded: SeededPackage,
  settings: HttpBenchSettings,
  budget: Budget,
  log: Log,
): Promise<RowOutcome> {
  const outcome = emptyOutcome();
  const ping: Endpoint = { name: 'ping', path: '/-/ping', check: (status) => (status === 200 ? null : `status ${status}`) };
  mergeOutcome(outcome, await throughputRow(READ_ROWS.ping, servers, both(ping), 'info', settings, budget, log));
  const packumentPath = `/${seeded.name.replace('/', '%2f')}`;
  const packument: Endpoint = { name: 'packument', path: packumentPath, check: jsonNamed(seeded.name) };
  const tarball: Endpoint = { name: 'tarball', path: seeded.tarballPath, check: tarballWithSha1(seeded.tarballSha1) };
  // What autocannon receives from ours (it sends no header but Host), replayed from memory.
  const ceilingDir = tempDir('ceiling');
  let ceiling: BenchServer | null = null;
  try {
    try {
      const routes = { [packumentPath]: await rawGet(`${servers.ours.url}${packumentPath}`), [seeded.tarballPath]: await rawGet(`${servers.ours.url}${seeded.tarballPath}`) };
      ceiling = await startCeiling(ceilingDir, routes);
    } catch (error) {
      log(`  ceiling: not started — ${errorSummary(error)}`);
    }
    const ceilingOf = (endpoint: Endpoint, rowName: string): CeilingRow | undefined =>
      ceiling ? { rowName, server: ceiling, endpoint, target: CEILING_TARGET } : undefined;
    const { packumentCeiling, tarballCeiling } = READ_ROWS;
    mergeOutcome(
      outcome,
      await throughputRow(READ_ROWS.packument, servers, both(packument), '≥ 3× stock req/s', settings, budget, log, ceilingOf(packument, packumentCeiling)),
    );
    // What `npm install` really sends: the abbreviated document, gzip accepted (minipass-fetch's
    // default). An info row, left out of --quick to keep it within 2 minutes.
    const npmHeaders = { accept: 'application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*', 'accept-encoding': 'gzip,deflate' };
    const abbreviated: Endpoint = { name: 'packument-npm', path: packumentPath, headers: npmHeaders, check: jsonNamed(seeded.name) };
    if (settings.infoRows) mergeOutcome(outcome, await throughputRow(READ_ROWS.abbreviated, servers, both(abbreviated), 'info', settings, budget, log));
    mergeOutcome(
      outcome,
      await throughputRow(READ_ROWS.tarball, servers, both(tarball), '≥ 2× stock req/s', settings, budget, log, ceilingOf(tarball, tarballCeiling)),
    );
    if (!ceiling) {
      // Never silently dropped: the rows exist, with the reason.
      for (const name of [packumentCeiling, tarballCeiling]) {
        outcome.rows.push(makeRow(name, Number.NaN, Number.NaN, 'req/s', CEILING_TARGET));
        outcome.notes[name] = ['ERROR the ceiling server did not start (see the log)'];
      }
    }
  } finally {
    await ceiling?.stop();
    removeDir(ceilingDir);
  }
  return outcome;
}


export interface FirstReadSettings {
  pairs: number;
}

export const FIRST_READ_SETTINGS: Record<'quick' | 'full', FirstReadSettings> = {
  quick: { pairs: 10 },
  full: { pairs: 30 },
};

/** One GET on a kept-alive connection, timed from the request until the last body byte. */
function timedGet(url: string, agent: Agent): Promise<{ ms: number; status: number; body: Buffer }> {
  return new Promise((resolveGet, reject) => {
    const started = performance.now();
    const req = request(url, { agent, timeout: 10000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolveGet({ ms: performance.now() - started, status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/**
 * The first packument read after a write (docs/targets.md: ≤ 1.0× stock latency): each pair publishes a
 * new version of one package (raw PUT, the document npm sends) and, as soon as the 201 is in,
 * GETs the full packument; the GET's latency is the sample, and it must already list the new
 * version (a stale read is an ERROR, not a fast sample). Pairs alternate stock / ours.
 */
export async function runFirstReadBench(
  targets: Record<Side, { server: BenchServer; token: string }>,
  settings: FirstReadSettings,
  budget: Budget,
  log: Log,
): Promise<RowOutcome> {
  const name = READ_ROWS.firstRead;
  const pkg = '@mycompany/first-read';
  const path = `/${pkg.replace('/', '%2f')}`;
  const agents: Record<Side, Agent> = { stock: new Agent({ keepAlive: true, maxSockets: 1 }), ours: new Agent({ keepAlive: true, maxSockets: 1 }) };
  const notes: string[] = [];
  try {
    for (const side of ['stock', 'ours'] as const) {
      // The package exists (and has been read once) before the first measured pair.
      await publishRaw(targets[side].server.url, targets[side].token, pkg, '1.0.0');
      await timedGet(`${targets[side].server.url}${path}`, agents[side]);
    }
    const runs = await interleave(settings.pairs, budget, async (side, round): Promise<number | string> => {
      const version = `1.0.${round + 1}`;
      try {
        await publishRaw(targets[side].server.url, targets[side].token, pkg, version);
        const { ms, status, body } = await timedGet(`${targets[side].server.url}${path}`, agents[side]);
        if (status !== 200) return `ERROR ${side}: GET after publishing ${version}: status ${status}`;
        const versions = (JSON.parse(body.toString('utf8')) as { versions?: Record<string, unknown> }).versions ?? {};
        if (!Object.hasOwn(versions, version)) return `ERROR ${side}: stale read — GET right after publishing ${version} does not list it`;
        return ms;
      } catch (error) {
        return `ERROR ${side}: ${errorSummary(error)}`;
      }
    });
    const numbers = (side: Side): number[] => runs[side].filter((v): v is number => typeof v === 'number');
    for (const side of ['stock', 'ours'] as const) for (const v of runs[side]) if (typeof v === 'string') notes.push(v);
    if (runs.skippedRounds > 0) notes.push(`${runs.skippedRounds} pair(s) skipped: time budget`);
    notes.push(`${numbers('ours').length} publish-then-GET pair(s) per side, full packument, keep-alive connection`);
    log(`  ${name}: stock ${median(numbers('stock')).toFixed(2)} ms, ours ${median(numbers('ours')).toFixed(2)} ms (medians)`);
    return {
      rows: [makeRow(name, median(numbers('ours')), median(numbers('stock')), 'ms', '≤ 1.0× stock time')],
      notes: { [name]: notes },
      samples: { [name]: { stock: numbers('stock'), ours: numbers('ours') } },
      windows: [],
    };
  } catch (error) {
    notes.push(`ERROR ${errorSummary(error)}`);
    return { rows: [makeRow(name, Number.NaN, Number.NaN, 'ms', '≤ 1.0× stock time')], notes: { [name]: notes }, samples: {}, windows: [] };
  } finally {
    agents.stock.destroy();
    agents.ours.destroy();
  }
}

function whoamiOf(user: string): Endpoint['check'] {
  return (status, body) => {
    if (status !== 200) return `status ${status}`;
    try {
      const parsed = JSON.parse(body.toString('utf8')) as { username?: unknown };
      return parsed.username === user ? null : `whoami says ${JSON.stringify(parsed)}`;
    } catch {
      return 'body is not JSON';
    }
  };
}

function whoami(user: string, token: string): Endpoint {
  return { name: 'whoami', path: '/-/whoami', headers: { authorization: `Bearer ${token}` }, check: whoamiOf(user) };
}

/**
 * `GET /-/whoami` with a Bearer token: ours vs stock in JWT mode (the docs/targets.md row), then — as
 * information — ours vs stock's default AES mode, which runs bcrypt on every request.
 */
export async function runWhoamiBench(
  ours: { server: BenchServer; token: string },
  stockJwt: { server: BenchServer; token: string },
  stockAes: { server: BenchServer; token: string } | null,
  user: string,
  settings: HttpBenchSettings,
  budget: Budget,
  log: Log,
): Promise<RowOutcome> {
  const outcome = emptyOutcome();
  mergeOutcome(
    outcome,
    await throughputRow(
      'GET /-/whoami, Bearer (vs stock JWT mode)',
      { stock: stockJwt.server, ours: ours.server },
      { stock: whoami(user, stockJwt.token), ours: whoami(user, ours.token) },
      '≥ 2× stock req/s',
      settings,
      budget,
      log,
    ),
  );
  if (stockAes) {
    // One short round is enough to show the scale; its backlog is drained before anything else runs.
    const short: HttpBenchSettings = { ...settings, rounds: 1, durationSec: 3, warmupSec: 0 };
    const row = await throughputRow(
      'GET /-/whoami, Bearer (info: vs stock default AES mode, bcrypt per request)',
      { stock: stockAes.server, ours: ours.server },
      { stock: whoami(user, stockAes.token), ours: whoami(user, ours.token) },
      'info',
      short,
      budget,
      log,
    );
    // Timeouts are expected from an AES stock under 10 connections; they are its figure, not a bench failure.
    const name = row.rows[0].name;
    row.notes[name] = (row.notes[name] ?? []).map((note) => (note.startsWith('ERROR stock:') ? note.replace(/^ERROR /, '') : note));
    await drain(stockAes.server);
    mergeOutcome(outcome, row);
  }
  return outcome;
}
