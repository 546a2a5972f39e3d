/**
 * Which backend holds the registry's shared state (docs/database.md), pure and pg-free so start-up
 * and the CLI can ask without loading a database client:
 *
 *   1. `REGISTRY_DATABASE_URL` (a postgres:// or postgresql:// URL) in the environment → PostgreSQL;
 *   2. else `store: { registry-storage: { backend: postgres, database_url: <url> } }` in config.yaml;
 *   3. else files (the embedded default; `backend: files` says so explicitly).
 *
 * A malformed choice (unknown backend, postgres without a URL, a URL of another scheme) is an
 * ERR_DATABASE_CONFIG: start-up stops with the message instead of quietly serving from files.
 */
import { RegistryCoreError } from '../errors';

export const DATABASE_URL_ENV = 'REGISTRY_DATABASE_URL';
/** The store section of config.yaml the backend choice lives in (the storage plugin's options). */
export const STORE_SECTION = 'registry-storage';

export type DatabaseSettings =
  | { backend: 'files' }
  | { backend: 'postgres'; url: string; source: 'env' | 'config' };

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The URL with its password replaced by `***`: what logs, errors and boot lines show. */
export function redactDatabaseUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString();
  } catch {
    return '<unparsable database URL>';
  }
}

/** null when url is a usable postgres URL, else what is wrong with it. */
export function databaseUrlProblem(url: string): string | null {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'is not a URL (expected postgres://user:password@host:port/database)';
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') return `has scheme ${JSON.stringify(parsed.protocol.replace(/:$/, ''))} (expected postgres:// or postgresql://)`;
  if (parsed.hostname === '' && !parsed.searchParams.has('host')) return 'names no host';
  return null;
}

function checked(url: string, where: string, source: 'env' | 'config'): DatabaseSettings {
  const problem = databaseUrlProblem(url);
  if (problem !== null) {
    throw new RegistryCoreError('ERR_DATABASE_CONFIG', `${where} ${problem}`, { field: where, hint: 'docs/database.md says how the backend is chosen' });
  }
  return { backend: 'postgres', url, source };
}

/** The store options of config.yaml (`store.registry-storage`), or {} when absent. */
export function storeOptionsOf(config: unknown): Record<string, unknown> {
  const store = isRecord(config) && isRecord(config.store) ? config.store : {};
  const section = store[STORE_SECTION];
  return isRecord(section) ? section : {};
}

/**
 * The backend for this process. `storeOptions` may be passed directly (the storage plugin gets
 * its own section from Verdaccio); otherwise it is read from the whole config mapping.
 */
export function databaseSettingsOf(config: unknown, env: Record<string, string | undefined>, storeOptions?: Record<string, unknown>): DatabaseSettings {
  const fromEnv = env[DATABASE_URL_ENV];
  if (typeof fromEnv === 'string' && fromEnv.trim() !== '') return checked(fromEnv.trim(), DATABASE_URL_ENV, 'env');
  const options = storeOptions ?? storeOptionsOf(config);
  const backend = options.backend ?? 'files';
  if (backend === 'files') {
    if (options.database_url !== undefined) {
      throw new RegistryCoreError('ERR_DATABASE_CONFIG', `store.${STORE_SECTION}.database_url is set but backend is files: set \`backend: postgres\` or remove database_url`, { field: 'database_url' });
    }
    return { backend: 'files' };
  }
  if (backend !== 'postgres') {
    throw new RegistryCoreError('ERR_DATABASE_CONFIG', `store.${STORE_SECTION}.backend is ${JSON.stringify(backend)} (expected files or postgres)`, { field: 'backend' });
  }
  const url = options.database_url;
  if (typeof url !== 'string' || url.trim() === '') {
    throw new RegistryCoreError('ERR_DATABASE_CONFIG', `store.${STORE_SECTION}.backend is postgres but no database_url is set (nor ${DATABASE_URL_ENV})`, { field: 'database_url' });
  }
  return checked(url.trim(), `store.${STORE_SECTION}.database_url`, 'config');
}
