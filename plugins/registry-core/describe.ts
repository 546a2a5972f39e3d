/** The JSON view of the config used by the dashboard API, the WebSocket and the CLI. */
import { FEATURE_FLAG_NAMES, HEADER_SIZE, TERMINAL_MODES, hasFeature, writeConfigBytes, type ConfigFields, type FeatureFlag, type TerminalModeName } from './layout';
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
