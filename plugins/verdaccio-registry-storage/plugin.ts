/**
 * `store: { registry-storage: {} }` — Verdaccio constructs this class synchronously with the
 * merged config. It either comes up fully (storage folder usable, index open, tokens readable)
 * and announces itself, or throws, so `scripts/start.ts` refuses to serve without it.
 */
import { dirname, join, resolve } from 'node:path';
import type { Config, Logger } from '@verdaccio/types';
import { bootMark, rebuildIndex, summarizeIndex, PackageIndex, type PackageSummary } from '../registry-core/index';
import { announcePluginLoaded } from '../registry-core/plugin-presence';
import { sweepTempFiles } from './atomic';
import { FileSystemStore } from './fs-store';
import { LockbIndexSink } from './lockb-sink';
import { PackageService } from './package-service';
import { TokenLedger } from './tokens';
import { type StorageConfig, StoragePluginAdapter } from './verdaccio-adapter';
import { scanPackagesSync } from './scan';

export interface RegistryStorageOptions {
  /** Give up waiting for a package lock after this many ms (ERR_LOCK_TIMEOUT → 503). */
  lock_timeout_ms?: number;
}

function configDirOf(config: Partial<Config> & Record<string, unknown>): string {
  const path = (config.configPath ?? config.config_path ?? config.self_path) as unknown;
  if (typeof path !== 'string' || path === '') throw new Error('registry-storage: Verdaccio passed no configPath; cannot resolve the storage folder');
  return dirname(resolve(path));
}

export function resolveStoragePaths(config: Partial<Config> & Record<string, unknown>): { storageDir: string; lockbPath: string } {
  const configDir = configDirOf(config);
  const storage = config.storage;
  if (typeof storage !== 'string' || storage === '') throw new Error('registry-storage: config.yaml has no `storage:` folder');
  const lockb = config.registry_lockb;
  return {
    storageDir: resolve(configDir, storage),
    lockbPath: typeof lockb === 'string' && lockb !== '' ? resolve(configDir, lockb) : join(configDir, 'registry.lockb'),
  };
}

function warn(logger: Logger, text: string): void {
  logger.warn({ detail: text }, 'registry-storage: @{detail}');
}

/**
 * The index must list every stored package: a storage adopted from stock Verdaccio (or edited
 * by hand) is indexed from its package.json files before the first request.
 */
function reconcileIndex(lockbPath: string, storageDir: string, storedNames: string[], logger: Logger): void {
  const index = PackageIndex.open(lockbPath);
  let indexed: Set<string>;
  try {
    if (index.recovered) {
      const text = `registry.lockb: dropped a torn last record (${index.recovered.droppedBytes} bytes: ${index.recovered.reason}); the index verifies again`;
      warn(logger, text);
      bootMark(`storage: ${text}`);
    }
    indexed = new Set(summarizeIndex(index.readAll()).filter((item: PackageSummary) => item.versions.length > 0).map((item: PackageSummary) => item.name));
  } finally {
    index.close();
  }
  const missing = storedNames.filter((name) => !indexed.has(name));
  const extra = [...indexed].filter((name) => !storedNames.includes(name));
  if (missing.length === 0 && extra.length === 0) return;
  const { records } = rebuildIndex(lockbPath, storageDir);
  const text =
    `registry.lockb did not match the storage folder (${missing.length} package(s) not indexed` +
    (missing.length ? `: ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', …' : ''}` : '') +
    `, ${extra.length} indexed but not stored); rebuilt it from storage: ${records} records`;
  warn(logger, text);
  bootMark(`storage: ${text}`);
}

export default class RegistryStoragePlugin extends StoragePluginAdapter {
  readonly storageDir: string;
  readonly lockbPath: string;

  constructor(config: StorageConfig & RegistryStorageOptions & Config, options: { config: Config; logger: Logger }) {
    const logger = options.logger;
    const merged = { ...(config as unknown as Record<string, unknown>), ...(options.config as unknown as Record<string, unknown>) };
    const { storageDir, lockbPath } = resolveStoragePaths(merged);

    const store = new FileSystemStore(storageDir, {
      lockTimeoutMs: typeof config.lock_timeout_ms === 'number' ? config.lock_timeout_ms : undefined,
      onLockCompromised: (key, error) =>
        logger.error({ key, detail: error.message }, 'registry-storage: lock for @{key} was taken over while held (@{detail})'),
    });
    const swept = sweepTempFiles(storageDir);
    if (swept.length > 0) warn(logger, `removed ${swept.length} temp file(s) left by an interrupted write`);

    const stored = scanPackagesSync(storageDir);
    reconcileIndex(lockbPath, storageDir, stored, logger);
    const sink = new LockbIndexSink(lockbPath);
    const tokens = new TokenLedger(storageDir);
    const service = new PackageService(store, sink, {
      warn: (text) => warn(logger, text),
      error: (text) => logger.error({ detail: text }, 'registry-storage: @{detail}'),
    });
    super(config, { service, tokens, logger });
    this.storageDir = storageDir;
    this.lockbPath = lockbPath;

    bootMark(`storage ready: ${storageDir} (${stored.length} packages)`);
    announcePluginLoaded('storage', storageDir);
  }
}
