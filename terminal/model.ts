/**
 * The client's state and what keys and server messages do to it. No I/O and no blessed here:
 * functions mutate the state object and return the effects (send a command, quit…) for the
 * app to carry out, so the whole behaviour is unit-tested without a terminal or a server.
 */
import { COMMANDS, isWriteCommand, parseCommand, type Command } from '../plugins/registry-core/commands';
import {
  CHECK_OFFSET,
  CONFIG_START,
  FEATURE_FLAG_NAMES,
  FIELD_OFFSETS,
  TERMINAL_MODES,
  fieldAt,
  withByte,
  type ConfigFields,
  type FeatureFlag,
} from '../plugins/registry-core/layout';
import type { ConnectionStatus } from './connection';
import { bindingForKey } from './keymap';
import { configBytes, type ActivityView, type AuthMessage, type EventMessage, type PackageDetail, type PackageInfo, type ServerConfig, type UpstreamView } from './protocol';

export interface LogEntry {
  time: number;
  text: string;
  tone: 'event' | 'info' | 'error' | 'output';
}

export type InputMode =
  | { kind: 'normal' }
  | { kind: 'edit'; offset: number; text: string }
  | { kind: 'command'; text: string }
  | { kind: 'help'; scroll: number }
  /** the package detail screen (`o`): loading until `detail` or `error` arrives */
  | { kind: 'package'; name: string; detail: PackageDetail | null; error: string | null; scroll: number };

export interface ClientState {
  registry: string;
  readonly: boolean;
  /** Where the token came from (`--token`, an .npmrc file) or null when anonymous. */
  tokenSource: string | null;
  config: ServerConfig | null;
  packages: PackageInfo[];
  /** GET /_dashboard/api/upstream, refreshed with the package list; null until the first answer */
  upstream: UpstreamView | null;
  /** the activity document the socket pushes (issue 15.7); null until the first one */
  activity: ActivityView | null;
  /** index into `packages` of the package `o` opens */
  packageCursor: number;
  log: LogEntry[];
  /** Grid cursor: a config byte offset 4..15 (the check byte 16 is computed, never edited). */
  cursor: number;
  /** Flag cursor: index into FEATURE_FLAG_NAMES; `f` toggles this flag. */
  flagCursor: number;
  input: InputMode;
  status: ConnectionStatus;
  user: string | null;
  admin: boolean;
  message: { text: string; error: boolean } | null;
  lastUpdate: number | null;
}

export interface KeyPress {
  /** blessed-style full name: `left`, `enter`, `S-tab`, `C-c`, `q`, `?`… */
  full: string;
  /** the character typed, when there is one */
  ch?: string;
}

export type Effect = { type: 'send'; line: string } | { type: 'quit' } | { type: 'redraw' } | { type: 'refresh-packages' } | { type: 'open-package'; name: string };

export const MAX_LOG = 200;
const MAX_INPUT = 200;
const FIRST_EDITABLE = CONFIG_START;
const LAST_EDITABLE = CHECK_OFFSET - 1;
/** First byte of each field, for ↑/↓. */
export const FIELD_STARTS: readonly number[] = [
  FIELD_OFFSETS.version,
  FIELD_OFFSETS.registryHash,
  FIELD_OFFSETS.featureFlags,
  FIELD_OFFSETS.terminalMode,
  FIELD_OFFSETS.rows,
  FIELD_OFFSETS.cols,
];

export function createState(options: { registry: string; readonly: boolean; tokenSource: string | null; config?: ServerConfig | null }): ClientState {
  return {
    registry: options.registry,
    readonly: options.readonly,
    tokenSource: options.tokenSource,
    config: options.config ?? null,
    packages: [],
    upstream: null,
    activity: null,
    packageCursor: 0,
    log: [],
    cursor: FIRST_EDITABLE,
    flagCursor: 0,
    input: { kind: 'normal' },
    status: { state: 'connecting', attempt: 1 },
    user: null,
    admin: false,
    message: null,
    lastUpdate: options.config ? Date.now() : null,
  };
}

/** The decoded fields of a server view (the view carries the raw bytes, so nothing is lost). */
export function fieldsOf(config: ServerConfig): ConfigFields {
  const b = configBytes(config);
  const u32 = (at: number): number => (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0;
  return { version: b[0], registryHash: u32(1), featureFlags: u32(5), terminalMode: b[9], rows: b[10], cols: b[11] };
}

export function addLog(state: ClientState, text: string, tone: LogEntry['tone'], time: number = Date.now()): void {
  for (const line of text.split('\n')) state.log.push({ time, text: line, tone });
  if (state.log.length > MAX_LOG) state.log.splice(0, state.log.length - MAX_LOG);
}

function say(state: ClientState, text: string, error = false): void {
  state.message = { text, error };
}

// ---------------------------------------------------------------- server side

export function applyConfig(state: ClientState, config: ServerConfig, now: number = Date.now()): void {
  const before = state.config;
  state.config = config;
  state.lastUpdate = now;
  if (before !== null && before.fields.terminalMode !== config.fields.terminalMode) {
    addLog(state, `terminalMode is now ${config.fields.terminalMode}; this session stays full screen, the next start follows the new mode`, 'info', now);
  }
}

export function formatEvent(event: EventMessage): string {
  const what = event.name !== undefined ? ` ${event.name}${event.version ? `@${event.version}` : ''}` : '';
  const who = event.user !== undefined ? ` by ${event.user}` : '';
  const detail = event.detail !== undefined && event.detail !== '' ? ` ${event.detail}` : '';
  const tags = event.tags !== undefined && event.tags.length > 0 ? ` (${event.tags.join(', ')})` : '';
  return `${event.kind}${what}${tags}${detail}${who}`;
}

// `upstream` (health changes, cache fills) refreshes the list and the upstream line together
const PACKAGE_EVENTS = new Set(['publish', 'unpublish', 'dist-tag', 'deprecate', 'upstream']);

export function applyEvent(state: ClientState, event: EventMessage, now: number = Date.now()): Effect[] {
  addLog(state, formatEvent(event), 'event', event.time ?? now);
  return PACKAGE_EVENTS.has(event.kind) ? [{ type: 'refresh-packages' }] : [];
}

export function applyActivity(state: ClientState, activity: ActivityView): void {
  state.activity = activity;
}

/** The package list changed: the package cursor stays on its package when it is still there. */
export function applyPackages(state: ClientState, packages: PackageInfo[]): void {
  const current = state.packages[state.packageCursor]?.name;
  state.packages = packages;
  const again = current === undefined ? -1 : packages.findIndex((p) => p.name === current);
  state.packageCursor = again >= 0 ? again : Math.min(state.packageCursor, Math.max(0, packages.length - 1));
}

/** The answer to `o`: shown when the detail screen is still open for that package. */
export function applyPackageDetail(state: ClientState, name: string, detail: PackageDetail | null, error: string | null): void {
  if (state.input.kind !== 'package' || state.input.name !== name) return;
  state.input = { ...state.input, detail, error };
}

export function applyHistory(state: ClientState, events: EventMessage[]): void {
  // A reconnect replays the server's recent events: keep only those we have not shown yet.
  const seen = new Set(state.log.filter((e) => e.tone === 'event').map((e) => `${e.time}|${e.text}`));
  for (const event of events) {
    const text = formatEvent(event);
    const time = event.time ?? Date.now();
    if (!seen.has(`${time}|${text}`)) addLog(state, text, 'event', time);
  }
  state.log.sort((a, b) => a.time - b.time);
}

export function applyStatus(state: ClientState, status: ConnectionStatus, now: number = Date.now()): void {
  const before = state.status.state;
  state.status = status;
  if (status.state === 'connected' && before !== 'connected') addLog(state, 'connected', 'info', now);
  if (status.state === 'disconnected' && before === 'connected') {
    addLog(state, `disconnected (${status.reason}), retrying…`, 'error', now);
    state.user = null;
    state.admin = false;
  }
}

export function applyAuth(state: ClientState, auth: AuthMessage): void {
  state.user = auth.ok ? (auth.user ?? null) : null;
  state.admin = auth.ok && auth.admin === true;
  if (!auth.ok) {
    addLog(state, `token refused: ${auth.error ?? 'unknown reason'} — read-only until you pass a valid --token`, 'error');
  } else {
    addLog(state, `authenticated as ${auth.user ?? '?'}${auth.admin ? ' (admin)' : ' (not an admin: edits will be refused)'}`, 'info');
  }
}

export function applyCommandResult(state: ClientState, line: string, ok: boolean, text: string): void {
  addLog(state, `> ${line}`, 'output');
  addLog(state, text, ok ? 'output' : 'error');
  const first = text.split('\n')[0] ?? '';
  const multi = text.includes('\n');
  say(state, multi ? `${first} … (full output in the event log)` : first, !ok);
}

export function applyCommandFailure(state: ClientState, line: string, error: Error): void {
  addLog(state, `> ${line}: ${error.message}`, 'error');
  say(state, error.message, true);
}

// ---------------------------------------------------------------- keys

export function handleKey(state: ClientState, key: KeyPress): Effect[] {
  switch (state.input.kind) {
    case 'help':
      return helpKey(state, state.input, key);
    case 'package':
      return packageKey(state, state.input, key);
    case 'edit':
    case 'command':
      return inputKey(state, state.input, key);
    case 'normal':
      return normalKey(state, key);
  }
}

function packageKey(state: ClientState, input: { kind: 'package'; scroll: number }, key: KeyPress): Effect[] {
  if (key.full === 'down' || key.full === 'j') input.scroll += 1;
  else if (key.full === 'up' || key.full === 'k') input.scroll = Math.max(0, input.scroll - 1);
  else if (key.full === 'C-c') return [{ type: 'quit' }];
  else state.input = { kind: 'normal' };
  return [];
}

function helpKey(state: ClientState, input: { kind: 'help'; scroll: number }, key: KeyPress): Effect[] {
  if (key.full === 'down' || key.full === 'j') input.scroll += 1;
  else if (key.full === 'up' || key.full === 'k') input.scroll = Math.max(0, input.scroll - 1);
  else if (key.full === 'pagedown' || key.full === 'space') input.scroll += 10;
  else if (key.full === 'pageup') input.scroll = Math.max(0, input.scroll - 10);
  else if (key.full === 'C-c') return [{ type: 'quit' }];
  else state.input = { kind: 'normal' };
  return [];
}

function printable(key: KeyPress): string | undefined {
  const ch = key.ch;
  if (ch === undefined || ch.length !== 1 || key.full.startsWith('C-') || key.full.startsWith('M-')) return undefined;
  const code = ch.charCodeAt(0);
  return code >= 0x20 && code !== 0x7f ? ch : undefined;
}

function inputKey(state: ClientState, input: { kind: 'edit'; offset: number; text: string } | { kind: 'command'; text: string }, key: KeyPress): Effect[] {
  switch (key.full) {
    case 'escape':
    case 'C-c':
      state.input = { kind: 'normal' };
      say(state, input.kind === 'edit' ? 'edit cancelled' : 'command cancelled');
      return [];
    case 'backspace':
    case 'C-h':
      if (input.text === '' && input.kind === 'command') state.input = { kind: 'normal' };
      else input.text = input.text.slice(0, -1);
      return [];
    case 'C-u':
      input.text = '';
      return [];
    case 'enter':
      state.input = { kind: 'normal' };
      return submit(state, input);
  }
  const ch = printable(key);
  if (ch !== undefined && input.text.length < MAX_INPUT) input.text += ch;
  return [];
}

function submit(state: ClientState, input: { kind: 'edit'; offset: number; text: string } | { kind: 'command'; text: string }): Effect[] {
  const text = input.text.trim();
  if (text === '') {
    say(state, input.kind === 'edit' ? 'edit cancelled (empty value)' : 'command cancelled');
    return [];
  }
  if (input.kind === 'edit') return submitByte(state, input.offset, text);
  return submitCommand(state, text);
}

function submitByte(state: ClientState, offset: number, text: string): Effect[] {
  if (/\s/.test(text)) {
    say(state, `value must be one number (decimal or 0x hex), got ${JSON.stringify(text)}`, true);
    return [];
  }
  const line = `set ${offset} ${text}`;
  let command: Command;
  try {
    command = parseCommand(line);
  } catch (error) {
    say(state, (error as Error).message, true);
    return [];
  }
  if (command.name !== 'set') return [];
  // Same validation the server does, before the round trip: the message names the field.
  if (state.config !== null) {
    try {
      withByte(fieldsOf(state.config), command.offset, command.value);
    } catch (error) {
      say(state, (error as Error).message, true);
      return [];
    }
  }
  say(state, `sending: ${line}`);
  return [{ type: 'send', line }];
}

function submitCommand(state: ClientState, text: string): Effect[] {
  if (['q', 'quit', 'exit'].includes(text.toLowerCase())) return [{ type: 'quit' }];
  let command: Command;
  try {
    command = parseCommand(text);
  } catch (error) {
    say(state, (error as Error).message, true);
    return [];
  }
  const spec = COMMANDS.find((entry) => entry.name === command.name);
  if (spec?.scope === 'cli') {
    say(state, `\`${command.name}\` works only in the config CLI: npm run config -- ${command.name}`, true);
    return [];
  }
  if (state.readonly && isWriteCommand(command.name)) {
    say(state, `read-only (--readonly): \`${command.name}\` changes the registry and is disabled`, true);
    return [];
  }
  say(state, `sending: ${text}`);
  return [{ type: 'send', line: text }];
}

function normalKey(state: ClientState, key: KeyPress): Effect[] {
  const binding = bindingForKey(key.full);
  if (binding === undefined) {
    const ch = printable(key);
    if (ch !== undefined) say(state, `no key ${JSON.stringify(ch)} — press ? for help`);
    return [];
  }
  if (binding.edits && state.readonly) {
    say(state, `read-only (--readonly): ${binding.label} (${binding.hint}) is disabled`, true);
    return [];
  }
  state.message = null;
  switch (binding.action) {
    case 'cursor-left':
      state.cursor = Math.max(FIRST_EDITABLE, state.cursor - 1);
      return [];
    case 'cursor-right':
      state.cursor = Math.min(LAST_EDITABLE, state.cursor + 1);
      return [];
    case 'field-prev': {
      const previous = [...FIELD_STARTS].reverse().find((start) => start < state.cursor);
      state.cursor = previous ?? FIELD_STARTS[0];
      return [];
    }
    case 'field-next': {
      const next = FIELD_STARTS.find((start) => start > state.cursor);
      state.cursor = next ?? state.cursor;
      return [];
    }
    case 'edit-byte':
      if (state.config === null) {
        say(state, 'no config received yet', true);
        return [];
      }
      state.input = { kind: 'edit', offset: state.cursor, text: '' };
      return [];
    case 'package-prev':
      state.packageCursor = Math.max(0, state.packageCursor - 1);
      return [];
    case 'package-next':
      state.packageCursor = Math.min(Math.max(0, state.packages.length - 1), state.packageCursor + 1);
      return [];
    case 'open-package': {
      const pkg = state.packages[state.packageCursor];
      if (pkg === undefined) {
        say(state, 'no package to open', true);
        return [];
      }
      state.input = { kind: 'package', name: pkg.name, detail: null, error: null, scroll: 0 };
      return [{ type: 'open-package', name: pkg.name }];
    }
    case 'next-flag':
      state.flagCursor = (state.flagCursor + 1) % FEATURE_FLAG_NAMES.length;
      return [];
    case 'prev-flag':
      state.flagCursor = (state.flagCursor + FEATURE_FLAG_NAMES.length - 1) % FEATURE_FLAG_NAMES.length;
      return [];
    case 'toggle-flag': {
      const flag = selectedFlag(state);
      say(state, `sending: toggle ${flag}`);
      return [{ type: 'send', line: `toggle ${flag}` }];
    }
    case 'command-line':
      state.input = { kind: 'command', text: '' };
      return [];
    case 'help':
      state.input = { kind: 'help', scroll: 0 };
      return [];
    case 'redraw':
      return [{ type: 'redraw' }];
    case 'quit':
      return [{ type: 'quit' }];
  }
}

export function selectedFlag(state: ClientState): FeatureFlag {
  return FEATURE_FLAG_NAMES[state.flagCursor];
}

/** `@13 terminalMode 0x02 = 2 (raw)` — what the byte under the cursor means. */
export function describeCursor(config: ServerConfig, offset: number): string {
  const bytes = configBytes(config);
  const value = bytes[offset - CONFIG_START];
  const hex = `0x${value.toString(16).padStart(2, '0')}`;
  const field = fieldAt(offset);
  const fields = fieldsOf(config);
  switch (field) {
    case 'version':
      return `@${offset} version ${hex} = ${value} (${value === 0 ? 'legacy' : value === 1 ? 'modern' : 'invalid'})`;
    case 'registryHash':
      return `@${offset} registryHash byte ${offset - FIELD_OFFSETS.registryHash + 1}/4 ${hex} (hash ${config.fields.registryHash}, little-endian)`;
    case 'featureFlags': {
      const on = FEATURE_FLAG_NAMES.filter((f) => config.flags[f]);
      return `@${offset} featureFlags byte ${offset - FIELD_OFFSETS.featureFlags + 1}/4 ${hex} (flags ${fields.featureFlags}: ${on.join('|') || 'none'})`;
    }
    case 'terminalMode':
      return `@${offset} terminalMode ${hex} = ${value} (${TERMINAL_MODES[value] ?? 'invalid'})`;
    case 'rows':
    case 'cols':
      return `@${offset} ${field} ${hex} = ${value}`;
    default:
      return `@${offset} ${field} ${hex}`;
  }
}
