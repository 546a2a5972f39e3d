/** The JSON view of the config used by the dashboard API, the WebSocket and the CLI. */
import { FEATURE_FLAG_NAMES, HEADER_SIZE, TERMINAL_MODES, fieldAt, hasFeature, writeConfigBytes, type ConfigFields, type FeatureFlag, type TerminalModeName } from './layout';
import { formatHash } from './registry-url';

export interface ConfigView {
  /** bytes 4..15 as 24 lowercase hex chars */
  hex: string;
  /** the check byte, 2 lowercase hex chars */
  check: string;
  fields: { version: number; registryHash: string; featureFlags: number; terminalMode: TerminalModeName; rows: number; cols: number };
  flags: Record<FeatureFlag, boolean>;
}

export function describeConfig(fields: ConfigFields): ConfigView {
  const bytes = new Uint8Array(HEADER_SIZE);
  writeConfigBytes(fields, bytes);
  return describeBytes(fields, bytes);
}

/** Same as describeConfig when the header bytes are already at hand. */
export function describeBytes(fields: ConfigFields, header: Uint8Array): ConfigView {
  let hex = '';
  for (let i = 4; i < 16; i++) hex += header[i].toString(16).padStart(2, '0');
  const flags = {} as Record<FeatureFlag, boolean>;
  for (const name of FEATURE_FLAG_NAMES) flags[name] = hasFeature(fields, name);
  return {
    hex,
    check: header[16].toString(16).padStart(2, '0'),
    fields: {
      version: fields.version,
      registryHash: formatHash(fields.registryHash),
      featureFlags: fields.featureFlags,
      terminalMode: TERMINAL_MODES[fields.terminalMode] ?? (String(fields.terminalMode) as TerminalModeName),
      rows: fields.rows,
      cols: fields.cols,
    },
    flags,
  };
}

/** The config fields in byte order (the check byte aside). */
export const CONFIG_FIELD_ORDER: readonly (keyof ConfigFields)[] = ['version', 'registryHash', 'featureFlags', 'terminalMode', 'rows', 'cols'];

function formatField(field: keyof ConfigFields, fields: ConfigFields): string {
  switch (field) {
    case 'registryHash':
      return formatHash(fields.registryHash);
    case 'featureFlags':
      return `0x${fields.featureFlags.toString(16)}`;
    case 'terminalMode':
      return TERMINAL_MODES[fields.terminalMode] ?? String(fields.terminalMode);
    default:
      return String(fields[field]);
  }
}

/** What describeConfigChange says when no field differs. */
export const NO_CONFIG_CHANGE = 'rewritten with the same values';

/**
 * The one description of a config change (dashboard broadcasts, audit lines, `registry config
 * watch`): e.g. `featureFlags 0x3 → 0x7 (DEBUG on)`, `rows 24 → 30, cols 80 → 100`.
 */
export function describeConfigChange(prev: ConfigFields, next: ConfigFields): string {
  const parts: string[] = [];
  for (const field of CONFIG_FIELD_ORDER) {
    if (prev[field] === next[field]) continue;
    let part = `${field} ${formatField(field, prev)} → ${formatField(field, next)}`;
    if (field === 'featureFlags') {
      const flips = FEATURE_FLAG_NAMES.filter((flag) => hasFeature(prev, flag) !== hasFeature(next, flag)).map(
        (flag) => `${flag} ${hasFeature(next, flag) ? 'on' : 'off'}`,
      );
      if (flips.length > 0) part += ` (${flips.join(', ')})`;
    }
    parts.push(part);
  }
  return parts.length > 0 ? parts.join(', ') : NO_CONFIG_CHANGE;
}

/**
 * Text form of a config for terminals and the CLI (`get`). Here rather than in commands.ts so that
 * the fast `registry config get` entry (scripts/config-get.ts) loads it without the command table.
 */
export function formatConfig(view: ConfigView, registryUrl?: string): string {
  const offsets = Array.from({ length: 13 }, (_, i) => (i + 4).toString(16).padStart(2, '0'));
  const bytes = [...(view.hex.match(/../g) ?? []), view.check];
  const fieldRow = Array.from({ length: 13 }, (_, i) => {
    const name = fieldAt(i + 4);
    return ({ version: 'v ', registryHash: 'h ', featureFlags: 'f ', terminalMode: 'm ', rows: 'r ', cols: 'c ', check: '✓ ', magic: '  ' } as const)[name];
  });
  const on = FEATURE_FLAG_NAMES.filter((f) => view.flags[f]);
  const lines = [
    `offset  ${offsets.join(' ')}`,
    `bytes   ${bytes.join(' ')}`,
    `field   ${fieldRow.join(' ')}  (v version, h registryHash, f featureFlags, m terminalMode, r rows, c cols, ✓ check)`,
    `version ${view.fields.version} · registryHash ${view.fields.registryHash}${registryUrl ? ` (${registryUrl})` : ''}`,
    `featureFlags ${view.fields.featureFlags} [${on.length > 0 ? on.join(', ') : 'none'}] · terminalMode ${view.fields.terminalMode} · ${view.fields.rows}×${view.fields.cols} · check 0x${view.check}`,
  ];
  return lines.join('\n');
}
