/**
 * Cold start: spawn → first `GET /-/ping` 200, storage without packages, stock (JWT mode) vs ours.
 * Both sides are measured the same way (a port picked here, ping polled every 5 ms on fresh
 * connections) and get the same V8 compile-cache treatment (`NODE_COMPILE_CACHE`, one folder per
 * side inside its state folder), in two flavours:
 *   - first start: a fresh folder AND an empty compile cache for both, every round (stock writes
 *     its secret; ours also creates registry.lockb and key pairs);
 *   - restart of a folder that already holds that state, with the compile cache that side's
 *     previous start left (the everyday case).
 * At the first 200 the bench also reads the server's VmRSS ("RSS at ready") and the CPU it used.
 */
import { emptyOutcome, type RowOutcome } from './http-bench';
import { makeRow, median } from './report';
import {
  CLOCK_TICKS_PER_SECOND,
  cpuSnapshot,
  errorSummary,
  freePort,
  interleave,
  removeDir,
  rssMiB,
  spawnServer,
  startServer,
  stopChild,
  tempDir,
  waitForPing,
  writeOursConfig,
  writeStockConfig,
  type Budget,
  type Log,
  type ServerKind,
  type Side,
} from './stock';

export interface StartupBenchSettings {
  rounds: number;
  /** Ours only: config.yaml to derive from (default: the project's). */
  oursBaseConfig?: string;
}

export const STARTUP_SETTINGS: Record<'quick' | 'full', StartupBenchSettings> = {
  quick: { rounds: 2 },
  full: { rounds: 5 },
};

/** The server each side runs: stock in JWT mode, as in every other row. */
const KIND: Record<Side, Exclude<ServerKind, 'ceiling'>> = { stock: 'stock-jwt', ours: 'ours' };

export interface ColdStart {
  /** spawn → first /-/ping 200, wall clock */
  ms: number;
  /** CPU the server process used until then (user + system, all threads; null without /proc) — barely moved by a busy machine */
  cpuMs: number | null;
  /** VmRSS at that first 200, MiB (null without /proc) */
  rssMiB: number | null;
}

/** Spawn → /-/ping 200, then a graceful stop (which is when Node writes the compile cache). */
export async function coldStartOnce(side: Side, dir: string, oursBaseConfig?: string): Promise<ColdStart> {
  if (side === 'ours') writeOursConfig(dir, oursBaseConfig);
  else writeStockConfig(dir, { jwt: true });
  const port = await freePort();
  const started = performance.now();
  const { child, logs } = spawnServer(KIND[side], dir, port);
  try {
    await waitForPing(`http://127.0.0.1:${port}`, child, logs, 30000);
    const ms = performance.now() - started;
    const rss = rssMiB(child.pid);
    const cpu = child.pid ? cpuSnapshot([child.pid]) : null;
    return { ms, cpuMs: cpu ? cpu.ownTicks * (1000 / CLOCK_TICKS_PER_SECOND) : null, rssMiB: rss };
  } finally {
    await stopChild(child);
  }
}

export const COLD_START_ROWS = {
  fresh: 'cold start → /-/ping 200, first start (fresh folder, empty compile cache, both)',
  restart: 'cold start → /-/ping 200, restart (state + compile cache kept, no packages)',
} as const;

export async function runStartupBench(settings: StartupBenchSettings, budget: Budget, log: Log): Promise<RowOutcome> {
  const outcome = emptyOutcome();
  const kept: Record<Side, string> = { stock: tempDir('start-stock'), ours: tempDir('start-ours') };
  try {
    // One first start each, so the "restart" flavour finds secret / lockb / keys and a warm compile
    // cache there. A side that cannot start here fails every measurement below too, each an ERROR.
    for (const side of ['stock', 'ours'] as const) {
      try {
        const server = await startServer(KIND[side], kept[side], { baseConfig: settings.oursBaseConfig });
        await server.stop();
      } catch (error) {
        log(`  first start of ${side} failed: ${errorSummary(error)}`);
      }
    }
    const flavours = [
      { name: COLD_START_ROWS.fresh, short: 'first start', fresh: true, target: '≤ 1.1× stock time', rssTarget: 'info' },
      { name: COLD_START_ROWS.restart, short: 'restart', fresh: false, target: '≤ 1.0× stock time', rssTarget: '≤ 1.0× stock RSS' },
    ];
    for (const flavour of flavours) {
      const notes: string[] = [];
      const runs = await interleave(settings.rounds, budget, async (side): Promise<ColdStart | string> => {
        // A fresh folder holds its own (empty) .compile-cache, so each round starts with none.
        const dir = flavour.fresh ? tempDir(`fresh-${side}`) : kept[side];
        try {
          const result = await coldStartOnce(side, dir, settings.oursBaseConfig);
          log(
            `  ${flavour.short} ${side}: ${result.ms.toFixed(0)} ms` +
              (result.cpuMs === null ? '' : `, CPU ${result.cpuMs.toFixed(0)} ms`) +
              (result.rssMiB === null ? '' : `, RSS ${result.rssMiB.toFixed(0)} MiB`),
          );
          return result;
        } catch (error) {
          return `ERROR ${side}: ${errorSummary(error)}`;
        } finally {
          if (flavour.fresh) removeDir(dir);
        }
      });
      const starts = (side: Side): ColdStart[] => runs[side].filter((v): v is ColdStart => typeof v !== 'string');
      const pick = (side: Side, value: (s: ColdStart) => number | null): number[] =>
        starts(side).flatMap((s) => {
          const v = value(s);
          return v === null ? [] : [v];
        });
      for (const side of ['stock', 'ours'] as const) for (const v of runs[side]) if (typeof v === 'string') notes.push(v);
      if (runs.skippedRounds > 0) notes.push(`${runs.skippedRounds} round(s) skipped: time budget`);
      notes.push(`${starts('ours').length} round(s) per side; stock in JWT mode; NODE_COMPILE_CACHE per side (${flavour.fresh ? 'empty' : 'warm'})`);
      const wall = (side: Side): number[] => pick(side, (s) => s.ms);
      outcome.rows.push(makeRow(flavour.name, median(wall('ours')), median(wall('stock')), 'ms', flavour.target));
      outcome.notes[flavour.name] = notes;
      outcome.samples[flavour.name] = { stock: wall('stock'), ours: wall('ours') };
      // The same start-ups seen as CPU spent: a busy machine stretches wall time, not this.
      const cpuName = `cold start CPU to ready, ${flavour.short} (user + system, all threads)`;
      const rssName = `RSS at ready (VmRSS at the first /-/ping 200), ${flavour.short}`;
      for (const [rowName, unit, target, value] of [
        [cpuName, 'ms CPU', 'info', (s: ColdStart) => s.cpuMs],
        [rssName, 'MiB', flavour.rssTarget, (s: ColdStart) => s.rssMiB],
      ] as const) {
        const ours = pick('ours', value);
        const stock = pick('stock', value);
        outcome.rows.push(makeRow(rowName, median(ours), median(stock), unit, target));
        outcome.samples[rowName] = { stock, ours };
        // No /proc (or every start failed): an error row, not a silently missing one.
        if (ours.length === 0 || stock.length === 0) outcome.notes[rowName] = ['ERROR no sample (is /proc readable?)'];
      }
    }
  } finally {
    removeDir(kept.stock);
    removeDir(kept.ours);
  }
  return outcome;
}
