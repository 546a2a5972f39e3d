/**
 * The only file that knows blessed (0.1.81, unmaintained since 2016). Everything else draws
 * `Line[]` and receives `KeyPress`es, so swapping blessed for a fork touches this file alone.
 *
 * Quirks handled here:
 * - Enter arrives twice (`enter` and `return`): only `enter` is passed on; a bare `\n`
 *   (`linefeed`, C-j) is treated as Enter too, but never both for one key press.
 * - Output is buffered by blessed and written on the next tick: `draw` flushes so a frame is on
 *   the terminal when `draw` returns (and the bench measures the real cost).
 * - `resize` fires for every SIGWINCH, even without a size change: we forward only real changes.
 * - Tags: every text is escaped (`{` / `}`), styles are our own tones mapped once here; with
 *   NO_COLOR only inverse/bold/underline attributes are used, never a colour.
 * - Lines longer than the box wrap in blessed: callers pass lines already cut to `width`.
 * - blessed warns on stderr for a non-TTY output and for odd terminfo entries: warnings are off.
 */
import blessed from 'blessed';
import type { Line, Tone } from './render';
import type { KeyPress } from './model';

export interface ScreenAdapter {
  readonly width: number;
  readonly height: number;
  /** Replaces the whole content and paints what changed. */
  draw(lines: readonly Line[]): void;
  /** Forgets what is on the terminal and paints every cell again (C-l). */
  repaint(): void;
  /** Forgets what is on the terminal: the next `draw` writes every cell (the bench's "full redraw"). */
  invalidate(): void;
  onKey(listener: (key: KeyPress) => void): void;
  onResize(listener: (width: number, height: number) => void): void;
  /** Leaves the alternate screen, shows the cursor, restores the tty mode. Idempotent. */
  destroy(): void;
}

export interface ScreenOptions {
  color: boolean;
  input?: NodeJS.ReadableStream;
  output?: NodeJS.WritableStream;
  /** terminfo name; default $TERM. */
  terminal?: string;
}

const COLOR_TAGS: Record<Tone, string> = {
  plain: '',
  cursor: '{inverse}{bold}',
  title: '{bold}',
  heading: '{bold}{cyan-fg}',
  dim: '{gray-fg}',
  error: '{red-fg}{bold}',
  ok: '{green-fg}',
  warn: '{yellow-fg}',
  input: '{bold}',
  version: '{cyan-fg}',
  registryHash: '{magenta-fg}',
  featureFlags: '{yellow-fg}',
  terminalMode: '{green-fg}',
  rows: '{blue-fg}',
  cols: '{blue-fg}',
  check: '{gray-fg}',
};

/** NO_COLOR (https://no-color.org): attributes that carry meaning stay, colours go. */
const MONO_TAGS: Record<Tone, string> = {
  plain: '',
  cursor: '{inverse}',
  title: '{bold}',
  heading: '{bold}',
  dim: '',
  error: '{bold}',
  ok: '',
  warn: '{bold}',
  input: '{underline}',
  version: '',
  registryHash: '',
  featureFlags: '',
  terminalMode: '',
  rows: '',
  cols: '',
  check: '',
};

/** blessed tag markup for our lines. */
export function toTags(lines: readonly Line[], color: boolean): string {
  const tags = color ? COLOR_TAGS : MONO_TAGS;
  return lines
    .map((line) =>
      line
        .map((segment) => {
          const open = tags[segment.tone ?? 'plain'];
          const text = blessed.escape(segment.text);
          return open === '' ? text : `${open}${text}{/}`;
        })
        .join(''),
    )
    .join('\n');
}

export function createScreen(options: ScreenOptions): ScreenAdapter {
  const screen = blessed.screen({
    input: options.input ?? process.stdin,
    output: options.output ?? process.stdout,
    terminal: options.terminal ?? process.env.TERM ?? 'xterm-256color',
    smartCSR: true,
    fullUnicode: false,
    warnings: false,
    autoPadding: false,
    // 16 ms: a drag-resize storm becomes one relayout, still well inside a frame of a human.
    resizeTimeout: 16,
  } as blessed.Widgets.IScreenOptions);
  const box = blessed.box({ parent: screen, top: 0, left: 0, width: '100%', height: '100%', tags: true, wrap: false });
  let destroyed = false;
  let lastSize = { width: screen.width as number, height: screen.height as number };
  const keyListeners: ((key: KeyPress) => void)[] = [];
  const resizeListeners: ((width: number, height: number) => void)[] = [];

  screen.on('keypress', (ch: string | undefined, key: blessed.Widgets.Events.IKeyEventArg | undefined) => {
    if (destroyed) return;
    const name = key?.full ?? ch;
    if (name === undefined || name === 'return') return;
    const full = name === 'linefeed' ? 'enter' : name;
    const press: KeyPress = ch === undefined ? { full } : { full, ch };
    for (const listener of keyListeners) listener(press);
  });
  screen.on('resize', () => {
    if (destroyed) return;
    const size = { width: screen.width as number, height: screen.height as number };
    if (size.width === lastSize.width && size.height === lastSize.height) return;
    lastSize = size;
    for (const listener of resizeListeners) listener(size.width, size.height);
  });

  const flush = (): void => {
    (screen.program as unknown as { flush(): void }).flush();
  };

  return {
    get width() {
      return screen.width as number;
    },
    get height() {
      return screen.height as number;
    },
    draw(lines) {
      if (destroyed) return;
      box.setContent(toTags(lines, options.color));
      screen.render();
      flush();
    },
    repaint() {
      if (destroyed) return;
      screen.realloc();
      screen.render();
      flush();
    },
    invalidate() {
      if (destroyed) return;
      screen.realloc();
    },
    onKey(listener) {
      keyListeners.push(listener);
    },
    onResize(listener) {
      resizeListeners.push(listener);
    },
    destroy() {
      if (destroyed) return;
      destroyed = true;
      screen.destroy();
    },
  };
}
