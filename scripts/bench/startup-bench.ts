/**
 * Cold start: spawn → first `GET /-/ping` 200, storage without packages. Both sides are measured
 * the same way (a port picked here, ping polled every 5 ms on fresh connections), in two flavours:
 *   - first start in a fresh folder (stock writes its secret; ours also creates registry.lockb and key pairs),
 *   - restart of a folder that already holds that state (the everyday case).
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
  spawnServer,
  startServer,
  stopChild,
  tempDir,
  waitForPing,
  writeOursConfig,
  writeStockConfig,
  type Budget,
  type Log,
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

export interface ColdStart {
  /** spawn → first /-/ping 200, wall clock */
  ms: number;
  /** CPU the server process used until then (user + system, all threads; null without /proc) — barely moved by a busy machine */
  cpuMs: number | null;
}

/** Spawn → /-/ping 200, then a graceful stop. */
export async function coldStartOnce(side: Side, dir: string, oursBaseConfig?: string): Promise<ColdStart> {
  if (side === 'ours') writeOursConfig(dir, oursBaseConfig);
  else writeStockConfig(dir);
  const port = await freePort();
  const started = performance.now();
  const { child, logs } = spawnServer(side, dir, port);
  try {
    await waitForPing(`http://127.0.0.1:${port}`, child, logs, 30000);
    const ms = performance.now() - started;
    const cpu = child.pid ? cpuSnapshot([child.pid]) : null;
    return { ms, cpuMs: cpu ? cpu.ownTicks * (1000 / CLOCK_TICKS_PER_SECOND) : null };
  } finally {
    await stopChild(child);
  }
}

export async function runStartupBench(settings: StartupBenchSettings, budget: Budget, log: Log): Promise<RowOutcome> {
  const outcome = emptyOutcome();
  const kept: Record<Side, string> = { stock: tempDir('start-stock'), ours: tempDir('start-ours') };
  try {
    // One first start each, so the "restart" flavour finds secret / lockb / keys already there.
    // A side that cannot start here fails every measurement below too, each recorded as an ERROR.
    for (const side of ['stock', 'ours'] as const) {
      try {
        const server = await startServer(side, kept[side], { baseConfig: settings.oursBaseConfig });
        await server.stop();
      } catch (error) {
        log(`  first start of ${side} failed: ${errorSummary(error)}`);
      }
    }
    const flavours = [
      { name: 'cold start → /-/ping 200, fresh folder (first start)', fresh: true },
      { name: 'cold start → /-/ping 200, restart (state kept, no packages)', fresh: false },
    ];
    for (const flavour of flavours) {
      const notes: string[] = [];
      const runs = await interleave(settings.rounds, budget, async (side): Promise<ColdStart | string> => {
        const dir = flavour.fresh ? tempDir(`fresh-${side}`) : kept[side];
        try {
          const result = await coldStartOnce(side, dir, settings.oursBaseConfig);
          log(`  ${flavour.name} ${side}: ${result.ms.toFixed(0)} ms${result.cpuMs === null ? '' : ` (CPU ${result.cpuMs.toFixed(0)} ms)`}`);
          return result;
        } catch (error) {
          return `ERROR ${side}: ${errorSummary(error)}`;
        } finally {
          if (flavour.fresh) removeDir(dir);
        }
      });
      const starts = (side: Side): ColdStart[] => runs[side].filter((v): v is ColdStart => typeof v !== 'string');
      const wall = (side: Side): number[] => starts(side).map((s) => s.ms);
      const cpu = (side: Side): number[] => starts(side).flatMap((s) => (s.cpuMs === null ? [] : [s.cpuMs]));
      for (const side of ['stock', 'ours'] as const) for (const v of runs[side]) if (typeof v === 'string') notes.push(v);
      if (runs.skippedRounds > 0) notes.push(`${runs.skippedRounds} round(s) skipped: time budget`);
      notes.push(`${wall('ours').length} round(s) per side`);
      outcome.rows.push(makeRow(flavour.name, median(wall('ours')), median(wall('stock')), 'ms', '≤ 1.1× stock time'));
      outcome.notes[flavour.name] = notes;
      outcome.samples[flavour.name] = { stock: wall('stock'), ours: wall('ours') };
      if (cpu('ours').length > 0 && cpu('stock').length > 0) {
        // The same start-ups seen as CPU spent: a busy machine stretches wall time, not this.
        const cpuName = `${flavour.name.replace('cold start → /-/ping 200', 'cold start CPU to ready')}`;
        outcome.rows.push(makeRow(cpuName, median(cpu('ours')), median(cpu('stock')), 'ms CPU', 'info'));
        outcome.samples[cpuName] = { stock: cpu('stock'), ours: cpu('ours') };
      }
    }
  } finally {
    removeDir(kept.stock);
    removeDir(kept.ours);
  }
  return outcome;
}
