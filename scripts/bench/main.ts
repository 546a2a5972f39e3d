/**
 * `npm run bench [-- --quick] [--only a,b] [--profile]` — stock Verdaccio 6.10.4 and ours, same
 * machine, same Node, same workloads, interleaved; one table (docs/targets.md rows with both figures and
 * the ratio) on stdout and the full record as JSON (+ a Markdown table) in bench-results/.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { runAuthBench } from './auth-bench';
import { runInstallBench, runPublishBench, CLIENT_SETTINGS, type ClientTarget } from './clients-bench';
import { runConfigBench } from './config-bench';
import { runDashboardBench } from './dashboard-bench';
import {
  FIRST_READ_SETTINGS,
  HTTP_SETTINGS,
  emptyOutcome,
  mergeOutcome,
  runFirstReadBench,
  runReadBench,
  runWhoamiBench,
  type LoadWindow,
  type RowOutcome,
} from './http-bench';
import { renderChart } from './chart';
import { formatProfile, readProfile, summarizeProfile } from './profile';
import { evaluateRow, formatTable, makeRow, summarize } from './report';
import { appendIndex, changesSincePrevious, currentCommit, runBaseName, writeRecordedChart } from './results';
import { CLUSTER_SETTINGS, runClusterBench } from './cluster-bench';
import { SCALE_SETTINGS, runScaleBench } from './scale-bench';
import { UPSTREAM_SETTINGS, runUpstreamBench } from './upstream-bench';
import { runStartupBench, STARTUP_SETTINGS } from './startup-bench';
import { runTerminalBench } from './terminal-bench';
import {
  BUN_BIN,
  Budget,
  PROJECT_CONFIG,
  PROJECT_ROOT,
  addUser,
  errorSummary,
  publishRaw,
  startServer,
  tempDir,
  removeDir,
  type BenchServer,
  type ServerKind,
  type Side,
} from './stock';
import type { BenchRow } from './types';

/** Groups of rows, selectable with `--only`. Order = run order: in-process micro benches first, on a quiet machine. */
const GROUPS = ['config', 'auth', 'startup', 'read', 'publish', 'install', 'whoami', 'upstream', 'scale', 'cluster', 'dashboard', 'terminal'] as const;
type Group = (typeof GROUPS)[number];

/** Bench modules written by the other parts' owners: `run<X>Bench({quick})` → BenchRow[]. */
const EXTERNAL: Partial<Record<Group, { file: string; run: (options: { quick: boolean }) => Promise<BenchRow[]> }>> = {
  config: { file: 'config-bench.ts', run: runConfigBench },
  auth: { file: 'auth-bench.ts', run: runAuthBench },
  dashboard: { file: 'dashboard-bench.ts', run: runDashboardBench },
  terminal: { file: 'terminal-bench.ts', run: runTerminalBench },
};

const USER = 'bench';
const PASSWORD = 'bench-password-1';
const SEED_COUNT = 20;

export interface BenchOptions {
  quick: boolean;
  only: Set<Group>;
  profile: boolean;
  budgetMs: number;
  /** config.yaml ours is derived from (default: the project's). */
  oursConfig: string;
  /** Full run of every group: also write the chart to docs/bench.svg (the README's picture). */
  record: boolean;
}

/**
 * Wall time the scale group needs (its sizes are fixed, not cut by rounds), reserved out of the
 * budget when other groups run too, so they skip rounds instead of pushing the run past its limit.
 */
const SCALE_RESERVE_MS = { quick: 55_000, full: 210_000 } as const;

export function parseArgs(argv: readonly string[]): BenchOptions {
  const quick = argv.includes('--quick');
  let only = new Set<Group>(GROUPS);
  // Quick: the dashboard and terminal modules run after the budgeted workloads (~10 s), so 135 s
  // (of which 55 s are kept for the scale group) keeps the run near 2.5 min.
  let budgetMs = quick ? 135_000 : 570_000;
  let oursConfig = PROJECT_CONFIG;
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    if (arg === '--quick' || arg === '--profile' || arg === '--record') continue;
    if (arg === '--only' || arg.startsWith('--only=')) {
      const value = arg.includes('=') ? arg.slice('--only='.length) : argv[(i += 1)];
      const names = (value ?? '').split(',').filter(Boolean);
      const unknown = names.filter((name) => !(GROUPS as readonly string[]).includes(name));
      if (names.length === 0 || unknown.length > 0) throw new Error(`--only takes a comma list of ${GROUPS.join(', ')}; got ${value}`);
      only = new Set(names as Group[]);
    } else if (arg === '--budget' || arg.startsWith('--budget=')) {
      const value = Number(arg.includes('=') ? arg.slice('--budget='.length) : argv[(i += 1)]);
      if (!Number.isFinite(value) || value <= 0) throw new Error('--budget takes seconds > 0');
      budgetMs = value * 1000;
    } else if (arg === '--config' || arg.startsWith('--config=')) {
      const value = arg.includes('=') ? arg.slice('--config='.length) : argv[(i += 1)];
      if (!value || !existsSync(value)) throw new Error(`--config takes an existing config.yaml; got ${value}`);
      oursConfig = resolve(value);
    } else if (arg === '--help' || arg === '-h') {
      throw new Error('usage');
    } else {
      throw new Error(`unknown argument ${arg}`);
    }
  }
  const record = argv.includes('--record');
  // docs/bench.svg is the README's picture of a full run: never a quick or partial one.
  if (record && (quick || only.size !== GROUPS.length)) throw new Error('--record takes a full run of every group (no --quick, no --only)');
  return { quick, only, profile: argv.includes('--profile'), budgetMs, oursConfig, record };
}

const USAGE = `usage: npm run bench -- [--quick] [--only ${GROUPS.join(',')}] [--budget <seconds>] [--profile] [--config <config.yaml>]
  --quick    fewer rounds, shorter load runs, smaller scale sizes (≤ 2.5 min)
  --only     run only these row groups
  --budget   wall-clock allowance for the workloads (default 570 s, quick 100 s); later rounds are skipped past it
  --profile  run the servers under node --cpu-prof and print where their CPU went
  --config   derive ours from this config.yaml instead of the project's (to measure a config change)
  --record   (full run of every group only) also write the chart to docs/bench.svg for the README`;

function version(command: string, args: string[]): string {
  try {
    return execFileSync(command, args, { encoding: 'utf8', timeout: 20000 }).trim();
  } catch {
    return 'unavailable';
  }
}

function log(line: string): void {
  process.stdout.write(`${line}\n`);
}

async function runExternal(group: Group, quick: boolean): Promise<RowOutcome> {
  const entry = EXTERNAL[group];
  const outcome = emptyOutcome();
  if (!entry) return outcome;
  try {
    const rows = await entry.run({ quick });
    for (const row of rows) log(`  ${row.name}: ours ${row.ours} ${row.unit}${row.baseline === null ? '' : `, baseline ${row.baseline}`}`);
    outcome.rows.push(...rows);
  } catch (error) {
    // One failing module costs its rows, not the run: the table still prints, with the failure in it.
    const name = `${group} rows (${entry.file})`;
    const message = errorSummary(error);
    log(`  ${name}: FAILED — ${message}`);
    outcome.rows.push(makeRow(name, Number.NaN, null, '', 'failed'));
    outcome.notes[name] = [`ERROR ${message}`];
  }
  return outcome;
}

interface Started {
  server: BenchServer;
  token: string;
}

async function startSeeded(
  kind: Exclude<ServerKind, 'ceiling'>,
  cleanup: { dirs: string[]; running: BenchServer[] },
  options: BenchOptions,
  profileDir: string,
  seed: boolean,
): Promise<Started> {
  const dir = tempDir(kind);
  cleanup.dirs.push(dir);
  const server = await startServer(kind, dir, {
    cpuProfDir: options.profile ? join(profileDir, kind) : undefined,
    baseConfig: options.oursConfig,
  });
  cleanup.running.push(server);
  const token = await addUser(server.url, USER, PASSWORD);
  if (seed) {
    for (let i = 1; i <= SEED_COUNT; i += 1) await publishRaw(server.url, token, `@mycompany/lib-${i}`, '1.0.0');
  }
  return { server, token };
}

function seededPackages(): string[] {
  return Array.from({ length: SEED_COUNT }, (_, i) => `@mycompany/lib-${i + 1}`);
}

async function tarballSha1(url: string, path: string): Promise<string> {
  const { createHash } = await import('node:crypto');
  const response = await fetch(`${url}${path}`);
  if (!response.ok) throw new Error(`GET ${path} after seeding: ${response.status}`);
  return createHash('sha1').update(Buffer.from(await response.arrayBuffer())).digest('hex');
}

export async function runBench(options: BenchOptions): Promise<{ rows: BenchRow[]; outcome: RowOutcome; file: string }> {
  const mode = options.quick ? 'quick' : 'full';
  const othersToo = [...options.only].some((group) => group !== 'scale');
  const budget = new Budget(options.only.has('scale') && othersToo ? Math.max(10_000, options.budgetMs - SCALE_RESERVE_MS[mode]) : options.budgetMs);
  const started = new Date();
  const stamp = runBaseName(started, currentCommit(PROJECT_ROOT));
  const resultsDir = join(PROJECT_ROOT, 'bench-results');
  const profileDir = join(resultsDir, `profile-${stamp}`);
  mkdirSync(resultsDir, { recursive: true });
  const machine = {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryGiB: Number((totalmem() / 2 ** 30).toFixed(1)),
    node: process.version,
    npm: version('npm', ['--version']),
    bun: version(BUN_BIN, ['--version']),
    verdaccio: (require(join(PROJECT_ROOT, 'node_modules', 'verdaccio', 'package.json')) as { version: string }).version,
  };
  log(`npm run bench (${mode}) — ${started.toISOString()}`);
  log(`machine: ${machine.cpus} × ${machine.cpuModel}, ${machine.memoryGiB} GiB; node ${machine.node}, npm ${machine.npm}, bun ${machine.bun}, verdaccio ${machine.verdaccio}`);
  log(`stock = node_modules/verdaccio/bin/verdaccio (htpasswd + local storage, JWT mode, no uplinks); ours = build/scripts/start.js with ${options.oursConfig}`);
  log('both on this Node, each with its own NODE_COMPILE_CACHE folder (empty on a fresh folder, kept on a restart); ceiling = bare node:http replaying ours\' bytes');

  const outcome = emptyOutcome();
  const dirs: string[] = [];
  const running: BenchServer[] = [];
  const wants = (group: Group): boolean => options.only.has(group);
  const phaseSeconds: Record<string, number> = {};
  const timed = async (phase: string, work: () => Promise<void>): Promise<void> => {
    const phaseStart = Date.now();
    try {
      await work();
    } finally {
      phaseSeconds[phase] = Math.round((Date.now() - phaseStart) / 100) / 10;
      log(`  (${phase}: ${phaseSeconds[phase]} s)`);
    }
  };
  try {
    for (const group of ['config', 'auth'] as const) {
      if (!wants(group)) continue;
      log(`\n[${group}]`);
      await timed(group, async () => mergeOutcome(outcome, await runExternal(group, options.quick)));
    }
    if (wants('startup')) {
      log('\n[startup] cold start, interleaved');
      await timed('startup', async () =>
        mergeOutcome(outcome, await runStartupBench({ ...STARTUP_SETTINGS[mode], oursBaseConfig: options.oursConfig }, budget, log)),
      );
    }
    const serverGroups = (['read', 'publish', 'install', 'whoami'] as const).filter(wants);
    if (serverGroups.length > 0) {
      await timed(serverGroups.join('+'), async () => {
        try {
          await runServerGroups(options, mode, budget, dirs, running, profileDir, outcome);
        } catch (error) {
          // Still print the table: a side that cannot start or be seeded is an error row, not a crash.
          const message = errorSummary(error);
          log(`  FAILED: ${message}`);
          const name = `${serverGroups.join(' / ')} rows`;
          outcome.rows.push(makeRow(name, Number.NaN, Number.NaN, '', 'failed'));
          outcome.notes[name] = [`ERROR ${message}`];
        }
      });
    }
  } finally {
    for (const server of running) await server.stop();
    for (const dir of dirs) removeDir(dir);
  }
  if (wants('upstream')) {
    const settings = UPSTREAM_SETTINGS[mode];
    // After the other server groups stopped their servers: these rows start their own (a third
    // server as the upstream, fresh proxies per round).
    log(`\n[upstream] ours and stock (JWT mode) proxying one stock Verdaccio upstream (${settings.label}), interleaved`);
    await timed('upstream', async () => mergeOutcome(outcome, await runUpstreamBench(settings, budget, log, options.oursConfig)));
  }
  if (wants('scale')) {
    const settings = SCALE_SETTINGS[mode];
    log(`\n[scale] how cost grows (${settings.label}): stock (JWT mode) and ours, fresh servers, interleaved`);
    await timed('scale', async () => mergeOutcome(outcome, await runScaleBench(settings, log)));
  }
  if (wants('cluster')) {
    const settings = CLUSTER_SETTINGS[mode];
    log(`\n[cluster] ours only: 1 node on files, 1 node on PostgreSQL, 3 nodes on PostgreSQL behind HAProxy (${settings.label}), one setup at a time`);
    await timed('cluster', async () => mergeOutcome(outcome, await runClusterBench(settings, log)));
  }
  for (const group of ['dashboard', 'terminal'] as const) {
    if (!wants(group)) continue;
    log(`\n[${group}]`);
    await timed(group, async () => mergeOutcome(outcome, await runExternal(group, options.quick)));
  }
  return finish(options, started, stamp, resultsDir, profileDir, { ...machine, phaseSeconds }, outcome);
}

async function runServerGroups(
  options: BenchOptions,
  mode: 'quick' | 'full',
  budget: Budget,
  dirs: string[],
  running: BenchServer[],
  profileDir: string,
  outcome: RowOutcome,
): Promise<void> {
  const wants = (group: Group): boolean => options.only.has(group);
  // Stock runs in JWT mode for every row: reads do not care, and every authenticated row (publish,
  // first read after a publish, whoami) would otherwise pay bcrypt per request in stock's default
  // AES mode — a different configuration, shown only in rows labelled "info: … AES".
  log(`\n[servers] starting stock (JWT mode) and ours, seeding both with ${SEED_COUNT} packages @mycompany/lib-1..${SEED_COUNT}`);
  const stock = await startSeeded('stock-jwt', { dirs, running }, options, profileDir, true);
  const ours = await startSeeded('ours', { dirs, running }, options, profileDir, true);
  const servers: Record<Side, BenchServer> = { stock: stock.server, ours: ours.server };
  const targets: Record<Side, ClientTarget> = { stock, ours };
  // Stock's default AES mode, for the info rows only (whoami; publish in a full run); started when
  // first needed, so it is not an idle third server during the read rows.
  let stockAes: Started | null = null;
  const aes = async (): Promise<Started> => (stockAes ??= await startSeeded('stock', { dirs, running }, options, profileDir, false));
  if (wants('read')) {
    log('\n[read] autocannon, interleaved (stock, ours, ceiling)');
    const tarballPath = '/@mycompany/lib-1/-/lib-1-1.0.0.tgz';
    const sha1 = await tarballSha1(stock.server.url, tarballPath);
    mergeOutcome(outcome, await runReadBench(servers, { name: '@mycompany/lib-1', tarballPath, tarballSha1: sha1 }, HTTP_SETTINGS[mode], budget, log));
    log('\n[read] first packument GET right after a publish, interleaved pairs');
    mergeOutcome(outcome, await runFirstReadBench(targets, FIRST_READ_SETTINGS[mode], budget, log));
  }
  if (wants('publish')) {
    log('\n[publish] real npm, interleaved (stock in JWT mode)');
    mergeOutcome(outcome, await runPublishBench(targets, CLIENT_SETTINGS[mode], budget, log, mode === 'full' ? await aes() : null));
  }
  if (wants('install')) {
    log('\n[install] real npm and bun, fresh project + cache each run, interleaved');
    mergeOutcome(outcome, await runInstallBench(targets, seededPackages(), CLIENT_SETTINGS[mode], budget, log));
  }
  if (wants('whoami')) {
    log('\n[whoami] Bearer token on every request: ours vs stock in JWT mode (and stock default AES as info)');
    mergeOutcome(outcome, await runWhoamiBench(ours, stock, await aes(), USER, HTTP_SETTINGS[mode], budget, log));
  }
}

function finish(
  options: BenchOptions,
  started: Date,
  stamp: string,
  resultsDir: string,
  profileDir: string,
  machine: Record<string, unknown>,
  outcome: RowOutcome,
): { rows: BenchRow[]; outcome: RowOutcome; file: string } {
  const mode = options.quick ? 'quick' : 'full';
  const counts = summarize(outcome.rows, outcome.notes);
  log(`\n${formatTable(outcome.rows, { notes: outcome.notes })}`);
  log(`\n${counts.pass} met, ${counts.fail} missed, ${counts.error} error(s), ${counts.info} informative — ${((Date.now() - started.getTime()) / 1000).toFixed(0)} s`);
  for (const row of outcome.rows) {
    const notes = new Set(
      (outcome.notes[row.name] ?? []).filter(
        (note) => note.startsWith('ERROR') || note.startsWith('NOISY') || note.includes('skipped') || note.startsWith('server CPU'),
      ),
    );
    for (const note of notes) log(`  ${row.name}: ${note}`);
  }

  let profiles: Record<string, unknown> = {};
  if (options.profile && existsSync(profileDir)) profiles = reportProfiles(profileDir, outcome.windows ?? []);

  const file = join(resultsDir, `${stamp}.json`);
  const record = {
    date: started.toISOString(),
    mode,
    command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
    argv: process.argv.slice(2),
    durationSec: Math.round((Date.now() - started.getTime()) / 1000),
    machine,
    oursConfig: options.oursConfig,
    ratio: 'ratio = ours / stock (or ours / the named baseline); the target says which direction wins',
    rows: outcome.rows.map((row) => ({ ...row, verdict: evaluateRow(row, outcome.notes[row.name]) })),
    notes: outcome.notes,
    samples: outcome.samples,
    curves: outcome.curves ?? [],
    profiles,
  };
  writeFileSync(file, `${JSON.stringify(record, null, 2)}\n`);
  writeFileSync(file.replace(/\.json$/, '.md'), `${formatTable(outcome.rows, { notes: outcome.notes, markdown: true })}\n`);
  const commit = currentCommit(PROJECT_ROOT);
  const title = `npm run bench (${mode}${options.only.size === GROUPS.length ? '' : `, --only ${[...options.only].join(',')}`}) — ${started.toISOString().slice(0, 16)}Z, commit ${commit.short}${commit.dirty ? ' + uncommitted changes' : ''}`;
  const svg = renderChart({ title, rows: outcome.rows, notes: outcome.notes, curves: outcome.curves });
  writeFileSync(file.replace(/\.json$/, '.svg'), svg);
  const index = appendIndex(join(resultsDir, 'index.json'), {
    file: file.slice(resultsDir.length + 1),
    date: started.toISOString(),
    commit: commit.short,
    dirty: commit.dirty,
    mode,
    groups: [...options.only],
    counts,
    rows: record.rows.map((row) => ({
      name: row.name,
      ours: Number.isFinite(row.ours) ? row.ours : null,
      baseline: row.baseline !== null && Number.isFinite(row.baseline) ? row.baseline : null,
      unit: row.unit,
      ratio: row.ratio,
      target: row.target,
      verdict: row.verdict,
    })),
  });
  log(`\nwrote ${file} (+ .md, .svg); bench-results/index.json lists ${index.runs.length} run(s)`);
  const changes = changesSincePrevious(index);
  if (changes.length > 0) log(`ratios moved > 25 % since the previous ${mode} run:\n  ${changes.join('\n  ')}`);
  if (options.record) log(`recorded the chart in ${writeRecordedChart(PROJECT_ROOT, svg)}`);
  return { rows: outcome.rows, outcome, file };
}

/**
 * Whole-life summary of each server's main-thread profile, then one summary per load row cut to
 * the exact seconds autocannon hit that server, with its CPU cost per request.
 */
function reportProfiles(profileDir: string, windows: readonly LoadWindow[]): Record<string, unknown> {
  const summaries: Record<string, unknown> = {};
  for (const kind of readdirSync(profileDir)) {
    const files = readdirSync(join(profileDir, kind)).filter((f) => f.endsWith('.cpuprofile'));
    // Worker threads (the logger's transport) get their own file; the busiest one is the server.
    const profiles = files.map((file) => ({ file, profile: readProfile(join(profileDir, kind, file)) }));
    const main = profiles
      .map((entry) => ({ ...entry, busy: summarizeProfile(entry.profile, 1).totalMs }))
      .sort((a, b) => b.busy - a.busy)[0];
    if (!main) continue;
    const whole = summarizeProfile(main.profile);
    summaries[`${kind}/whole run`] = { file: join(profileDir, kind, main.file), ...whole };
    log(`\n${formatProfile(`CPU profile ${kind}, whole run (${join(profileDir, kind, main.file)})`, whole)}`);
    const rows = [...new Set(windows.filter((w) => w.kind === kind).map((w) => w.row))];
    for (const row of rows) {
      const mine = windows.filter((w) => w.kind === kind && w.row === row);
      const summary = summarizeProfile(main.profile, 15, mine);
      const requests = mine.reduce((sum, w) => sum + w.requests, 0);
      const perRequest = requests > 0 ? summary.totalMs / requests : Number.NaN;
      summaries[`${kind}/${row}`] = { requests, cpuMsPerRequest: perRequest, ...summary };
      log(`\n${formatProfile(`CPU profile ${kind}, ${row}: ${requests} requests, ${perRequest.toFixed(3)} ms CPU per request`, summary)}`);
    }
  }
  return summaries;
}

if (require.main === module) {
  let options: BenchOptions;
  try {
    options = parseArgs(process.argv.slice(2));
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(message === 'usage' ? `${USAGE}\n` : `${message}\n${USAGE}\n`);
    process.exit(message === 'usage' ? 0 : 2);
  }
  runBench(options).then(
    ({ outcome }) => {
      const counts = summarize(outcome.rows, outcome.notes);
      process.exitCode = counts.error > 0 ? 1 : 0;
    },
    (error: unknown) => {
      process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
