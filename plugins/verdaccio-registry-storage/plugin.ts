/**
 * `store: { registry-storage: {} }` — Verdaccio constructs this class synchronously with the
 * merged config. It either comes up fully (storage folder usable, index open, tokens readable)
 * and announces itself, or throws, so `scripts/start.ts` refuses to serve without it.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Config, Logger } from '@verdaccio/types';
import { SIGNING_KEY_FILE, ConfigFile, bootMark, lockbPathFor, bootRegistry, debugLog, registerReadyCheck, registerUpstreamKeys, SIGNING_KEY_TYPE, type PublishedKey, explicitUpstreamError, hasFeature, foldIndex, isLocalScope, localScopesOf, readIndexRecordsOnly, rebuildIndex, registryMetrics, reportUpstreamStatus, sharedUpstream, signingKeysDir, startAuditTrail, PackageIndex, SigningKeyRing } from '../registry-core/index';
import { VersionSigner } from './signatures';
import { checkAgainstIndex } from './verify';
import { FolderListings, VERIFIED_FILE, encodeVerified, foldersStillUnchanged, readVerified, sameRecord, storedPackageFiles, withFolders, type VerifiedStates } from './verified';
import { announcePluginLoaded } from '../registry-core/plugin-presence';
import { sweepTempFiles, writeFileAtomic } from './atomic';
import { writeFileAtomicSync } from '../registry-core/atomic-file';
import { FileSystemStore, UPSTREAM_CACHE_DIR } from './fs-store';
import { LockbIndexSink } from './lockb-sink';
import { PackageService, type IndexSink } from './package-service';
import { databaseSettingsOf, packageChanges, sharedDatabase, type Database } from '../registry-core/database/index';
import { IndexMirror, PgIndexSink } from './pg-index';
import { PgPackageStore } from './pg-store';
import type { PackageStore } from './store';
import { TokenLedger } from './tokens';
import { shareFolderSync } from '../registry-core/database/shared-files';
import { type StorageConfig, StoragePluginAdapter } from './verdaccio-adapter';
import { registerStorePort } from './store-port';
import { scanPackagesSync } from './scan';
import { heldInCache } from './upstream/held';
import { UpstreamProxy } from './upstream/proxy';

/** The upstream cache: a dot-folder no package name can take (docs/upstream.md). */
export { UPSTREAM_CACHE_DIR } from './fs-store';


export interface RegistryStorageOptions {
  /** Give up waiting for a package lock after this many ms (ERR_LOCK_TIMEOUT → 503). */
  lock_timeout_ms?: number;
  /** files (default) | postgres — docs/database.md; REGISTRY_DATABASE_URL overrides */
  backend?: string;
  /** postgres://… when backend is postgres */
  database_url?: string;
  /** connections of this node's pool (default 10) */
  database_pool_max?: number;
}

export function configDirOf(config: Partial<Config> & Record<string, unknown>): string {
  const path = (config.configPath ?? config.config_path ?? config.self_path) as unknown;
  if (typeof path !== 'string' || path === '') throw new Error('registry-storage: Verdaccio passed no configPath; cannot resolve the storage folder');
  return dirname(resolve(path));
}

export function resolveStoragePaths(config: Partial<Config> & Record<string, unknown>): { storageDir: string; lockbPath: string } {
  const configDir = configDirOf(config);
  const storage = config.storage;
  if (typeof storage !== 'string' || storage === '') throw new Error('registry-storage: config.yaml has no `storage:` folder');
  return {
    storageDir: resolve(configDir, storage),
    lockbPath: lockbPathFor(configDir, config.registry_lockb),
  };
}

/**
 * The registry's signing keys (docs/signatures.md), from the top-level config.yaml settings both
 * entries of the storage part read: `signing_keys_dir` (default `signing-keys` next to
 * config.yaml), `signing_key_days` (default 365), `signing: false` to serve versions unsigned.
 * null: signing off.
 */
export function openSigningRing(config: Partial<Config> & Record<string, unknown>): SigningKeyRing | null {
  if (config.signing === false) return null;
  const dir = config.signing_keys_dir;
  const days = config.signing_key_days;
  if (dir !== undefined && (typeof dir !== 'string' || dir === '')) throw new Error('registry-storage: `signing_keys_dir` must be a folder path');
  if (days !== undefined && typeof days !== 'number') throw new Error(`registry-storage: \`signing_key_days\` must be a number of days (got ${JSON.stringify(days)})`);
  const folder = signingKeysDir(configDirOf(config), dir as string | undefined);
  const ring = SigningKeyRing.open(folder, { keyDays: days as number | undefined });
  // PostgreSQL: every node signs with the same key (the first node's wins; the ring re-reads its folder)
  const backend = databaseSettingsOf(config, process.env);
  if (backend.backend === 'postgres') shareFolderSync(backend.url, 'signing-keys', folder, SIGNING_KEY_FILE);
  return ring;
}

function warn(logger: Logger, text: string): void {
  logger.warn({ detail: text }, 'registry-storage: @{detail}');
}

/**
 * The index must describe exactly what is stored: a storage adopted from stock Verdaccio (or
 * edited by hand, or a publish killed between its package.json and its index record, or a
 * dist-tag / deprecate record dropped as a torn tail) is re-indexed from the package.json files
 * before the first request. Versions, dist-tags and deprecations are all compared. A package whose
 * package.json identity and index entry are both unchanged since the last check recorded in
 * `.registry-verified` is not read again (verified.ts says why that still detects each of those).
 */
function reconcileIndex(
  lockbPath: string,
  storageDir: string,
  index: PackageIndex,
  previous: VerifiedStates | null,
  takenAtNs: bigint,
  logger: Logger,
): { names: string[]; verified: VerifiedStates } {
  const files = storedPackageFiles(storageDir);
  if (index.recovered) {
    const text = `registry.lockb: dropped a torn last record (${index.recovered.droppedBytes} bytes: ${index.recovered.reason}); the index verifies again`;
    warn(logger, text);
    bootMark(`storage: ${text}`);
  }
  const indexed = foldIndex(index.readAll());
  const check = checkAgainstIndex(files, indexed, previous, takenAtNs);
  const names = files.map((file) => file.name);
  const stored = new Set(names);
  const differing = [...check.differing];
  for (const [name, entry] of indexed) {
    if (!stored.has(name) && (entry.versions.length > 0 || Object.keys(entry.distTags).length > 0)) differing.push(name);
  }
  bootMark(`storage: index checked against ${files.length} package.json file(s), ${check.read} read, ${files.length - check.read} unchanged since the last check`);
  if (differing.length === 0) return { names, verified: check.verified };
  const { records, skipped } = rebuildIndex(lockbPath, storageDir);
  const text =
    `registry.lockb did not match the storage folder for ${differing.length} package(s) ` +
    `(${differing.slice(0, 5).join(', ')}${differing.length > 5 ? ', …' : ''}); rebuilt the index from storage: ${records} records` +
    (skipped.length > 0 ? `; unreadable: ${skipped.map((item) => `${item.path} (${item.reason})`).join(', ')}` : '');
  warn(logger, text);
  bootMark(`storage: ${text}`);
  // the packages that matched stay recorded (each entry vouches for its file against its own index digest); the differing ones are read again next time
  return { names, verified: check.verified };
}

/**
 * The same check again when the process exits normally (Verdaccio's graceful stop ends in
 * process.exit): what was published since start-up is read and compared now, so the next start
 * trusts it instead of reading it. Read-only on registry.lockb (an index ending in a torn record is
 * left to the next start's open); nothing is recorded that does not match. Skipped when the
 * storage folder is gone (a test's temp folder).
 */
function checkpointVerified(lockbPath: string, storageDir: string, previous: VerifiedStates): void {
  if (!existsSync(storageDir)) return;
  const takenAtNs = BigInt(Date.now()) * 1_000_000n;
  const files = storedPackageFiles(storageDir);
  const records = readIndexRecordsOnly(lockbPath);
  if (records === null) return;
  const check = checkAgainstIndex(files, foldIndex(records), previous, takenAtNs);
  const next = withFolders(check.verified, storageDir, foldersStillUnchanged(previous));
  if (sameRecord(previous, next)) return;
  writeFileAtomicSync(join(storageDir, VERIFIED_FILE), encodeVerified(next), 0o644);
}

/**
 * The files backend's start-up checks: the temp-file sweep, then the index against the storage
 * folder (reconcileIndex), both with what `.registry-verified` recorded; the new record is written
 * in the background when it changed. A function of its own so the previous record and the sweep's
 * listings are garbage once it returns (closures of the constructor would keep them alive). Returns
 * the open index (every record verified once) for the sink's appends: a rebuild rewrites the file
 * in place, so its descriptors stay valid and readAll sees the new records.
 */
function startUpCheck(lockbPath: string, storageDir: string, logger: Logger): { index: PackageIndex; names: string[]; verified: VerifiedStates } {
  const previous = readVerified(storageDir);
  if (previous.problem !== undefined) {
    warn(logger, `${previous.problem}; every package.json is read`);
    bootMark(`storage: ${previous.problem}; every package.json is read`);
  }
  // the wall clock before the first stat of the sweep and the check (verified.ts: racy timestamps)
  const takenAtNs = BigInt(Date.now()) * 1_000_000n;
  const listings = new FolderListings(storageDir, previous.states);
  const swept = sweepTempFiles(storageDir, undefined, listings);
  if (swept.length > 0) warn(logger, `removed ${swept.length} temp file(s) left by an interrupted write`);
  const index = PackageIndex.open(lockbPath);
  let reconciled: ReturnType<typeof reconcileIndex>;
  try {
    reconciled = reconcileIndex(lockbPath, storageDir, index, previous.states, takenAtNs, logger);
  } catch (error) {
    index.close();
    throw error;
  }
  const verified = withFolders(reconciled.verified, storageDir, (_name, dir) => listings.clean.get(dir) ?? null);
  if (!sameRecord(previous.states, verified)) {
    const path = join(storageDir, VERIFIED_FILE);
    // off the start-up path (temp + fsync + rename on the thread pool); lost, it only means the next start reads more
    writeFileAtomic(path, encodeVerified(verified)).catch((error: unknown) => warn(logger, `${path} not written: ${(error as Error).message}`));
  }
  return { index, names: reconciled.names, verified };
}

/** One 'exit' listener for every storage plugin of the process (tests construct many). */
const exitCheckpoints = new Map<string, () => void>();
function onExitCheckpoint(storageDir: string, run: () => void): void {
  if (exitCheckpoints.size === 0) {
    process.once('exit', () => {
      for (const checkpoint of exitCheckpoints.values()) checkpoint();
    });
  }
  exitCheckpoints.set(storageDir, run);
}

export default class RegistryStoragePlugin extends StoragePluginAdapter {
  readonly storageDir: string;
  readonly lockbPath: string;
  /** Reached by the HTTP entry through the folder's store seam (store-port.ts). */
  readonly upstreamProxy: UpstreamProxy;

  constructor(config: StorageConfig & RegistryStorageOptions & Config, options: { config: Config; logger: Logger }) {
    const logger = options.logger;
    // The first of our plugins to load prepares registry.lockb/.env.local and arms the presence guard (idempotent).
    const prepared = bootRegistry(options.config, process.env);
    const merged = { ...(config as unknown as Record<string, unknown>), ...(options.config as unknown as Record<string, unknown>) };
    const { storageDir, lockbPath } = resolveStoragePaths(merged);

    const metrics = registryMetrics(lockbPath);
    const onLockWait = (key: string, waitedMs: number): void => {
      // docs/operations.md: DEBUG lines and the lock-wait metrics
      metrics.inc('registry_lock_waits_total', { lock: 'package' });
      metrics.observe('registry_lock_wait_seconds', waitedMs / 1000, { lock: 'package' });
      debugLog(lockbPath, 'lock', `waited for ${key}`, { ms: waitedMs.toFixed(1) });
    };
    const lockTimeoutMs = typeof config.lock_timeout_ms === 'number' ? config.lock_timeout_ms : undefined;
    const backend = databaseSettingsOf(options.config, process.env, config as unknown as Record<string, unknown>);
    let store: PackageStore;
    let sink: IndexSink;
    let stored: string[] | null = null;
    let database: Database | null = null;
    if (backend.backend === 'postgres') {
      // docs/database.md: packuments, tarballs, the package list and the index in PostgreSQL
      database = sharedDatabase(backend.url, {
        max: typeof config.database_pool_max === 'number' ? config.database_pool_max : undefined,
        onError: (text) => logger.error({ detail: text }, 'registry-storage: @{detail}'),
      });
      const changes = packageChanges(lockbPath);
      const pgStore = new PgPackageStore(database, { lockTimeoutMs, onLockWait, changes });
      const mirror = new IndexMirror(database, lockbPath, {
        onRemote: (names) => names.forEach((name) => pgStore.forget(name)),
        log: (text) => warn(logger, text),
        changes,
      });
      store = pgStore;
      sink = new PgIndexSink(pgStore, mirror);
      // migrations, then the index mirror, in the background: requests wait for the database themselves
      const db = database;
      const started = (async () => {
        const report = await db.ready();
        bootMark(`storage: database ${db.location} at schema version ${report.current}${report.applied.length > 0 ? ` (applied ${report.applied.map((m) => m.version).join(', ')})` : ''}`);
        await mirror.sync();
      })();
      started.catch((error: unknown) => logger.error({ detail: `database ${db.location}: ${(error as Error).message} (retried at the next request)` }, 'registry-storage: @{detail}'));
      // a folder that still holds packages (the backend was switched without `registry migrate`): say so, never serve them mixed in
      const leftover = scanPackagesSync(storageDir);
      if (leftover.length > 0) {
        const text = `${storageDir} holds ${leftover.length} package(s) (${leftover.slice(0, 3).join(', ')}${leftover.length > 3 ? ', …' : ''}) that the PostgreSQL backend does not serve: run \`registry migrate to-postgres\` to move them (docs/database.md)`;
        warn(logger, text);
        bootMark(`storage: ${text}`);
      }
      // GET /-/ready (docs/operations.md): a node that lost its database is not ready, so a balancer drops it
      registerReadyCheck(lockbPath, 'database', () => databaseState(db));
    } else {
      const fsStore = new FileSystemStore(storageDir, {
        onLockWait,
        lockTimeoutMs,
        onLockCompromised: (key, error) =>
          logger.error({ key, detail: error.message }, 'registry-storage: lock for @{key} was taken over while held (@{detail})'),
      });
      const checked = startUpCheck(lockbPath, storageDir, logger);
      stored = checked.names;
      const verifiedPath = join(storageDir, VERIFIED_FILE);
      onExitCheckpoint(storageDir, () => {
        try {
          checkpointVerified(lockbPath, storageDir, checked.verified);
        } catch (error) {
          warn(logger, `${verifiedPath} not updated at exit: ${(error as Error).message}`);
        }
      });
      store = fsStore;
      sink = new LockbIndexSink(lockbPath, checked.index);
    }
    const tokens = new TokenLedger(storageDir, merged);
    const ring = openSigningRing(merged);
    const service = new PackageService(
      store,
      sink,
      {
        warn: (text) => warn(logger, text),
        error: (text) => logger.error({ detail: text }, 'registry-storage: @{detail}'),
      },
      ring === null ? null : new VersionSigner(ring),
    );
    // the one audit writer (idempotent: whichever of our plugins starts first opens it; docs/audit.md)
    const audit = startAuditTrail(lockbPath, (text) => logger.error({ detail: text }, 'registry-storage: @{detail}'));
    if (audit.recovered) {
      const text = `audit.log: dropped a torn last line (${audit.recovered.droppedBytes} bytes: ${audit.recovered.reason})`;
      warn(logger, text);
      bootMark(`storage: ${text}`);
    }
    bootMark(ring === null ? 'storage: registry signatures off (signing: false)' : `storage: signing key ${ring.active().keyid} (${ring.keys().length} key(s) in ${ring.dir})`);
    super(config, { service, tokens, logger });
    this.storageDir = storageDir;
    this.lockbPath = lockbPath;
    // the upstream cache stays on this node's files on either backend (docs/database.md), its records in this node's registry.lockb
    const cacheSink = sink instanceof LockbIndexSink ? sink : new LockbIndexSink(lockbPath);
    this.upstreamProxy = this.#createUpstream(merged, storageDir, lockbPath, prepared.registryUrl, service, store, cacheSink, logger);
    // the seams other parts use instead of Verdaccio's internal storage.localStorage.storagePlugin
    const listNames = (): Promise<string[]> => service.listNames();
    registerStorePort(lockbPath, {
      packumentRevision: (name) => service.packumentStamp(name),
      owners: (name) => service.ownersOf(name),
      changeOwners: (name, maintainers, actor) => service.changeOwners(name, maintainers, actor),
      heldTarballBytes: (name, fileName, stamp) => service.heldTarballBytes(name, fileName, stamp),
      heldTarballBytesNow: (name, fileName, stamp) => service.heldTarballBytesNow(name, fileName, stamp),
      listNames,
      publishFailed: (name, fileName) => service.publishFailed(name, fileName),
      upstream: this.upstreamProxy,
    });

    bootMark(stored === null ? `storage ready: PostgreSQL ${store.location} (upstream cache in ${join(storageDir, UPSTREAM_CACHE_DIR)})` : `storage ready: ${storageDir} (${stored.length} packages)`);
    announcePluginLoaded('storage', storageDir);
  }

  #createUpstream(
    config: Record<string, unknown>,
    storageDir: string,
    lockbPath: string,
    registryUrl: string,
    service: PackageService,
    store: PackageStore,
    sink: LockbIndexSink,
    logger: Logger,
  ): UpstreamProxy {
    const scopes = localScopesOf(config);
    if (scopes instanceof Error) throw new Error(`registry-storage: ${scopes.message}`);
    const explicitProblem = explicitUpstreamError(config, process.env, registryUrl);
    if (explicitProblem !== null) throw new Error(`registry-storage: ${explicitProblem}`);
    const cacheRoot = join(storageDir, UPSTREAM_CACHE_DIR);
    const cache = new FileSystemStore(cacheRoot, { tarballCacheBytes: 16 * 1024 * 1024, recordOwnWrites: true });
    const swept = sweepTempFiles(cacheRoot);
    if (swept.length > 0) warn(logger, `removed ${swept.length} temp file(s) left by an interrupted upstream cache fill`);
    service.cache = cache;
    service.cacheServes = (name) => !isLocalScope(name, scopes);
    // started now, answered in the background (npm may be asked): nothing waits for it before the first proxied request
    const resolution = sharedUpstream(lockbPath, config, process.env, registryUrl);
    const flags = ConfigFile.open(lockbPath);
    const proxy = new UpstreamProxy({
      resolution,
      localScopes: scopes,
      cache,
      isLocal: (name) => service.isLocal(name),
      withLock: (name, fn) => store.withLock(name, fn),
      sink,
      // OFFLINE (featureFlags bit 3) from the live config bytes: a toggle from any process applies within 100 ms
      offline: () => hasFeature(flags.getConfig().fields, 'OFFLINE'),
      lockbPath,
      log: { warn: (text) => warn(logger, text), error: (text) => logger.error({ detail: text }, 'registry-storage: @{detail}') },
      initialCache: heldInCache(cacheRoot),
    });
    service.upstreamFilling = (name) => proxy.filling(name);
    service.upstreamRevision = (name, storedStamp) => proxy.revisionOf(name, storedStamp);

    // the status getter shows the flag as it is, also while no request reaches the upstream
    flags.watchConfig((next, prev) => {
      const offline = hasFeature(next.fields, 'OFFLINE');
      if (offline !== hasFeature(prev.fields, 'OFFLINE')) reportUpstreamStatus(lockbPath, { offline });
    });
    resolution.then((outcome) => {
      const text = !outcome.ok
        ? `upstream refused: ${outcome.error}`
        : outcome.upstream
          ? `upstream: ${outcome.upstream.url} (from ${outcome.upstream.source}; maxage ${outcome.upstream.maxAgeMs / 1000} s, timeout ${outcome.upstream.timeoutMs / 1000} s; never for ${scopes.join(', ')})`
          : `upstream off: ${outcome.disabled}`;
      bootMark(`storage: ${text}`);
      if (!outcome.ok) logger.error({ detail: text }, 'registry-storage: @{detail}');
      // proxied versions carry the upstream's signatures: /-/npm/v1/keys lists its keys beside ours
      // so a client can verify them through this registry (docs/signatures.md)
      if (outcome.ok && outcome.upstream) {
        const { url, timeoutMs } = outcome.upstream;
        registerUpstreamKeys(lockbPath, () =>
          hasFeature(flags.getConfig().fields, 'OFFLINE') ? [] : fetchUpstreamKeys(url, timeoutMs),
        );
      }
    }, () => undefined);
    return proxy;
  }
}

/** `SELECT 1` within 2 s: the readiness of a node on PostgreSQL. */
async function databaseState(database: Database): Promise<{ ok: boolean; state: string }> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      database.query('SELECT 1', [], 'ready-ping'),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error('no answer within 2 s')), 2000);
      }),
    ]);
    return { ok: true, state: 'reachable' };
  } catch (error) {
    return { ok: false, state: `unreachable: ${(error as Error).message}` };
  } finally {
    clearTimeout(timer);
  }
}

/** The upstream's `/-/npm/v1/keys`, checked: only well-formed entries are ever published as ours to trust. */
async function fetchUpstreamKeys(upstreamUrl: string, timeoutMs: number): Promise<PublishedKey[]> {
  const answer = await fetch(new URL('-/npm/v1/keys', upstreamUrl.endsWith('/') ? upstreamUrl : `${upstreamUrl}/`), {
    headers: { accept: 'application/json' },
    signal: AbortSignal.timeout(timeoutMs),
  });
  if (answer.status === 404) return []; // an upstream that signs nothing
  if (!answer.ok) throw new Error(`upstream keys answered ${answer.status}`);
  const body = (await answer.json()) as { keys?: unknown };
  if (!Array.isArray(body.keys)) throw new Error('upstream keys: no keys array');
  return body.keys.filter(
    (key): key is PublishedKey =>
      typeof key === 'object' && key !== null &&
      typeof (key as PublishedKey).keyid === 'string' && typeof (key as PublishedKey).key === 'string' &&
      (key as PublishedKey).keytype === SIGNING_KEY_TYPE && (key as PublishedKey).scheme === SIGNING_KEY_TYPE &&
      ((key as PublishedKey).expires === null || typeof (key as PublishedKey).expires === 'string'),
  );
}
