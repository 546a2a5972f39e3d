/**
 * Pure layout: client state + a size → lines of styled segments. No blessed, no escape codes:
 * the screen adapter turns tones into attributes (or drops them under NO_COLOR), and tests read
 * the text directly.
 */
import { helpText } from '../plugins/registry-core/commands';
import { CONFIG_START, FEATURE_FLAG_NAMES, fieldAt } from '../plugins/registry-core/layout';
import { footerHints, keyHelpLines } from './keymap';
import { describeCursor, type ClientState, type LogEntry } from './model';
import { configBytes, type ActivityView, type PackageDetail, type PackageInfo, type ServerConfig, type UpstreamView } from './protocol';

export type FieldTone = 'version' | 'registryHash' | 'featureFlags' | 'terminalMode' | 'rows' | 'cols' | 'check';
export type Tone = 'plain' | 'cursor' | 'title' | 'heading' | 'dim' | 'error' | 'ok' | 'warn' | 'input' | FieldTone;
export interface Segment {
  text: string;
  tone?: Tone;
}
export type Line = Segment[];

/** Below this the grid itself does not fit: the screen says so instead of drawing garbage. */
export const MIN_WIDTH = 48;
export const MIN_HEIGHT = 12;
const LABEL_WIDTH = 7;

export const seg = (text: string, tone?: Tone): Segment => (tone === undefined ? { text } : { text, tone });
export const lineText = (line: Line): string => line.map((s) => s.text).join('');

/** Cuts a line to `width` characters (the last visible one becomes `…` when something was cut). */
export function fit(line: Line, width: number): Line {
  const total = lineText(line).length;
  if (total <= width) return line;
  const out: Line = [];
  let left = Math.max(0, width - 1);
  for (const segment of line) {
    if (left <= 0) break;
    const text = segment.text.slice(0, left);
    out.push({ ...segment, text });
    left -= text.length;
  }
  if (width > 0) out.push(seg('…', 'dim'));
  return out;
}

const hex2 = (n: number): string => n.toString(16).padStart(2, '0');
const time = (ms: number): string => new Date(ms).toTimeString().slice(0, 8);

// ---------------------------------------------------------------- the grid

const FIELD_LABELS: Record<FieldTone, string> = {
  version: 'vr',
  registryHash: 'hash',
  featureFlags: 'flags',
  terminalMode: 'tm',
  rows: 'rw',
  cols: 'cl',
  check: 'ck',
};

/**
 * Offsets (decimal, as the `set` command takes them), the 13 bytes in hex, and which field each
 * byte belongs to. Unselected bytes are single-space separated (`01 0a 96 …`); the cursor byte is
 * bracketed `[ce]` in the space of its separators, so the columns never move.
 */
export function gridLines(bytes: readonly number[], cursor: number | null): Line[] {
  const offsets: Line = [seg('offset'.padEnd(LABEL_WIDTH - 1), 'dim')];
  const values: Line = [seg('bytes'.padEnd(LABEL_WIDTH - 1), 'dim')];
  const fields: Line = [seg('field'.padEnd(LABEL_WIDTH - 1), 'dim')];
  for (let i = 0; i < bytes.length; i++) {
    const offset = CONFIG_START + i;
    offsets.push(seg(String(offset).padStart(3), offset === cursor ? 'title' : 'dim'));
    const tone = fieldAt(offset) as FieldTone;
    if (offset === cursor) values.push(seg(`[${hex2(bytes[i])}]`, 'cursor'));
    else values.push(seg(`${offset - 1 === cursor ? '' : ' '}${hex2(bytes[i])}`, tone));
  }
  let i = 0;
  while (i < bytes.length) {
    const tone = fieldAt(CONFIG_START + i) as FieldTone;
    let span = 1;
    while (i + span < bytes.length && fieldAt(CONFIG_START + i + span) === tone) span++;
    const width = span * 3 - 1;
    const label = FIELD_LABELS[tone];
    fields.push(seg(` ${span === 1 ? label.padEnd(width) : label.padEnd(width, '-')}`, tone));
    i += span;
  }
  return [offsets, values, fields];
}

// ---------------------------------------------------------------- panels

function statusLine(state: ClientState): Line {
  const line: Line = [seg(' registry ', 'title'), seg(`${state.registry}  `)];
  const s = state.status;
  switch (s.state) {
    case 'connected':
      line.push(seg('live', 'ok'));
      line.push(seg(state.user !== null ? ` as ${state.user}${state.admin ? ' (admin)' : ''}` : ' (anonymous: read-only)', 'dim'));
      break;
    case 'connecting':
      line.push(seg(s.attempt > 1 ? `connecting… (attempt ${s.attempt})` : 'connecting…', 'warn'));
      break;
    case 'disconnected':
      line.push(seg(`disconnected, retrying… (attempt ${s.attempt}, next in ${(s.retryInMs / 1000).toFixed(1)} s)`, 'error'));
      break;
    case 'closed':
      line.push(seg('closed', 'dim'));
      break;
  }
  if (state.readonly) line.push(seg('  READ-ONLY', 'warn'));
  return line;
}

/**
 * `OFFLINE · ok 12 ms (00:10) · last failure 00:09 timeout · cache 3 packages 1.2 MiB · http://up` —
 * one line, most telling first (a narrow window cuts the end), shared with the snapshot.
 */
export function upstreamSummary(view: UpstreamView | null, offline: boolean): string {
  const mode = offline ? 'OFFLINE' : 'online';
  if (view === null) return `${mode} | status loading…`;
  if (!view.available) return `${mode} | status not available`;
  const clock = (time: number): string => new Date(time).toISOString().slice(11, 16);
  const parts = [mode];
  if (view.lastSuccess !== null) parts.push(`ok ${view.latencyMs === null ? '' : `${Math.round(view.latencyMs)} ms `}(${clock(view.lastSuccess)})`);
  if (view.lastFailure !== null) parts.push(`last failure ${clock(view.lastFailure.time)} ${view.lastFailure.error.slice(0, 40)}`);
  parts.push(`cache ${view.cachedPackages} package${view.cachedPackages === 1 ? '' : 's'} ${formatBytes(view.cachedBytes)}`);
  parts.push(view.url ?? 'no upstream');
  return parts.join(' | ');
}

const bytes = (n: number): string =>
  n < 1024 ? `${n} B` : n < 1024 ** 2 ? `${(n / 1024).toFixed(1)} KiB` : n < 1024 ** 3 ? `${(n / 1024 ** 2).toFixed(1)} MiB` : `${(n / 1024 ** 3).toFixed(2)} GiB`;

/** `12 req | 3 dl | 1 pub in 60 min (this minute 2/0/0) | storage 9.0 KiB + 0 B cached` — the dashboard's activity card in one line (`|` like the upstream line: blessed draws `·` as `~` in some terminals). */
export function activitySummary(view: ActivityView | null): string {
  if (view === null) return 'waiting for the counts…';
  const sum = (key: 'requests' | 'downloads' | 'publishes'): number => view.buckets.reduce((n, b) => n + b[key], 0);
  const last = view.buckets[view.buckets.length - 1];
  const minutes = Math.round((view.buckets.length * view.bucketSeconds) / 60);
  const now = last ? ` (this minute ${last.requests}/${last.downloads}/${last.publishes})` : '';
  const storage = view.storage === null ? 'storage measuring…' : `storage ${bytes(view.storage.localBytes)} + ${bytes(view.storage.cachedBytes)} cached`;
  return `${sum('requests')} req | ${sum('downloads')} dl | ${sum('publishes')} pub in ${minutes} min${now} | ${storage}`;
}

function activityLine(view: ActivityView | null): Line {
  return [seg('activity     ', 'dim'), seg(activitySummary(view), view === null ? 'dim' : 'plain')];
}

/** The `o` screen: one package's versions, tags, publisher, size, integrity and dependencies. */
export function packageDetailLines(name: string, detail: PackageDetail | null, error: string | null): Line[] {
  if (error !== null) return [[seg(name, 'heading')], [seg(error, 'error')]];
  if (detail === null) return [[seg(name, 'heading')], [seg('loading…', 'dim')]];
  const shown = detail.versions.find((v) => v.version === detail.shown);
  const lines: Line[] = [
    [seg(detail.name, 'heading'), seg(`  ${detail.source}`, detail.source === 'cached' ? 'title' : 'ok'), seg(detail.shown ? `  showing ${detail.shown}` : '', 'dim')],
  ];
  if (detail.description) lines.push([seg(detail.description, 'dim')]);
  lines.push(
    [seg('publisher    ', 'dim'), seg(shown?.publisher ?? '-')],
    [seg('maintainers  ', 'dim'), seg(detail.maintainers.map((m) => m.name).join(', ') || '-')],
    [seg('size         ', 'dim'), seg(shown ? `${shown.tarballBytes === null ? '-' : bytes(shown.tarballBytes)} tarball${shown.unpackedSize === null ? '' : `, ${bytes(shown.unpackedSize)} unpacked`}` : '-')],
    [seg('integrity    ', 'dim'), seg(shown?.integrity ?? '-')],
    [seg('dist-tags    ', 'dim'), seg(Object.entries(detail.distTags).map(([tag, v]) => `${tag}: ${v}`).join('  ') || '-')],
    [seg('license      ', 'dim'), seg(detail.license ?? '-')],
  );
  const deps = Object.entries(detail.dependencies.dependencies).map(([dep, range]) => `${dep} ${range}`);
  const peers = Object.entries(detail.dependencies.peerDependencies).map(([dep, range]) => `${dep} ${range} (peer)`);
  lines.push([seg('dependencies ', 'dim'), seg([...deps, ...peers].join(', ') || 'none')], [], [seg(`versions (${detail.versions.length}, newest first)`, 'heading')]);
  for (const v of detail.versions) {
    lines.push([
      seg(`  ${v.version.padEnd(14)}`),
      seg(` ${v.time === null ? '-' : v.time.slice(0, 16).replace('T', ' ')}`, 'dim'),
      seg(` ${(v.publisher ?? '-').padEnd(10)}`),
      seg(` ${v.tarballBytes === null ? '-' : bytes(v.tarballBytes)}`, 'dim'),
      ...(v.tags.length ? [seg(` ${v.tags.join(',')}`, 'ok')] : []),
      ...(v.deprecated !== undefined ? [seg(' deprecated', 'warn')] : []),
    ]);
  }
  return lines;
}

function packageScreen(state: ClientState, input: { name: string; detail: PackageDetail | null; error: string | null; scroll: number }, height: number): Line[] {
  const content = packageDetailLines(input.name, input.detail, input.error);
  const room = Math.max(1, height - 1);
  const maxScroll = Math.max(0, content.length - room);
  const from = Math.min(input.scroll, maxScroll);
  const lines = content.slice(from, from + room);
  while (lines.length < room) lines.push([]);
  lines.push([seg(maxScroll > 0 ? ` ${from + 1}-${Math.min(content.length, from + room)} of ${content.length}, ↑↓ scroll, any key closes` : ' any key closes', 'dim')]);
  void state;
  return lines;
}

function upstreamLine(view: UpstreamView | null, offline: boolean): Line {
  const tone = offline ? 'warn' : view?.available && view.lastFailure === null ? 'ok' : 'dim';
  return [seg('upstream     ', 'dim'), seg(upstreamSummary(view, offline), tone)];
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

function infoLines(config: ServerConfig, compact: boolean): Line[] {
  const f = config.fields;
  const urlOk = config.urlMatchesHash !== false;
  const issuer = config.issuer;
  if (compact) {
    return [
      [
        seg(`v${f.version} hash ${f.registryHash}`, 'registryHash'),
        seg(urlOk ? '' : ' (URL mismatch!)', 'error'),
        seg(`  ${f.terminalMode} ${f.rows}x${f.cols}`, 'terminalMode'),
        seg(issuer ? `  ${issuer.alg}` : ''),
      ],
    ];
  }
  const url = typeof config.registryUrl === 'string' ? config.registryUrl : '?';
  return [
    [seg('version      ', 'dim'), seg(`${f.version} (${f.version === 1 ? 'modern' : 'legacy'})`, 'version')],
    [seg('registry URL ', 'dim'), seg(url), seg(`  ${f.registryHash}`, 'registryHash'), urlOk ? seg(' ok', 'ok') : seg(' URL does not match the hash!', 'error')],
    [seg('issuer       ', 'dim'), seg(issuer ? `${issuer.url}  ${issuer.alg}` : '?')],
    [seg('terminal     ', 'dim'), seg(`${f.terminalMode}  ${f.rows} rows x ${f.cols} cols`, 'terminalMode'), seg(`  check 0x${config.check}`, 'check')],
  ];
}

function flagLines(state: ClientState, config: ServerConfig, compact: boolean): Line[] {
  const items = FEATURE_FLAG_NAMES.map((flag, index): Line => {
    const selected = index === state.flagCursor;
    const on = config.flags[flag];
    return [
      seg(selected ? '>' : ' ', selected ? 'title' : undefined),
      seg(`[${on ? 'x' : ' '}] ${flag}`, selected ? 'cursor' : on ? 'ok' : 'dim'),
    ];
  });
  if (compact) return [[seg('flags ', 'dim'), ...items.flatMap((item, i) => (i === 0 ? item : [seg(' '), ...item]))]];
  const title = state.readonly ? 'flags' : 'flags  Tab: pick >  f: toggle';
  return [
    [seg(title, 'heading')],
    ...items,
  ];
}

function packageLines(packages: readonly PackageInfo[], rows: number, width: number, cursor = -1): Line[] {
  if (rows <= 0) return [];
  const cached = packages.filter((p) => p.source === 'cached').length;
  const lines: Line[] = [[seg(`packages (${packages.length}${cached ? `, ${cached} cached` : ''})`, 'heading'), seg(packages.length > 0 ? '  ] pick  o open' : '', 'dim')]];
  if (packages.length === 0) lines.push([seg('  none published yet', 'dim')]);
  const room = rows - 1;
  // the window of the list that keeps the package cursor in sight
  const fits = packages.length > room ? Math.max(0, room - 1) : packages.length;
  const start = cursor >= fits ? cursor - fits + 1 : 0;
  const shown = packages.slice(start, start + fits);
  const nameWidth = Math.min(Math.max(8, ...shown.map((p) => p.name.length)), Math.max(8, Math.floor(width / 2)));
  shown.forEach((p, i) => {
    const latest = p.distTags.latest ?? p.versions[p.versions.length - 1] ?? '-';
    const when = Number.isNaN(Date.parse(p.time)) ? p.time : new Date(p.time).toISOString().slice(0, 16).replace('T', ' ');
    const here = start + i === cursor;
    lines.push([
      seg(`${here ? '>' : ' '} ${p.name.padEnd(nameWidth)}`, here ? 'cursor' : undefined),
      seg(` ${latest}`, 'ok'),
      // before the counts: it must survive the cut of a half-width column
      ...(p.source === 'cached' ? [seg(' cached', 'title')] : []),
      seg(` (${p.versions.length} version${p.versions.length === 1 ? '' : 's'})  ${when}`, 'dim'),
    ]);
  });
  if (shown.length < packages.length) lines.push([seg(`  … ${packages.length - shown.length} more (:packages lists all)`, 'dim')]);
  return lines.slice(0, rows);
}

const LOG_TONES: Record<LogEntry['tone'], Tone> = { event: 'plain', info: 'dim', error: 'error', output: 'ok' };

function logLines(log: readonly LogEntry[], rows: number): Line[] {
  if (rows <= 0) return [];
  const lines: Line[] = [[seg('events', 'heading')]];
  const recent = log.slice(Math.max(0, log.length - (rows - 1)));
  if (recent.length === 0) lines.push([seg('  nothing yet', 'dim')]);
  for (const entry of recent) lines.push([seg(`${time(entry.time)} `, 'dim'), seg(entry.text, LOG_TONES[entry.tone])]);
  return lines.slice(0, rows);
}

/** Footer hints wrapped into as few lines as the width allows. */
function hintLines(readonly: boolean, width: number): Line[] {
  const lines: Line[] = [];
  let current = '';
  for (const hint of footerHints(readonly)) {
    const next = current === '' ? ` ${hint}` : `${current}  ${hint}`;
    if (next.length > width && current !== '') {
      lines.push([seg(current, 'dim')]);
      current = ` ${hint}`;
    } else current = next;
  }
  if (current !== '') lines.push([seg(current, 'dim')]);
  return lines;
}

function bottomLine(state: ClientState, compactNote: string): Line {
  const input = state.input;
  if (input.kind === 'edit' && state.config !== null) {
    const value = configBytes(state.config)[input.offset - CONFIG_START];
    return [
      seg(`set byte ${input.offset} (${fieldAt(input.offset)}, now 0x${hex2(value)}) to: `, 'title'),
      seg(`${input.text}_`, 'input'),
      seg('   Enter apply, Esc cancel', 'dim'),
    ];
  }
  if (input.kind === 'command') return [seg(':', 'title'), seg(`${input.text}_`, 'input')];
  if (state.message !== null) return [seg(` ${state.message.text}`, state.message.error ? 'error' : 'ok')];
  return [seg(state.lastUpdate !== null ? ` config as of ${time(state.lastUpdate)}${compactNote}` : ' waiting for the config…', 'dim')];
}

// ---------------------------------------------------------------- screens

export interface RenderOptions {
  width: number;
  height: number;
}

export function renderScreen(state: ClientState, size: RenderOptions): Line[] {
  const { width, height } = size;
  if (width < MIN_WIDTH || height < MIN_HEIGHT) return tooSmall(state, width, height);
  const input = state.input;
  const lines =
    input.kind === 'help' ? helpScreen(state, input.scroll, width, height) : input.kind === 'package' ? packageScreen(state, input, height) : mainScreen(state, width, height);
  return lines.slice(0, height).map((line) => fit(line, width));
}

function tooSmall(state: ClientState, width: number, height: number): Line[] {
  const layout = state.config ? ` (config layout ${state.config.fields.cols}x${state.config.fields.rows})` : '';
  return [
    [seg('terminal too small', 'error')],
    [seg(`have ${width}x${height}, need ${MIN_WIDTH}x${MIN_HEIGHT}${layout}`)],
    [seg('enlarge the window, or q to quit', 'dim')],
  ]
    .slice(0, Math.max(1, height))
    .map((line) => fit(line, width));
}

function mainScreen(state: ClientState, width: number, height: number): Line[] {
  const config = state.config;
  const top: Line[] = [statusLine(state)];
  // The config's rows x cols is the full layout; a smaller window gets the compact one.
  const compact = config === null || width < config.fields.cols || height < config.fields.rows;
  if (config === null) {
    top.push([seg('waiting for the config…', 'dim')]);
  } else {
    if (!compact) top.push([]);
    top.push(...gridLines(configBytes(config), state.cursor));
    top.push([seg(describeCursor(config, state.cursor), 'title')]);
    if (!compact) top.push([]);
    const info = infoLines(config, compact);
    const flags = flagLines(state, config, compact);
    const leftWidth = Math.max(...info.map((l) => lineText(l).length)) + 2;
    const flagsWidth = Math.max(...flags.map((l) => lineText(l).length));
    if (!compact && leftWidth + flagsWidth <= width) {
      for (let i = 0; i < Math.max(info.length, flags.length); i++) {
        const left = info[i] ?? [];
        top.push([...left, seg(' '.repeat(Math.max(1, leftWidth - lineText(left).length))), ...(flags[i] ?? [])]);
      }
    } else top.push(...info, ...flags);
    top.push(upstreamLine(state.upstream, config.flags.OFFLINE));
    top.push(activityLine(state.activity));
    if (!compact) top.push([]);
  }
  const note = compact && config !== null ? `, compact: ${width}x${height} < config ${config.fields.cols}x${config.fields.rows}` : '';
  const footer = [...hintLines(state.readonly, width), bottomLine(state, note)];
  const rest = Math.max(0, height - top.length - footer.length);
  const middle: Line[] = [];
  if (width >= 100 && rest > 0) {
    const half = Math.floor(width / 2);
    const left = packageLines(state.packages, rest, half - 1, state.packageCursor).map((l) => fit(l, half - 1));
    const right = logLines(state.log, rest);
    for (let i = 0; i < rest; i++) {
      const l = left[i] ?? [];
      middle.push([...l, seg(' '.repeat(half - lineText(l).length)), ...(right[i] ?? [])]);
    }
  } else {
    const packageRows = Math.min(Math.ceil(rest / 2), Math.max(2, state.packages.length + 1));
    middle.push(...packageLines(state.packages, packageRows, width, state.packageCursor));
    middle.push(...logLines(state.log, rest - middle.length));
  }
  while (middle.length < rest) middle.push([]);
  return [...top, ...middle, ...footer];
}

/** The `?` screen: the keymap (the same table as the footer) and the command language. */
export function helpContent(readonly: boolean): Line[] {
  return [
    [seg('keys', 'heading'), seg('  (any other key closes this help; ↑↓ scroll)', 'dim')],
    ...keyHelpLines(readonly).map((text) => [seg(`  ${text}`)]),
    [],
    [seg('commands', 'heading'), seg('  (type : then the command; the same language as `npm run config -- …`)', 'dim')],
    ...helpText('shared')
      .split('\n')
      .map((text) => [seg(text)]),
    [seg('  q / quit      leave the client', 'dim')],
    [],
    [seg('grid: offsets are decimal (as `set` takes them), bytes hex; [..] is the cursor.', 'dim')],
    [seg('the check byte (16) is computed by the registry and cannot be edited.', 'dim')],
  ];
}

function helpScreen(state: ClientState, scroll: number, width: number, height: number): Line[] {
  const content = helpContent(state.readonly);
  const room = height - 2;
  const maxScroll = Math.max(0, content.length - room);
  const from = Math.min(scroll, maxScroll);
  const lines = [statusLine(state), ...content.slice(from, from + room)];
  while (lines.length < height - 1) lines.push([]);
  lines.push([seg(maxScroll > 0 ? ` help ${from + 1}-${Math.min(content.length, from + room)} of ${content.length}, ↑↓ scroll, any key closes` : ' any key closes the help', 'dim')]);
  return lines.map((line) => fit(line, width));
}
