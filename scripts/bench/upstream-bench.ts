/**
 * The `upstream` group (issue 12, docs/upstream.md): ours and stock Verdaccio both proxying the
 * SAME third server — a stock Verdaccio 6.10.4 (JWT mode, no uplinks) seeded over raw HTTP with a
 * small dependency tree — each through its own counting relay in the bench process, so the
 * requests reaching the upstream are counted per side.
 *
 * Rows: proxied npm / bun install, cold (fresh state folder = empty server cache, per side and
 * round) and warm (a second install, fresh client cache, same now-warm server; with the ceiling
 * replaying ours' answers to that warm install as a third side); autocannon
 * packument GET of a proxied package; upstream requests per 1,000 client requests under
 * concurrency (fresh servers, concurrent packument misses).
 */
import { CACHE_HEADER, DEBUG_REQUEST_HEADER } from '../../plugins/registry-core/debug-log';
import { Agent } from 'node:http';
import {
  ceilingRowNames,
  installCeilingRows,
  installCpuNote,
  installOnce,
  measuredInstall,
  recordInstallCeiling,
  timeRow,
  type InstallCeiling,
  type InstallClient,
  type MeasuredInstall,
} from './clients-bench';
import { HTTP_SETTINGS, emptyOutcome, mergeOutcome, throughputRow, type Endpoint, type HttpBenchSettings, type RowOutcome } from './http-bench';
import { makeRow, median } from './report';
import {
  addUser,
  errorSummary,
  interleave,
  interleaveSides,
  packagePath,
  publishRaw,
  rawGet,
  removeDir,
  startRelay,
  startServer,
  tempDir,
  timedRequest,
  type BenchServer,
  type Budget,
  type CountingRelay,
  type Log,
  type Side,
} from './stock';

export interface UpstreamSettings {
  /** Packages per tier of the tree (leaf, mid, top): 3 × tier packages in all. */
  tier: number;
  npmRounds: number;
  bunRounds: number;
  /** Client requests of the concurrency row per round, and how many are in flight at once. */
  requests: number;
  concurrency: number;
  concurrencyRounds: number;
  http: HttpBenchSettings;
  /** Says in every row name which size this is (quick rows never read like full ones). */
  label: string;
}

export const UPSTREAM_SETTINGS: Record<'quick' | 'full', UpstreamSettings> = {
  quick: { tier: 4, npmRounds: 2, bunRounds: 2, requests: 1000, concurrency: 50, concurrencyRounds: 2, http: HTTP_SETTINGS.quick, label: 'quick: 12 packages' },
  full: { tier: 10, npmRounds: 4, bunRounds: 4, requests: 1000, concurrency: 50, concurrencyRounds: 2, http: HTTP_SETTINGS.full, label: '30 packages' },
};

const UPSTREAM_KIND = 'upstream: stock Verdaccio';
/** Least warm-up per side of the proxied packument row (its servers are fresh), in seconds. */
const PACKUMENT_WARMUP_SEC = 2;

/** Row names (the smoke test checks they exist). */
export function upstreamRows(settings: UpstreamSettings): Record<string, string> {
  const size = `${settings.tier * 3} packages`;
  const tag = `${UPSTREAM_KIND}, ${settings.label.startsWith('quick') ? 'quick, ' : ''}${size}`;
  return {
    npmCold: `proxied npm install × ${size}, cold (fresh server cache; ${tag})`,
    npmWarm: `proxied npm install × ${size}, warm (server cache warm, fresh client cache; ${tag})`,
    bunCold: `proxied bun install × ${size}, cold (fresh server cache; ${tag})`,
    bunWarm: `proxied bun install × ${size}, warm (server cache warm, fresh client cache; ${tag})`,
    ...prefixed('npmWarm', ceilingRowNames(`proxied npm install × ${size}, warm`, `; ${tag}`)),
    ...prefixed('bunWarm', ceilingRowNames(`proxied bun install × ${size}, warm`, `; ${tag}`)),
    packument: `proxied packument GET (full document, server cache warm; ${tag})`,
    perThousand: `upstream requests per 1,000 client requests, ${settings.concurrency} concurrent packument misses (${tag})`,
    perPackage: `upstream requests per proxied package under ${settings.concurrency} concurrent misses (${tag})`,
  };
}

/** `{ceilingStock, oursCeiling}` → `{<prefix>CeilingStock, <prefix>OursCeiling}` */
function prefixed(prefix: string, names: { ceilingStock: string; oursCeiling: string }): Record<string, string> {
  return { [`${prefix}CeilingStock`]: names.ceilingStock, [`${prefix}OursCeiling`]: names.oursCeiling };
}

/** The dependency tree: top-i → mid-i, mid-(i+1) → leaf-i, leaf-(i+1); the project depends on every top-i. */
export function upstreamTree(tier: number): { name: string; dependencies: Record<string, string> }[] {
  const next = (i: number): number => (i % tier) + 1;
  const packages: { name: string; dependencies: Record<string, string> }[] = [];
  for (let i = 1; i <= tier; i += 1) packages.push({ name: `bench-up-leaf-${i}`, dependencies: {} });
  for (let i = 1; i <= tier; i += 1) {
    packages.push({ name: `bench-up-mid-${i}`, dependencies: { [`bench-up-leaf-${i}`]: '^1.0.0', [`bench-up-leaf-${next(i)}`]: '^1.0.0' } });
  }
  for (let i = 1; i <= tier; i += 1) {
    packages.push({ name: `bench-up-top-${i}`, dependencies: { [`bench-up-mid-${i}`]: '^1.0.0', [`bench-up-mid-${next(i)}`]: '^1.0.0' } });
  }
  return packages;
}

/** The counting relay (stock.ts: it can also record what it relays, for the install ceiling). */
export { startRelay, type CountingRelay };

interface Proxies {
  relays: Record<Side, CountingRelay>;
  dirs: string[];
}

/** A proxying server with an empty state folder (empty server cache, empty compile cache). */
async function startProxy(side: Side, relay: CountingRelay, dirs: string[], baseConfig?: string): Promise<BenchServer> {
  const dir = tempDir(`upstream-${side}`);
  dirs.push(dir);
  // Stock in JWT mode, as in every row; ours finds its upstream the documented way (docs/upstream.md).
  return side === 'stock'
    ? startServer('stock-jwt', dir, { uplink: relay.url })
    : startServer('ours', dir, { env: { REGISTRY_UPSTREAM_URL: relay.url }, baseConfig });
}

async function withProxy<T>(side: Side, proxies: Proxies, baseConfig: string | undefined, work: (server: BenchServer) => Promise<T>): Promise<T> {
  const server = await startProxy(side, proxies.relays[side], proxies.dirs, baseConfig);
  try {
    return await work(server);
  } finally {
    await server.stop();
    removeDir(server.dir);
  }
}

type Pair = { cold: number | string; warm: number | string; coldUpstream: number; warmUpstream: number; warmCpu: MeasuredInstall } | string;

/**
 * Cold and warm rows of one client; with them, the warm install's ceiling (issue 17/12): in ours'
 * first round that got through its warm install, one more untimed install (fresh client again)
 * through a recording relay in front of that still-warm server; a bare node:http child then
 * replays those answers for the rest of the rounds (the ceiling side runs a warm install only: a
 * replay has no cold state). The three sides interleave: stock, ours, ceiling, then reversed — so
 * the ceiling's first turn always comes after ours' first round.
 */
async function installRows(
  client: InstallClient,
  rounds: number,
  names: { cold: string; warm: string; warmCeilingStock: string; warmOursCeiling: string },
  proxies: Proxies,
  tree: readonly { name: string }[],
  roots: readonly string[],
  budget: Budget,
  log: Log,
  baseConfig?: string,
): Promise<RowOutcome> {
  const all = tree.map((pkg) => pkg.name);
  const ceilingDir = tempDir(`upstream-ceiling-${client}`);
  let ceiling: InstallCeiling | null = null;
  let ceilingError = 'ERROR ceiling not recorded: ours has not completed a warm install yet';
  try {
    const result = await interleaveSides(['stock', 'ours', 'ceiling'] as const, rounds, budget, async (side): Promise<Pair> => {
      if (side === 'ceiling') {
        if (!ceiling) return ceilingError;
        const warmCpu = await measuredInstall(client, ceiling.server.url, ceiling.server.child.pid, roots, all);
        const warm = warmCpu.ms;
        log(`  proxied ${client} install ceiling: warm ${typeof warm === 'number' ? `${warm.toFixed(0)} ms` : 'ERROR'}`);
        return { cold: 'ERROR no cold install on a replay', warm, coldUpstream: 0, warmUpstream: 0, warmCpu };
      }
      try {
        return await withProxy(side, proxies, baseConfig, async (server) => {
          const relay = proxies.relays[side];
          const before = relay.count();
          const cold = await installOnce(client, server.url, roots, all);
          const afterCold = relay.count();
          const warmCpu = await measuredInstall(client, server.url, server.child.pid, roots, all);
          const warm = warmCpu.ms;
          const pair = { cold, warm, coldUpstream: afterCold - before, warmUpstream: relay.count() - afterCold, warmCpu };
          const ms = (v: number | string): string => (typeof v === 'number' ? `${v.toFixed(0)} ms` : 'ERROR');
          log(`  proxied ${client} install ${side}: cold ${ms(cold)} (${pair.coldUpstream} upstream requests), warm ${ms(warm)} (${pair.warmUpstream})`);
          if (side === 'ours' && !ceiling && typeof warm === 'number') {
            try {
              const started = performance.now();
              ceiling = await recordInstallCeiling(client, server, roots, all, ceilingDir);
              log(`  proxied ${client} install: ceiling recorded from ours (warm) in ${(performance.now() - started).toFixed(0)} ms`);
            } catch (error) {
              ceilingError = `ERROR ceiling not started: ${errorSummary(error)}`;
              log(`  proxied ${client} install: ${ceilingError}`);
            }
          }
          return pair;
        });
      } catch (error) {
        return `ERROR ${errorSummary(error)}`;
      }
    });
    const runs = { ...result.runs, skippedRounds: result.skippedRounds };
    const warmCeiling = installCeilingRows(
      { ceilingStock: names.warmCeilingStock, oursCeiling: names.warmOursCeiling },
      {
        stock: pickPhase(runs.stock, 'warm'),
        ours: pickPhase(runs.ours, 'warm'),
        ceiling: pickPhase(runs.ceiling, 'warm'),
      },
      runs.skippedRounds,
      [...((ceiling as InstallCeiling | null)?.notes ?? []), 'recorded from ours right after its first warm install (a fresh client once more), replayed in every later round'],
    );
    const cpuOf = (pairs: readonly Pair[]): MeasuredInstall[] => pairs.flatMap((pair) => (typeof pair === 'string' ? [] : [pair.warmCpu]));
    const cpuNote = installCpuNote({ stock: cpuOf(runs.stock), ours: cpuOf(runs.ours), ceiling: cpuOf(runs.ceiling) });
    warmCeiling.notes[names.warmCeilingStock]?.push(cpuNote);
    const outcome = mergeInstallRows(runs, names, warmCeiling);
    outcome.notes[names.warm]?.push(`warm installs: ${cpuNote}`);
    return outcome;
  } finally {
    await (ceiling as InstallCeiling | null)?.server.stop();
    removeDir(ceilingDir);
  }
}

function pickPhase(pairs: readonly Pair[], phase: 'cold' | 'warm'): (number | string)[] {
  return pairs.map((pair) => (typeof pair === 'string' ? pair : pair[phase]));
}

function mergeInstallRows(
  runs: { stock: Pair[]; ours: Pair[]; skippedRounds: number },
  names: { cold: string; warm: string },
  warmCeiling: RowOutcome,
): RowOutcome {
  const outcome = emptyOutcome();
  for (const phase of ['cold', 'warm'] as const) {
    const pick = (side: Side): (number | string)[] => pickPhase(runs[side], phase);
    const name = names[phase];
    const row = timeRow(name, { stock: pick('stock'), ours: pick('ours'), skippedRounds: runs.skippedRounds }, 'ms', '≤ 0.9× stock time');
    const upstream = (side: Side): number =>
      median(runs[side].flatMap((pair) => (typeof pair === 'string' ? [] : [phase === 'cold' ? pair.coldUpstream : pair.warmUpstream])));
    row.notes[name].push(`upstream requests per install (median): stock ${upstream('stock')}, ours ${upstream('ours')}`);
    row.notes[name].push('a fresh state folder per side and round (empty server cache); warm = the second install on that server');
    mergeOutcome(outcome, row);
    if (phase === 'warm') mergeOutcome(outcome, warmCeiling);
  }
  return outcome;
}

/** `requests` GETs of the tree's packuments (round-robin), `concurrency` in flight, on a server that holds none of them. */
async function concurrentMisses(
  server: BenchServer,
  names: readonly string[],
  requests: number,
  concurrency: number,
): Promise<{ failed: number; firstFailure: string }> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  let next = 0;
  let failed = 0;
  let firstFailure = '';
  try {
    const worker = async (): Promise<void> => {
      while (next < requests) {
        const name = names[next % names.length];
        next += 1;
        try {
          const response = await timedRequest(`${server.url}${packagePath(name)}`, { method: 'GET', agent, timeoutMs: 60000 });
          if (response.status !== 200) {
            failed += 1;
            firstFailure ||= `${name}: status ${response.status} ${response.body.toString('utf8').slice(0, 120)}`;
          }
        } catch (error) {
          failed += 1;
          firstFailure ||= `${name}: ${errorSummary(error)}`;
        }
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
  } finally {
    agent.destroy();
  }
  return { failed, firstFailure };
}

async function concurrencyRows(
  settings: UpstreamSettings,
  rows: Record<string, string>,
  proxies: Proxies,
  names: readonly string[],
  budget: Budget,
  log: Log,
  baseConfig?: string,
): Promise<RowOutcome> {
  const runs = await interleave(settings.concurrencyRounds, budget, async (side): Promise<number | string> => {
    try {
      return await withProxy(side, proxies, baseConfig, async (server) => {
        const relay = proxies.relays[side];
        const before = relay.count();
        const { failed, firstFailure } = await concurrentMisses(server, names, settings.requests, settings.concurrency);
        const upstream = relay.count() - before;
        log(`  concurrent misses ${side}: ${upstream} upstream requests for ${settings.requests} client requests (${failed} failed)`);
        if (failed > 0) return `ERROR ${failed} of ${settings.requests} client requests failed, e.g. ${firstFailure}`;
        return (upstream * 1000) / settings.requests;
      });
    } catch (error) {
      return `ERROR ${errorSummary(error)}`;
    }
  });
  const outcome = emptyOutcome();
  // Reported for both (issue 12); its floor for ours is one request per distinct package, so the
  // target lives on the per-package row below (docs/targets.md), not on this ratio.
  const perThousand = timeRow(rows.perThousand, runs, 'requests', 'info');
  perThousand.notes[rows.perThousand].push(
    `${settings.requests} GETs of the ${names.length} packuments, round-robin, ${settings.concurrency} in flight, on a server with an empty cache (fresh per round); counted at the relay in front of the upstream`,
  );
  mergeOutcome(outcome, perThousand);
  // docs/targets.md: concurrent misses for one package → exactly one upstream request.
  const perPackage = (side: Side): (number | string)[] =>
    runs[side].map((v) => (typeof v === 'number' ? (v * settings.requests) / 1000 / names.length : v));
  const row = timeRow(rows.perPackage, { stock: perPackage('stock'), ours: perPackage('ours'), skippedRounds: runs.skippedRounds }, 'requests', '≤ 1 requests');
  row.notes[rows.perPackage].push('the same runs ÷ the number of distinct packuments asked for; the "stock" column is stock in those runs');
  mergeOutcome(outcome, row);
  return outcome;
}

function packumentOf(name: string): Endpoint['check'] {
  return (status, body) => {
    if (status !== 200) return `status ${status}`;
    try {
      const parsed = JSON.parse(body.toString('utf8')) as { name?: unknown; versions?: Record<string, unknown> };
      if (parsed.name !== name) return `packument name ${String(parsed.name)}`;
      return parsed.versions && Object.hasOwn(parsed.versions, '1.0.0') ? null : 'no version 1.0.0';
    } catch {
      return 'body is not JSON';
    }
  };
}

async function packumentRow(
  settings: UpstreamSettings,
  rowName: string,
  proxies: Proxies,
  name: string,
  budget: Budget,
  log: Log,
  baseConfig?: string,
): Promise<RowOutcome> {
  const started: Partial<Record<Side, BenchServer>> = {};
  try {
    started.stock = await startProxy('stock', proxies.relays.stock, proxies.dirs);
    started.ours = await startProxy('ours', proxies.relays.ours, proxies.dirs, baseConfig);
    const servers = started as Record<Side, BenchServer>;
    const endpoint: Endpoint = { name: 'proxied-packument', path: packagePath(name), check: packumentOf(name) };
    const before = { stock: proxies.relays.stock.count(), ours: proxies.relays.ours.count() };
    // throughputRow checks one real response first: that GET fills both caches from the upstream.
    // These servers are fresh (the read group's have been warmed by seeding and the ping row): a
    // one-off check found ours' first 2 s of load on a fresh server at 0.6× of its later rate on the
    // same proxied packument, so each side gets at least 2 s of warm-up before the measured rounds.
    const http: HttpBenchSettings = { ...settings.http, warmupSec: Math.max(settings.http.warmupSec, PACKUMENT_WARMUP_SEC) };
    const row = await throughputRow(rowName, servers, { stock: endpoint, ours: endpoint }, '≥ 3× stock req/s', http, budget, log);
    const used = (side: Side): number => proxies.relays[side].count() - before[side];
    // Whether ours answered from its packument response cache (docs/upstream.md: it stays on for
    // proxied packages), read after the load runs from the header the cache sets.
    const last = await rawGet(`${servers.ours.url}${endpoint.path}`, { [DEBUG_REQUEST_HEADER]: 'cache' });
    const cacheHeader = last.headers.find(([header]) => header.toLowerCase() === CACHE_HEADER)?.[1] ?? 'absent';
    row.notes[rowName] = [
      ...(row.notes[rowName] ?? []),
      `upstream requests during the check + load runs: stock ${used('stock')}, ours ${used('ours')}`,
      `ours' x-registry-cache header on this packument after the runs: ${cacheHeader}`,
    ];
    return row;
  } finally {
    for (const server of Object.values(started)) {
      await server.stop();
      removeDir(server.dir);
    }
  }
}

/**
 * Starts the upstream (stock Verdaccio, seeded with the tree over raw HTTP) and one counting relay
 * per side, then the rows; every server it started is stopped and every folder removed.
 */
export async function runUpstreamBench(settings: UpstreamSettings, budget: Budget, log: Log, baseConfig?: string): Promise<RowOutcome> {
  const rows = upstreamRows(settings);
  const tree = upstreamTree(settings.tier);
  const roots = tree.filter((pkg) => pkg.name.startsWith('bench-up-top-')).map((pkg) => pkg.name);
  const upstreamDir = tempDir('upstream');
  const dirs: string[] = [upstreamDir];
  let upstream: BenchServer | null = null;
  const relays: Partial<Record<Side, CountingRelay>> = {};
  const outcome = emptyOutcome();
  try {
    upstream = await startServer('stock-jwt', upstreamDir);
    const token = await addUser(upstream.url, 'bench', 'bench-password-1');
    for (const pkg of tree) await publishRaw(upstream.url, token, pkg.name, '1.0.0', pkg.dependencies);
    relays.stock = await startRelay(upstream.url);
    relays.ours = await startRelay(upstream.url);
    const proxies: Proxies = { relays: relays as Record<Side, CountingRelay>, dirs };
    log(`  upstream: stock Verdaccio at ${upstream.url} with ${tree.length} packages (${roots.length} roots); relays stock ${relays.stock.url}, ours ${relays.ours.url}`);
    for (const [client, rounds] of [
      ['npm', settings.npmRounds],
      ['bun', settings.bunRounds],
    ] as const) {
      const names = {
        cold: rows[`${client}Cold`],
        warm: rows[`${client}Warm`],
        warmCeilingStock: rows[`${client}WarmCeilingStock`],
        warmOursCeiling: rows[`${client}WarmOursCeiling`],
      };
      mergeOutcome(outcome, await installRows(client, rounds, names, proxies, tree, roots, budget, log, baseConfig));
    }
    mergeOutcome(outcome, await packumentRow(settings, rows.packument, proxies, roots[0], budget, log, baseConfig));
    mergeOutcome(outcome, await concurrencyRows(settings, rows, proxies, tree.map((pkg) => pkg.name), budget, log, baseConfig));
  } catch (error) {
    // The upstream or a relay did not start: every row of the group is an error row, never dropped.
    const message = errorSummary(error);
    log(`  upstream rows: FAILED — ${message}`);
    for (const name of Object.values(rows)) {
      if (outcome.rows.some((row) => row.name === name)) continue;
      outcome.rows.push(makeRow(name, Number.NaN, Number.NaN, '', 'failed'));
      outcome.notes[name] = [`ERROR ${message}`];
    }
  } finally {
    for (const relay of Object.values(relays)) await relay.close();
    await upstream?.stop();
    for (const dir of dirs) removeDir(dir);
  }
  return outcome;
}
