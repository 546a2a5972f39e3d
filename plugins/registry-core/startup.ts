/**
 * Start-up of the registry's state, in ONE place: `npm start` (scripts/start.ts) and a bare
 * `verdaccio -c config.yaml` (the first of our plugins Verdaccio constructs) both call
 * `bootRegistry`. It arms the plugin-presence guard, then prepares the state the plugins need:
 * `registry.lockb` created with the defaults if missing, `.env.local` then the environment
 * applied to it (the environment wins), the registry URL written into `.env.local`, and the boot
 * timeline line "config loaded". Synchronous (Verdaccio constructs plugins synchronously) and
 * idempotent per config file: later callers in the process get the first result (or its error).
 */
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, realpathSync, writeSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describeConfig } from './describe';
import { ENV_FILE_NAME, applyEnv, loadRegistrySettings, parseEnvText, setEnvFileValue } from './env';
import { RegistryCoreError } from './errors';
import { LEGACY_FORMAT_VERSION, migrateLegacyFormat } from './format-version';
import { createConfigFile, readHeaderBytes } from './header-file';
import { registryUrlMatches } from './issuer';
import { CONFIG_START, HEADER_SIZE, decodeHeader, defaultFields, encodeHeader, lockbPathFor, storageDirFor, type ConfigFields } from './layout';
import { withFileLockSync } from './lock';
import {
  armPresenceGuard,
  configuredParts,
  pluginsDirOf,
  reportStartupProblem,
  type ConfiguredPart,
} from './plugin-presence';
import { normalizeRegistryUrl } from './registry-url';
import { installServerChannels } from './server-channels';
import { bootMark } from './timeline';

/** The keys of a config.yaml mapping (as parsed, or as Verdaccio hands it to plugins) start-up needs. */
export interface RegistryLayout {
  configPath: string;
  configDir: string;
  storageDir: string;
  lockbPath: string;
  envFile: string;
  pluginsDir: string | undefined;
  pluginPrefix: string;
  parts: ConfiguredPart[];
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function nonEmptyString(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/**
 * Reads the layout from a config.yaml mapping. `configPath` defaults to the path Verdaccio adds
 * to the mapping it passes plugins (`configPath`, legacy `config_path` / `self_path`).
 */
export function registryLayoutOf(config: unknown, configPath?: string): RegistryLayout {
  const mapping = isRecord(config) ? config : {};
  const path = configPath ?? nonEmptyString(mapping.configPath) ?? nonEmptyString(mapping.config_path) ?? nonEmptyString(mapping.self_path);
  if (path === undefined) {
    throw new RegistryCoreError('ERR_LOCKB_MISSING', 'Verdaccio passed no configPath: cannot find registry.lockb next to config.yaml');
  }
  const absolute = resolve(path);
  const configDir = dirname(absolute);
  const server = isRecord(mapping.server) ? mapping.server : {};
  return {
    configPath: absolute,
    configDir,
    storageDir: storageDirFor(configDir, mapping.storage),
    lockbPath: lockbPathFor(configDir, mapping.registry_lockb),
    envFile: join(configDir, ENV_FILE_NAME),
    pluginsDir: pluginsDirOf(absolute, mapping.plugins),
    pluginPrefix: nonEmptyString(server.pluginPrefix) ?? 'verdaccio',
    parts: configuredParts(mapping),
  };
}

export interface PreparedState {
  lockbPath: string;
  envFile: string;
  registryUrl: string;
  /** registry.lockb did not exist and was created with the defaults. */
  created: boolean;
  /** The BUN_* variables that changed a byte. */
  applied: string[];
  fields: ConfigFields;
}

/** `.env.local`, then the BUN_* variables of the environment: later sources win. */
function environmentOverrides(envFile: string, env: Record<string, string | undefined>): Record<string, string | undefined> {
  let fromFile: Record<string, string> = {};
  if (existsSync(envFile)) {
    try {
      fromFile = parseEnvText(readFileSync(envFile, 'utf8'));
    } catch (error) {
      if (error instanceof RegistryCoreError) throw new RegistryCoreError('ERR_ENV_VALUE', `${envFile}: ${error.message}`, { field: error.field ?? 'envFile' });
      throw error;
    }
  }
  const merged: Record<string, string | undefined> = { ...fromFile };
  for (const [key, value] of Object.entries(env)) if (key.startsWith('BUN_') && value !== undefined) merged[key] = value;
  return merged;
}

function lockTarget(lockbPath: string): string {
  return existsSync(lockbPath) ? realpathSync(lockbPath) : lockbPath;
}

/**
 * Under the core's lock on registry.lockb: create it with the defaults if missing, apply
 * `.env.local` then `env` to its 13 bytes (one positioned write, only if something changed),
 * write the effective registry URL into `.env.local`. Throws RegistryCoreError (with a hint)
 * for an invalid file or value; nothing is written then.
 */
export function prepareRegistryState(options: { configPath: string; lockbPath?: string }, env: Record<string, string | undefined>): PreparedState {
  const settings = loadRegistrySettings({ configPath: options.configPath, lockbPath: options.lockbPath, env });
  const overrides = environmentOverrides(settings.envFile, env);
  const registryUrl = normalizeRegistryUrl(settings.registryUrl);
  const target = lockTarget(settings.lockbPath);
  const result = withFileLockSync(target, () => {
    let created = false;
    if (!existsSync(target)) {
      createConfigFile(target, defaultFields(registryUrl));
      created = true;
    }
    const fd = openSync(target, 'r+'); // no O_APPEND: the header write must land at offset 4
    try {
      const current = decodeHeader(readHeaderBytes(fd));
      const { fields, applied } = applyEnv(current, { ...overrides, BUN_REGISTRY_URL: registryUrl });
      const header = encodeHeader(fields);
      if (describeConfig(fields).hex !== describeConfig(current).hex) {
        writeSync(fd, header, CONFIG_START, HEADER_SIZE - CONFIG_START, CONFIG_START);
        fsyncSync(fd);
      }
      // Inside the server `.env.local` is the one source of truth for the URL (the 13 bytes hold only its hash).
      setEnvFileValue(settings.envFile, 'BUN_REGISTRY_URL', registryUrl);
      return { created, applied, fields };
    } finally {
      closeSync(fd);
    }
  });
  return { lockbPath: settings.lockbPath, envFile: settings.envFile, registryUrl, ...result };
}

interface BootRecord {
  outcome: { ok: true; state: PreparedState } | { ok: false; error: unknown };
}

const BOOT_KEY = Symbol.for('mycompany-registry:boot');
type BootHolder = { [BOOT_KEY]?: Map<string, BootRecord> };

function bootRecords(): Map<string, BootRecord> {
  const holder = globalThis as BootHolder;
  holder[BOOT_KEY] ??= new Map();
  return holder[BOOT_KEY];
}

/** One line (plus the hint) for a start-up failure; a problem of the file itself names the file. */
export function describeStartupError(error: unknown, lockbPath: string): string {
  if (!(error instanceof RegistryCoreError)) return error instanceof Error ? error.message : String(error);
  const ofTheFile = error.code.startsWith('ERR_LOCKB') || error.code === 'ERR_CONFIG_FIELD';
  return `${ofTheFile ? `${lockbPath}: ` : ''}${error.message}${error.hint ? `\n  ${error.hint}` : ''}`;
}

/**
 * What every plugin constructor of ours and scripts/start.ts (with alwaysGuard) call first, with the config.yaml
 * mapping (Verdaccio's `options.config`) and the process environment. The first call in the
 * process arms the presence guard (for the parts the mapping configures) and prepares the state;
 * every later call for the same config file returns the same result, or throws the same error.
 * BUN_REGISTRY_URL is consumed from `env`: from then on `.env.local` is the one place the
 * process reads the URL from (a later URL change through the dashboard or CLI then wins).
 */
export function bootRegistry(
  config: unknown,
  env: Record<string, string | undefined>,
  options: { configPath?: string; /** arm the guard (and its "listening on" line) even if no part of ours is configured */ alwaysGuard?: boolean } = {},
): PreparedState {
  // Bun publishes none of Node's server channels our parts find the server by (server-channels.ts)
  const runtime = installServerChannels();
  const layout = registryLayoutOf(config, options.configPath);
  const key = existsSync(layout.configPath) ? realpathSync(layout.configPath) : layout.configPath;
  const records = bootRecords();
  let record = records.get(key);
  if (!record) {
    // Only a real registry config (one that configures parts of ours) arms the guard: a plugin
    // constructed on its own (unit tests) must not stop a process that listens later.
    if (layout.parts.length > 0 || options.alwaysGuard === true) {
      armPresenceGuard({ configPath: layout.configPath, expected: layout.parts, pluginsDir: layout.pluginsDir, pluginPrefix: layout.pluginPrefix });
    }
    try {
      const prepared = prepareRegistryState({ configPath: layout.configPath, lockbPath: layout.lockbPath }, env);
      delete env.BUN_REGISTRY_URL;
      if (prepared.created) bootMark(`created ${prepared.lockbPath} with defaults for ${prepared.registryUrl}`);
      // version 0 = legacy format: the index is regenerated from storage, then version 1 (docs/config-format.md)
      // (the version was read under the lock just now and only ever goes up: a current file needs no second lock)
      const migration = prepared.fields.version === LEGACY_FORMAT_VERSION ? migrateLegacyFormat(prepared.lockbPath, layout.storageDir) : null;
      const state = migration === null ? prepared : { ...prepared, fields: { ...prepared.fields, version: migration.to } };
      if (migration !== null) {
        bootMark(
          `migrated ${state.lockbPath} from format version ${migration.from} to ${migration.to}: index regenerated from ${layout.storageDir} ` +
            `(${migration.records} records for ${migration.packages} packages, replaced ${migration.replacedBytes} bytes after the header)` +
            (migration.skipped.length > 0 ? `; unreadable: ${migration.skipped.map((item) => `${item.path} (${item.reason})`).join(', ')}` : ''),
        );
      }
      if (runtime !== undefined) bootMark(`runtime ${runtime}: Node's server diagnostics channels published by registry-core (server-channels.ts)`);
      const view = describeConfig(state.fields);
      bootMark(
        `config loaded: ${state.lockbPath} valid (check 0x${view.check}), bytes ${view.hex}` +
          (state.applied.length > 0 ? `, applied ${state.applied.join(', ')}` : ''),
      );
      if (!registryUrlMatches(state.fields, state.registryUrl)) {
        bootMark(`WARNING: registryHash ${view.fields.registryHash} does not match ${state.registryUrl}`);
      }
      record = { outcome: { ok: true, state } };
    } catch (error) {
      reportStartupProblem(describeStartupError(error, layout.lockbPath));
      record = { outcome: { ok: false, error } };
    }
    records.set(key, record);
  }
  if (!record.outcome.ok) throw record.outcome.error;
  return record.outcome.state;
}
