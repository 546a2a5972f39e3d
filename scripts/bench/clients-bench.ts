/**
 * Wall-time rows with the real clients: `npm publish` of 20 distinct packages (against stock in
 * JWT mode; its default AES mode as info), `npm install` and `bun install` of the 20 seeded
 * packages in a fresh project with a fresh cache. Each measurement
 * gets a brand-new client folder (config, cache, HOME), so nothing is served from a client cache.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { emptyOutcome, type RowOutcome } from './http-bench';
import { makeRow, median } from './report';
import { CLOCK_TICKS_PER_SECOND, cpuSnapshot, createClient, interleave, packageFiles, type BenchServer, type Budget, type Log, type RunResult, type Side } from './stock';

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
): RowOutcome {
  const outcome = emptyOutcome();
  const notes: string[] = [];
  const numbers = (side: Side): number[] => runs[side].filter((v): v is number => typeof v === 'number');
  for (const side of ['stock', 'ours'] as const) {
    for (const value of runs[side]) if (typeof value === 'string') notes.push(value.replace(/^ERROR /, `ERROR ${side}: `));
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

/**
 * Installs anonymously (no token): reads are public in both configs, so no auth path is measured
 * here (stock runs in JWT mode anyway, like in every row).
 */
async function installRow(
  client: 'npm' | 'bun',
  targets: Record<Side, ClientTarget>,
  packages: readonly string[],
  rounds: number,
  budget: Budget,
  log: Log,
): Promise<RowOutcome> {
  const name = `${client} install × ${packages.length} packages (fresh project + client cache, anonymous)`;
  const runs = await interleave(rounds, budget, async (side): Promise<number | string> => {
    const clientDir = createClient(targets[side].server.url);
    try {
      const project = join(clientDir.dir, 'app');
      writeProject(project, packages);
      const result =
        client === 'npm'
          ? await clientDir.npm(['install', '--no-audit', '--no-fund', '--ignore-scripts'], project)
          : await clientDir.bun(['install', '--ignore-scripts'], project);
      if (result.code !== 0) return failure(`${client} install`, result);
      const missing = missingInstall(project, packages);
      if (missing) return missing;
      log(`  ${name} ${side}: ${result.ms.toFixed(0)} ms`);
      return result.ms;
    } finally {
      clientDir.remove();
    }
  });
  return timeRow(name, runs, 'ms', '≤ 0.9× stock time');
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
