/**
 * The upstream proxy and cache (docs/upstream.md), Verdaccio-free. Packuments and tarballs of
 * packages that are not local are fetched from the one upstream (core `sharedUpstream`) into a
 * separate store, `<storage>/.upstream/` (same layout, same atomic writes and tarball commit as
 * local packages). A local package is never looked up upstream and never merged with it: the
 * store reads local first, and a cache write re-checks, under the package's own lock, that no
 * local package appeared meanwhile.
 *
 * - packuments: answered from memory as soon as fetched and checked, while the locked durable
 *   write runs (`filling`); fresh for `maxage`, then revalidated with If-None-Match / If-Modified-Since (a
 *   304 renews freshness without rewriting the file, so the response cache keeps its entry);
 *   concurrent misses for one name share one upstream request (single-flight); an upstream that
 *   fails or times out → the cached copy with a `Warning` header and a log line, or 502/504;
 * - tarballs: streamed to the client while they are written to a temp file; sha512 (and sha1)
 *   checked against the cached packument's `dist` BEFORE the commit; the last chunk is held back
 *   until then, so a mismatch destroys the response (the client sees an error, never complete bad
 *   bytes) and nothing is stored; once verified the client gets the last chunk and the tarball is
 *   committed by the store's link() under the package lock and gets an index record of kind `cache`;
 * - OFFLINE (featureFlags bit 3): zero upstream requests; only what is held is served.
 */
import { createHash } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { CACHE_HEADER, isLocalScope, reportUpstreamStatus, wantsCacheHeader, type UpstreamResolution, type UpstreamSettings } from '../../registry-core/index';
import { StorageError } from '../errors';
import { sha512HexOf, verifyDist } from '../integrity';
import { type ParsedName, parsePackageName, parseTarballName } from '../names';
import type { IndexSink } from '../package-service';
import type { IndexRecord } from '../../registry-core/index';
import { TARBALL_CONTENT_TYPE, type Manifest, type PackageStore, type TarballDigest } from '../store';

/** Counts relays through registries of ours: one that (indirectly) proxies to itself stops here. */
export const HOPS_HEADER = 'x-registry-upstream-hops';
export const MAX_HOPS = 3;
/** Where the upstream's validators live in a cached packument (dropped by Verdaccio's response whitelist). */
export const UPSTREAM_FIELD = '_upstream';

export type PackumentOutcome =
  /** local (or a local scope): not the proxy's business */
  | { kind: 'pass' }
  /** the cached packument is in place; `warning` when it is served stale */
  | { kind: 'cached'; warning?: string }
  | { kind: 'error'; status: number; message: string };

interface UpstreamMeta {
  url: string;
  etag?: string;
  lastModified?: string;
  fetchedAt: number;
}

export interface UpstreamProxyDeps {
  resolution: Promise<UpstreamResolution>;
  localScopes: readonly string[];
  /** the cache store (`<storage>/.upstream`) */
  cache: PackageStore;
  /** a local packument (or a publish in flight) exists for name */
  isLocal(name: string): Promise<boolean>;
  /** the local store's per-package lock: cache writes exclude local writes of the same name */
  withLock<T>(name: string, fn: () => Promise<T>): Promise<T>;
  sink: IndexSink;
  /** the OFFLINE flag, read live */
  offline(): boolean;
  lockbPath: string;
  log: { warn(message: string): void; error(message: string): void };
  /** held at start-up (counted once, then kept up to date) */
  initialCache: { packages: number; bytes: number };
  now?: () => number;
}

function escapeName(name: string): string {
  return name.startsWith('@') ? `@${encodeURIComponent(name.slice(1))}` : encodeURIComponent(name);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    if (error.name === 'TimeoutError' || error.name === 'AbortError') return 'timed out';
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    return cause?.code ?? cause?.message ?? error.message;
  }
  return String(error);
}

/** Header values must be plain visible ASCII. */
function headerSafe(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?').replace(/"/g, "'").slice(0, 200);
}

function basename(url: unknown): string | null {
  if (typeof url !== 'string') return null;
  const path = url.split(/[?#]/)[0];
  try {
    return decodeURIComponent(path.slice(path.lastIndexOf('/') + 1));
  } catch {
    return null;
  }
}

class UpstreamFailure extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

export class UpstreamProxy {
  readonly #deps: UpstreamProxyDeps;
  readonly #fresh = new Map<string, number>();
  readonly #packuments = new Map<string, Promise<PackumentOutcome>>();
  readonly #tarballs = new Map<string, Promise<void>>();
  /** packuments fetched and checked, whose locked durable write is still running: served from here meanwhile */
  readonly #filling = new Map<string, Manifest>();
  /**
   * Per name, the last fill's revision for the response cache (`revision`), and the store's stamp
   * of the file that fill wrote (`stamp`, once written): see revisionOf.
   */
  readonly #fills = new Map<string, { revision: string; stamp: string | null }>();
  #fillCount = 0;
  readonly #now: () => number;
  #cachedPackages: number;
  #cachedBytes: number;
  /** upstream requests made (packuments + tarballs), for the boot line and tests' sanity */
  requests = 0;

  constructor(deps: UpstreamProxyDeps) {
    this.#deps = deps;
    this.#now = deps.now ?? Date.now;
    this.#cachedPackages = deps.initialCache.packages;
    this.#cachedBytes = deps.initialCache.bytes;
    deps.resolution.then(
      (resolution) =>
        reportUpstreamStatus(deps.lockbPath, {
          url: resolution.ok && resolution.upstream ? resolution.upstream.url : null,
          offline: deps.offline(),
          cachedPackages: this.#cachedPackages,
          cachedBytes: this.#cachedBytes,
        }),
      () => undefined,
    );
  }

  #status(patch: Parameters<typeof reportUpstreamStatus>[1]): void {
    reportUpstreamStatus(this.#deps.lockbPath, { offline: this.#deps.offline(), cachedPackages: this.#cachedPackages, cachedBytes: this.#cachedBytes, ...patch });
  }

  async #upstream(): Promise<{ upstream: UpstreamSettings } | { problem: string }> {
    const resolution = await this.#deps.resolution;
    if (!resolution.ok) return { problem: resolution.error };
    if (resolution.upstream === null) return { problem: resolution.disabled };
    return { upstream: resolution.upstream };
  }

  #parse(name: string): ParsedName | null {
    try {
      return parsePackageName(name, 'read');
    } catch {
      return null;
    }
  }

  /**
   * The packument of `name` fetched from the upstream whose durable write (lock, local-wins
   * re-check, temp + fsync + rename) has not finished yet; null otherwise. The store reads it
   * before its own copy, so a client never waits for the disk (docs/upstream.md "Packuments").
   * A copy per call, as a read of the file would give: Verdaccio rewrites the tarball URLs of what
   * it is handed, and the fill of a tarball still needs the upstream's.
   */
  filling(name: string): Manifest | null {
    const manifest = this.#filling.get(name);
    return manifest === undefined ? null : structuredClone(manifest);
  }

  /**
   * The packument revision (routes.ts, the response cache's key) of a cold fill's answer, given
   * the cache store's current stamp of the file: `upstream:fill:<n>` while the fill's copy is
   * served from memory, and afterwards while the stored file is exactly what that fill wrote (the
   * store vouches for its own write: `writtenStamp`). So the answer rendered during the fill is
   * recorded and replayed at once (the first warm install used to render every packument again).
   * null otherwise: the store's stamp is the revision.
   */
  revisionOf(name: string, storedStamp: string | null): string | null {
    const fill = this.#fills.get(name);
    if (fill === undefined) return null;
    if (this.#filling.has(name) || (fill.stamp !== null && fill.stamp === storedStamp)) return fill.revision;
    this.#fills.delete(name); // the file changed (or was never written): its own stamp from now on
    return null;
  }

  /** Makes sure the cached packument of a non-local name is there and fresh enough (see the file comment). */
  async packument(name: string, hops = 0): Promise<PackumentOutcome> {
    if (isLocalScope(name, this.#deps.localScopes)) return { kind: 'pass' };
    const pkg = this.#parse(name);
    if (pkg === null || (await this.#deps.isLocal(name))) return { kind: 'pass' };
    const held = this.#filling.has(name) || this.#deps.cache.packumentStamp(pkg) !== null;
    if (this.#deps.offline()) {
      return held ? { kind: 'cached' } : { kind: 'error', status: 404, message: `${name} is not held by this registry, and OFFLINE is set: the upstream is never contacted (clear the OFFLINE flag to fetch it)` };
    }
    const freshUntil = this.#fresh.get(name);
    if (held && freshUntil !== undefined && freshUntil > this.#now()) return { kind: 'cached' };
    if (hops >= MAX_HOPS) return { kind: 'error', status: 508, message: `${name}: relayed through ${MAX_HOPS} registries already — the upstream chain loops back to this registry` };
    let pending = this.#packuments.get(name);
    if (!pending) {
      pending = this.#refresh(name, pkg, hops).finally(() => this.#packuments.delete(name));
      this.#packuments.set(name, pending);
    }
    return pending;
  }

  /**
   * Synchronous, for the HTTP fast path, given that the caller's packument stamp says the cache
   * holds `name` and no local package (or first publish) exists: true when packument(name) would
   * answer `{kind: 'cached'}` with no warning and no request — OFFLINE, or fresh within `maxage`.
   * false: take packument() (revalidation, single-flight, stale-with-warning).
   */
  servesHeldCopy(name: string): boolean {
    if (isLocalScope(name, this.#deps.localScopes)) return false;
    if (this.#deps.offline()) return true;
    const freshUntil = this.#fresh.get(name);
    return freshUntil !== undefined && freshUntil > this.#now();
  }

  async #refresh(name: string, pkg: ParsedName, hops: number): Promise<PackumentOutcome> {
    const found = await this.#upstream();
    const cached = this.#filling.get(name) ?? (await this.#deps.cache.readPackument(pkg).catch(() => null));
    if ('problem' in found) {
      return cached ? { kind: 'cached' } : { kind: 'error', status: 404, message: `${name} is not held by this registry and there is no upstream (${found.problem})` };
    }
    const upstream = found.upstream;
    const meta = isRecord(cached?.[UPSTREAM_FIELD]) ? (cached[UPSTREAM_FIELD] as unknown as UpstreamMeta) : null;
    const headers: Record<string, string> = { accept: 'application/json', [HOPS_HEADER]: String(hops + 1) };
    if (upstream.authorization) headers.authorization = upstream.authorization;
    if (cached && meta?.etag) headers['if-none-match'] = meta.etag;
    if (cached && meta?.lastModified) headers['if-modified-since'] = meta.lastModified;
    // fetch adds `Cache-Control: no-cache` to a conditional request that names none, and a
    // registry on express (Verdaccio, ours) then never answers 304: say "revalidate" instead
    if (headers['if-none-match'] || headers['if-modified-since']) headers['cache-control'] = 'max-age=0';
    const started = this.#now();
    let response: Response;
    let body: unknown;
    try {
      this.requests++;
      response = await fetch(`${upstream.url}/${escapeName(name)}`, { headers, signal: AbortSignal.timeout(upstream.timeoutMs), redirect: 'follow' });
      if (response.status === 304) {
        await response.body?.cancel();
        if (!cached) throw new UpstreamFailure(502, 'the upstream answered 304 to an unconditional request');
        this.#fresh.set(name, this.#now() + upstream.maxAgeMs);
        this.#status({ lastSuccess: this.#now(), latencyMs: this.#now() - started });
        return { kind: 'cached' };
      }
      if (response.status === 404) {
        await response.body?.cancel();
        this.#status({ lastSuccess: this.#now(), latencyMs: this.#now() - started });
        return { kind: 'error', status: 404, message: `${name} is not held by this registry and not found on the upstream` };
      }
      if (response.status !== 200) {
        await response.body?.cancel();
        throw new UpstreamFailure(502, `the upstream answered ${response.status}`);
      }
      body = await response.json();
    } catch (error) {
      const status = error instanceof UpstreamFailure ? error.status : describe(error) === 'timed out' ? 504 : 502;
      const reason = error instanceof UpstreamFailure ? error.message : `the upstream ${describe(error) === 'timed out' ? `did not answer within ${upstream.timeoutMs} ms` : `is unreachable (${describe(error)})`}`;
      this.#status({ lastFailure: { time: this.#now(), error: reason } });
      if (cached) {
        this.#deps.log.warn(`upstream: ${name}: ${reason}; serving the cached copy`);
        return { kind: 'cached', warning: `110 - "Response is Stale: ${headerSafe(reason)}"` };
      }
      this.#deps.log.warn(`upstream: ${name}: ${reason}; nothing cached to serve`);
      return { kind: 'error', status, message: `${name} is not held by this registry and ${reason.replace(/^the upstream/, 'the upstream')}` };
    }
    this.#status({ lastSuccess: this.#now(), latencyMs: this.#now() - started });
    if (!isRecord(body) || body.name !== name || !isRecord(body.versions)) {
      return { kind: 'error', status: 502, message: `the upstream's packument for ${name} is not a packument of that name` };
    }
    const manifest = body as unknown as Manifest;
    for (const key of ['_attachments', '_distfiles', '_uplinks']) delete manifest[key];
    if (!isRecord(manifest['dist-tags'])) manifest['dist-tags'] = {};
    const fresh: UpstreamMeta = { url: upstream.url, fetchedAt: this.#now() };
    const etag = response.headers.get('etag');
    const lastModified = response.headers.get('last-modified');
    if (etag) fresh.etag = etag;
    if (lastModified) fresh.lastModified = lastModified;
    manifest[UPSTREAM_FIELD] = fresh;
    // The client is answered from this copy at once; the locked durable write goes on behind it
    // (it used to cost the client 4–25 ms of lock + fsync per package on a busy disk). Until it
    // is done the copy is served from memory and counts as held (no second upstream request).
    this.#filling.set(name, manifest);
    const fill = { revision: `upstream:fill:${++this.#fillCount}`, stamp: null as string | null };
    this.#fills.set(name, fill);
    this.#fresh.set(name, this.#now() + upstream.maxAgeMs);
    this.#writeBehind(name, pkg, manifest, cached !== null, fill);
    return { kind: 'cached' };
  }

  #writeBehind(name: string, pkg: ParsedName, manifest: Manifest, replacing: boolean, fill: { revision: string; stamp: string | null }): void {
    this.#deps
      .withLock(pkg.name, async () => {
        if (await this.#deps.isLocal(name)) return false; // published here meanwhile: local wins, nothing merged
        await this.#deps.cache.writePackument(pkg, manifest);
        // still under the lock, right after the rename: the stamp of exactly this write (null if
        // the store cannot vouch for it: the fill's revision then ends with the fill)
        fill.stamp = this.#deps.cache.writtenStamp?.(pkg) ?? null;
        return true;
      })
      .then(
        (stored) => {
          if (!stored) {
            this.#fresh.delete(name);
            if (this.#fills.get(name) === fill) this.#fills.delete(name);
          } else if (!replacing) this.#cachedPackages++;
          this.#status({});
        },
        (error: unknown) => {
          // not stored: the next request fetches it again; the client already had the upstream's copy
          this.#fresh.delete(name);
          if (this.#fills.get(name) === fill) this.#fills.delete(name);
          this.#deps.log.error(`upstream: ${name}: the cached packument could not be written (${describe(error)}); not cached`);
        },
      )
      .finally(() => {
        if (this.#filling.get(name) === manifest) this.#filling.delete(name);
      });
  }

  /**
   * `GET /:package/-/:file` of a non-local package whose tarball is not held: fetched, verified,
   * stored and streamed (see the file comment). 'pass': not ours or already held (Verdaccio serves
   * it from the store); 'done': answered here.
   */
  async tarball(name: string, fileName: string, res: ServerResponse, hops = 0): Promise<'pass' | 'done'> {
    if (isLocalScope(name, this.#deps.localScopes)) return 'pass';
    const pkg = this.#parse(name);
    if (pkg === null || (await this.#deps.isLocal(name))) return 'pass';
    try {
      parseTarballName(pkg, fileName);
    } catch {
      return 'pass';
    }
    if ((await this.#deps.cache.tarballAgeMs(pkg, fileName)) !== null) return 'pass';
    const fail = (status: number, message: string): 'done' => {
      if (!res.headersSent) {
        res.statusCode = status;
        res.setHeader('content-type', 'application/json; charset=utf-8');
        res.end(JSON.stringify({ error: message }));
      } else res.destroy();
      return 'done';
    };
    if (this.#deps.offline()) return fail(404, `${name}/-/${fileName} is not held by this registry, and OFFLINE is set: the upstream is never contacted`);
    const outcome = await this.packument(name, hops);
    if (outcome.kind === 'error') return fail(outcome.status, outcome.message);
    if (outcome.kind === 'pass') return 'pass';
    const manifest = this.#filling.get(name) ?? (await this.#deps.cache.readPackument(pkg));
    const version = manifest ? Object.entries(manifest.versions ?? {}).find(([, meta]) => basename(meta?.dist?.tarball) === fileName) : undefined;
    if (!manifest || !version) return fail(404, `${fileName} is not a tarball of any version of ${name} the upstream lists`);
    const key = `${name}\u0000${fileName}`;
    // committed while the packument was (re)validated — another client's fill ended meanwhile: the
    // store serves it, no second download (the in-flight entry is read again after this await)
    if (!this.#tarballs.has(key) && (await this.#deps.cache.tarballAgeMs(pkg, fileName)) !== null) return 'pass';
    const inflight = this.#tarballs.get(key);
    if (inflight) {
      // one upstream download per tarball: later clients are served from the store once it is committed
      await inflight.catch(() => undefined);
      if ((await this.#deps.cache.tarballAgeMs(pkg, fileName)) !== null) return 'pass';
      return fail(502, `${name}/-/${fileName}: the upstream download failed (see the registry log)`);
    }
    const fill = this.#fill(pkg, fileName, version[0], version[1]?.dist, res);
    this.#tarballs.set(key, fill);
    try {
      await fill;
    } catch {
      // answered (or destroyed) inside #fill
    } finally {
      this.#tarballs.delete(key);
    }
    return 'done';
  }

  async #fill(pkg: ParsedName, fileName: string, version: string, dist: Record<string, unknown> | undefined, res: ServerResponse): Promise<void> {
    const label = `${pkg.name}@${version}`;
    const found = await this.#upstream();
    const failBefore = (status: number, message: string): never => {
      if (!res.headersSent) {
        res.statusCode = status;
        res.setHeader('content-type', 'application/json; charset=utf-8');
        res.end(JSON.stringify({ error: message }));
      } else res.destroy();
      throw new Error(message);
    };
    if ('problem' in found) return failBefore(404, `${label} is not held by this registry and there is no upstream (${found.problem})`);
    const upstream = found.upstream;
    if (typeof dist?.integrity !== 'string' && typeof dist?.shasum !== 'string') {
      return failBefore(502, `${label}: the upstream declares neither dist.integrity nor dist.shasum; refusing a tarball nobody can verify`);
    }
    const declared = typeof dist?.tarball === 'string' && /^https?:\/\//i.test(dist.tarball) ? dist.tarball : `${upstream.url}/${escapeName(pkg.name)}/-/${encodeURIComponent(fileName)}`;
    const headers: Record<string, string> = { accept: 'application/octet-stream', [HOPS_HEADER]: '1' };
    // credentials only to the upstream itself, never to a host its packument names
    if (upstream.authorization && new URL(declared).origin === new URL(upstream.url).origin) headers.authorization = upstream.authorization;
    const started = this.#now();
    let response: Response;
    try {
      this.requests++;
      response = await fetch(declared, { headers, signal: AbortSignal.timeout(upstream.timeoutMs) });
    } catch (error) {
      const reason = `the upstream download of ${label} failed (${describe(error)})`;
      this.#status({ lastFailure: { time: this.#now(), error: reason } });
      this.#deps.log.warn(`upstream: ${reason}`);
      return failBefore(describe(error) === 'timed out' ? 504 : 502, reason);
    }
    if (response.status !== 200 || response.body === null) {
      await response.body?.cancel();
      const reason = `the upstream answered ${response.status} for ${label}'s tarball`;
      if (response.status >= 500) this.#status({ lastFailure: { time: this.#now(), error: reason } });
      return failBefore(response.status === 404 ? 404 : 502, reason);
    }
    this.#status({ lastSuccess: this.#now(), latencyMs: this.#now() - started });
    const writer = this.#deps.cache.createTarball(pkg, fileName);
    writer.stream.on('error', () => undefined); // surfaced by commit()/abort(); never an unhandled 'error'
    const sha512 = createHash('sha512');
    const sha1 = createHash('sha1');
    let size = 0;
    let held: Buffer | null = null;
    let answered = false;
    const headOnly = res.req?.method === 'HEAD';
    res.statusCode = 200;
    res.setHeader('content-type', TARBALL_CONTENT_TYPE);
    // the upstream's length, when the bytes fetch hands over are the ones it counted (no content
    // coding undone): what a HEAD answers and a progress bar reads, as for a stored tarball
    const length = response.headers.get('content-length');
    if (length !== null && /^\d{1,15}$/.test(length) && response.headers.get('content-encoding') === null) res.setHeader('content-length', length);
    if (res.req !== undefined && wantsCacheHeader(res.req.headers)) res.setHeader(CACHE_HEADER, 'upstream');
    const source = Readable.fromWeb(response.body as import('node:stream/web').ReadableStream<Uint8Array>);
    try {
      for await (const chunk of source) {
        const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
        sha512.update(bytes);
        sha1.update(bytes);
        size += bytes.length;
        const diskOk = writer.stream.write(bytes);
        // the last chunk is held back until the bytes are verified: a mismatch never completes the
        // response. A HEAD writes nothing before that (Node would drop the bytes anyway), so its
        // headers go out only for verified bytes, and a mismatch is a clean 502
        if (held !== null && !headOnly && !res.destroyed && !res.write(held)) await new Promise((r) => res.once('drain', r).once('close', r));
        held = bytes;
        if (!diskOk) await new Promise((r) => writer.stream.once('drain', r).once('error', r));
      }
      // verified against the bytes as they came from the upstream (the ones the client got and the
      // temp file holds): the client gets its last chunk now, without waiting for the temp file's
      // last writes; the locked commit (fsync, link, folder fsync) follows once they are done, and
      // later clients of this tarball wait for it (the in-flight entry) and read the store
      const digest: TarballDigest = { sha512: sha512.digest('hex'), sha1: sha1.digest('hex'), size };
      verifyDist(`${label} from the upstream`, dist, digest);
      answered = true;
      if (!res.destroyed) res.end(headOnly ? undefined : (held ?? undefined));
      await new Promise<void>((resolveEnd, rejectEnd) => {
        writer.stream.once('error', rejectEnd);
        writer.stream.end(() => resolveEnd());
      });
      const committed = await this.#deps.withLock(pkg.name, async () => {
        if (await this.#deps.isLocal(pkg.name)) return false;
        try {
          await writer.commit();
        } catch (error) {
          if (error instanceof StorageError && error.code === 'ERR_EXISTS') return false; // another process cached it first: same verified bytes
          throw error;
        }
        this.#cachedBytes += size;
        this.#appendRecord(pkg.name, version, dist, upstream.url);
        return true;
      });
      if (!committed) await writer.abort();
      this.#status({});
    } catch (error) {
      await writer.abort();
      const reason = error instanceof StorageError && error.code === 'ERR_INTEGRITY' ? `refused ${error.message}` : `the upstream download of ${label} broke off (${describe(error)})`;
      this.#deps.log.error(`upstream: ${reason}; nothing stored`);
      if (!(error instanceof StorageError)) this.#status({ lastFailure: { time: this.#now(), error: reason } });
      source.destroy();
      if (answered) throw error; // the verified bytes were sent; only the cache fill failed (logged above)
      if (!res.headersSent) {
        res.statusCode = 502;
        res.setHeader('content-type', 'application/json; charset=utf-8');
        res.removeHeader(CACHE_HEADER);
        res.removeHeader('content-length'); // the tarball's, not this error's
        res.end(JSON.stringify({ error: reason }));
      } else res.destroy(); // the client sees a failed download, never a complete one
      throw error;
    }
  }

  /** `cache` records of committed fills waiting for the running `registry.lockb` append (#flushRecords). */
  #records: Array<{ record: IndexRecord; label: string }> = [];
  #flushing = false;

  /**
   * After the commit, off the client's path (as before). Group commit: records of fills that
   * commit while an append holds the `registry.lockb` lock go in together with the next one —
   * one lock cycle (mkdir, owner file, unlink, rmdir) for all of them instead of one each. No
   * record waits for a timer: an append starts as soon as none is running.
   */
  #appendRecord(name: string, version: string, dist: Record<string, unknown> | undefined, url: string): void {
    const label = `${name}@${version}`;
    try {
      this.#records.push({ record: { kind: 'cache', name, version, sha512: sha512HexOf(dist), time: this.#now(), detail: url }, label });
    } catch (error) {
      this.#deps.log.error(`registry.lockb: could not append the cache record of ${label}: ${(error as Error).message}`);
      return;
    }
    if (!this.#flushing) void this.#flushRecords();
  }

  async #flushRecords(): Promise<void> {
    this.#flushing = true;
    try {
      while (this.#records.length > 0) {
        const batch = this.#records.splice(0);
        try {
          // the lockb sink appends under the registry.lockb lock: its failure is reported, never unhandled
          await this.#deps.sink.append(batch.map((item) => item.record), {});
        } catch (error) {
          this.#deps.log.error(`registry.lockb: could not append the cache record of ${batch.map((item) => item.label).join(', ')}: ${(error as Error).message}`);
        }
      }
    } finally {
      this.#flushing = false;
    }
  }
}
