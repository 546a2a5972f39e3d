import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { helpText } from '../../plugins/registry-core/commands';
import { KEYMAP, footerHints } from '../../terminal/keymap';
import { addLog, createState, type ClientState } from '../../terminal/model';
import { configBytes } from '../../terminal/protocol';
import { MIN_HEIGHT, MIN_WIDTH, fit, gridLines, helpContent, lineText, renderScreen, seg } from '../../terminal/render';
import { serverConfig } from './fixtures';

const text = (state: ClientState, width: number, height: number): string[] => renderScreen(state, { width, height }).map(lineText);

function state(options: { readonly?: boolean; packages?: number; log?: number } = {}): ClientState {
  const s = createState({ registry: 'http://127.0.0.1:4873', readonly: options.readonly ?? false, tokenSource: null, config: serverConfig() });
  s.status = { state: 'connected', since: 0 };
  s.packages = Array.from({ length: options.packages ?? 2 }, (_, i) => ({
    name: `pkg-${i}`,
    versions: ['1.0.0', '1.1.0'],
    distTags: { latest: '1.1.0' },
    time: '2025-01-02T03:04:05.000Z',
  }));
  for (let i = 0; i < (options.log ?? 3); i++) addLog(s, `event ${i}`, 'event', 0);
  return s;
}

test('the grid: decimal offsets, hex bytes single-spaced, the cursor bracketed without moving columns', () => {
  const bytes = configBytes(serverConfig());
  const plain = gridLines(bytes, null).map(lineText);
  assert.deepEqual(plain, [
    'offset  4  5  6  7  8  9 10 11 12 13 14 15 16',
    'bytes  01 0a 96 b6 ce 03 00 00 00 02 18 50 36',
    'field  vr hash------- flags------ tm rw cl ck',
  ]);
  for (let cursor = 4; cursor <= 15; cursor++) {
    const row = lineText(gridLines(bytes, cursor)[1]);
    assert.equal(row.length, plain[1].length, `cursor ${cursor} keeps the width`);
    const at = plain[0].indexOf(String(cursor).padStart(3)) + 1; // the column of the offset's first char
    assert.equal(row.slice(at - 1 + (cursor < 10 ? 0 : 0), at + 3).replace(/^.*\[/, '['), `[${bytes[cursor - 4].toString(16).padStart(2, '0')}]`);
    assert.equal(row.replace(/[[\]]/g, ' ').replace(/ +/g, ' '), plain[1].replace(/ +/g, ' '));
  }
});

test('full layout at the config size shows grid, fields, flags, packages, events and the keymap footer', () => {
  const lines = text(state(), 80, 24);
  assert.equal(lines.length, 24);
  const screen = lines.join('\n');
  assert.match(screen, /bytes \[01\]0a 96 b6 ce 03 00 00 00 02 18 50 36/);
  assert.match(screen, /@4 version 0x01 = 1 \(modern\)/);
  assert.match(screen, /issuer\s+http:\/\/localhost:4873\/_auth\s+EdDSA/);
  assert.match(screen, />\[x\] PREMIUM_TYPES/);
  assert.match(screen, / \[ \] DEBUG/);
  assert.match(screen, / \[ \] OFFLINE/);
  assert.match(screen, /packages \(2\)/);
  assert.match(screen, /pkg-1\s+1\.1\.0 \(2 versions\)/);
  assert.match(screen, /event 2/);
  for (const hint of footerHints(false)) assert.ok(screen.includes(hint), `footer shows "${hint}"`);
  assert.match(lines[0], /live/);
});

test('compact layout at 60x20 keeps grid, flags, footer and the bottom line', () => {
  const lines = text(state({ packages: 30, log: 40 }), 60, 20);
  assert.equal(lines.length, 20);
  const screen = lines.join('\n');
  assert.match(screen, /bytes \[01\]0a 96 b6 ce 03 00 00 00 02 18 50 36/);
  assert.match(screen, /flags >\[x\] PREMIUM_TYPES/);
  assert.match(screen, /more \(:packages lists all\)/);
  assert.match(screen, /event 39/, 'the newest events are the ones shown');
  assert.match(lines[19], /config as of \d\d:\d\d:\d\d, compact: 60x20 < config 80x24$/);
  assert.ok(lines.every((line) => line.length <= 60));
});

test('below the minimum size: a clear message instead of a broken grid', () => {
  const lines = text(state(), MIN_WIDTH - 1, 30);
  assert.equal(lines[0], 'terminal too small');
  assert.match(lines[1], new RegExp(`have ${MIN_WIDTH - 1}x30, need ${MIN_WIDTH}x${MIN_HEIGHT}`));
  assert.ok(!lines.join('\n').includes('bytes'));
  assert.equal(text(state(), 80, MIN_HEIGHT - 1)[0], 'terminal too small');
});

test('any size, any state: never more lines than rows, never a line wider than the window', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 220 }),
      fc.integer({ min: 1, max: 80 }),
      fc.integer({ min: 0, max: 40 }),
      fc.integer({ min: 0, max: 60 }),
      fc.constantFrom('normal', 'edit', 'command', 'help'),
      fc.boolean(),
      fc.string({ maxLength: 300 }),
      (width, height, packages, log, mode, readonly, typed) => {
        const s = state({ packages, log, readonly });
        if (mode === 'edit') s.input = { kind: 'edit', offset: 13, text: typed };
        if (mode === 'command') s.input = { kind: 'command', text: typed };
        if (mode === 'help') s.input = { kind: 'help', scroll: log };
        const lines = text(s, width, height);
        assert.ok(lines.length <= height, `${lines.length} lines for ${height} rows`);
        for (const line of lines) assert.ok(line.length <= width, `"${line}" wider than ${width}`);
      },
    ),
    { numRuns: 300 },
  );
});

test('help is generated from the keymap (the footer\'s table) and the core command help', () => {
  const help = helpContent(false).map(lineText).join('\n');
  for (const binding of KEYMAP) assert.ok(help.includes(binding.summary), `help lists "${binding.summary}"`);
  for (const line of helpText('shared').split('\n')) assert.ok(help.includes(line), `help lists command "${line.trim()}"`);
  const readonlyHelp = helpContent(true).map(lineText).join('\n');
  assert.match(readonlyHelp, /edit the byte under the cursor.*\(disabled: --readonly\)/);
  const s = state();
  s.input = { kind: 'help', scroll: 0 };
  assert.match(text(s, 100, 40).join('\n'), /toggle the flag under the flag cursor/);
});

test('--readonly footer says READ-ONLY and leaves out the editing keys', () => {
  const footer = footerHints(true);
  assert.equal(footer[0], 'READ-ONLY');
  assert.ok(!footer.some((hint) => /^Enter |^f /.test(hint)));
  assert.ok(footerHints(false).includes('Enter edit'));
  assert.ok(footerHints(false).includes('f toggle flag'));
  const screen = text(state({ readonly: true }), 100, 30).join('\n');
  assert.match(screen, /READ-ONLY/);
  assert.doesNotMatch(screen, /Enter edit|f toggle flag/);
});

test('status line: disconnected says it is retrying', () => {
  const s = state();
  s.status = { state: 'disconnected', attempt: 3, retryInMs: 1000, reason: 'ECONNREFUSED' };
  assert.match(text(s, 100, 30)[0], /disconnected, retrying… \(attempt 3, next in 1\.0 s\)/);
});

test('fit cuts with an ellipsis', () => {
  assert.equal(lineText(fit([seg('abc'), seg('def')], 4)), 'abc…');
  assert.equal(lineText(fit([seg('abc')], 3)), 'abc');
  assert.equal(lineText(fit([seg('abc')], 0)), '');
});
