/**
 * HTTP throughput rows with autocannon: ping (info), packument GET, tarball GET, and
 * `GET /-/whoami` with a Bearer token (ours vs stock in JWT mode; stock's default AES mode as info).
 * Client and servers share the machine, so connections stay at 10 and every figure is a median
 * of interleaved rounds.
 */
import { createHash } from 'node:crypto';
import { cpus } from 'node:os';
import autocannon from 'autocannon';
import { monotonicUs, type ProfileWindow } from './profile';
import { makeRow, median } from './report';
import { CLOCK_TICKS_PER_SECOND, cpuSnapshot, foreignCpuPercent, interleave, probe, sleep, type BenchServer, type Budget, type Log, type ServerKind, type Side } from './stock';
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
}

export const HTTP_SETTINGS: Record<'quick' | 'full', HttpBenchSettings> = {
  // An even number of rounds: the order flips every round, so neither side always runs on the warmer JIT.
  quick: { rounds: 2, durationSec: 1.5, warmupSec: 1, connections: 10 },
  full: { rounds: 4, durationSec: 4, warmupSec: 2, connections: 10 },
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

function problemsOf(side: Side, results: readonly CannonResult[]): string[] {
  const bad = results.filter((r) => r.non2xx > 0 || r.errors > 0);
  return bad.map((r) => `ERROR ${side}: ${r.non2xx} non-2xx, ${r.errors} errors (${r.timeouts} timeouts) of ${r.requests} requests`);
}

/** When a load run hit a server, so its CPU profile can be cut to that run (`--profile`). */
export interface LoadWindow extends ProfileWindow {
  row: string;
  kind: ServerKind;
  requests: number;
}

export interface RowOutcome {
  rows: BenchRow[];
  notes: Record<string, string[]>;
  samples: Record<string, { stock: number[]; ours: number[] }>;
  windows?: LoadWindow[];
}

export function emptyOutcome(): RowOutcome {
  return { rows: [], notes: {}, samples: {}, windows: [] };
}

export function mergeOutcome(into: RowOutcome, from: RowOutcome): void {
  into.rows.push(...from.rows);
  Object.assign(into.notes, from.notes);
  Object.assign(into.samples, from.samples);
  (into.windows ??= []).push(...(from.windows ?? []));
}

/** One endpoint, stock vs ours, interleaved rounds of autocannon; the row is ours/stock req/s. */
export async function throughputRow(
  rowName: string,
  servers: Record<Side, BenchServer>,
  endpoints: Record<Side, Endpoint>,
  target: string,
  settings: HttpBenchSettings,
  budget: Budget,
  log: Log,
): Promise<RowOutcome> {
  const notes: string[] = [];
  for (const side of ['stock', 'ours'] as const) {
    const problem = await checkEndpoint(servers[side], endpoints[side]);
    if (problem) notes.push(`ERROR ${problem}`);
  }
  if (notes.length > 0) {
    log(`  ${rowName}: not measured — ${notes.join('; ')}`);
    return { rows: [makeRow(rowName, Number.NaN, Number.NaN, 'req/s', target)], notes: { [rowName]: notes }, samples: {} };
  }
  for (const side of ['stock', 'ours'] as const) {
    if (settings.warmupSec <= 0) break;
    await cannon(`${servers[side].url}${endpoints[side].path}`, {
      durationSec: settings.warmupSec,
      connections: settings.connections,
      headers: endpoints[side].headers,
    });
  }
  const windows: LoadWindow[] = [];
  const foreignCpu: number[] = [];
  const cpuPerRequest: Record<Side, number[]> = { stock: [], ours: [] };
  const runs = await interleave(settings.rounds, budget, async (side) => {
    const startUs = monotonicUs();
    const pids = [process.pid, servers[side].child.pid ?? 0];
    const before = cpuSnapshot(pids);
    const serverBefore = cpuSnapshot([servers[side].child.pid ?? 0]);
    const result = await cannon(`${servers[side].url}${endpoints[side].path}`, {
      durationSec: settings.durationSec,
      connections: settings.connections,
      headers: endpoints[side].headers,
    });
    const foreign = foreignCpuPercent(before, cpuSnapshot(pids), cpus().length);
    if (foreign !== null) foreignCpu.push(foreign);
    const serverAfter = cpuSnapshot([servers[side].child.pid ?? 0]);
    if (serverBefore && serverAfter && result.requests > 0) {
      // Server CPU per request: what a busy neighbour cannot inflate much, unlike req/s.
      cpuPerRequest[side].push(((serverAfter.ownTicks - serverBefore.ownTicks) * (1000 / CLOCK_TICKS_PER_SECOND)) / result.requests);
    }
    windows.push({ row: rowName, kind: servers[side].kind, requests: result.requests, startUs, endUs: monotonicUs() });
    log(
      `  ${rowName} ${side}: ${result.rps.toFixed(0)} req/s, p50 ${result.p50} ms, p99 ${result.p99} ms` +
        (foreign === null ? '' : `, other CPU ${foreign.toFixed(0)} %`),
    );
    await sleep(200);
    return result;
  });
  notes.push(...problemsOf('stock', runs.stock), ...problemsOf('ours', runs.ours));
  if (runs.skippedRounds > 0) notes.push(`${runs.skippedRounds} round(s) skipped: time budget`);
  const stockRps = runs.stock.map((r) => r.rps);
  const oursRps = runs.ours.map((r) => r.rps);
  const stockP50 = median(runs.stock.map((r) => r.p50));
  const oursP50 = median(runs.ours.map((r) => r.p50));
  const total = (list: CannonResult[]): number => list.reduce((sum, r) => sum + r.requests, 0);
  if (cpuPerRequest.stock.length > 0 && cpuPerRequest.ours.length > 0) {
    const stockCpu = median(cpuPerRequest.stock);
    const oursCpu = median(cpuPerRequest.ours);
    notes.push(`server CPU per request: stock ${stockCpu.toFixed(3)} ms, ours ${oursCpu.toFixed(3)} ms (stock/ours ${(stockCpu / oursCpu).toFixed(2)}×)`);
  }
  if (foreignCpu.length > 0) {
    const worst = Math.max(...foreignCpu);
    // 100 % = one of the cores was busy with work that is neither the server nor the bench.
    notes.push(`${worst > NOISY_CPU_PERCENT ? 'NOISY: ' : ''}other CPU during the runs: max ${worst.toFixed(0)} % of a core, median ${median(foreignCpu).toFixed(0)} %`);
  }
  notes.push(
    `p50 latency ms: stock ${stockP50}, ours ${oursP50}; requests: stock ${total(runs.stock)}, ours ${total(runs.ours)}; ` +
      `${settings.connections} connections, ${settings.durationSec} s × ${oursRps.length} round(s)`,
  );
  return {
    rows: [makeRow(rowName, median(oursRps), median(stockRps), 'req/s', target)],
    notes: { [rowName]: notes },
    samples: { [rowName]: { stock: stockRps, ours: oursRps } },
    windows,
  };
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

/** ping (info), packument GET, tarball GET — against servers seeded with the same packages. */
export async function runReadBench(
  servers: Record<Side, BenchServer>,
  seeded: SeededPackage,
  settings: HttpBenchSettings,
  budget: Budget,
  log: Log,
): Promise<RowOutcome> {
  const outcome = emptyOutcome();
  const ping: Endpoint = { name: 'ping', path: '/-/ping', check: (status) => (status === 200 ? null : `status ${status}`) };
  mergeOutcome(outcome, await throughputRow('GET /-/ping (framework floor)', servers, both(ping), 'info', settings, budget, log));
  const packumentPath = `/${seeded.name.replace('/', '%2f')}`;
  const packument: Endpoint = { name: 'packument', path: packumentPath, check: jsonNamed(seeded.name) };
  mergeOutcome(outcome, await throughputRow('packument GET', servers, both(packument), '≥ 1.5× stock req/s', settings, budget, log));
  // What `npm install` really sends: the abbreviated document, gzip accepted (minipass-fetch's default).
  const npmHeaders = { accept: 'application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*', 'accept-encoding': 'gzip,deflate' };
  const abbreviated: Endpoint = { name: 'packument-npm', path: packumentPath, headers: npmHeaders, check: jsonNamed(seeded.name) };
  mergeOutcome(outcome, await throughputRow('packument GET, npm install headers (abbreviated, gzip)', servers, both(abbreviated), 'info', settings, budget, log));
  const tarball: Endpoint = { name: 'tarball', path: seeded.tarballPath, check: tarballWithSha1(seeded.tarballSha1) };
  mergeOutcome(outcome, await throughputRow('tarball GET', servers, both(tarball), '≥ 1.5× stock req/s', settings, budget, log));
  return outcome;
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
 * `GET /-/whoami` with a Bearer token: ours vs stock in JWT mode (the SPEC row), then — as
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
      '≥ 1.5× stock req/s',
      settings,
      budget,
      log,
    ),
  );
  if (stockAes) {
    // One short round is enough to show the scale; its backlog is drained before anything else runs.
    const short: HttpBenchSettings = { ...settings, rounds: 1, durationSec: 3, warmupSec: 0 };
    const row = await throughputRow(
      'GET /-/whoami, Bearer (vs stock default AES mode)',
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
