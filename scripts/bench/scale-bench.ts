/**
 * Scale rows (issue 17 item 3) and the server-side publish rows (issue 18 item 3): how cost grows
 * with the registry's size, stock (JWT mode) and ours in the same run, interleaved.
 *
 *   - versions: one package published version after version with raw `PUT`s on a kept-alive
 *     connection, stock and ours alternating per version; at each checkpoint (10 / 100 / 1,000
 *     versions; quick 10 / 100 / 200) the publish latency (median of the 5 publishes ending
 *     there), the server CPU per publish of the segment, the full packument's size and its GET
 *     latency once settled;
 *   - packages: N new packages (3,000; quick 300) seeded with raw `PUT`s, keep-alive, concurrency 4,
 *     batches alternating stock / ours — the seeding rate is the "bulk publish rate" row — then
 *     restarts (spawn → /-/ping 200) of that folder and of an empty one, RSS after restart, search,
 *     and for ours the dashboard package list, the index open and `rebuild-index`;
 *   - burst: C concurrent publishes of S MB tarballs (20 × 5 MB; quick 10 × 2 MB) on a fresh server
 *     per side and round: wall time, peak RSS (VmHWM) and server CPU.
 * Every server is fresh (its own temp folder), so nothing of the other groups leaks in.
 */
import { randomBytes } from 'node:crypto';
import { Agent } from 'node:http';
import { join } from 'node:path';
import { PackageIndex } from '../../plugins/registry-core/index';
import { emptyOutcome, type Curve, type RowOutcome } from './http-bench';
import { makeRow, median } from './report';
import {
  NODE_BIN,
  PROJECT_ROOT,
  addUser,
  errorSummary,
  freePort,
  makeTarball,
  packageFiles,
  packagePath,
  processCpuMs,
  publishBody,
  putPublish,
  removeDir,
  run,
  cleanEnv,
  sleep,
  spawnServer,
  startServer,
  statusMiB,
  stopChild,
  tempDir,
  timedRequest,
  waitForPing,
  writeOursConfig,
  writeStockConfig,
  type BenchServer,
  type Log,
  type ServerKind,
  type Side,
} from './stock';

export interface ScaleSettings {
  /** Version counts at which publish latency, packument size and GET are reported; the last is the series length. */
  checkpoints: number[];
  /** Packages seeded for the restart / search / dashboard / index rows. */
  packages: number;
  /** Packages per seeding batch (batches alternate stock / ours). */
  batch: number;
  /** Concurrent raw PUTs while seeding, to each server. */
  concurrency: number;
  /** Restart rounds per side (each: the seeded folder and the empty one). */
  restartRounds: number;
  /** Timed GETs per measurement (after one untimed first). */
  gets: number;
  /** rebuild-index runs (server stopped). */
  rebuildRuns: number;
  burst: { publishes: number; megabytes: number; rounds: number };
  /** Size words for the row names, so a quick row never reads like a full one. */
  label: string;
}

export const SCALE_SETTINGS: Record<'quick' | 'full', ScaleSettings> = {
  quick: {
    checkpoints: [10, 50, 100],
    packages: 200,
    batch: 50,
    concurrency: 4,
    restartRounds: 1,
    gets: 10,
    rebuildRuns: 1,
    burst: { publishes: 10, megabytes: 2, rounds: 1 },
    label: 'quick sizes',
  },
  full: {
    checkpoints: [10, 100, 1000],
    packages: 3000,
    batch: 100,
    concurrency: 4,
    restartRounds: 2,
    gets: 20,
    rebuildRuns: 3,
    burst: { publishes: 20, megabytes: 5, rounds: 2 },
    label: 'full sizes',
  },
};

const KIND: Record<Side, Exclude<ServerKind, 'ceiling'>> = { stock: 'stock-jwt', ours: 'ours' };
const USER = 'bench';
const PASSWORD = 'bench-password-1';
const SIDES = ['stock', 'ours'] as const;
/**
 * Publishes ending at a checkpoint whose median is its latency: 5 (as the 2026-12-01 measurement),
 * more at large counts where one publish is cheap to repeat relative to the series (1,000 → 25).
 */
export function windowAt(n: number): number {
  return Math.min(25, Math.max(5, Math.round(n / 40)));
}
/** Ours serves a packument written < 100 ms ago past its cache; the GET rows measure the settled state. */
const SETTLE_MS = 250;
/** Untimed publishes of a warm-up package on each versions server before the series. */
const WARMUP_PUBLISHES = 10;
const CONFIG_CLI = join(PROJECT_ROOT, 'build', 'scripts', 'config-cli.js');

/** Row names, shared with the smoke test; sizes are in the names. */
export const SCALE_ROWS = {
  publishAt: (n: number) => `server publish latency, one package at ${n} versions (raw PUT, keep-alive, median of versions ${Math.max(1, n - windowAt(n) + 1)}..${n})`,
  publishGrowth: (n: number, first: number) => `publish latency growth, ours: at ${n} ÷ at ${first} versions (baseline column = ours at ${first})`,
  sizeAt: (n: number) => `packument size at ${n} versions (full document)`,
  getAt: (n: number) => `packument GET at ${n} versions (full, settled ${SETTLE_MS} ms after the publish)`,
  bulkRate: (p: number, c: number) => `bulk publish rate, ${p} new packages (raw PUT, keep-alive, concurrency ${c})`,
  cpuPerPublish: (p: number) => `server CPU per publish (utime+stime from /proc, over the ${p} bulk publishes)`,
  restartAt: (p: number) => `restart → /-/ping 200 with ${p} packages`,
  restartGrowth: (p: number) => `restart growth, ours: ${p} packages ÷ empty (baseline column = ours empty)`,
  rssAfterRestart: (p: number) => `RSS 1 s after restart with ${p} packages (VmRSS)`,
  search: (p: number) => `search GET /-/v1/search?text=scale&size=20 with ${p} packages`,
  dashboardList: (p: number) => `dashboard GET /_dashboard/api/packages with ${p} packages (ours only)`,
  indexOpen: (p: number) => `index open: PackageIndex.open + readAll of ${p} packages' registry.lockb (ours only, in process)`,
  rebuild: (p: number) => `rebuild-index of ${p} packages (ours only, node build/scripts/config-cli.js, server stopped)`,
  burstWall: (c: number, mb: number) => `${c} concurrent ${mb} MB publishes, wall (raw PUT, fresh server)`,
  burstRss: (c: number, mb: number) => `peak RSS in ${c} concurrent ${mb} MB publishes (VmHWM, fresh server)`,
} as const;

export const SCALE_CURVES = {
  publish: 'server publish latency vs versions in the package (median per block, ms)',
  get: 'packument GET vs versions in the package (settled, ms)',
} as const;

type Values = Record<Side, number[]>;

function both(): Values {
  return { stock: [], ours: [] };
}

export interface Started {
  server: BenchServer;
  token: string;
  agent: Agent;
}

async function startFresh(side: Side, prefix: string, dirs: string[], maxSockets: number): Promise<Started> {
  const dir = tempDir(`scale-${prefix}-${side}`);
  dirs.push(dir);
  const server = await startServer(KIND[side], dir);
  try {
    const token = await addUser(server.url, USER, PASSWORD);
    return { server, token, agent: new Agent({ keepAlive: true, maxSockets }) };
  } catch (error) {
    await server.stop();
    throw error;
  }
}

async function stopAll(started: Partial<Record<Side, Started>>): Promise<void> {
  for (const side of SIDES) {
    const entry = started[side];
    if (!entry) continue;
    entry.agent.destroy();
    await entry.server.stop();
  }
}

/** One untimed GET, then `count` timed ones, alternating the sides; a non-200 is an error. */
async function alternatingGets(
  started: Record<Side, Started>,
  path: string,
  count: number,
  headers: Partial<Record<Side, Record<string, string>>> = {},
): Promise<{ ms: Values; first: Record<Side, Buffer> }> {
  const first = {} as Record<Side, Buffer>;
  for (const side of SIDES) {
    const response = await timedRequest(`${started[side].server.url}${path}`, { method: 'GET', agent: started[side].agent, headers: headers[side] });
    if (response.status !== 200) throw new Error(`${side} GET ${path}: ${response.status} ${response.body.toString('utf8').slice(0, 200)}`);
    first[side] = response.body;
  }
  const ms = both();
  for (let i = 0; i < count; i += 1) {
    for (const side of i % 2 === 0 ? SIDES : [...SIDES].reverse()) {
      const response = await timedRequest(`${started[side].server.url}${path}`, { method: 'GET', agent: started[side].agent, headers: headers[side] });
      if (response.status !== 200) throw new Error(`${side} GET ${path}: ${response.status}`);
      ms[side].push(response.ms);
    }
  }
  return { ms, first };
}

function fmt(value: number, digits = 1): string {
  return Number.isFinite(value) ? value.toFixed(digits) : 'n/a';
}

/** Which failed part is named in the table, with its reason: a row is never silently dropped. */
function failedRows(outcome: RowOutcome, names: readonly [string, string][], error: unknown, log: Log): void {
  const message = errorSummary(error);
  log(`  FAILED: ${message}`);
  for (const [name, unit] of names) {
    if (outcome.rows.some((row) => row.name === name)) continue;
    outcome.rows.push(makeRow(name, Number.NaN, Number.NaN, unit, 'failed'));
    outcome.notes[name] = [`ERROR ${message}`];
  }
}

// ---------------------------------------------------------------------------------------------
// One package, many versions

async function versionsPart(settings: ScaleSettings, dirs: string[], log: Log, outcome: RowOutcome): Promise<void> {
  const checkpoints = [...settings.checkpoints].sort((a, b) => a - b);
  const last = checkpoints[checkpoints.length - 1];
  const first = checkpoints[0];
  const pkg = '@mycompany/scale-versions';
  const started: Partial<Record<Side, Started>> = {};
  try {
    for (const side of SIDES) started[side] = await startFresh(side, 'versions', dirs, 1);
    const live = started as Record<Side, Started>;
    // Untimed warm-up publishes of another package, so the first checkpoint measures a warm JIT
    // on both sides, not a fresh process's first requests (which would flatter the growth row).
    for (let w = 1; w <= WARMUP_PUBLISHES; w += 1) {
      for (const side of SIDES) {
        const { body } = publishBody(live[side].server.url, '@mycompany/scale-warmup', `1.0.${w}`);
        await putPublish(live[side].server.url, live[side].agent, live[side].token, '@mycompany/scale-warmup', body);
      }
    }
    const latency = both();
    const cpuAt: Record<Side, (number | null)[]> = { stock: [processCpuMs(live.stock.server.child.pid)], ours: [processCpuMs(live.ours.server.child.pid)] };
    const gets: { n: number; ms: Values; bytes: Record<Side, number> }[] = [];
    let checkpoint = 0;
    for (let v = 1; v <= last; v += 1) {
      const version = `1.0.${v}`;
      // One tarball for both sides, built before the timed request.
      const tarball = makeTarball(packageFiles(pkg, version));
      for (const side of v % 2 === 1 ? SIDES : [...SIDES].reverse()) {
        const { body } = publishBody(live[side].server.url, pkg, version, tarball);
        latency[side].push(await putPublish(live[side].server.url, live[side].agent, live[side].token, pkg, body));
      }
      if (v !== checkpoints[checkpoint]) continue;
      checkpoint += 1;
      for (const side of SIDES) cpuAt[side].push(processCpuMs(live[side].server.child.pid));
      await sleep(SETTLE_MS);
      const read = await alternatingGets(live, packagePath(pkg), settings.gets);
      for (const side of SIDES) {
        const versions = (JSON.parse(read.first[side].toString('utf8')) as { versions?: Record<string, unknown> }).versions ?? {};
        if (Object.keys(versions).length !== v) throw new Error(`${side}: packument at ${v} versions lists ${Object.keys(versions).length}`);
      }
      gets.push({ n: v, ms: read.ms, bytes: { stock: read.first.stock.length, ours: read.first.ours.length } });
      log(
        `  ${v} versions: publish stock ${fmt(median(latency.stock.slice(-windowAt(v))))} ms, ours ${fmt(median(latency.ours.slice(-windowAt(v))))} ms; ` +
          `GET stock ${fmt(median(read.ms.stock), 2)} ms, ours ${fmt(median(read.ms.ours), 2)} ms; ${read.first.ours.length} B`,
      );
    }
    let previous = 0;
    for (const [i, n] of checkpoints.entries()) {
      const window = (side: Side): number[] => latency[side].slice(Math.max(0, n - windowAt(n)), n);
      const name = SCALE_ROWS.publishAt(n);
      // Issue 18's acceptance: ≤ stock at 10 and at 1,000 versions (the first and last checkpoint).
      const target = i === 0 || i === checkpoints.length - 1 ? '≤ 1.0× stock time' : 'info';
      outcome.rows.push(makeRow(name, median(window('ours')), median(window('stock')), 'ms', target));
      outcome.samples[name] = { stock: window('stock'), ours: window('ours') };
      const cpu = (side: Side): string => {
        const [a, b] = [cpuAt[side][i], cpuAt[side][i + 1]];
        return a === null || b === null ? 'n/a' : fmt((b - a) / (n - previous));
      };
      outcome.notes[name] = [`server CPU per publish over versions ${previous + 1}..${n}: stock ${cpu('stock')} ms, ours ${cpu('ours')} ms (/proc, 10 ms ticks)`];
      previous = n;
      const get = gets[i];
      const sizeName = SCALE_ROWS.sizeAt(n);
      outcome.rows.push(makeRow(sizeName, get.bytes.ours / 1024, get.bytes.stock / 1024, 'KiB', 'info'));
      const getName = SCALE_ROWS.getAt(n);
      outcome.rows.push(makeRow(getName, median(get.ms.ours), median(get.ms.stock), 'ms', 'info'));
      outcome.samples[getName] = get.ms;
      outcome.notes[getName] = [`median of ${settings.gets} per side after one untimed GET, keep-alive, no Accept header (the full document)`];
    }
    const at = (side: Side, n: number): number => median(latency[side].slice(Math.max(0, n - windowAt(n)), n));
    const growth = SCALE_ROWS.publishGrowth(last, first);
    outcome.rows.push(makeRow(growth, at('ours', last), at('ours', first), 'ms', `≤ 2× its time at ${first} versions`));
    outcome.notes[growth] = [`stock's growth in the same run: ${fmt(at('stock', last) / at('stock', first), 2)}× (${fmt(at('stock', first))} → ${fmt(at('stock', last))} ms)`];
    // The curves: median per block of versions, so each point is a few publishes, not one.
    const block = Math.max(1, Math.round(last / 20));
    const xs: number[] = [];
    const blocks = both();
    for (let end = block; end <= last; end += block) {
      xs.push(end);
      for (const side of SIDES) blocks[side].push(median(latency[side].slice(end - block, end)));
    }
    const curves: Curve[] = [
      { name: SCALE_CURVES.publish, xLabel: 'versions', yLabel: 'ms', x: xs, stock: blocks.stock, ours: blocks.ours },
      { name: SCALE_CURVES.get, xLabel: 'versions', yLabel: 'ms', x: gets.map((g) => g.n), stock: gets.map((g) => median(g.ms.stock)), ours: gets.map((g) => median(g.ms.ours)) },
    ];
    (outcome.curves ??= []).push(...curves);
  } catch (error) {
    const names: [string, string][] = checkpoints.flatMap((n) => [
      [SCALE_ROWS.publishAt(n), 'ms'],
      [SCALE_ROWS.sizeAt(n), 'KiB'],
      [SCALE_ROWS.getAt(n), 'ms'],
    ] as [string, string][]);
    failedRows(outcome, [...names, [SCALE_ROWS.publishGrowth(last, first), 'ms']], error, log);
  } finally {
    await stopAll(started);
  }
}

// ---------------------------------------------------------------------------------------------
// Many packages

interface Restart {
  ms: number;
  rssMiB: number | null;
}

/** Spawn → first /-/ping 200 on a folder that already holds state, VmRSS 1 s later, then a graceful stop. */
async function restartOnce(side: Side, dir: string): Promise<Restart> {
  if (side === 'ours') writeOursConfig(dir);
  else writeStockConfig(dir, { jwt: true });
  const port = await freePort();
  const startedAt = performance.now();
  const { child, logs } = spawnServer(KIND[side], dir, port);
  try {
    await waitForPing(`http://127.0.0.1:${port}`, child, logs, 60000);
    const ms = performance.now() - startedAt;
    await sleep(1000);
    return { ms, rssMiB: statusMiB(child.pid, 'VmRSS') };
  } finally {
    await stopChild(child);
  }
}

/** Raw PUTs of `names` with `concurrency` in flight; the tarballs are prebuilt. Returns the wall ms. */
export async function publishBatch(target: Started, names: readonly string[], tarballs: readonly Buffer[], concurrency: number): Promise<number> {
  const bodies = names.map((name, i) => publishBody(target.server.url, name, '1.0.0', tarballs[i]).body);
  let next = 0;
  const startedAt = performance.now();
  const worker = async (): Promise<void> => {
    while (next < names.length) {
      const i = next;
      next += 1;
      await putPublish(target.server.url, target.agent, target.token, names[i], bodies[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, names.length) }, worker));
  return performance.now() - startedAt;
}

async function packagesPart(settings: ScaleSettings, dirs: string[], log: Log, outcome: RowOutcome): Promise<void> {
  const p = settings.packages;
  const started: Partial<Record<Side, Started>> = {};
  const rowNames: [string, string][] = [
    [SCALE_ROWS.bulkRate(p, settings.concurrency), 'pkg/s'],
    [SCALE_ROWS.cpuPerPublish(p), 'ms CPU'],
    [SCALE_ROWS.restartAt(p), 'ms'],
    [SCALE_ROWS.restartGrowth(p), 'ms'],
    [SCALE_ROWS.rssAfterRestart(p), 'MiB'],
    [SCALE_ROWS.search(p), 'ms'],
    [SCALE_ROWS.dashboardList(p), 'ms'],
    [SCALE_ROWS.indexOpen(p), 'ms'],
    [SCALE_ROWS.rebuild(p), 'ms'],
  ];
  try {
    // Empty folders for the restart baseline: one start each writes their state and compile cache.
    const empty: Record<Side, string> = { stock: tempDir('scale-empty-stock'), ours: tempDir('scale-empty-ours') };
    dirs.push(empty.stock, empty.ours);
    for (const side of SIDES) await (await startServer(KIND[side], empty[side])).stop();

    for (const side of SIDES) started[side] = await startFresh(side, 'packages', dirs, settings.concurrency);
    // A copy: `started` is emptied when these servers stop, their folders and tokens are used after.
    const live = { ...started } as Record<Side, Started>;
    const names = Array.from({ length: p }, (_, i) => `@mycompany/scale-${i + 1}`);
    const wall = { stock: 0, ours: 0 };
    const cpuBefore = { stock: processCpuMs(live.stock.server.child.pid), ours: processCpuMs(live.ours.server.child.pid) };
    for (let from = 0, round = 0; from < p; from += settings.batch, round += 1) {
      const batch = names.slice(from, from + settings.batch);
      const tarballs = batch.map((name) => makeTarball(packageFiles(name, '1.0.0')));
      for (const side of round % 2 === 0 ? SIDES : [...SIDES].reverse()) wall[side] += await publishBatch(live[side], batch, tarballs, settings.concurrency);
    }
    const cpuUsed = (side: Side): number => {
      const before = cpuBefore[side];
      const after = processCpuMs(live[side].server.child.pid);
      return before === null || after === null ? Number.NaN : after - before;
    };
    const cpu = { stock: cpuUsed('stock'), ours: cpuUsed('ours') };
    const rate = (side: Side): number => p / (wall[side] / 1000);
    log(`  seeded ${p} packages: stock ${fmt(rate('stock'))} /s, ours ${fmt(rate('ours'))} /s; CPU per publish stock ${fmt(cpu.stock / p)} ms, ours ${fmt(cpu.ours / p)} ms`);
    const rateName = SCALE_ROWS.bulkRate(p, settings.concurrency);
    outcome.rows.push(makeRow(rateName, rate('ours'), rate('stock'), 'pkg/s', '≥ 1.0× stock rate'));
    outcome.notes[rateName] = [`batches of ${settings.batch}, alternating stock / ours; wall = sum of the batch times; tarballs and bodies built before each batch is timed`];
    const cpuName = SCALE_ROWS.cpuPerPublish(p);
    outcome.rows.push(makeRow(cpuName, cpu.ours / p, cpu.stock / p, 'ms CPU', '≤ 1.0× stock CPU'));
    await stopAll(started);
    delete started.stock;
    delete started.ours;

    // Restarts: the seeded folder and the empty one, each side, interleaved.
    const seededDir = { stock: live.stock.server.dir, ours: live.ours.server.dir };
    const restarts = { full: both(), empty: both() };
    const rss = both();
    for (let round = 0; round < settings.restartRounds; round += 1) {
      for (const side of round % 2 === 0 ? SIDES : [...SIDES].reverse()) {
        const full = await restartOnce(side, seededDir[side]);
        const none = await restartOnce(side, empty[side]);
        restarts.full[side].push(full.ms);
        restarts.empty[side].push(none.ms);
        if (full.rssMiB !== null) rss[side].push(full.rssMiB);
        log(`  restart ${side}: ${p} packages ${fmt(full.ms, 0)} ms (RSS ${fmt(full.rssMiB ?? Number.NaN, 0)} MiB), empty ${fmt(none.ms, 0)} ms`);
      }
    }
    const restartName = SCALE_ROWS.restartAt(p);
    outcome.rows.push(makeRow(restartName, median(restarts.full.ours), median(restarts.full.stock), 'ms', 'info'));
    outcome.samples[restartName] = restarts.full;
    outcome.notes[restartName] = [`${settings.restartRounds} round(s) per side; state and compile cache kept (a restart)`];
    const growthName = SCALE_ROWS.restartGrowth(p);
    outcome.rows.push(makeRow(growthName, median(restarts.full.ours), median(restarts.empty.ours), 'ms', '≤ 1.2× its empty restart'));
    outcome.samples[growthName] = { stock: restarts.empty.ours, ours: restarts.full.ours };
    outcome.notes[growthName] = [
      `stock's growth in the same run: ${fmt(median(restarts.full.stock) / median(restarts.empty.stock), 2)}× (${fmt(median(restarts.empty.stock), 0)} → ${fmt(median(restarts.full.stock), 0)} ms)`,
    ];
    const rssName = SCALE_ROWS.rssAfterRestart(p);
    outcome.rows.push(makeRow(rssName, median(rss.ours), median(rss.stock), 'MiB', 'info'));
    outcome.samples[rssName] = rss;
    if (rss.ours.length === 0 || rss.stock.length === 0) outcome.notes[rssName] = ['ERROR no sample (is /proc readable?)'];

    // Search and the dashboard list, on the seeded folders started once more.
    for (const side of SIDES) {
      // Tokens survive a restart on both sides (keys / secret live in the folder); search is anonymous.
      started[side] = { server: await startServer(KIND[side], seededDir[side]), token: live[side].token, agent: new Agent({ keepAlive: true, maxSockets: 1 }) };
    }
    const again = { ...started } as Record<Side, Started>;
    const searchPath = '/-/v1/search?text=scale&size=20';
    // Stock's search reads every packument (≈ 1.5 s per request at 3,000 packages): at most 5 timed.
    const searchGets = Math.min(settings.gets, 5);
    const search = await alternatingGets(again, searchPath, searchGets);
    const found = (side: Side): number => ((JSON.parse(search.first[side].toString('utf8')) as { objects?: unknown[] }).objects ?? []).length;
    const searchName = SCALE_ROWS.search(p);
    outcome.rows.push(makeRow(searchName, median(search.ms.ours), median(search.ms.stock), 'ms', 'info'));
    outcome.samples[searchName] = search.ms;
    outcome.notes[searchName] = [`median of ${searchGets} after the first; objects returned: stock ${found('stock')}, ours ${found('ours')}`];
    if (found('stock') !== found('ours')) outcome.notes[searchName].push(`ERROR the two sides returned a different number of results`);
    log(`  search: stock ${fmt(median(search.ms.stock), 2)} ms, ours ${fmt(median(search.ms.ours), 2)} ms`);

    // Ours only: the first user of a fresh ours folder is its admin; the list is filtered per reader.
    const token = live.ours.token;
    const listMs: number[] = [];
    let listed = -1;
    for (let i = 0; i <= settings.gets; i += 1) {
      const response = await timedRequest(`${again.ours.server.url}/_dashboard/api/packages`, {
        method: 'GET',
        agent: again.ours.agent,
        headers: { authorization: `Bearer ${token}` },
      });
      if (response.status !== 200) throw new Error(`GET /_dashboard/api/packages: ${response.status} ${response.body.toString('utf8').slice(0, 200)}`);
      if (i === 0) listed = ((JSON.parse(response.body.toString('utf8')) as { packages?: unknown[] }).packages ?? []).length;
      else listMs.push(response.ms);
    }
    const listName = SCALE_ROWS.dashboardList(p);
    outcome.rows.push(makeRow(listName, median(listMs), null, 'ms', '≤ 50 ms'));
    outcome.samples[listName] = { stock: [], ours: listMs };
    outcome.notes[listName] = [`median of ${settings.gets} after the first, publisher's token; packages listed: ${listed}`];
    if (listed !== p) outcome.notes[listName].push(`ERROR the list has ${listed} packages, ${p} were published`);
    log(`  dashboard list: ${fmt(median(listMs), 2)} ms (${listed} packages)`);
    await stopAll(started);
    delete started.stock;
    delete started.ours;

    // Ours only, server stopped: the index as the server opens it, and its rebuild from storage.
    const lockb = join(seededDir.ours, 'registry.lockb');
    const openMs: number[] = [];
    let records = 0;
    for (let i = 0; i < 5; i += 1) {
      const t0 = performance.now();
      const index = PackageIndex.open(lockb);
      try {
        records = index.readAll().length;
      } finally {
        index.close();
      }
      openMs.push(performance.now() - t0);
    }
    const openName = SCALE_ROWS.indexOpen(p);
    outcome.rows.push(makeRow(openName, median(openMs), null, 'ms', 'info'));
    outcome.samples[openName] = { stock: [], ours: openMs };
    outcome.notes[openName] = [`median of 5; ${records} records`];
    const rebuildMs: number[] = [];
    let rebuildOutput = '';
    for (let i = 0; i < settings.rebuildRuns; i += 1) {
      const result = await run(NODE_BIN, [CONFIG_CLI, '--config', join(seededDir.ours, 'config.yaml'), '--file', lockb, 'rebuild-index'], {
        cwd: seededDir.ours,
        env: cleanEnv(),
      });
      if (result.code !== 0) throw new Error(`rebuild-index exited ${result.code}: ${result.stderr.trim()}`);
      rebuildOutput = result.stdout.trim();
      rebuildMs.push(result.ms);
    }
    const rebuildName = SCALE_ROWS.rebuild(p);
    outcome.rows.push(makeRow(rebuildName, median(rebuildMs), null, 'ms', 'info'));
    outcome.samples[rebuildName] = { stock: [], ours: rebuildMs };
    outcome.notes[rebuildName] = [`median of ${settings.rebuildRuns}, spawn → exit (Node's start-up included); ${rebuildOutput.replace(/ of \/\S+| from \/\S+/g, '')}`];
    if (!new RegExp(`for ${p} packages`).test(rebuildOutput)) outcome.notes[rebuildName].push(`ERROR rebuild did not report ${p} packages: ${rebuildOutput}`);
    log(`  index open ${fmt(median(openMs), 2)} ms (${records} records), rebuild-index ${fmt(median(rebuildMs), 0)} ms`);
  } catch (error) {
    failedRows(outcome, rowNames, error, log);
  } finally {
    await stopAll(started);
  }
}

// ---------------------------------------------------------------------------------------------
// Concurrent large publishes

interface Burst {
  wallMs: number;
  hwmMiB: number | null;
  sampledPeakMiB: number | null;
  beforeMiB: number | null;
  cpuMs: number | null;
}

async function burstOnce(side: Side, settings: ScaleSettings, tarball: Buffer, round: number, dirs: string[]): Promise<Burst> {
  const { publishes } = settings.burst;
  const target = await startFresh(side, `burst${round}`, dirs, publishes);
  try {
    const pid = target.server.child.pid;
    const names = Array.from({ length: publishes }, (_, i) => `@mycompany/burst-${i + 1}`);
    const bodies = names.map((name) => Buffer.from(publishBody(target.server.url, name, '1.0.0', tarball).body));
    const beforeMiB = statusMiB(pid, 'VmRSS');
    const cpuBefore = processCpuMs(pid);
    let sampledPeakMiB = beforeMiB;
    // VmHWM is exact; the 50 ms samples show the shape and cross-check it.
    const sampler = setInterval(() => {
      const now = statusMiB(pid, 'VmRSS');
      if (now !== null && (sampledPeakMiB === null || now > sampledPeakMiB)) sampledPeakMiB = now;
    }, 50);
    const startedAt = performance.now();
    try {
      await Promise.all(names.map((name, i) => putPublish(target.server.url, target.agent, target.token, name, bodies[i])));
    } finally {
      clearInterval(sampler);
    }
    const wallMs = performance.now() - startedAt;
    const cpuAfter = processCpuMs(pid);
    return {
      wallMs,
      hwmMiB: statusMiB(pid, 'VmHWM'),
      sampledPeakMiB,
      beforeMiB,
      cpuMs: cpuBefore === null || cpuAfter === null ? null : cpuAfter - cpuBefore,
    };
  } finally {
    target.agent.destroy();
    await target.server.stop();
  }
}

async function burstPart(settings: ScaleSettings, dirs: string[], log: Log, outcome: RowOutcome): Promise<void> {
  const { publishes, megabytes, rounds } = settings.burst;
  const wallName = SCALE_ROWS.burstWall(publishes, megabytes);
  const rssName = SCALE_ROWS.burstRss(publishes, megabytes);
  try {
    // Random bytes as hex carry 4 bits per character and gzip to about half the text (≈ 0.55×):
    // S MiB of random bytes as 2·S MiB of hex give a tarball of ≈ 1.1·S MiB (the note below prints it).
    // (Before 2026-12-02 15:55 the text was S MiB, so the "5 MB" tarballs were ≈ 2.8 MB.)
    const blob = randomBytes(Math.round(megabytes * 1024 * 1024)).toString('hex');
    const tarball = makeTarball({ ...packageFiles('@mycompany/burst', '1.0.0'), 'blob.txt': blob });
    const runs: Record<Side, Burst[]> = { stock: [], ours: [] };
    for (let round = 0; round < rounds; round += 1) {
      for (const side of round % 2 === 0 ? SIDES : [...SIDES].reverse()) {
        const burst = await burstOnce(side, settings, tarball, round, dirs);
        runs[side].push(burst);
        log(
          `  burst ${side}: ${fmt(burst.wallMs, 0)} ms, VmHWM ${fmt(burst.hwmMiB ?? Number.NaN, 0)} MiB ` +
            `(sampled peak ${fmt(burst.sampledPeakMiB ?? Number.NaN, 0)}, before ${fmt(burst.beforeMiB ?? Number.NaN, 0)}), CPU ${fmt(burst.cpuMs ?? Number.NaN, 0)} ms`,
        );
      }
    }
    const pick = (side: Side, value: (b: Burst) => number | null): number[] => runs[side].flatMap((b) => (value(b) === null ? [] : [value(b) as number]));
    const note = `${rounds} round(s) per side, a fresh server each; tarball ${tarball.length} B (body ≈ ${Math.round((tarball.length * 4) / 3 / 1024 / 1024)} MB of base64)`;
    outcome.rows.push(makeRow(wallName, median(pick('ours', (b) => b.wallMs)), median(pick('stock', (b) => b.wallMs)), 'ms', '≤ 1.2× stock time'));
    outcome.samples[wallName] = { stock: pick('stock', (b) => b.wallMs), ours: pick('ours', (b) => b.wallMs) };
    outcome.notes[wallName] = [
      note,
      `server CPU in the burst: stock ${fmt(median(pick('stock', (b) => b.cpuMs)), 0)} ms, ours ${fmt(median(pick('ours', (b) => b.cpuMs)), 0)} ms`,
    ];
    const hwm = { stock: pick('stock', (b) => b.hwmMiB), ours: pick('ours', (b) => b.hwmMiB) };
    outcome.rows.push(makeRow(rssName, median(hwm.ours), median(hwm.stock), 'MiB', '≤ 1.0× stock RSS'));
    outcome.samples[rssName] = hwm;
    outcome.notes[rssName] = [
      `sampled VmRSS peak (50 ms): stock ${fmt(median(pick('stock', (b) => b.sampledPeakMiB)), 0)} MiB, ours ${fmt(median(pick('ours', (b) => b.sampledPeakMiB)), 0)} MiB; ` +
        `before the burst: stock ${fmt(median(pick('stock', (b) => b.beforeMiB)), 0)}, ours ${fmt(median(pick('ours', (b) => b.beforeMiB)), 0)}`,
    ];
    if (hwm.stock.length === 0 || hwm.ours.length === 0) outcome.notes[rssName].push('ERROR no VmHWM sample (is /proc readable?)');
  } catch (error) {
    failedRows(
      outcome,
      [
        [wallName, 'ms'],
        [rssName, 'MiB'],
      ],
      error,
      log,
    );
  }
}

export async function runScaleBench(settings: ScaleSettings, log: Log): Promise<RowOutcome> {
  const outcome = emptyOutcome();
  const dirs: string[] = [];
  try {
    const part = async (title: string, work: () => Promise<void>): Promise<void> => {
      log(`  ${title}`);
      const t0 = Date.now();
      await work();
      log(`  (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    };
    await part(`one package, ${settings.checkpoints[settings.checkpoints.length - 1]} versions (${settings.label}), alternating per version`, () =>
      versionsPart(settings, dirs, log, outcome),
    );
    await part(`${settings.packages} packages (${settings.label}), concurrency ${settings.concurrency}, batches of ${settings.batch}`, () =>
      packagesPart(settings, dirs, log, outcome),
    );
    await part(`${settings.burst.publishes} concurrent ${settings.burst.megabytes} MB publishes (${settings.label})`, () => burstPart(settings, dirs, log, outcome));
  } finally {
    for (const dir of dirs) removeDir(dir);
  }
  return outcome;
}
