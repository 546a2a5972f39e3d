/**
 * Wall-time rows with the real clients: `npm publish` of 20 distinct packages (against stock in
 * JWT mode; its default AES mode as info), `npm install` and `bun install` of the 20 seeded
 * packages in a fresh project with a fresh cache, against stock, ours and the ceiling (ours'
 * answers to that client replayed by a bare node:http child). Each measurement gets a brand-new
 * client folder (config, cache, HOME), so nothing is served from a client cache.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { emptyOutcome, type RowOutcome } from './http-bench';
import { makeRow, median } from './report';
import {
  CLOCK_TICKS_PER_SECOND,
  cpuSnapshot,
  createClient,
  errorSummary,
  interleave,
  interleaveSides,
  packageFiles,
  processCpuMs,
  reapedChildrenCpuMs,
  removeDir,
  startCeiling,
  startRelay,
  tempDir,
  type BenchServer,
  type Budget,
  type Log,
  type RecordedResponse,
  type RelayedGet,
  type RunResult,
  type Side,
} from './stock';

export interface ClientTarget {
  server: BenchServer;
  token: string;
}

export interface ClientBenchSettings {
  publishRounds: number;
  installRounds: number;
  bunRounds: number;
  publishCount: number;
}

export const CLIENT_SETTINGS: Record<'quick' | 'full', ClientBenchSettings> = {
  // Quick publishes 10 (the row name says so): npm's ~0.5 s start-up per package dominates a 2-minute run.
  quick: { publishRounds: 1, installRounds: 2, bunRounds: 3, publishCount: 10 },
  full: { publishRounds: 3, installRounds: 5, bunRounds: 7, publishCount: 20 },
};

export function failure(what: string, result: RunResult): string {
  const output = `${result.stderr}\n${result.stdout}`.trim().split('\n').slice(-6).join('\n    ');
  return `ERROR ${what} exited ${result.code}:\n    ${output}`;
}

export function timeRow(
  name: string,
  runs: { stock: (number | string)[]; ours: (number | string)[]; skippedRounds: number },
  unit: string,
  target: string,
  /** what the "stock" and "ours" columns hold, for the notes (the ceiling rows put the ceiling in one of them) */
  labels: Record<Side, string> = { stock: 'stock', ours: 'ours' },
): RowOutcome {
  const outcome = emptyOutcome();
  const notes: string[] = [];
  const numbers = (side: Side): number[] => runs[side].filter((v): v is number => typeof v === 'number');
  for (const side of ['stock', 'ours'] as const) {
    for (const value of runs[side]) if (typeof value === 'string') notes.push(value.replace(/^ERROR /, `ERROR ${labels[side]}: `));
  }
  if (runs.skippedRounds > 0) notes.push(`${runs.skippedRounds} round(s) skipped: time budget`);
  notes.push(`${numbers('ours').length} round(s) per side`);
  const stock = numbers('stock');
  const ours = numbers('ours');
  outcome.rows.push(makeRow(name, median(ours), median(stock), unit, target));
  outcome.notes[name] = notes;
  outcome.samples[name] = { stock, ours };
  return outcome;
}

/** `npm publish` of `count` distinct new packages (prefix `@mycompany/<prefix>-<i>`), sequentially, from a fresh client folder. */
async function publishSeries(target: ClientTarget, prefix: string, count: number): Promise<number | string> {
  const client = createClient(target.server.url, target.token);
  try {
    const dirs: string[] = [];
    for (let i = 1; i <= count; i += 1) {
      const dir = join(client.dir, 'packages', `p${i}`);
      mkdirSync(dir, { recursive: true });
      for (const [file, content] of Object.entries(packageFiles(`@mycompany/${prefix}-${i}`, '1.0.0'))) {
        writeFileSync(join(dir, file), content);
      }
      dirs.push(dir);
    }
    let total = 0;
    for (const dir of dirs) {
      const result = await client.npm(['publish'], dir);
      if (result.code !== 0) return failure(`npm publish (${dir})`, result);
      total += result.ms;
    }
    return total / 1000;
  } finally {
    client.remove();
  }
}

/**
 * `npm publish` of `publishCount` distinct new packages, sequentially, from a fresh client folder,
 * against stock in JWT mode (the docs/targets.md row). With `stockAes`, one more round against stock's
 * default AES mode (bcrypt on every authenticated request) as an info row, beside ours' figure
 * from the main row.
 */
export async function runPublishBench(
  targets: Record<Side, ClientTarget>,
  settings: ClientBenchSettings,
  budget: Budget,
  log: Log,
  stockAes: ClientTarget | null = null,
): Promise<RowOutcome> {
  const name = `npm publish × ${settings.publishCount} packages (vs stock JWT mode, fsync kept)`;
  // Server CPU per publish (from /proc): npm's own start-up dominates the wall time, this does not.
  const serverCpu: Record<Side, number[]> = { stock: [], ours: [] };
  const runs = await interleave(settings.publishRounds, budget, async (side, round): Promise<number | string> => {
    const pid = targets[side].server.child.pid ?? 0;
    const before = cpuSnapshot([pid]);
    const result = await publishSeries(targets[side], `pub${round}`, settings.publishCount);
    const after = cpuSnapshot([pid]);
    if (typeof result === 'number') {
      if (before && after) serverCpu[side].push(((after.ownTicks - before.ownTicks) * (1000 / CLOCK_TICKS_PER_SECOND)) / settings.publishCount);
      log(`  ${name} ${side}: ${result.toFixed(2)} s (${((result * 1000) / settings.publishCount).toFixed(0)} ms per package)`);
    }
    return result;
  });
  const outcome = timeRow(name, runs, 's', '≤ 1.0× stock time');
  if (serverCpu.stock.length > 0 && serverCpu.ours.length > 0) {
    const stockCpu = median(serverCpu.stock);
    const oursCpu = median(serverCpu.ours);
    outcome.notes[name].push(`server CPU per publish: stock ${stockCpu.toFixed(1)} ms, ours ${oursCpu.toFixed(1)} ms (ours/stock ${(oursCpu / stockCpu).toFixed(2)}×)`);
  }
  if (stockAes) {
    const aesName = `npm publish × ${settings.publishCount} packages (info: vs stock default AES mode, bcrypt per request)`;
    const aes = await publishSeries(stockAes, 'pubaes', settings.publishCount);
    if (typeof aes === 'number') log(`  ${aesName} stock: ${aes.toFixed(2)} s`);
    const oursRuns = runs.ours.filter((v): v is number => typeof v === 'number');
    const row = timeRow(aesName, { stock: [aes], ours: oursRuns, skippedRounds: 0 }, 's', 'info');
    row.notes[aesName].push('ours = the same runs as the JWT-mode row; stock AES: 1 round');
    outcome.rows.push(...row.rows);
    Object.assign(outcome.notes, row.notes);
    Object.assign(outcome.samples, row.samples);
  }
  return outcome;
}

export function writeProject(dir: string, packages: readonly string[]): void {
  mkdirSync(dir, { recursive: true });
  const dependencies = Object.fromEntries(packages.map((pkg) => [pkg, '^1.0.0']));
  writeFileSync(join(dir, 'package.json'), `${JSON.stringify({ name: 'bench-app', version: '1.0.0', private: true, dependencies }, null, 2)}\n`);
}

export function missingInstall(project: string, packages: readonly string[]): string | null {
  const missing = packages.filter((pkg) => !existsSync(join(project, 'node_modules', pkg, 'package.json')));
  return missing.length > 0 ? `ERROR install left out ${missing.length} package(s), e.g. ${missing[0]}` : null;
}

export type InstallClient = 'npm' | 'bun';

/**
 * One `npm install` / `bun install` of a fresh project depending on `roots` (`^1.0.0`) from a
 * brand-new client folder (config, cache, HOME) against `url`, anonymously; wall ms, or an ERROR
 * string when the client failed or left out one of `all`.
 */
export async function installOnce(client: InstallClient, url: string, roots: readonly string[], all: readonly string[] = roots): Promise<number | string> {
  const clientDir = createClient(url);
  try {
    const project = join(clientDir.dir, 'app');
    writeProject(project, roots);
    const result =
      client === 'npm'
        ? await clientDir.npm(['install', '--no-audit', '--no-fund', '--ignore-scripts'], project)
        : await clientDir.bun(['install', '--ignore-scripts'], project);
    if (result.code !== 0) return failure(`${client} install`, result);
    return missingInstall(project, all) ?? result.ms;
  } finally {
    clientDir.remove();
  }
}

/** One install with the CPU it cost: the server's (`/proc/<pid>`) and the client's own (reaped children). */
export interface MeasuredInstall {
  ms: number | string;
  serverCpuMs: number | null;
  clientCpuMs: number | null;
}

export async function measuredInstall(client: InstallClient, url: string, serverPid: number | undefined, roots: readonly string[], all: readonly string[] = roots): Promise<MeasuredInstall> {
  const server = processCpuMs(serverPid);
  const reaped = reapedChildrenCpuMs();
  const ms = await installOnce(client, url, roots, all);
  const reapedAfter = reapedChildrenCpuMs();
  const serverAfter = processCpuMs(serverPid);
  return {
    ms,
    serverCpuMs: server === null || serverAfter === null ? null : serverAfter - server,
    clientCpuMs: reaped === null || reapedAfter === null ? null : reapedAfter - reaped,
  };
}

/**
 * "server CPU per install … client CPU per install …" (medians over the successful installs): a
 * busy box stretches wall time, not these; they say whose work the install's time is.
 */
export function installCpuNote(runs: Partial<Record<Side | 'ceiling', readonly MeasuredInstall[]>>): string {
  const parts = (pick: (m: MeasuredInstall) => number | null): string =>
    Object.entries(runs)
      .map(([side, measured]) => {
        const values = (measured ?? []).filter((m) => typeof m.ms === 'number').map(pick).filter((v): v is number => v !== null);
        return values.length > 0 ? `${side} ${median(values).toFixed(0)}` : null;
      })
      .filter((part): part is string => part !== null)
      .join(', ');
  return `CPU per install (median, ms; /proc, 10 ms ticks): server — ${parts((m) => m.serverCpuMs)}; client (the install command and its children) — ${parts((m) => m.clientCpuMs)}`;
}

export interface InstallCeiling {
  server: BenchServer;
  /** what was recorded: requests, packuments / tarballs, the Accept and encodings seen */
  notes: string[];
}

/**
 * One untimed install through a recording relay in front of `server`: the GETs the client made and
 * the answers it got, and the relay's origin (which the server wrote into tarball URLs). Throws
 * when the install fails.
 */
export async function recordedInstall(
  client: InstallClient,
  server: BenchServer,
  roots: readonly string[],
  all: readonly string[],
): Promise<{ recorded: readonly RelayedGet[]; origin: string }> {
  const relay = await startRelay(server.url, { record: true });
  try {
    const result = await installOnce(client, relay.url, roots, all);
    if (typeof result === 'string') throw new Error(`${client} install through a recording relay: ${result}`);
    return { recorded: relay.recorded(), origin: relay.url };
  } finally {
    await relay.close();
  }
}

/**
 * The ceiling of one client's install (issue 17/12): one untimed install of the same project
 * through a recording relay in front of `server`, so the client's own requests (its paths, its
 * Accept and Accept-Encoding) are what is recorded, with ours' exact answers (status, headers,
 * bytes as sent); then a bare node:http child replaying them from memory, the relay's origin in
 * the bodies replaced by its own once at load (ceiling-server.ts). Throws when the install or the
 * ceiling fails.
 */
export async function recordInstallCeiling(
  client: InstallClient,
  server: BenchServer,
  roots: readonly string[],
  all: readonly string[],
  dir: string,
): Promise<InstallCeiling> {
  const { recorded, origin } = await recordedInstall(client, server, roots, all);
  const routes: Record<string, RecordedResponse> = {};
  const accepts = new Set<string>();
  const encodings = new Set<string>();
  let repeated = 0;
  let tarballs = 0;
  for (const get of recorded) {
    if (Object.hasOwn(routes, get.path)) {
      repeated += 1;
      continue;
    }
    routes[get.path] = get.response;
    const header = (name: string): string | undefined => get.response.headers.find(([key]) => key.toLowerCase() === name)?.[1];
    if (get.path.endsWith('.tgz')) tarballs += 1;
    else accepts.add(String(get.requestHeaders.accept ?? '(none)'));
    encodings.add(`${get.path.endsWith('.tgz') ? 'tarball' : 'packument'} ${header('content-encoding') ?? 'identity'}`);
  }
  const paths = Object.keys(routes).length;
  const notes = [
    `ceiling = bare node:http replaying from memory ours' answers to ${client}'s ${recorded.length} GETs of one untimed install (${paths - tarballs} packuments, ${tarballs} tarballs${repeated ? `, ${repeated} repeated paths` : ''}); ${client}'s packument Accept: ${[...accepts].join(' | ')}; ${[...encodings].join(', ')}`,
  ];
  return { server: await startCeiling(dir, routes, 15000, origin), notes };
}

/** Row names of the two ceiling rows beside an install row (`base` = what is installed, `tail` = the rest of the row name). */
export function ceilingRowNames(base: string, tail: string): { ceilingStock: string; oursCeiling: string } {
  return {
    ceilingStock: `${base}: ceiling ÷ stock (info: bare node:http replaying ours' answers${tail})`,
    oursCeiling: `${base}: ours ÷ ceiling (info${tail})`,
  };
}

/**
 * The two info rows of an install row's ceiling, from the same interleaved rounds: ceiling ÷ stock
 * (what a server answering in no time at all would reach: the part of the target that is the
 * client's own work) and ours ÷ ceiling (what is left for ours).
 */
export function installCeilingRows(
  names: { ceilingStock: string; oursCeiling: string },
  runs: Record<Side | 'ceiling', (number | string)[]>,
  skippedRounds: number,
  recordNotes: readonly string[],
): RowOutcome {
  const outcome = emptyOutcome();
  const physics = timeRow(names.ceilingStock, { stock: runs.stock, ours: runs.ceiling, skippedRounds }, 'ms', 'info', { stock: 'stock', ours: 'ceiling' });
  physics.notes[names.ceilingStock].push('the "ours" column is the ceiling', ...recordNotes);
  const left = timeRow(names.oursCeiling, { stock: runs.ceiling, ours: runs.ours, skippedRounds }, 'ms', 'info', { stock: 'ceiling', ours: 'ours' });
  left.notes[names.oursCeiling].push('the "stock" column is the ceiling');
  for (const part of [physics, left]) {
    outcome.rows.push(...part.rows);
    Object.assign(outcome.notes, part.notes);
    Object.assign(outcome.samples, part.samples);
  }
  return outcome;
}

/**
 * Installs anonymously (no token): reads are public in both configs, so no auth path is measured
 * here (stock runs in JWT mode anyway, like in every row). Three sides interleaved: stock, ours and
 * the ceiling recorded from ours for this client. Before the rounds each server gets one untimed
 * install through a recording relay (ours' is the recording; stock's the same warm-up for stock).
 */
async function installRow(
  client: InstallClient,
  targets: Record<Side, ClientTarget>,
  packages: readonly string[],
  rounds: number,
  budget: Budget,
  log: Log,
): Promise<RowOutcome> {
  const base = `${client} install × ${packages.length} packages`;
  const name = `${base} (fresh project + client cache, anonymous)`;
  const ceilingDir = tempDir(`ceiling-${client}`);
  let ceiling: InstallCeiling | null = null;
  let ceilingError = '';
  try {
    try {
      const started = performance.now();
      ceiling = await recordInstallCeiling(client, targets.ours.server, packages, packages, ceilingDir);
      log(`  ${name}: ceiling recorded from ours in ${(performance.now() - started).toFixed(0)} ms`);
    } catch (error) {
      ceilingError = `ERROR ceiling not started: ${errorSummary(error)}`;
      log(`  ${name}: ${ceilingError}`);
    }
    try {
      // The same untimed install for stock: ours' recording must not be a warm-up stock lacks.
      const started = performance.now();
      await recordedInstall(client, targets.stock.server, packages, packages);
      log(`  ${name}: stock's untimed install ${(performance.now() - started).toFixed(0)} ms`);
    } catch (error) {
      // its timed rounds fail the same way and say so in the row; this only leaves the log line
      log(`  ${name}: stock's untimed install failed: ${errorSummary(error)}`);
    }
    const result = await interleaveSides(['stock', 'ours', 'ceiling'] as const, rounds, budget, async (side): Promise<MeasuredInstall> => {
      if (side === 'ceiling' && !ceiling) return { ms: ceilingError, serverCpuMs: null, clientCpuMs: null };
      const server = side === 'ceiling' ? (ceiling as InstallCeiling).server : targets[side].server;
      const measured = await measuredInstall(client, server.url, server.child.pid, packages);
      if (typeof measured.ms === 'number') log(`  ${name} ${side}: ${measured.ms.toFixed(0)} ms`);
      return measured;
    });
    const ms = (side: Side | 'ceiling'): (number | string)[] => result.runs[side].map((m) => m.ms);
    const outcome = timeRow(name, { stock: ms('stock'), ours: ms('ours'), skippedRounds: result.skippedRounds }, 'ms', '≤ 0.9× stock time');
    outcome.notes[name].push(installCpuNote(result.runs));
    const ceilingRows = installCeilingRows(
      ceilingRowNames(base, ', fresh project + client cache'),
      { stock: ms('stock'), ours: ms('ours'), ceiling: ms('ceiling') },
      result.skippedRounds,
      [...(ceiling?.notes ?? []), installCpuNote(result.runs)],
    );
    outcome.rows.push(...ceilingRows.rows);
    Object.assign(outcome.notes, ceilingRows.notes);
    Object.assign(outcome.samples, ceilingRows.samples);
    return outcome;
  } finally {
    await ceiling?.server.stop();
    removeDir(ceilingDir);
  }
}
export async function runInstallBench(
  targets: Record<Side, ClientTarget>,
  packages: readonly string[],
  settings: ClientBenchSettings,
  budget: Budget,
  log: Log,
): Promise<RowOutcome> {
  const outcome = emptyOutcome();
  for (const [client, rounds] of [
    ['npm', settings.installRounds],
    ['bun', settings.bunRounds],
  ] as const) {
    const row = await installRow(client, targets, packages, rounds, budget, log);
    outcome.rows.push(...row.rows);
    Object.assign(outcome.notes, row.notes);
    Object.assign(outcome.samples, row.samples);
  }
  return outcome;
}
