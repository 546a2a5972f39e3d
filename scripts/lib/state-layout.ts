/**
 * Where a registry keeps its state, read from its config.yaml by the same rules the parts use
 * (core `registryLayoutOf` for storage / registry.lockb / .env.local, the auth part's `file` and
 * `keys_dir`, `signing_keys_dir`, audit.log beside registry.lockb). Used by `registry backup`,
 * `restore` and `doctor`. A folder without config.yaml has the default layout.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { load } from 'js-yaml';
import { auditPathFor, registryLayoutOf, signingKeysDir } from '../../plugins/registry-core/index';
import type { Role } from './backup-manifest';

export interface StateLayout {
  /** the folder config.yaml is in (or would be) */
  configDir: string;
  configPath: string;
  /** false: no config.yaml there, the default layout is used */
  hasConfig: boolean;
  /** the parsed config.yaml ({} without one) */
  mapping: Record<string, unknown>;
  storageDir: string;
  lockbPath: string;
  envFile: string;
  htpasswd: string;
  /** `<htpasswd>.first-user` (the auth part's first-user record) */
  firstUser: string;
  keysDir: string;
  signingKeysDir: string;
  auditLog: string;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' && value.trim() !== '' ? value : undefined;
}

/** The layout of the registry whose config.yaml is `configPath` (which need not exist). */
export function stateLayout(configPath: string): StateLayout {
  const path = resolve(configPath);
  const hasConfig = existsSync(path);
  let mapping: Record<string, unknown> = {};
  if (hasConfig) {
    const parsed = load(readFileSync(path, 'utf8'));
    if (!isRecord(parsed)) throw new Error(`${path} is not a YAML mapping`);
    mapping = parsed;
  }
  const core = registryLayoutOf(mapping, path);
  const auth = isRecord(mapping.auth) && isRecord(mapping.auth['registry-auth']) ? mapping.auth['registry-auth'] : {};
  const htpasswd = resolve(core.configDir, text(auth.file) ?? './htpasswd');
  return {
    configDir: core.configDir,
    configPath: path,
    hasConfig,
    mapping,
    storageDir: core.storageDir,
    lockbPath: core.lockbPath,
    envFile: core.envFile,
    htpasswd,
    firstUser: `${htpasswd}.first-user`,
    keysDir: resolve(core.configDir, text(auth.keys_dir) ?? './keys'),
    signingKeysDir: signingKeysDir(core.configDir, text(mapping.signing_keys_dir)),
    auditLog: auditPathFor(core.lockbPath),
  };
}

/** The layout for a `--config F` / `--into DIR` argument: a folder means `<folder>/config.yaml`. */
export function layoutFor(configArg: string | undefined, folderArg?: string): StateLayout {
  if (configArg !== undefined) return stateLayout(configArg);
  return stateLayout(join(resolve(folderArg ?? '.'), 'config.yaml'));
}

/** Where each role of a backup (backup-manifest.ts) lives in this layout. */
const ROLE_PATHS: Record<Role, (layout: StateLayout) => string> = {
  storage: (l) => l.storageDir,
  keys: (l) => l.keysDir,
  'signing-keys': (l) => l.signingKeysDir,
  'registry.lockb': (l) => l.lockbPath,
  htpasswd: (l) => l.htpasswd,
  'htpasswd.first-user': (l) => l.firstUser,
  'audit.log': (l) => l.auditLog,
  '.env.local': (l) => l.envFile,
  'config.yaml': (l) => l.configPath,
};

export function pathOfRole(layout: StateLayout, role: Role): string {
  return ROLE_PATHS[role](layout);
}
