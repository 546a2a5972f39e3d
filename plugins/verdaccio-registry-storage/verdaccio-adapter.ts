/**
 * The Verdaccio 6.10.4 boundary: the legacy callback storage contract (`IPluginStorage` /
 * `ILocalPackageManager` of @verdaccio/types 10.8.0) translated onto `PackageService` promises.
 * Every `any` Verdaccio hands us is typed here and nowhere else.
 *
 * Error contract Verdaccio relies on (src/lib/local-storage.ts): "not found" = code 404/ENOENT,
 * "exists" = code 409/EEXISTS; anything else with an HTTP `status` reaches the client as is.
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { PassThrough, type Readable } from 'node:stream';
import { authAllows, isRecord, rawRemoteUserOf, verdaccioAcceptsHost } from '../verdaccio-boundary/index';
import { verdaccioConfig, verdaccioCore, verdaccioUrl } from '../verdaccio-boundary/verdaccio-modules';
import type { Request } from 'express';
import type { Config, ILocalPackageManager, IPluginStorage, IPackageStorage, Logger, Package, Token, onEndSearchPackage, onSearchPackage, onValidatePackage } from '@verdaccio/types';
import { ClearingMemo } from '../registry-core/bounded-cache';
import { currentRequestActor, fileSystemFailure } from '../registry-core/index';
import { StorageError } from './errors';
import { type Actor, type Maintainer, actorOf } from './owners';
import type { PackageService } from './package-service';
import { releaseAttachment } from './publish-intent';
import type { Manifest, TarballWriter } from './store';
import type { TokenLedger } from './tokens';
import type { StorePort, UpstreamPort } from './store-port';
import type { FastPathHandler, FastPathHost, ReadUser } from './http/fast-path';

/* eslint-disable @typescript-eslint/no-explicit-any -- the Verdaccio boundary */
type VerdaccioCallback = (err: any, ...results: any[]) => void;
type UpdateHandler = (manifest: any, cb: (err: any) => void) => void;
type WriteCallback = (name: string, manifest: any, cb: (err: any) => void) => void;
type Transform = (manifest: any) => any;
/* eslint-enable @typescript-eslint/no-explicit-any */

interface HttpLikeError extends Error {
  status: number;
}

function hasStatus(error: unknown): error is HttpLikeError {
  return error instanceof Error && typeof (error as { status?: unknown }).status === 'number';
}

/** StorageError → the http-errors object Verdaccio expects; other HTTP errors pass through. */
export function toVerdaccioError(error: unknown, logger?: Logger): Error {
  if (error instanceof StorageError) {
    switch (error.status) {
      case 403:
        return verdaccioCore.errorUtils.getForbidden(error.message);
      case 404:
        return verdaccioCore.errorUtils.getNotFound(error.message);
      case 409:
        return verdaccioCore.errorUtils.getConflict(error.message);
      case 503:
        return verdaccioCore.errorUtils.getServiceUnavailable(error.message);
      case 400:
        return verdaccioCore.errorUtils.getBadRequest(error.message);
      default:
        // ERR_STORAGE_DB names the database file: the detail is for the log only
        logger?.error({ detail: error.message }, 'registry-storage: @{detail}');
        return verdaccioCore.errorUtils.getInternalError(`internal storage error ${error.code} (details are in the registry log)`);
    }
  }
  if (hasStatus(error)) return error;
  const detail = error instanceof Error ? (error.stack ?? error.message) : String(error);
  // errno messages name the server's paths: the client gets what happened, the log the detail
  const failure = fileSystemFailure(error);
  if (failure) {
    logger?.error({ detail }, 'registry-storage: @{detail}');
    return verdaccioCore.errorUtils.getCode(failure.status, failure.message);
  }
  logger?.error({ detail }, 'registry-storage: @{detail}');
  return verdaccioCore.errorUtils.getInternalError('internal storage error (details are in the registry log)');
}

/** What Verdaccio's addTarball pipes into: a PassThrough with done()/abort(). */
export class UploadStream extends PassThrough {
  done(): void {}
  abort(): void {}
}

/** What Verdaccio's getTarball reads: emits 'content-length', 'open', then the bytes. */
export class DownloadStream extends PassThrough {
  abort(): void {}
}

function later(fn: () => void): void {
  process.nextTick(fn);
}

export interface AdapterDeps {
  service: PackageService;
  tokens: TokenLedger;
  logger: Logger;
}

/** Verdaccio's manifests are our `Manifest` (a loose JSON shape); this is the one place that says so. */
function asManifest(value: Package): Manifest {
  return value as unknown as Manifest;
}

/** One per Verdaccio call to getPackageStorage(name): cheap, stateless. */
export class PackageHandler implements ILocalPackageManager {
  readonly logger: Logger;
  private readonly name: string;
  private readonly deps: AdapterDeps;

  constructor(name: string, deps: AdapterDeps) {
    this.name = name;
    this.deps = deps;
    this.logger = deps.logger;
  }

  private settle(promise: Promise<unknown>, cb: VerdaccioCallback, withResult = false): void {
    promise.then(
      (result) => (withResult ? cb(null, result) : cb(null)),
      (error: unknown) => cb(toVerdaccioError(error, this.logger)),
    );
  }

  readPackage(_name: string, cb: VerdaccioCallback): void {
    // Outside any request (the auth middleware runs every request, anonymous ones too, inside a
    // request context) the reader is Verdaccio's own start-up search reindex, which reads every
    // packument once: those texts are not kept in the store's cache (≈ 25 MB resident after a
    // restart with 3,000 packages; issue 17). Requests keep filling it as before.
    const keep = currentRequestActor() !== undefined;
    this.settle(this.deps.service.readPackage(this.name, keep ? undefined : { keep: false }), cb, true);
  }

  createPackage(_name: string, manifest: Package, cb: VerdaccioCallback): void {
    this.settle(this.deps.service.createPackage(this.name, asManifest(manifest)), cb);
  }

  savePackage(_name: string, manifest: Package, cb: VerdaccioCallback): void {
    this.settle(this.deps.service.savePackage(this.name, asManifest(manifest)), cb);
  }

  updatePackage(_name: string, handler: UpdateHandler, onWrite: WriteCallback, transform: Transform, onEnd: VerdaccioCallback): void {
    const mutate = (manifest: Manifest): Promise<Manifest> =>
      new Promise<Manifest>((resolve, reject) => {
        handler(manifest, (err) => {
          if (err) reject(err);
          else {
            try {
              resolve(transform(manifest) as Manifest);
            } catch (error) {
              reject(error);
            }
          }
        });
      });
    const write = (manifest: Manifest): Promise<void> =>
      new Promise<void>((resolve, reject) => onWrite(this.name, manifest, (err) => (err ? reject(err) : resolve())));
    this.settle(this.deps.service.updatePackage(this.name, mutate, write), onEnd);
  }

  deletePackage(fileName: string, cb: VerdaccioCallback): void {
    this.settle(this.deps.service.deleteFile(this.name, fileName), cb);
  }

  removePackage(cb: VerdaccioCallback): void {
    this.settle(this.deps.service.removeContainer(this.name), cb);
  }

  writeTarball(fileName: string): UploadStream {
    const upload = new UploadStream();
    let writer: TarballWriter;
    try {
      writer = this.deps.service.uploadTarball(this.name, fileName);
    } catch (error) {
      later(() => upload.emit('error', toVerdaccioError(error, this.logger)));
      upload.resume(); // drain whatever is piped in
      return upload;
    }
    // exactly one of 'success' / 'error' reaches Verdaccio (it answers the request on either)
    let settled = false;
    const fail = (error: unknown): void => {
      if (settled) return;
      settled = true;
      upload.unpipe(writer.stream);
      upload.resume();
      void writer.abort();
      upload.emit('error', toVerdaccioError(error, this.logger));
    };
    writer.stream.on('open', () => upload.emit('open'));
    writer.stream.on('error', fail);
    upload.pipe(writer.stream);
    upload.done = () => {
      // Verdaccio calls done() right after it wrote the decoded tarball: the body's base64 copy is dead weight from here
      releaseAttachment(this.name, fileName);
      const commit = (): void => {
        if (settled) return;
        writer.commit().then(
          () => {
            if (settled) return;
            settled = true;
            upload.emit('success');
          },
          fail,
        );
      };
      if (writer.stream.writableFinished) commit();
      else writer.stream.once('finish', commit);
    };
    upload.abort = () => {
      if (settled) return;
      settled = true;
      upload.unpipe(writer.stream);
      upload.resume();
      void writer.abort();
    };
    return upload;
  }

  readTarball(fileName: string): DownloadStream {
    const out = new DownloadStream();
    let source: Readable | null = null;
    let aborted = false;
    out.abort = () => {
      aborted = true;
      source?.destroy();
    };
    this.deps.service.readTarball(this.name, fileName).then(
      (reader) => {
        if ('bytes' in reader) {
          if (aborted) return;
          out.emit('content-length', reader.size);
          out.emit('open');
          out.end(reader.bytes); // one buffer, no extra stream per request
          return;
        }
        if (aborted) {
          reader.stream.destroy();
          return;
        }
        source = reader.stream;
        reader.stream.on('error', (error) => out.emit('error', toVerdaccioError(error, this.logger)));
        out.emit('content-length', reader.size);
        out.emit('open');
        reader.stream.pipe(out);
      },
      (error: unknown) => out.emit('error', toVerdaccioError(error, this.logger)),
    );
    return out;
  }
}

export interface StorageConfig {
  [key: string]: unknown;
}

/** The plugin object Verdaccio keeps: package list, secret, search, tokens, per-package handlers. */
export class StoragePluginAdapter implements IPluginStorage<StorageConfig> {
  readonly logger: Logger;
  readonly config: StorageConfig & Config;
  protected readonly deps: AdapterDeps;

  constructor(config: StorageConfig & Config, deps: AdapterDeps) {
    this.config = config;
    this.deps = deps;
    this.logger = deps.logger;
  }

  getPackageStorage(packageName: string): IPackageStorage {
    return new PackageHandler(packageName, this.deps);
  }

  get(cb: VerdaccioCallback): void {
    this.deps.service.listNames().then(
      (list) => cb(null, list),
      (error: unknown) => cb(toVerdaccioError(error, this.logger)),
    );
  }

  add(name: string, cb: VerdaccioCallback): void {
    this.deps.service.addName(name).then(
      () => cb(null),
      (error: unknown) => cb(toVerdaccioError(error, this.logger)),
    );
  }

  remove(name: string, cb: VerdaccioCallback): void {
    this.deps.service.removeName(name).then(
      () => cb(null),
      (error: unknown) => cb(toVerdaccioError(error, this.logger)),
    );
  }

  getSecret(): Promise<string> {
    return this.deps.service.getSecret();
  }

  setSecret(secret: string): Promise<void> {
    return this.deps.service.setSecret(secret);
  }

  search(onPackage: onSearchPackage, onEnd: onEndSearchPackage, validateName: onValidatePackage): void {
    const emit = (item: { name: string; path: string; time: number }): Promise<void> =>
      new Promise<void>((resolve, reject) => {
        // Verdaccio's item type is a Package; search only reads name/path/time
        (onPackage as unknown as (item: object, cb: (err?: unknown) => void) => void)(item, (err) => (err ? reject(err) : resolve()));
      });
    const run = async (): Promise<void> => {
      for (const item of await this.deps.service.listStored()) {
        const bare = item.name.slice(item.name.lastIndexOf('/') + 1);
        if (!validateName(bare)) continue;
        await emit({ name: item.name, path: item.name, time: item.mtimeMs });
      }
    };
    run().then(
      () => onEnd(null),
      (error: unknown) => onEnd(error),
    );
  }

  saveToken(token: Token): Promise<void> {
    return this.deps.tokens.save(token);
  }

  readTokens(filter: { user: string }): Promise<Token[]> {
    return this.deps.tokens.read(filter.user);
  }

  deleteToken(user: string, tokenKey: string): Promise<void> {
    return this.deps.tokens.delete(user, tokenKey);
  }
}

// ---- the part's middleware entry (http/): Verdaccio's Auth, Storage and Config, typed --------
/* eslint-disable @typescript-eslint/no-explicit-any -- the Verdaccio boundary of the middleware entry */

export type HttpAction = 'access' | 'publish' | 'unpublish';

/** What the HTTP entry may ask our store plugin about owners (null when the store is another one). */
export interface OwnerStore {
  owners(name: string): Promise<Maintainer[] | null>;
  change(name: string, maintainers: Maintainer[], actor: Actor): Promise<void>;
}

export type { UpstreamPort } from './store-port';

/** What the middleware entry may use of Verdaccio's objects (register_middlewares' auth/storage, the constructor's config). */
export interface StorageHttpHost {
  /** OUR store plugin's packument stamp (see packumentRevision above); null when the store is another one. */
  readonly packumentRevision: ((name: string) => string | null) | null;
  /** OUR store plugin's owner records; null when the store is another one (ownership is then not enforced: boot line). */
  readonly ownerStore: OwnerStore | null;
  /** The authenticated user of the request (Verdaccio's req.remote_user), as an Actor. */
  actor(req: Request): Actor;
  /** Maps a store error to Verdaccio's HTTP status and message. */
  errorAnswer(error: unknown): { status: number; message: string };
  /** OUR store plugin's upstream proxy; null when the store is another one (no proxying: boot line). */
  readonly upstream: UpstreamPort | null;
  /** Why packumentRevision is null; '' when it is not. */
  readonly storeProblem: string;
  /** Configured things that make a packument response depend on more than its file. */
  readonly cacheBlockers: readonly string[];
  /** Verdaccio's forwarded-protocol header (tarball URLs in packuments are built from it). */
  readonly forwardedProtoHeader: string;
  /** OUR store plugin's package list; null when the store is another one. */
  readonly listNames: (() => Promise<string[]>) | null;
  /** OUR store plugin's cleanup after a refused JSON publish (StorePort.publishFailed); null when the store is another one. */
  readonly publishFailed: ((name: string, fileName: string) => Promise<void>) | null;
  /** Verdaccio's auth chain (auth.allow_<action>) for req.remote_user; false on any denial or error. */
  allowed(action: HttpAction, packageName: string, req: Request, done: (allowed: boolean) => void): void;
  /**
   * Whether Verdaccio can build public URLs from this Host header. @verdaccio/url's
   * getPublicUrl THROWS for a Host its isHost refuses ("bad_host", "a b") or that `new URL()`
   * refuses ("!"): inside the packument route that throw happens in a storage callback, so one
   * anonymous GET kills the process.
   */
  hostHeaderUsable(host: string | undefined): boolean;
  /** Whether the app-wide auth middleware set req.remote_user (it always does in 6.10.4). */
  hasRemoteUser(req: Request): boolean;
  /** True when Verdaccio's API router would do more for this request than its route does (no remote_user yet, a generated-token key to enforce). */
  needsVerdaccioAuth(req: Request): boolean;
}

/**
 * The same request as an anonymous user would make it (Verdaccio's anonymous remote user), for
 * asking the access rules whether a package is public (`npm access get status`).
 */
export function asAnonymous(req: Request): Request {
  return Object.create(req, { remote_user: { value: verdaccioConfig.createAnonymousRemoteUser(), enumerable: true } }) as Request;
}

/** Verdaccio's own package-name check for route params (validatePackage, no "*"): names it refuses never reach a handler. */
export function verdaccioAcceptsPackageName(name: string): boolean {
  return verdaccioCore.validationUtils.validatePackage(name) && !name.includes('*');
}

function proxiedUplinks(config: any): string[] {
  const uplinks = config?.uplinks && typeof config.uplinks === 'object' ? Object.keys(config.uplinks) : [];
  if (uplinks.length === 0) return [];
  const proxied = new Set<string>();
  const packages = config?.packages && typeof config.packages === 'object' ? config.packages : {};
  for (const rule of Object.values<any>(packages)) {
    const proxy = rule?.proxy;
    const names: unknown[] = Array.isArray(proxy) ? proxy : typeof proxy === 'string' ? proxy.split(/\s+/) : [];
    for (const name of names) if (typeof name === 'string' && uplinks.includes(name)) proxied.add(name);
  }
  return [...proxied];
}

/**
 * `port` is what our store plugin registered for this registry (store-port.ts), undefined when the
 * configured store is another plugin; `storage` (Verdaccio's Storage) is read only for its
 * configured filters.
 */
export function adaptStorageHttpHost(auth: unknown, storage: unknown, config: unknown, port: StorePort | undefined): StorageHttpHost {
  const s = storage as any;
  const c = config as any;
  const allows = authAllows(auth, 'registry-storage-http');
  const blockers: string[] = [];
  const filters = c?.filters && typeof c.filters === 'object' ? Object.keys(c.filters) : [];
  if (filters.length > 0 || (Array.isArray(s?.filters) && s.filters.length > 0)) blockers.push(`filters: plugins configured (${filters.join(', ') || 'loaded'}) may rewrite packuments`);
  const uplinks = proxiedUplinks(c);
  if (uplinks.length > 0) blockers.push(`packages: proxy to uplinks (${uplinks.join(', ')}) merges remote metadata into packuments`);
  const header = process.env.VERDACCIO_FORWARDED_PROTO;
  // getPublicUrl ignores the Host header when VERDACCIO_PUBLIC_URL is a valid URL
  const publicUrlFixed = verdaccioUrl.validateURL(process.env.VERDACCIO_PUBLIC_URL);
  const hostVerdicts = new Map<string, boolean>();
  const urlPrefix = typeof c?.url_prefix === 'string' ? c.url_prefix : '';
  return {
    packumentRevision: port ? (name: string) => port.packumentRevision(name) : null,
    ownerStore: port ? { owners: (name: string) => port.owners(name), change: (name: string, maintainers: Maintainer[], actor: Actor) => port.changeOwners(name, maintainers, actor) } : null,
    listNames: port ? () => port.listNames() : null,
    publishFailed: port ? (name: string, fileName: string) => port.publishFailed(name, fileName) : null,
    actor(req) {
      return actorOf(rawRemoteUserOf(req));
    },
    errorAnswer(error) {
      const mapped = toVerdaccioError(error) as Error & { status?: number };
      return { status: typeof mapped.status === 'number' ? mapped.status : 500, message: mapped.message };
    },
    upstream: port ? port.upstream : null,
    storeProblem: port ? '' : 'the store plugin is not registry-storage (no registry-storage store registered for this registry.lockb)',
    cacheBlockers: blockers,
    forwardedProtoHeader: typeof header === 'string' && header !== '' ? header.toLowerCase() : 'x-forwarded-proto',
    allowed(action, packageName, req, done) {
      const user: unknown = (req as any).remote_user;
      if (!isRecord(user)) {
        done(false);
        return;
      }
      allows(action, packageName, user, done);
    },
    hostHeaderUsable(host) {
      if (publicUrlFixed || host === undefined || host === '') return true;
      let usable = hostVerdicts.get(host);
      if (usable === undefined) {
        // the very function Verdaccio calls; only the Host decides whether it throws (the protocol is normalised to http/https)
        usable = verdaccioAcceptsHost(host, urlPrefix);
        if (hostVerdicts.size < 256) hostVerdicts.set(host, usable); // a few real hosts; never grows with hostile ones
      }
      return usable;
    },
    hasRemoteUser(req) {
      const user = (req as any).remote_user;
      return Boolean(user) && typeof user === 'object';
    },
    needsVerdaccioAuth(req) {
      const user = rawRemoteUserOf(req);
      return user === undefined || Boolean((user.token as { key?: unknown } | undefined)?.key);
    },
  };
}

// ---- body limits (http/body-limit.ts): Verdaccio's JSON parser slot and its auth, typed --------
/* eslint-disable @typescript-eslint/no-explicit-any -- Express 4 / Verdaccio internals */

/**
 * Puts `handler` in the place of the app-wide JSON parser Verdaccio 6.10.4 registers
 * (`registerBodyParser`: `express.json({limit: max_body_size})` right before its credential
 * middleware). Middleware plugins are registered after it, so a plugin's own `app.use` would run
 * after every body was already buffered and parsed. The layer is found the way Verdaccio's own
 * `hasBodyParser` finds it (the handle named `jsonParser` in the app's router stack).
 * Throws when it is not there: running without our limits must not happen silently.
 */
export function replaceAppJsonParser(app: unknown, handler: (req: any, res: any, next: any) => void): void {
  const stack: any[] | undefined = (app as any)?._router?.stack;
  const layers = Array.isArray(stack) ? stack.filter((layer) => layer?.handle?.name === 'jsonParser' || layer?.name === 'jsonParser') : [];
  if (layers.length !== 1) {
    throw new Error(`registry-storage-http: expected Verdaccio's one app-wide JSON parser before the plugins, found ${layers.length} (unsupported Verdaccio version?)`);
  }
  layers[0].handle = handler;
}

/** `max_body_size` as Verdaccio passes it to express.json (default 10mb). */
export function configuredMaxBodySize(config: unknown): unknown {
  return (config as any)?.max_body_size ?? '10mb';
}

/**
 * Whether the caller may publish `name`, asked before its body is read: Verdaccio's credential
 * middleware (our auth plugin's, or Verdaccio's own) then `auth.allow_publish`, exactly what the
 * publish route does after parsing. The credential middleware may answer by itself (a read-only
 * token's 403): then `done` is never called and nothing else runs.
 */
export function createPublishVerdict(auth: unknown): (name: string, req: any, res: any, done: (verdict: null | { status: number; message: string }) => void) => void {
  const a = auth as any;
  if (typeof a?.apiJWTmiddleware !== 'function' || typeof a?.allow_publish !== 'function') {
    throw new Error('registry-storage-http: Verdaccio passed an auth object without apiJWTmiddleware/allow_publish (unsupported Verdaccio version?)');
  }
  const credentials = a.apiJWTmiddleware();
  const refusal = (error: any, fallback: string): { status: number; message: string } => ({
    status: typeof error?.status === 'number' && error.status >= 400 && error.status < 500 ? error.status : 403,
    message: typeof error?.message === 'string' && error.message !== '' ? error.message : fallback,
  });
  return (name, req, res, done) => {
    const ask = (): void => {
      const user = req.remote_user ?? res.locals?.remote_user;
      let answered = false;
      const finish = (verdict: null | { status: number; message: string }): void => {
        if (answered) return;
        answered = true;
        done(verdict);
      };
      try {
        a.allow_publish({ packageName: name, packageVersion: undefined }, user, (err: unknown, ok: unknown) =>
          finish(!err && ok === true ? null : refusal(err, `not allowed to publish ${name}`)),
        );
      } catch (error) {
        finish(refusal(error, `not allowed to publish ${name}`));
      }
    };
    if (req.remote_user ?? res.locals?.remote_user) ask();
    else credentials(req, res, (err: unknown) => (err ? done(refusal(err, 'authentication failed')) : ask()));
  };
}
/* eslint-enable @typescript-eslint/no-explicit-any */

// ---- the read fast path (http/fast-path.ts): its place in Verdaccio's app, its users, its rules ----
/* eslint-disable @typescript-eslint/no-explicit-any -- Express 4 / Verdaccio internals */

export interface FastPathSetup {
  host: FastPathHost;
  /** Why the fast path must stay off with this configuration (empty: it may run). */
  blockers: string[];
  /** Puts the handler in front of the app: it sees every request before express does (`app.handle`). */
  install(handler: FastPathHandler): void;
}

/**
 * What the fast path needs of Verdaccio 6.10.4 (src/api/index.ts `defineAPI`): the app stack is
 * `query > expressInit > cors() > log > errorReportingMiddleware > [X-Powered-By] > compression >
 * favicon > jsonParser > credentials > plugins > API router`. The fast path runs in front of all
 * of it, express's own request setup included: `app.handle` (what the http.Server's `request`
 * listener, the app function itself, calls) is wrapped, so the server's listener stays the app
 * (the ops part and the dashboard find the server by it) and a declined request goes on to
 * express untouched. express's router alone (query parser, expressInit's two setPrototypeOf,
 * layer matching) cost about as much CPU per cache hit as the rest of the answer (issue 17).
 * Without express, req.protocol and req.ip are computed here with the app's own compiled
 * `trust proxy fn` (express's getters, same rules). The fast path repeats what the skipped
 * middlewares put on a cache hit: cors()'s `Access-Control-Allow-Origin: *`, the X-Powered-By of
 * `user_agent`, compression()'s `Vary`. Verdaccio's request logger is skipped, so the fast path
 * stays off while the log level would print its lines (`http` or more verbose).
 */
export function adaptFastPathHost(app: unknown, auth: unknown, config: unknown, logger: unknown, packumentHost: StorageHttpHost): FastPathSetup {
  const a = auth as any;
  const c = config as any;
  const l = logger as any;
  const blockers: string[] = [];
  const express = app as any;
  const handle: unknown = express?.handle;
  const settings: Record<string, unknown> | undefined = express?.settings;
  // express 4's request getters, with this app's settings (lib/request.js `protocol`, `ip`)
  const expressRequest = typeof express?.request === 'object' && express.request !== null ? Object.getPrototypeOf(express.request) : null;
  const ipGetter = expressRequest === null ? undefined : Object.getOwnPropertyDescriptor(expressRequest, 'ip')?.get;
  if (typeof handle !== 'function' || settings === undefined || typeof ipGetter !== 'function') {
    blockers.push("express's app.handle, settings or request.ip getter was not found (unsupported Verdaccio version?)");
  }
  const trustOf = (): ((address: string | undefined, hop: number) => boolean) => {
    const trust = settings?.['trust proxy fn'];
    return typeof trust === 'function' ? (trust as (address: string | undefined, hop: number) => boolean) : () => false;
  };
  const logsRequests = typeof l?.isLevelEnabled === 'function' ? l.isLevelEnabled('http') === true : true;
  if (logsRequests) blockers.push('the log level prints every request (http or more verbose): Verdaccio\'s request logger must see them');
  if (c?.experiments?.tarball_url_redirect !== undefined) blockers.push('experiments.tarball_url_redirect is set');
  const common: [string, string][] = [];
  if (c?.user_agent) common.push(['X-Powered-By', verdaccioConfig.getUserAgent(c.user_agent)]);
  common.push(['Access-Control-Allow-Origin', '*']);

  // auth.allow_access is a pure function of (rule, user) when the first plugin answering it is the
  // registry auth plugin: it always answers (true or an error), so Verdaccio's chain stops there and
  // its fallback never runs; the rules come from config.yaml `packages:`, read once at start. Answers
  // are then remembered per (package, user, groups): no minimatch of every rule on every request
  const answering = Array.isArray(a?.plugins) ? a.plugins.filter((plugin: any) => typeof plugin?.allow_access === 'function') : [];
  const memoable = answering[0]?.constructor?.name === 'RegistryAuthPlugin';
  // per user (name + groups), then per package: a cache hit builds no key string for the anonymous user
  const decisions = new Map<string, Map<string, boolean>>();
  let remembered = 0;
  const userKeys = new WeakMap<ReadUser, string>();
  const userKeyOf = (user: ReadUser): string => {
    let key = userKeys.get(user);
    if (key === undefined) {
      const remote = user.remote as any;
      key = `${user.name ?? ''}\u0000${(remote?.groups ?? []).join('\u0000')}`;
      userKeys.set(user, key);
    }
    return key;
  };
  const anonymousRemote = verdaccioConfig.createAnonymousRemoteUser();
  const anonymous: ReadUser = { name: null, remote: anonymousRemote };
  const host: FastPathHost = {
    commonHeaders: common,
    anonymous,
    userOf(identity) {
      return { name: identity.user, remote: verdaccioConfig.createRemoteUser(identity.user, [...identity.groups]) };
    },
    mayAccess(name, user, done) {
      const remote = user.remote as any;
      const perUser = memoable ? decisions.get(userKeyOf(user)) : undefined;
      if (perUser !== undefined) {
        const known = perUser.get(name);
        if (known !== undefined) {
          done(known);
          return;
        }
      }
      let answered = false;
      try {
        a.allow_access({ packageName: name, packageVersion: undefined }, remote, (err: unknown, ok: unknown) => {
          if (answered) return;
          answered = true;
          const allowed = !err && ok === true;
          if (memoable) {
            if (remembered >= 4096) {
              decisions.clear();
              remembered = 0;
            }
            const userKey = userKeyOf(user);
            let map = decisions.get(userKey);
            if (map === undefined) {
              map = new Map();
              decisions.set(userKey, map);
            }
            if (!map.has(name)) remembered++;
            map.set(name, allowed);
          }
          done(allowed);
        });
      } catch {
        if (!answered) {
          answered = true;
          done(false);
        }
      }
    },
    attachUser(req, user) {
      // No remote_user for an anonymous caller: every reader of it (remoteUserOf: the ops metrics
      // and DEBUG line) takes a request without one as Verdaccio's anonymous user, and a request the
      // fast path then declines reaches Verdaccio's credential middleware exactly as if the fast
      // path had not run. Making the fresh object per hit was ≈ 1 µs of every anonymous hit (issue 17).
      if (user === anonymous) return;
      const remote = user.remote;
      (req as any).remote_user = remote;
      const res = (req as any).res;
      if (res?.locals) res.locals.remote_user = remote;
    },
    protocolOf(req) {
      // express's req.protocol: the socket's, or the first X-Forwarded-Proto value when the peer is trusted
      const socket = req.socket as any;
      const proto = socket?.encrypted ? 'https' : 'http';
      if (!trustOf()(socket?.remoteAddress, 0)) return proto;
      const raw = req.headers['x-forwarded-proto'];
      const header = (Array.isArray(raw) ? raw[0] : raw) || proto;
      const comma = header.indexOf(',');
      return comma !== -1 ? header.substring(0, comma).trim() : header.trim();
    },
    clientIpOf(req) {
      // express's req.ip getter (proxy-addr with the app's trust function), on a view of this request
      const view = { app: express, connection: req.socket, socket: req.socket, headers: req.headers };
      return ((ipGetter as (this: unknown) => string | undefined).call(view) as string | undefined) ?? req.socket.remoteAddress ?? '';
    },
    hostHeaderUsable: (hostHeader) => packumentHost.hostHeaderUsable(hostHeader),
    acceptsPackageName: verdaccioAcceptsPackageName,
    forwardedProtoHeader: packumentHost.forwardedProtoHeader,
  };
  return {
    host,
    blockers,
    install(handler) {
      if (typeof handle !== 'function') throw new Error('registry-storage-http: no place for the fast path in the app');
      // an own property shadows express's prototype method; `app(req, res)` looks it up per request
      express.handle = function fastPathFront(this: unknown, req: any, res: any, callback: unknown): void {
        handler(req, res, () => handle.call(this, req, res, callback));
      };
    },
  };
}
/* eslint-enable @typescript-eslint/no-explicit-any */


// ---- the fast path's render of a packument miss (http/fast-path.ts, issue 17) --------------------
/* eslint-disable @typescript-eslint/no-explicit-any -- Verdaccio internals */

/** What Verdaccio's packument route and final() read of the request (src/api/endpoint/api/package.ts). */
export interface PackumentRenderRequest {
  readonly accept: string | undefined;
  /** req.protocol as express computes it (FastPathHost.protocolOf) */
  readonly protocol: string;
  readonly headers: IncomingHttpHeaders;
  readonly remoteAddress: string | undefined;
  /** handed to Verdaccio's storage.getPackage as its `req` (read only for uplinks, which a cached configuration has none of) */
  readonly req: IncomingMessage;
}

/** Verdaccio's 200 for `GET /<name>`, before our `maintainers` are put back (routes.ts withMaintainers). */
export interface RenderedByVerdaccio {
  /** final()'s `JSON.stringify(body, undefined, '  ') + '\n'` */
  readonly text: string;
  /** what express's res.send leaves in Content-Type (charset added) */
  readonly contentType: string;
  /** final()'s quoted MD5 of `text` */
  readonly etag: string;
  /** the full document (application/json), where routes.ts puts the maintainers back; false: abbreviated */
  readonly full: boolean;
}

export type PackumentRender = (name: string, request: PackumentRenderRequest, done: (rendered: RenderedByVerdaccio | null) => void) => void;

const ABBREVIATED_MEDIA = 'application/vnd.npm.install-v1+json';

/**
 * Verdaccio 6.10.4's packument route for `GET /:package` (no version) and final(), without its
 * app stack: its own `storage.getPackage` (the local read, uplink sync, filters, dist-tag
 * normalisation, `_attachments` emptied, the abbreviated form), then
 * `convertDistRemoteToLocalTarballUrls` and final()'s text and ETag. Only the URL rewrite is
 * spelled out here (@verdaccio/tarball is not a dependency of ours, and its loop asks
 * `getPublicUrl` once per version — a `new URL`, validator's `isURL` and a thrown `TypeError`
 * each time: the largest single cost of a first read): the base URL is a pure function of
 * (url_prefix, Host, the forwarded-proto header, the protocol, VERDACCIO_PUBLIC_URL), so it is
 * asked once per such combination, and each stored tarball URL's file name
 * (`extractTarballFromUrl`, a `new URL` per version) is remembered. The objects are built with the same spreads in the same
 * order, so `JSON.stringify` sees the same keys. Any error — the package missing, an unreadable
 * packument, a tarball URL `new URL` refuses — is `null`: the caller lets the full path answer.
 * Used only where the packument cache may be (no filters, no proxied uplinks: cacheBlockers).
 */
export function adaptPackumentRender(storage: unknown, config: unknown): PackumentRender | null {
  const s = storage as any;
  if (typeof s?.getPackage !== 'function') return null;
  const urlPrefix: string = typeof (config as any)?.url_prefix === 'string' ? (config as any).url_prefix : '';
  const fullType = setCharset(verdaccioCore.HEADERS.JSON);
  const abbreviatedType = setCharset(ABBREVIATED_MEDIA);
  // extractTarballFromUrl (a `new URL` each) per stored tarball URL: a version's URL never changes
  const fileNames = new ClearingMemo<string, string>(50_000);
  const fileNameOf = (uri: string): string => {
    let file = fileNames.get(uri);
    if (file === undefined) {
      file = verdaccioCore.tarballUtils.extractTarballFromUrl(uri);
      fileNames.set(uri, file);
    }
    return file;
  };
  // getPublicUrl's answer per (protocol, Host, forwarded-proto value): the same inputs the response
  // cache key holds, read with the header name and VERDACCIO_PUBLIC_URL of the start (as that key and
  // hostHeaderUsable are); its throws are never remembered. Bounded like hostHeaderUsable's verdicts.
  const forwardedHeader = (process.env.VERDACCIO_FORWARDED_PROTO?.toLocaleLowerCase() ?? verdaccioCore.HEADERS.FORWARDED_PROTO.toLowerCase()) as string;
  const bases = new Map<string, string>();
  const publicBase = (request: PackumentRenderRequest): string => {
    const forwarded = request.headers[forwardedHeader];
    const key = `${request.protocol}\u0000${request.headers.host ?? ''}\u0000${Array.isArray(forwarded) ? '\u0001' : (forwarded ?? '')}`;
    let base = bases.get(key);
    if (base === undefined) {
      // host: unused by getPublicUrl (it reads headers.host); the route passes req.hostname
      base = verdaccioUrl.getPublicUrl(urlPrefix, { protocol: request.protocol, headers: request.headers as Record<string, string>, host: request.headers.host ?? '', remoteAddress: request.remoteAddress });
      if (bases.size < 256) bases.set(key, base);
    }
    return base;
  };
  const localUrls = (pkg: any, request: PackumentRenderRequest): any => {
    // @verdaccio/tarball convertDistRemoteToLocalTarballUrls + convertDistVersionToLocalTarballsUrl + getLocalRegistryTarballUri
    const { name, versions } = pkg;
    const converted = { ...pkg };
    let base: string | undefined;
    for (const ver in pkg.versions) {
      if (!Object.prototype.hasOwnProperty.call(pkg.versions, ver)) continue;
      const version = versions[ver];
      const dist = version.dist;
      if (dist && dist.tarball) {
        const tarball = request.headers.host ? `${(base ??= publicBase(request))}${name}/-/${fileNameOf(dist.tarball)}` : dist.tarball;
        versions[ver] = { ...version, dist: { ...dist, tarball } };
      }
    }
    return { ...converted, versions };
  };
  return (name, request, done) => {
    let answered = false;
    const finish = (rendered: RenderedByVerdaccio | null): void => {
      if (answered) return;
      answered = true;
      done(rendered);
    };
    const abbreviated = verdaccioCore.stringUtils.getByQualityPriorityValue(request.accept as string) === ABBREVIATED_MEDIA;
    const rendered = (err: unknown, metadata: unknown): RenderedByVerdaccio | null => {
      if (err || !isRecord(metadata)) return null;
      const text = `${JSON.stringify(localUrls(metadata, request), undefined, '  ')}\n`;
      return { text, contentType: abbreviated ? abbreviatedType : fullType, etag: `"${verdaccioCore.cryptoUtils.stringToMD5(text)}"`, full: !abbreviated };
    };
    try {
      s.getPackage({
        name,
        uplinksLook: true,
        req: request.req,
        abbreviated,
        callback: (err: unknown, metadata: unknown) => {
          // called from inside Verdaccio's async code: nothing may throw out of here
          let answer: RenderedByVerdaccio | null = null;
          try {
            answer = rendered(err, metadata);
          } catch {
            answer = null;
          }
          finish(answer);
        },
      });
    } catch {
      finish(null);
    }
  };
}

/** express 4's own helper (lib/utils.js), what its res.send applies to a string body's Content-Type. */
// eslint-disable-next-line @typescript-eslint/no-require-imports
const expressUtils = require('express/lib/utils') as { setCharset(type: string, charset: string): string };

/** express 4's res.send for a string body: the Content-Type set before it, with `charset=utf-8`. */
function setCharset(type: string): string {
  return expressUtils.setCharset(type, 'utf-8');
}
/* eslint-enable @typescript-eslint/no-explicit-any */
