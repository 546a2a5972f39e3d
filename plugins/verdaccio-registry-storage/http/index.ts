/**
 * `middlewares: { registry-storage-http: {} }` — the storage part's second Verdaccio entry point
 * (a `store:` plugin cannot register routes). Loaded through
 * `plugins/verdaccio-registry-storage-http/package.json`.
 *
 * Options (all optional; prefixed because Verdaccio 6 merges the whole config into them):
 *   packument_cache: false        turn the packument response cache off (the publish guard stays)
 *   fast_path: false              answer cache hits through Verdaccio's whole middleware stack (fast-path.ts)
 *   packument_cache_entries: 1000 most cached responses
 *   packument_cache_mb: 64        most bytes of cached responses (bodies + gzip variants)
 *   body_limit_kb: 64             every JSON body except an authorised publish (that one: max_body_size)
 *   headers_timeout_s: 30         request headers complete within this (then 408 + close)
 *   request_timeout_s: 300        a whole request (a large publish body too) arrives within this
 *   idle_timeout_s: 120           a socket silent both ways this long is closed (keep-alive: server.keepAliveTimeout)
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import type { Server } from 'node:http';
import type { Application } from 'express';
import type { Config, Logger } from '@verdaccio/types';
import { bootMark, bootRegistry, mergePublishedKeys, registryEvents, registryMetrics, startAuditTrail, upstreamKeysProvider, type RegistryMetrics, type SigningKeyRing } from '../../registry-core/index';
import { verifyRegistryToken } from '../../registry-core/token-verifier';
import { openSigningRing, resolveStoragePaths } from '../plugin';
import { announcePluginLoaded } from '../../registry-core/plugin-presence';
import { storePortOf } from '../store-port';
import { adaptFastPathHost, adaptPackumentRender, adaptStorageHttpHost, configuredMaxBodySize, createPublishVerdict, replaceAppJsonParser } from '../verdaccio-adapter';
import { createFastPath } from './fast-path';
import { DEFAULT_BODY_LIMIT_KB, createBodyLimitParser, formatMb, maxTarballBytes, parseSize, type BodyLimits } from './body-limit';
import { DEFAULT_SERVER_LIMITS, applyServerLimits, type ServerLimits } from './server-limits';
import { ResponseCache } from './response-cache';
import { createPackumentRender, createStorageHttpHandler } from './routes';
import { createSearchHandler } from './search-source';
import { addAccessRoutes } from './access-routes';
import { registerPackageOwners } from '../../registry-core/package-owners';

/** npm's registry keys (docs/signatures.md): what `npm audit signatures` and pacote verify `dist.signatures` with. */
export const KEYS_PATH = '/-/npm/v1/keys';

/** npm search (libnpmsearch): `GET /-/v1/search?text=…&size=…&from=…`. */
export const SEARCH_PATH = '/-/v1/search';

export interface StorageHttpOptions {
  packumentCache: boolean;
  fastPath: boolean;
  maxEntries: number;
  maxBytes: number;
  bodyLimitBytes: number;
  server: ServerLimits;
}

/** Node publishes this with `{ server }` when any server starts listening, before 'listening'. */
const LISTEN_START = 'tracing:net.server.listen:asyncStart';

const DEFAULTS = { entries: 1000, mb: 64 };

/** After 'listening': the start-up probe's first /-/ping is answered before fetch's module is loaded. */
const UNDICI_PRELOAD_DELAY_MS = 30;

function positiveInteger(value: unknown, key: string, fallback: number, max: number): number {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1 || value > max) {
    throw new Error(`registry-storage-http: \`${key}\` must be a whole number from 1 to ${max} (got ${JSON.stringify(value)})`);
  }
  return value;
}

export function parseStorageHttpOptions(pluginConfig: unknown): StorageHttpOptions {
  const config = (pluginConfig ?? {}) as Record<string, unknown>;
  const enabled = config.packument_cache;
  if (enabled !== undefined && enabled !== null && typeof enabled !== 'boolean') {
    throw new Error(`registry-storage-http: \`packument_cache\` must be true or false (got ${JSON.stringify(enabled)})`);
  }
  const fast = config.fast_path;
  if (fast !== undefined && fast !== null && typeof fast !== 'boolean') {
    throw new Error(`registry-storage-http: \`fast_path\` must be true or false (got ${JSON.stringify(fast)})`);
  }
  return {
    packumentCache: enabled !== false,
    fastPath: fast !== false,
    maxEntries: positiveInteger(config.packument_cache_entries, 'packument_cache_entries', DEFAULTS.entries, 1_000_000),
    maxBytes: positiveInteger(config.packument_cache_mb, 'packument_cache_mb', DEFAULTS.mb, 16_384) * 1024 * 1024,
    bodyLimitBytes: positiveInteger(config.body_limit_kb, 'body_limit_kb', DEFAULT_BODY_LIMIT_KB, 1024 * 1024) * 1024,
    server: parseServerLimits(config),
  };
}

function parseServerLimits(config: Record<string, unknown>): ServerLimits {
  const seconds = (key: string, fallbackMs: number): number => positiveInteger(config[key], key, fallbackMs / 1000, 86_400) * 1000;
  const limits = {
    headersTimeoutMs: seconds('headers_timeout_s', DEFAULT_SERVER_LIMITS.headersTimeoutMs),
    requestTimeoutMs: seconds('request_timeout_s', DEFAULT_SERVER_LIMITS.requestTimeoutMs),
    idleTimeoutMs: seconds('idle_timeout_s', DEFAULT_SERVER_LIMITS.idleTimeoutMs),
  };
  if (limits.headersTimeoutMs > limits.requestTimeoutMs) {
    throw new Error('registry-storage-http: `headers_timeout_s` must not exceed `request_timeout_s` (headers are part of the request)');
  }
  return limits;
}

export default class RegistryStorageHttpPlugin {
  readonly options: StorageHttpOptions;
  /** The live cache (null until registered, or when off): tests and the boot line read its stats. */
  cache: ResponseCache | null = null;
  /** The body limits in force (null until registered). */
  bodyLimits: BodyLimits | null = null;
  readonly #config: Config;
  readonly #logger: Logger;
  readonly #lockbPath: string;
  readonly #metrics: RegistryMetrics;
  #app: Application | undefined;
  #hasUpstream = false;

  constructor(pluginConfig: unknown, options: { config: Config; logger: Logger }) {
    // The first of our plugins to load prepares registry.lockb/.env.local and arms the presence guard (idempotent).
    this.#lockbPath = bootRegistry(options.config, process.env).lockbPath;
    this.#metrics = registryMetrics(this.#lockbPath);
    this.options = parseStorageHttpOptions(pluginConfig);
    this.#config = options.config;
    this.#logger = options.logger;
    // the server Verdaccio creates is only reachable when it starts listening
    diagnosticsChannel.subscribe(LISTEN_START, this.#onListenStart);
    announcePluginLoaded('storage-http', this.options.packumentCache ? 'packument cache requested' : 'packument cache off by config');
  }

  /** Synchronous on purpose: routes added after an await would land behind Verdaccio's 404. */
  register_middlewares(app: Application, auth: unknown, storage: unknown): void {
    this.#app = app;
    const publishBytes = parseSize(configuredMaxBodySize(this.#config), 'max_body_size');
    const limits: BodyLimits = { smallBytes: Math.min(this.options.bodyLimitBytes, publishBytes), publishBytes };
    replaceAppJsonParser(app, createBodyLimitParser({ limits, publishVerdict: createPublishVerdict(auth) }));
    this.bodyLimits = limits;
    bootMark(
      `storage-http: bodies ≤ ${Math.round(limits.smallBytes / 1024)} KB before parsing, publish ≤ ${formatMb(publishBytes)} (tarballs up to ~${formatMb(maxTarballBytes(publishBytes))})`,
    );
    const host = adaptStorageHttpHost(auth, storage, this.#config, storePortOf(resolveStoragePaths(this.#config as unknown as Record<string, unknown>).lockbPath));
    this.#hasUpstream = host.upstream !== null;
    const off: string[] = [];
    if (!this.options.packumentCache) off.push('packument_cache: false in config.yaml');
    if (host.packumentRevision === null) off.push(host.storeProblem);
    off.push(...host.cacheBlockers);
    this.cache = off.length === 0 ? new ResponseCache({ maxEntries: this.options.maxEntries, maxBytes: this.options.maxBytes }) : null;
    // npm's search result shape, access rules asked per package (Verdaccio's own route has no version/date/total)
    app.get(SEARCH_PATH, createSearchHandler({ storage, host, warn: (text) => this.#logger.warn({ detail: text }, 'registry-storage-http: @{detail}') }));
    // npm access list packages|collaborators, get status (docs/trusted-publishing.md)
    addAccessRoutes(app, { storage, host, warn: (text) => this.#logger.warn({ detail: text }, 'registry-storage-http: @{detail}') });
    // the maintainers, for the auth plugin's trusted-publisher rules (core seam registry-core/package-owners.ts)
    const ownerStore = host.ownerStore;
    if (ownerStore !== null) registerPackageOwners(this.#lockbPath, async (name) => (await ownerStore.owners(name))?.map((m) => m.name) ?? null);
    const merged = this.#config as unknown as Record<string, unknown>;
    const ring: SigningKeyRing | null = openSigningRing(merged);
    const { lockbPath } = resolveStoragePaths(merged);
    app.get(KEYS_PATH, (_req, res) => {
      if (ring === null) {
        res.status(404).json({ error: 'registry signatures are off (signing: false in config.yaml)' });
        return;
      }
      res.setHeader('Cache-Control', 'no-cache');
      const own = ring.published().keys;
      const upstream = upstreamKeysProvider(lockbPath); // proxied versions carry the upstream's signatures
      if (upstream === undefined) {
        res.json({ keys: own });
        return;
      }
      Promise.resolve()
        .then(upstream)
        .then(
          (keys) => res.json({ keys: mergePublishedKeys(own, keys) }),
          (error: unknown) => {
            // our own keys still verify everything local; say that the upstream's are missing
            this.#logger.warn({ detail: error instanceof Error ? error.message : String(error) }, 'registry-storage-http: upstream signing keys unavailable: @{detail}');
            res.setHeader('Warning', '199 - "upstream signing keys unavailable"');
            res.json({ keys: own });
          },
        );
    });
    startAuditTrail(lockbPath, (text) => this.#logger.error({ detail: text }, 'registry-storage-http: @{detail}'));
    app.use(
      createStorageHttpHandler({
        host,
        events: registryEvents(lockbPath),
        cache: this.cache,
        warn: (text) => this.#logger.warn({ detail: text }, 'registry-storage-http: @{detail}'),
        onCacheLookup: (hit) => this.#metrics.inc('registry_packument_cache_requests_total', { outcome: hit ? 'hit' : 'miss' }),
      }),
    );
    this.#installFastPath(app, auth, storage, host);
    bootMark(`storage-http: publish guard on PUT /:package, npm search on GET ${SEARCH_PATH}, registry keys on GET ${KEYS_PATH}`);
    bootMark(host.ownerStore === null ? `storage-http: package ownership NOT enforced: ${host.storeProblem}` : 'storage-http: package ownership enforced (maintainers, admins: registry-admin)');
    if (this.cache) {
      bootMark(`storage-http: packument cache on (${this.options.maxEntries} entries, ${Math.round(this.options.maxBytes / 1024 / 1024)} MB)`);
    } else {
      const why = off.join('; ');
      bootMark(`storage-http: packument cache off: ${why}`);
      // switched off by the config on purpose is not worth a warning; switched off by circumstance is
      if (this.options.packumentCache) this.#logger.warn({ detail: why }, 'registry-storage-http: packument cache off: @{detail}');
    }
  }

  /** Cache hits (packuments, held tarballs) and whoami answered before Verdaccio's middlewares (fast-path.ts). */
  #installFastPath(app: Application, auth: unknown, storage: unknown, host: ReturnType<typeof adaptStorageHttpHost>): void {
    const setup = adaptFastPathHost(app, auth, this.#config, this.#logger, host);
    const off = [...setup.blockers];
    if (!this.options.fastPath) off.unshift('fast_path: false in config.yaml');
    const revisionOf = host.packumentRevision;
    if (revisionOf === null) off.push(host.storeProblem);
    if (off.length > 0 || revisionOf === null) {
      bootMark(`storage-http: fast path off: ${off.join('; ')}`);
      return;
    }
    const upstream = host.upstream;
    const lockbPath = this.#lockbPath;
    const hits = this.#metrics.counter('registry_packument_cache_requests_total', { outcome: 'hit' });
    const misses = this.#metrics.counter('registry_packument_cache_requests_total', { outcome: 'miss' });
    const port = storePortOf(resolveStoragePaths(this.#config as unknown as Record<string, unknown>).lockbPath);
    // misses of local packuments (the first GET after a publish) rendered without Verdaccio's app stack
    const renderByVerdaccio = adaptPackumentRender(storage, this.#config);
    setup.install(
      createFastPath({
        host: setup.host,
        cache: this.cache,
        revisionOf,
        upstreamServesHeld: upstream !== null ? (name) => upstream.servesHeldCopy(name) : null,
        tarballBytes: port ? (name, fileName, stamp) => port.heldTarballBytes(name, fileName, stamp) : null,
        tarballBytesNow: port ? (name, fileName, stamp) => port.heldTarballBytesNow(name, fileName, stamp) : null,
        verifyToken: (token, use) => verifyRegistryToken(lockbPath, token, use),
        onCacheLookup: (hit) => (hit ? hits : misses).inc(),
        render: this.cache === null || renderByVerdaccio === null ? null : createPackumentRender(host.ownerStore, renderByVerdaccio),
      }),
    );
    bootMark(`storage-http: fast path on (cached packuments${this.cache ? '' : ' — cache off'}, held tarballs, whoami with a token) before Verdaccio's middlewares`);
  }

  readonly #onListenStart = (message: unknown): void => {
    const server = (message as { server?: Server }).server;
    if (!server || !this.#app || !server.listeners('request').includes(this.#app as never)) return;
    applyServerLimits(server, this.options.server);
    if (this.#hasUpstream) {
      // Node loads fetch's implementation (undici) on its first use: 25–130 ms of blocked event loop
      // measured here, which the first proxied request of every fresh server paid (the cold
      // install rows, issue 12). Loaded shortly after 'listening' instead — not before, so start-up
      // and the first /-/ping are not delayed; `Headers` is the same lazily loaded module.
      server.once('listening', () => setTimeout(() => void new Headers(), UNDICI_PRELOAD_DELAY_MS).unref());
    }
    const { headersTimeoutMs, requestTimeoutMs, idleTimeoutMs } = this.options.server;
    bootMark(`storage-http: headers within ${headersTimeoutMs / 1000} s, requests within ${requestTimeoutMs / 1000} s, idle sockets closed after ${idleTimeoutMs / 1000} s`);
  };
}
