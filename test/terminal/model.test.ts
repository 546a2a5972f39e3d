import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  applyCommandResult,
  applyConfig,
  applyEvent,
  applyHistory,
  applyStatus,
  createState,
  describeCursor,
  handleKey,
  MAX_LOG,
  addLog,
  type ClientState,
  type Effect,
  type KeyPress,
} from '../../terminal/model';
import { configWith, serverConfig } from './fixtures';

function fresh(options: { readonly?: boolean } = {}): ClientState {
  return createState({ registry: 'http://127.0.0.1:1', readonly: options.readonly ?? false, tokenSource: null, config: serverConfig() });
}

const k = (full: string, ch?: string): KeyPress => (ch === undefined ? { full } : { full, ch });

function press(state: ClientState, ...keys: (string | KeyPress)[]): Effect[] {
  const effects: Effect[] = [];
  for (const key of keys) effects.push(...handleKey(state, typeof key === 'string' ? k(key, key.length === 1 ? key : undefined) : key));
  return effects;
}

function type(state: ClientState, text: string): void {
  for (const ch of text) handleKey(state, k(ch === ' ' ? 'space' : ch, ch));
}

test('arrows stay on the editable bytes 4..15; up/down jump between fields', () => {
  const state = fresh();
  assert.equal(state.cursor, 4);
  press(state, 'left');
  assert.equal(state.cursor, 4);
  for (let i = 0; i < 20; i++) press(state, 'right');
  assert.equal(state.cursor, 15, 'the check byte (16) is never under the cursor');
  press(state, 'up');
  assert.equal(state.cursor, 14);
  press(state, 'up', 'up');
  assert.equal(state.cursor, 9);
  press(state, 'down');
  assert.equal(state.cursor, 13);
  press(state, 'up', 'up', 'up', 'up', 'up');
  assert.equal(state.cursor, 4);
  press(state, 'l', 'l', 'h');
  assert.equal(state.cursor, 5, 'vi keys move too');
});

test('Enter edits the byte under the cursor: decimal or 0x hex → one `set` command', () => {
  const state = fresh();
  press(state, 'down', 'down', 'down', 'down'); // rows (14)
  assert.equal(state.cursor, 14);
  press(state, 'enter');
  assert.deepEqual(state.input, { kind: 'edit', offset: 14, text: '' });
  type(state, '0x1e');
  assert.deepEqual(press(state, 'enter'), [{ type: 'send', line: 'set 14 0x1e' }]);
  assert.equal(state.input.kind, 'normal');

  press(state, 'enter');
  type(state, '300');
  press(state, 'backspace');
  assert.deepEqual(press(state, 'enter'), [{ type: 'send', line: 'set 14 30' }]);
});

test('a value the registry would refuse is caught before sending, naming the field', () => {
  const state = fresh();
  press(state, 'down', 'down', 'down'); // terminalMode (13)
  press(state, 'enter');
  type(state, '9');
  assert.deepEqual(press(state, 'enter'), []);
  assert.equal(state.message?.error, true);
  assert.match(state.message?.text ?? '', /terminalMode must be 0 \(disabled\), 1 \(cooked\) or 2 \(raw\), got 9/);

  press(state, 'enter');
  type(state, 'abc');
  assert.deepEqual(press(state, 'enter'), []);
  assert.match(state.message?.text ?? '', /value must be a decimal or 0x-hex number/);

  press(state, 'enter');
  type(state, '1 2');
  assert.deepEqual(press(state, 'enter'), []);
  assert.match(state.message?.text ?? '', /one number/);

  press(state, 'enter');
  type(state, '256');
  assert.deepEqual(press(state, 'enter'), []);
  assert.match(state.message?.text ?? '', /0\.\.255/);
});

test('Esc cancels an edit; an empty value cancels too; control keys are not typed', () => {
  const state = fresh();
  press(state, 'enter');
  type(state, '12');
  press(state, k('C-a', '\x01'));
  assert.deepEqual(state.input, { kind: 'edit', offset: 4, text: '12' });
  assert.deepEqual(press(state, 'escape'), []);
  assert.equal(state.input.kind, 'normal');
  press(state, 'enter');
  assert.deepEqual(press(state, 'enter'), []);
  assert.match(state.message?.text ?? '', /cancelled/);
});

test('Tab moves the flag cursor; f toggles the flag under it', () => {
  const state = fresh();
  assert.deepEqual(press(state, 'f'), [{ type: 'send', line: 'toggle PREMIUM_TYPES' }]);
  press(state, 'tab', 'tab');
  assert.deepEqual(press(state, 'f'), [{ type: 'send', line: 'toggle DEBUG' }]);
  press(state, 'tab');
  assert.deepEqual(press(state, 'f'), [{ type: 'send', line: 'toggle OFFLINE' }]);
  press(state, 'tab');
  assert.equal(state.flagCursor, 0, 'wraps around');
  press(state, 'S-tab');
  assert.deepEqual(press(state, 'f'), [{ type: 'send', line: 'toggle OFFLINE' }]);
});

test('the command line parses with the core before sending', () => {
  const state = fresh();
  press(state, ':');
  type(state, 'toggle debug');
  assert.deepEqual(press(state, 'enter'), [{ type: 'send', line: 'toggle debug' }]);

  press(state, ':');
  type(state, 'toggle NOPE');
  assert.deepEqual(press(state, 'enter'), []);
  assert.match(state.message?.text ?? '', /unknown flag "NOPE"/);

  press(state, ':');
  type(state, 'repair');
  assert.deepEqual(press(state, 'enter'), []);
  assert.match(state.message?.text ?? '', /only in the config CLI/);

  press(state, ':');
  type(state, 'q');
  assert.deepEqual(press(state, 'enter'), [{ type: 'quit' }]);

  press(state, ':');
  press(state, 'backspace');
  assert.equal(state.input.kind, 'normal', 'backspace on an empty command line leaves it');
});

test('--readonly: Enter, f and write commands are refused locally and say why; reading still works', () => {
  const state = fresh({ readonly: true });
  assert.deepEqual(press(state, 'enter'), []);
  assert.equal(state.input.kind, 'normal');
  assert.match(state.message?.text ?? '', /read-only/);
  assert.deepEqual(press(state, 'f'), []);
  press(state, ':');
  type(state, 'set 13 1');
  assert.deepEqual(press(state, 'enter'), []);
  assert.match(state.message?.text ?? '', /read-only.*set/);
  press(state, ':');
  type(state, 'env');
  assert.deepEqual(press(state, 'enter'), [{ type: 'send', line: 'env' }]);
});

test('? opens help, any key closes it; q and C-c quit', () => {
  const state = fresh();
  press(state, '?');
  assert.equal(state.input.kind, 'help');
  press(state, 'down', 'down');
  assert.deepEqual(state.input, { kind: 'help', scroll: 2 });
  assert.deepEqual(press(state, 'x'), []);
  assert.equal(state.input.kind, 'normal');
  assert.deepEqual(press(state, 'q'), [{ type: 'quit' }]);
  assert.deepEqual(press(state, k('C-c')), [{ type: 'quit' }]);
  press(state, 'z');
  assert.match(state.message?.text ?? '', /press \? for help/);
});

test('server messages: config replaces the view, package events ask for a refresh, history is not duplicated', () => {
  const state = fresh();
  applyConfig(state, configWith(13, 1), 1000);
  assert.equal(state.config?.fields.terminalMode, 'cooked');
  assert.match(state.log.at(-1)?.text ?? '', /terminalMode is now cooked/);
  assert.deepEqual(applyEvent(state, { type: 'event', kind: 'publish', name: 'a', version: '1.0.0', time: 5 }), [{ type: 'refresh-packages' }]);
  assert.deepEqual(applyEvent(state, { type: 'event', kind: 'login', user: 'alice', time: 6 }), []);
  const before = state.log.length;
  applyHistory(state, [
    { type: 'event', kind: 'publish', name: 'a', version: '1.0.0', time: 5 },
    { type: 'event', kind: 'publish', name: 'b', version: '2.0.0', time: 7 },
  ]);
  assert.equal(state.log.length, before + 1);
  assert.equal(state.log.filter((e) => e.text === 'publish b@2.0.0').length, 1);
  assert.equal(state.log.filter((e) => e.text === 'publish a@1.0.0').length, 1);
  assert.deepEqual(state.log.map((e) => e.time), [...state.log.map((e) => e.time)].sort((a, b) => a - b), 'kept in time order');
});

test('status changes are logged once; the log is bounded', () => {
  const state = fresh();
  applyStatus(state, { state: 'connected', since: 1 });
  applyStatus(state, { state: 'disconnected', attempt: 1, retryInMs: 250, reason: 'ECONNREFUSED' });
  applyStatus(state, { state: 'disconnected', attempt: 2, retryInMs: 500, reason: 'ECONNREFUSED' });
  assert.deepEqual(
    state.log.map((e) => e.text),
    ['connected', 'disconnected (ECONNREFUSED), retrying…'],
  );
  for (let i = 0; i < MAX_LOG + 50; i++) addLog(state, `line ${i}`, 'info');
  assert.equal(state.log.length, MAX_LOG);
  applyCommandResult(state, 'env', true, 'A=1\nB=2');
  assert.match(state.message?.text ?? '', /^A=1 … \(full output in the event log\)$/);
});

test('describeCursor says what the byte means', () => {
  const config = serverConfig();
  assert.equal(describeCursor(config, 13), '@13 terminalMode 0x02 = 2 (raw)');
  assert.equal(describeCursor(config, 4), '@4 version 0x01 = 1 (modern)');
  assert.match(describeCursor(config, 6), /registryHash byte 2\/4 0x96 \(hash 0xceb6960a/);
  assert.match(describeCursor(config, 9), /featureFlags byte 1\/4 0x03 \(flags 3: PREMIUM_TYPES\|PRIVATE_REGISTRY\)/);
});
