/**
 * Terminal full redraw (docs/targets.md: ≤ 16 ms): the client's real path — layout (`renderScreen`) plus
 * blessed painting EVERY cell (screen invalidated first) and flushing to the output stream — on
 * a pseudo terminal (an in-memory writable that says it is a tty), so no real terminal's speed is
 * measured. Median of N frames, each with a different cursor position so content changes.
 */
import { PassThrough, Writable } from 'node:stream';
import { defaultFields, describeConfig } from '../../plugins/registry-core/index';
import { addLog, createState, type ClientState } from '../../terminal/model';
import { configViewSchema } from '../../terminal/protocol';
import { renderScreen } from '../../terminal/render';
import { createScreen } from '../../terminal/screen-adapter';
import { makeRow, median } from './report';
import type { BenchRow } from './types';

class PseudoTty extends Writable {
  isTTY = true;
  bytes = 0;
  constructor(
    public columns: number,
    public rows: number,
  ) {
    super();
  }
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    this.bytes += chunk.length;
    callback();
  }
}

function busyState(): ClientState {
  const config = configViewSchema.parse({
    ...describeConfig(defaultFields()),
    issuer: { url: 'http://localhost:4873/_auth', alg: 'EdDSA', kind: 'private' },
    env: '',
    registryUrl: 'http://localhost:4873',
    urlMatchesHash: true,
  });
  const state = createState({ registry: 'http://127.0.0.1:4873', readonly: false, tokenSource: null, config });
  state.status = { state: 'connected', since: Date.now() };
  state.user = 'alice';
  state.admin = true;
  state.packages = Array.from({ length: 40 }, (_, i) => ({
    name: `@mycompany/package-${i}`,
    versions: ['1.0.0', '1.1.0', '2.0.0'],
    distTags: { latest: '2.0.0' },
    time: new Date(Date.now() - i * 60_000).toISOString(),
  }));
  for (let i = 0; i < 150; i++) addLog(state, `publish @mycompany/package-${i % 40}@1.0.${i} by alice`, 'event');
  return state;
}

export interface RedrawMeasure {
  medianMs: number;
  bytesPerFrame: number;
}

export function measureFullRedraw(options: { width: number; height: number; frames: number; color: boolean }): RedrawMeasure {
  const output = new PseudoTty(options.width, options.height);
  const input = Object.assign(new PassThrough(), { isTTY: true, setRawMode: () => undefined });
  const screen = createScreen({ color: options.color, input, output, terminal: 'xterm-256color' });
  const state = busyState();
  const times: number[] = [];
  try {
    for (let i = 0; i < 20 + options.frames; i++) {
      state.cursor = 4 + (i % 12);
      state.flagCursor = i % 3;
      const before = output.bytes;
      const start = process.hrtime.bigint();
      screen.invalidate();
      screen.draw(renderScreen(state, { width: screen.width, height: screen.height }));
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      if (output.bytes === before) throw new Error('a full redraw wrote nothing: the measurement would be meaningless');
      if (i >= 20) times.push(ms); // the first frames warm the JIT and blessed's caches
    }
    return { medianMs: median(times), bytesPerFrame: Math.round(output.bytes / (20 + options.frames)) };
  } finally {
    screen.destroy();
  }
}

export async function runTerminalBench(options: { quick: boolean }): Promise<BenchRow[]> {
  const frames = options.quick ? 60 : 300;
  const rows: BenchRow[] = [];
  for (const [width, height] of [
    [80, 24],
    [200, 60],
  ] as const) {
    const measure = measureFullRedraw({ width, height, frames, color: true });
    rows.push(makeRow(`terminal full redraw ${width}x${height} (layout + every cell, ${measure.bytesPerFrame} B/frame)`, measure.medianMs, null, 'ms', '≤ 16 ms'));
  }
  return rows;
}

if (require.main === module) {
  runTerminalBench({ quick: process.argv.includes('--quick') }).then(
    (rows) => {
      for (const row of rows) console.log(`${row.name}: ${row.ours.toFixed(3)} ${row.unit} (target ${row.target})`);
    },
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
