/**
 * `.env.local` and process-environment import/export of the config (docs/config-format.md "Environment").
 * The 13 bytes hold only the registry URL's hash; the URL itself lives in `.env.local`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { RegistryCoreError } from './errors';
import { writeFileAtomicSync } from './atomic-file';
import { FEATURE_FLAGS, TERMINAL_MODES, hasFeature, lockbPathFor, validateFields, type ConfigFields, type FeatureFlag } from './layout';
import { LOCAL_REGISTRY_URL, hashRegistryUrl, normalizeRegistryUrl } from './registry-url';
import { ENV_FILE_NAME, KEY_PATTERN, forgetRegistryUrl, readEnvFile } from './env-file';

export { ENV_FILE_NAME, parseEnvText, readRegistryUrl } from './env-file';

export const ENV_KEYS = [
  'BUN_CONFIG_VERSION',
  'BUN_REGISTRY_URL',
  'BUN_FEATURE_PRIVATE_REGISTRY',
  'BUN_FEATURE_PREMIUM_TYPES',
  'BUN_FEATURE_DEBUG',
  'BUN_FEATURE_OFFLINE',
  'BUN_TERMINAL_MODE',
  'BUN_TERMINAL_ROWS',
  'BUN_TERMINAL_COLS',
] as const satisfies readonly string[];
export type EnvKey = (typeof ENV_KEYS)[number];

const FLAG_KEYS: Record<string, FeatureFlag> = {
  BUN_FEATURE_PRIVATE_REGISTRY: 'PRIVATE_REGISTRY',
  BUN_FEATURE_PREMIUM_TYPES: 'PREMIUM_TYPES',
  BUN_FEATURE_DEBUG: 'DEBUG',
  BUN_FEATURE_OFFLINE: 'OFFLINE',
};

/** Exactly the 9 documented lines, in ENV_KEYS order, each '\n'-terminated. */
export function exportEnv(fields: ConfigFields, registryUrl: string): string {
  const flag = (name: FeatureFlag): string => (hasFeature(fields, name) ? '1' : '0');
  return [
    `BUN_CONFIG_VERSION=${fields.version}`,
    `BUN_REGISTRY_URL=${normalizeRegistryUrl(registryUrl)}`,
    `BUN_FEATURE_PRIVATE_REGISTRY=${flag('PRIVATE_REGISTRY')}`,
    `BUN_FEATURE_PREMIUM_TYPES=${flag('PREMIUM_TYPES')}`,
    `BUN_FEATURE_DEBUG=${flag('DEBUG')}`,
    `BUN_FEATURE_OFFLINE=${flag('OFFLINE')}`,
    `BUN_TERMINAL_MODE=${TERMINAL_MODES[fields.terminalMode] ?? fields.terminalMode}`,
    `BUN_TERMINAL_ROWS=${fields.rows}`,
    `BUN_TERMINAL_COLS=${fields.cols}`,
  ]
    .map((line) => `${line}\n`)
    .join('');
}

function envError(key: string, message: string): RegistryCoreError {
  return new RegistryCoreError('ERR_ENV_VALUE', `${key}: ${message}`, { field: key });
}

function parseBoolean(key: string, value: string): boolean {
  const v = value.toLowerCase();
  if (v === '1' || v === 'true') return true;
  if (v === '0' || v === 'false') return false;
  throw envError(key, `expected 0, 1, true or false, got ${JSON.stringify(value)}`);
}

function parseInteger(key: string, value: string, min: number, max: number, what: string): number {
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw envError(key, `expected ${what}, got ${JSON.stringify(value)}`);
  }
  return Number(value);
}

function parseTerminalMode(key: string, value: string): number {
  const byName = (TERMINAL_MODES as readonly string[]).indexOf(value.toLowerCase());
  if (byName >= 0) return byName;
  if (/^[012]$/.test(value)) return Number(value);
  throw envError(key, `expected disabled, cooked, raw or 0, 1, 2, got ${JSON.stringify(value)}`);
}

/**
 * Applies the BUN_* variables present in `env` (an empty value counts as unset) to `fields`.
 * `applied` lists the variables that changed something. Throws ERR_ENV_VALUE naming the variable.
 */
export function applyEnv(
  fields: ConfigFields,
  env: Record<string, string | undefined>,
): { fields: ConfigFields; registryUrl: string | undefined; applied: string[] } {
  const next: ConfigFields = { ...fields };
  const applied: string[] = [];
  let registryUrl: string | undefined;
  const value = (key: EnvKey): string | undefined => {
    const raw = env[key];
    return raw === undefined || raw.trim() === '' ? undefined : raw.trim();
  };
  const set = (key: EnvKey, field: keyof ConfigFields, v: number): void => {
    if (next[field] !== v) applied.push(key);
    next[field] = v;
  };

  const version = value('BUN_CONFIG_VERSION');
  if (version !== undefined) set('BUN_CONFIG_VERSION', 'version', parseInteger('BUN_CONFIG_VERSION', version, 0, 1, '0 (legacy) or 1 (modern)'));
  const url = value('BUN_REGISTRY_URL');
  if (url !== undefined) {
    try {
      registryUrl = normalizeRegistryUrl(url);
    } catch (error) {
      throw envError('BUN_REGISTRY_URL', error instanceof Error ? error.message : String(error));
    }
    set('BUN_REGISTRY_URL', 'registryHash', hashRegistryUrl(registryUrl));
  }
  for (const [key, flag] of Object.entries(FLAG_KEYS) as [EnvKey, FeatureFlag][]) {
    const v = value(key);
    if (v === undefined) continue;
    const on = parseBoolean(key, v);
    const bit = FEATURE_FLAGS[flag];
    set(key, 'featureFlags', (on ? next.featureFlags | bit : next.featureFlags & ~bit) >>> 0);
  }
  const mode = value('BUN_TERMINAL_MODE');
  if (mode !== undefined) set('BUN_TERMINAL_MODE', 'terminalMode', parseTerminalMode('BUN_TERMINAL_MODE', mode));
  const rows = value('BUN_TERMINAL_ROWS');
  if (rows !== undefined) set('BUN_TERMINAL_ROWS', 'rows', parseInteger('BUN_TERMINAL_ROWS', rows, 1, 255, 'an integer 1..255'));
  const cols = value('BUN_TERMINAL_COLS');
  if (cols !== undefined) set('BUN_TERMINAL_COLS', 'cols', parseInteger('BUN_TERMINAL_COLS', cols, 1, 255, 'an integer 1..255'));
  validateFields(next);
  return { fields: next, registryUrl, applied };
}

export interface RegistrySettings {
  configDir: string;
  lockbPath: string;
  envFile: string;
  registryUrl: string;
}

/** Where things are, and the effective registry URL: env BUN_REGISTRY_URL > `.env.local` > default. */
export function loadRegistrySettings(options: { configPath: string; lockbPath?: string; env?: Record<string, string | undefined> }): RegistrySettings {
  const configDir = dirname(resolve(options.configPath));
  const envFile = join(configDir, ENV_FILE_NAME);
  const lockbPath = lockbPathFor(configDir, options.lockbPath);
  const fromEnv = options.env?.BUN_REGISTRY_URL?.trim();
  const fromFile = readEnvFile(envFile).BUN_REGISTRY_URL?.trim();
  const [source, raw] = fromEnv ? ['environment variable BUN_REGISTRY_URL', fromEnv] : fromFile ? [`BUN_REGISTRY_URL in ${envFile}`, fromFile] : ['default', LOCAL_REGISTRY_URL];
  let registryUrl: string;
  try {
    registryUrl = normalizeRegistryUrl(raw);
  } catch (error) {
    throw new RegistryCoreError('ERR_ENV_VALUE', `${source}: ${error instanceof Error ? error.message : String(error)}`, { field: 'BUN_REGISTRY_URL' });
  }
  return { configDir, lockbPath, envFile, registryUrl };
}

function formatEnvValue(value: string): string {
  if (/^[A-Za-z0-9_./:@+,=-]*$/.test(value)) return value;
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n').replace(/\r/g, '\\r').replace(/\t/g, '\\t')}"`;
}

/** Sets KEY in the env file (first occurrence replaced, duplicates dropped, other lines kept verbatim). Atomic. */
export function setEnvFileValue(envFile: string, key: string, value: string): void {
  if (!KEY_PATTERN.test(key)) throw envError(key, 'not a valid variable name');
  const target = resolve(envFile);
  const existing = existsSync(target) ? readFileSync(target, 'utf8') : '';
  const lines = existing === '' ? [] : existing.replace(/\r?\n$/, '').split(/\r?\n/);
  const assignment = new RegExp(`^\\s*(?:export\\s+)?${key.replace(/\./g, '\\.')}\\s*=`);
  const line = `${key}=${formatEnvValue(value)}`;
  let replaced = false;
  const out: string[] = [];
  for (const current of lines) {
    if (assignment.test(current)) {
      if (!replaced) out.push(line);
      replaced = true;
    } else {
      out.push(current);
    }
  }
  if (!replaced) out.push(line);
  const text = `${out.join('\n')}\n`;
  // every start sets the URL it runs with: an unchanged file is not rewritten (temp + 2 fsyncs + rename per restart)
  if (text === existing) return;
  writeFileAtomicSync(target, text);
  forgetRegistryUrl(target);
}

