/**
 * The one app-level handler of the middleware entry, registered before Verdaccio's API router:
 * - `PUT /:package[/-rev/:rev]` and the dist-tag writes: the body guard (400 `{"error"}` for a
 *   body Verdaccio's handler would 500 or die on, or answer with an HTML 404; everything else
 *   goes on to Verdaccio untouched);
 * - `GET|HEAD /:package`: replays Verdaccio's own rendered packument while the store's
 *   packumentRevision(name) is unchanged; a miss goes to Verdaccio and its 200 is recorded;
 * - every GET|HEAD: a Host header Verdaccio cannot build URLs from is a 400 here (a throw in
 *   Verdaccio's packument callback would end the process).
 * Any request this does not recognise goes straight on (`next()`).
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { type OwnerStore, type PackumentRender, type StorageHttpHost, verdaccioAcceptsPackageName } from '../verdaccio-adapter';
import type { FastPathRender } from './fast-path';
import { type Maintainer, ownershipProblem, parseOwnersBody } from '../owners';
import { announceUpload, attachIntent, endUpload, runInPublish } from '../publish-intent';
import { bareNameOf, checkDistTagBody, checkPublishBody, type GuardVerdict, isPlainObject, type PublishKind } from './publish-guard';
import { cachedVariantFor, COMPRESSION_THRESHOLD, type ResponseCache } from './response-cache';
import type { RegistryEventBus } from '../../registry-core/index';
import { matchDeletePath, matchDistTagPath, matchPackumentPath, matchPackageVersionPath, matchPublishPath, matchTarballPath } from './route-match';
import { HOPS_HEADER } from '../upstream/proxy';
import { CACHE_HEADER, wantsCacheHeader } from '../../registry-core/index';

/** The cache header and whether a request asked for it: the core's (docs/http-api.md). */
export { CACHE_HEADER } from '../../registry-core/index';

export interface StorageHttpDeps {
  host: StorageHttpHost;
  /** the core event bus: owner changes are answered here, so they are announced here (audit, docs/audit.md) */
  events?: RegistryEventBus;
  /** null: cache off (the guard still runs). */
  cache: ResponseCache | null;
  warn(message: string): void;
  /** told of every packument cache lookup (the hit/miss counters of GET /-/metrics) */
  onCacheLookup?: (hit: boolean) => void;
}

/** A revision taken within the store's racy window never repeats: nothing could ever reuse it. */
export function isSettledRevision(revision: string): boolean {
  return !revision.includes(':racy-');
}

/** Verdaccio's media(application/json) check: anything else is its 415, not our business. */
function isJsonMedia(header: string | undefined): boolean {
  return typeof header === 'string' && header.split(';')[0].trim() === 'application/json';
}

export function headerText(value: string | string[] | undefined): string {
  return Array.isArray(value) ? value.join('\n') : (value ?? '');
}

/**
 * The cache key: everything Verdaccio's rendering reads from the request (abbreviated or not, the
 * tarball URL base). The one spelling of it, for this handler and the fast path (fast-path.ts).
 */
export function packumentCacheKey(name: string, accept: string | string[] | undefined, protocol: string, host: string | string[] | undefined, forwardedProto: string | string[] | undefined): string {
  return `${name}\u0000${headerText(accept)}\u0000${protocol}\u0000${headerText(host)}\u0000${headerText(forwardedProto)}`;
}

/**
 * Verdaccio's full packument text (final()'s `JSON.stringify(doc, null, 2)`) with the maintainers
 * put back as its first field (Verdaccio's whitelist drops them, so `npm owner ls` would never see
 * one). The one spelling for the full path (withOwners) and the fast path's render. The ETag stays
 * final()'s, made before this insertion (what the full path has always sent).
 */
export function withMaintainers(text: string, owners: readonly Maintainer[] | null): string {
  if (owners === null || owners.length === 0 || !/^\{\s*"/.test(text)) return text;
  return `{\n  "maintainers": ${JSON.stringify(owners)},${text.slice(1)}`;
}

/**
 * The fast path's render of a packument miss (fast-path.ts `FastPathDeps.render`): the owners
 * read first, then Verdaccio's own rendering without its app stack (verdaccio-adapter.ts
 * adaptPackumentRender) — what the full path's withOwners + Verdaccio's route + final() send.
 * null (the full path answers, with its own errors): the owners or the packument unreadable,
 * the package missing, anything Verdaccio would not answer with a 200.
 */
export function createPackumentRender(ownerStore: OwnerStore | null, render: PackumentRender): FastPathRender {
  return (req, name, protocol, done) => {
    const owners: Promise<Maintainer[] | null> = ownerStore === null ? Promise.resolve(null) : ownerStore.owners(name);
    owners.then(
      (list) =>
        render(name, { accept: req.headers.accept, protocol, headers: req.headers, remoteAddress: req.socket.remoteAddress, req }, (rendered) => {
          if (rendered === null) {
            done(null);
            return;
          }
          const text = rendered.full ? withMaintainers(rendered.text, list) : rendered.text;
          done({ body: Buffer.from(text, 'utf8'), contentType: rendered.contentType, etag: rendered.etag });
        }),
      () => done(null),
    );
  };
}

export function createStorageHttpHandler(deps: StorageHttpDeps): RequestHandler {
  const { host, cache, warn } = deps;
  const onCacheLookup = deps.onCacheLookup ?? (() => undefined);
  const revisionOf = host.packumentRevision;
  const ownerStore = host.ownerStore;

  /**
   * Ownership (owners.ts): a package with maintainers is changed only by them or an admin. No
   * owner store (another store plugin) → not enforced (boot line). A missing package → Verdaccio
   * answers (404, or a first publish).
   */
  const withOwnership = (req: Request, res: Response, name: string, what: string, proceed: (owners: Maintainer[] | null) => void): void => {
    if (ownerStore === null) {
      proceed(null);
      return;
    }
    ownerStore.owners(name).then(
      (owners) => {
        const problem = owners === null ? null : ownershipProblem(name, owners, host.actor(req), what);
        if (problem === null) {
          proceed(owners);
          return;
        }
        warn(`refused ${req.method} ${req.path}: ${problem}`);
        res.status(403).json({ error: problem });
      },
      (error: unknown) => answerError(res, error),
    );
  };

  const answerError = (res: Response, error: unknown): void => {
    const { status, message } = host.errorAnswer(error);
    if (!res.headersSent) res.status(status).json({ error: message });
  };

  /**
   * The publish intent (publish-intent.ts) and `_npmUser` from the authenticated user, never from
   * the body; then Verdaccio's flow (`proceed`) inside runInPublish, so the store can drop the
   * attachment's base64 string once it is decoded (releaseAttachment).
   */
  const stampPublish = (req: Request, res: Response, proceed: () => void): void => {
    const body = req.body as Record<string, unknown>;
    const versions = body.versions as Record<string, Record<string, unknown>>;
    const [version] = Object.keys(versions);
    const meta = versions[version];
    const actor = host.actor(req);
    if (actor.name !== null) meta._npmUser = { name: actor.name };
    else delete meta._npmUser;
    const tags = isPlainObject(body['dist-tags']) ? (body['dist-tags'] as Record<string, string>) : {};
    attachIntent(meta, { actor, tags: { ...tags } });
    // the guard checked the attachment is `<bare>-<version>.tgz` (or `<name>-<version>.tgz`): Verdaccio stores its basename
    const name = String(body.name);
    const file = `${bareNameOf(name)}-${version}.tgz`;
    announceUpload(name, file);
    // a refused publish changes nothing: what it left is taken back once Verdaccio's flow has answered
    res.once('close', () => {
      const answered = res.writableFinished && res.statusCode >= 200 && res.statusCode < 300;
      if (answered || host.publishFailed === null) {
        endUpload(name, file);
        return;
      }
      host.publishFailed(name, file).catch((error: unknown) => warn(`cleanup after a refused publish of ${name}: ${(error as Error).message}`));
    });
    // the guard checked there is exactly one attachment, an object (checkPublish)
    const attachments = body._attachments as Record<string, Record<string, unknown>>;
    const [key] = Object.keys(attachments);
    runInPublish(name, file, attachments[key], proceed);
  };

  const changeOwners = (req: Request, res: Response, name: string): void => {
    if (ownerStore === null) {
      res.status(501).json({ error: 'owners cannot be changed: the store plugin is not registry-storage' });
      return;
    }
    const parsed = parseOwnersBody(name, req.body as Record<string, unknown>);
    if (!parsed.ok) {
      res.status(400).json({ error: parsed.error });
      return;
    }
    ownerStore.change(name, parsed.maintainers, host.actor(req)).then(
      () => {
        const owners = parsed.maintainers.map((m) => m.name).join(', ');
        deps.events?.emit({ kind: 'owner', time: Date.now(), name, detail: `owners: ${owners}` });
        res.status(201).json({ ok: `owners of ${name}: ${owners}`, success: true });
      },
      (error: unknown) => {
        const answer = host.errorAnswer(error);
        if (answer.status === 403) warn(`refused ${req.method} ${req.path}: ${answer.message}`);
        answerError(res, error);
      },
    );
  };

  const WHAT: Record<Exclude<PublishKind, 'star' | 'owners'>, string> = {
    publish: 'publish a new version of',
    change: 'unpublish, deprecate or re-tag',
  };

  /** Unauthorised callers get Verdaccio's own 401/403, whatever their body; bad bodies of authorised ones a 400. */
  const guard = (req: Request, res: Response, next: NextFunction, name: string, check: () => GuardVerdict, tagWrite: boolean): void => {
    if (!isJsonMedia(req.headers['content-type']) || !verdaccioAcceptsPackageName(name)) {
      next(); // Verdaccio's own 415 / 400 "invalid package"
      return;
    }
    const decide = (): void => {
      const verdict = check();
      if (!verdict.ok) {
        warn(`refused ${req.method} ${req.path}: ${verdict.error}`);
        res.status(400).json({ error: verdict.error });
        return;
      }
      const kind = verdict.kind;
      if (kind === 'star') {
        next(); // anyone allowed to publish may star; Verdaccio changes only the caller's own entry
        return;
      }
      if (kind === 'owners') {
        changeOwners(req, res, name);
        return;
      }
      withOwnership(req, res, name, tagWrite ? 'move the dist-tags of' : WHAT[kind], () => {
        if (kind === 'publish') stampPublish(req, res, next);
        else next();
      });
    };
    // without a remote_user (Verdaccio's router would authenticate later) the body is checked regardless
    if (!host.hasRemoteUser(req)) {
      decide();
      return;
    }
    host.allowed('publish', name, req, (allowed) => (allowed ? decide() : next()));
  };

  const guardWrite = (req: Request, res: Response, next: NextFunction): void => {
    const tagRoute = matchDistTagPath(req.method, req.path);
    if (tagRoute !== null) {
      guard(req, res, next, tagRoute.name, () => checkDistTagBody(tagRoute.name, tagRoute.tag, req.body), true);
      return;
    }
    const route = req.method === 'PUT' ? matchPublishPath(req.path) : null;
    if (route === null) {
      next();
      return;
    }
    guard(req, res, next, route.name, () => checkPublishBody(route.name, route.viaRevisionPath, req.body), false);
  };

  /** Unpublish (package or tarball) and dist-tag removal: Verdaccio's permission first, then ownership. */
  const guardDelete = (req: Request, res: Response, next: NextFunction): void => {
    const route = matchDeletePath(req.path);
    if (route === null || !verdaccioAcceptsPackageName(route.name)) {
      next();
      return;
    }
    const own = (): void => withOwnership(req, res, route.name, route.kind === 'unpublish' ? 'unpublish' : 'move the dist-tags of', () => next());
    // without a remote_user (Verdaccio's router would authenticate later) ownership is checked as anonymous
    if (!host.hasRemoteUser(req)) {
      own();
      return;
    }
    host.allowed(route.kind === 'unpublish' ? 'unpublish' : 'publish', route.name, req, (allowed) => (allowed ? own() : next())); // not allowed: Verdaccio's own 401/403
  };

  /**
   * Verdaccio's packument whitelist drops the top-level `maintainers` from every response, so
   * `npm owner ls` would never see an owner: they are put back into the full (JSON) document.
   * The body is Verdaccio's `JSON.stringify(doc, null, 2)`; the field is inserted first.
   */
  const withOwners = (res: Response, name: string, then: () => void): void => {
    if (ownerStore === null) {
      then();
      return;
    }
    ownerStore.owners(name).then(
      (owners) => {
        if (owners !== null && owners.length > 0) {
          const send = res.send;
          res.send = function sendWithOwners(this: Response, body?: unknown): Response {
            res.send = send;
            const type = res.getHeader('content-type');
            const full = typeof type === 'string' && type.split(';')[0].trim() === 'application/json';
            return send.call(this, res.statusCode === 200 && full && typeof body === 'string' ? withMaintainers(body, owners) : body);
          } as Response['send'];
        }
        then();
      },
      () => then(), // an unreadable packument: Verdaccio's own read reports it
    );
  };

  const replay = (req: Request, res: Response, key: string, hit: NonNullable<ReturnType<ResponseCache['get']>>): void => {
    if (wantsCacheHeader(req.headers)) res.setHeader(CACHE_HEADER, 'hit');
    res.setHeader('Content-Type', hit.contentType);
    res.setHeader('ETag', hit.etag);
    const encoding = req.method === 'GET' && hit.body.length >= COMPRESSION_THRESHOLD && cache !== null ? cachedVariantFor(req.headers['accept-encoding']) : null;
    // `req.fresh` (the ETag is set): express answers 304 without a body, and a 304 names no
    // encoding — as Verdaccio's own 304 of the same request (fast-path.ts replay)
    if ((encoding === 'gzip' || encoding === 'br') && !req.fresh) {
      res.setHeader('Content-Encoding', encoding); // compression() passes an encoded body through (and still adds Vary)
      res.send(cache?.variantOf(key, hit, encoding));
      return;
    }
    res.send(hit.body);
  };

  /** Lets Verdaccio render, and keeps its 200 if the packument did not change meanwhile. */
  const record = (req: Request, res: Response, key: string, name: string, revision: string): void => {
    if (wantsCacheHeader(req.headers)) res.setHeader(CACHE_HEADER, 'miss');
    const send = res.send;
    res.send = function sendAndRecord(this: Response, body?: unknown): Response {
      res.send = send;
      const cacheable = res.statusCode === 200 && typeof body === 'string';
      const result = send.call(this, body);
      if (cacheable && cache !== null && revisionOf !== null && revisionOf(name) === revision) {
        const contentType = res.getHeader('content-type');
        const etag = res.getHeader('etag');
        if (typeof contentType === 'string' && typeof etag === 'string') {
          cache.set(key, { revision, body: Buffer.from(body, 'utf8'), contentType, etag });
        }
      }
      return result;
    } as Response['send'];
  };

  /**
   * The upstream step (docs/upstream.md) before a packument or tarball GET (or HEAD) of a name that
   * is not local: only for callers Verdaccio's `packages:` lets read it (others go on to its 401/403).
   */
  const viaUpstream = (req: Request, res: Response, next: NextFunction, name: string, proceed: () => void): void => {
    const upstream = host.upstream;
    const stamp = revisionOf === null ? null : revisionOf(name);
    // a local package (a stamp that is not the cache's) never meets the upstream: no extra work on the hot path
    if (upstream === null || (stamp !== null && !stamp.startsWith('upstream:'))) {
      proceed();
      return;
    }
    const hops = Number.parseInt(headerText(req.headers[HOPS_HEADER]) || '0', 10);
    const run = (): void => {
      // HEAD as GET (RFC 9110 §9.3.2: the same header fields): Node's response drops the body of a
      // HEAD, so a fill started by one stores the tarball and answers its headers only
      const tarball = req.method === 'GET' || req.method === 'HEAD' ? matchTarballPath(req.path) : null;
      if (tarball !== null) {
        upstream.tarball(tarball.name, tarball.fileName, res, Number.isInteger(hops) ? hops : 0).then(
          (outcome) => (outcome === 'pass' ? proceed() : undefined),
          (error: unknown) => answerError(res, error),
        );
        return;
      }
      upstream.packument(name, Number.isInteger(hops) ? hops : 0).then(
        (outcome) => {
          if (outcome.kind === 'error') {
            res.status(outcome.status).json({ error: outcome.message });
            return;
          }
          if (outcome.kind === 'cached' && outcome.warning) {
            res.setHeader('Warning', outcome.warning);
            warn(`${name}: served the cached packument (${outcome.warning})`);
          }
          proceed();
        },
        (error: unknown) => answerError(res, error),
      );
    };
    if (!host.hasRemoteUser(req)) {
      run();
      return;
    }
    host.allowed('access', name, req, (allowed) => (allowed ? run() : next()));
  };

  const serveTarball = (req: Request, res: Response, next: NextFunction): boolean => {
    if ((req.method !== 'GET' && req.method !== 'HEAD') || host.upstream === null) return false;
    const route = matchTarballPath(req.path);
    if (route === null || !verdaccioAcceptsPackageName(route.name)) return false;
    viaUpstream(req, res, next, route.name, next);
    return true;
  };

  const servePackument = (req: Request, res: Response, next: NextFunction): void => {
    const name = matchPackumentPath(req.path);
    if (name === null || !verdaccioAcceptsPackageName(name)) {
      if (serveTarball(req, res, next)) return;
      // `npm view name@1.0.0`: the packument is made available, Verdaccio picks the version
      const versioned = host.upstream === null ? null : matchPackageVersionPath(req.path);
      if (versioned !== null && verdaccioAcceptsPackageName(versioned)) viaUpstream(req, res, next, versioned, next);
      else next();
      return;
    }
    viaUpstream(req, res, next, name, () => serveRendered(req, res, next, name));
  };

  const serveRendered = (req: Request, res: Response, next: NextFunction, name: string): void => {
    if (cache === null || revisionOf === null || host.needsVerdaccioAuth(req) || req.headers.via !== undefined) {
      withOwners(res, name, next); // `via`: Verdaccio's anti-loop check answers those
      return;
    }
    const revision = revisionOf(name);
    if (revision === null || !isSettledRevision(revision)) {
      withOwners(res, name, next);
      return;
    }
    // everything Verdaccio's rendering reads from the request: abbreviated or not, tarball URL base
    const key = packumentCacheKey(name, req.headers.accept, req.protocol, req.headers.host, req.headers[host.forwardedProtoHeader]);
    const hit = cache.get(key, revision);
    onCacheLookup(hit !== undefined);
    if (!hit) {
      // a miss needs no access check of ours: Verdaccio renders it only for a caller its
      // `packages:` rules let read it, and only that 200 is recorded (the first GET after a
      // publish or a cold fill is a miss: this keeps the check off it)
      record(req, res, key, name, revision);
      withOwners(res, name, next);
      return;
    }
    host.allowed('access', name, req, (allowed) => {
      if (!allowed) {
        next(); // Verdaccio asks again and answers 401/403 itself
        return;
      }
      replay(req, res, key, hit);
    });
  };

  return function storageHttp(req: Request, res: Response, next: NextFunction): void {
    const method = req.method;
    if (method === 'PUT' || method === 'POST') guardWrite(req, res, next);
    else if (method === 'DELETE') guardDelete(req, res, next);
    else if (method === 'GET' || method === 'HEAD') {
      if (!host.hostHeaderUsable(req.headers.host)) {
        // Verdaccio would throw building tarball URLs from it (packument: the process dies)
        res.status(400).json({ error: `invalid Host header ${JSON.stringify(req.headers.host)}: the registry builds tarball URLs from it` });
        return;
      }
      servePackument(req, res, next);
    } else next();
  };
}
