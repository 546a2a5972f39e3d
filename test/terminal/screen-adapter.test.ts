/**
 * The adapter against REAL blessed, on in-memory streams standing in for the tty (blessed only
 * needs a readable and a writable): the quirks it hides are checked here, not assumed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough, Writable } from 'node:stream';
import type { KeyPress } from '../../terminal/model';
import { seg, type Line } from '../../terminal/render';
import { createScreen, toTags } from '../../terminal/screen-adapter';

class FakeTtyOutput extends Writable {
  chunks: string[] = [];
  isTTY = true;
  columns: number;
  rows: number;
  constructor(columns: number, rows: number) {
    super();
    this.columns = columns;
    this.rows = rows;
  }
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    this.chunks.push(chunk.toString('utf8'));
    callback();
  }
  text(): string {
    return this.chunks.join('');
  }
  resize(columns: number, rows: number): void {
    this.columns = columns;
    this.rows = rows;
    this.emit('resize');
  }
}

function ttyInput(): PassThrough & { isTTY: boolean; setRawMode(mode: boolean): void; isRaw: boolean } {
  const input = new PassThrough() as PassThrough & { isTTY: boolean; setRawMode(mode: boolean): void; isRaw: boolean };
  input.isTTY = true;
  input.isRaw = false;
  input.setRawMode = (mode: boolean) => {
    input.isRaw = mode;
  };
  return input;
}

const lines: Line[] = [[seg('plain '), seg('[01]', 'cursor'), seg(' red', 'error'), seg(' {braces}', 'registryHash')]];
const COLOUR_SGR = /\x1b\[[0-9;]*(3[0-7]|9[0-7]|38;5;\d+)m/;

test('toTags escapes braces; NO_COLOR keeps inverse/bold and drops every colour', () => {
  assert.equal(toTags(lines, true), 'plain {inverse}{bold}[01]{/}{red-fg}{bold} red{/}{magenta-fg} {open}braces{close}{/}');
  assert.equal(toTags(lines, false), 'plain {inverse}[01]{/}{bold} red{/} {open}braces{close}');
});

function withScreen(color: boolean, run: (screen: ReturnType<typeof createScreen>, output: FakeTtyOutput, input: ReturnType<typeof ttyInput>) => void | Promise<void>) {
  return async () => {
    const output = new FakeTtyOutput(60, 20);
    const input = ttyInput();
    const screen = createScreen({ color, input, output, terminal: 'xterm-256color' });
    try {
      await run(screen, output, input);
    } finally {
      screen.destroy();
    }
  };
}

test(
  'draw writes the frame before it returns; colours only without NO_COLOR',
  withScreen(true, (screen, output) => {
    assert.equal(screen.width, 60);
    assert.equal(screen.height, 20);
    output.chunks = [];
    screen.draw(lines);
    const frame = output.text();
    assert.match(frame, /plain/);
    assert.match(frame, /\{braces\}/);
    assert.match(frame, COLOUR_SGR);
  }),
);

test(
  'NO_COLOR: no colour escape sequence at all, the cursor still inverse',
  withScreen(false, (screen, output) => {
    output.chunks = [];
    screen.draw(lines);
    screen.repaint();
    const frame = output.text();
    assert.match(frame, /\[01\]/);
    assert.doesNotMatch(frame, COLOUR_SGR);
    assert.match(frame, /\x1b\[[0-9;]*7[;m]/, 'inverse (SGR 7) marks the cursor');
  }),
);

test(
  'Enter arrives once (blessed emits enter + return); keys carry their character',
  withScreen(false, async (screen, _output, input) => {
    const keys: KeyPress[] = [];
    screen.onKey((key) => keys.push(key));
    input.write('\r');
    input.write('f');
    input.write('\x1b[D'); // left
    input.write('\t');
    input.write('\x03'); // C-c
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(
      keys.map((k) => k.full),
      ['enter', 'f', 'left', 'tab', 'C-c'],
    );
    assert.equal(keys[1].ch, 'f');
  }),
);

test(
  'resize is forwarded once per real size change',
  withScreen(false, async (screen, output) => {
    const sizes: string[] = [];
    screen.onResize((w, h) => sizes.push(`${w}x${h}`));
    output.resize(50, 15);
    await new Promise((resolve) => setTimeout(resolve, 80));
    output.resize(50, 15);
    await new Promise((resolve) => setTimeout(resolve, 80));
    assert.deepEqual(sizes, ['50x15']);
    assert.equal(screen.width, 50);
  }),
);

test('destroy leaves the alternate screen, shows the cursor and restores the tty mode; twice is harmless', () => {
  const output = new FakeTtyOutput(40, 12);
  const input = ttyInput();
  const screen = createScreen({ color: true, input, output, terminal: 'xterm-256color' });
  screen.draw(lines);
  assert.equal(input.isRaw, true);
  output.chunks = [];
  screen.destroy();
  screen.destroy();
  const tail = output.text();
  assert.match(tail, /\x1b\[\?1049l/, 'normal buffer');
  assert.match(tail, /\x1b\[\?25h/, 'cursor visible');
  assert.equal(input.isRaw, false);
  screen.draw(lines); // after destroy: ignored, no throw
});
