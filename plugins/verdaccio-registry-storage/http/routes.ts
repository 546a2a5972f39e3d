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
import { type StorageHttpHost, verdaccioAcceptsPackageName } from '../verdaccio-adapter';
import { checkDistTagBody, checkPublishBody, type GuardVerdict } from './publish-guard';
import type { ResponseCache } from './response-cache';
import { matchDistTagPath, matchPackumentPath, matchPublishPath } from './route-match';

/** compression()'s threshold: smaller bodies are sent as they are. */
const COMPRESSION_THRESHOLD = 1024;
export const CACHE_HEADER = 'x-registry-cache';

export interface StorageHttpDeps {
  host: StorageHttpHost;
  /** null: cache off (the guard still runs). */
  cache: ResponseCache | null;
  warn(message: string): void;
}

/** A revision taken within the store's racy window never repeats: nothing could ever reuse it. */
export function isSettledRevision(revision: string): boolean {
  return !revision.includes(':racy-');
}

/** Verdaccio's media(application/json) check: anything else is its 415, not our business. */
function isJsonMedia(header: string | undefined): boolean {
  return typeof header === 'string' && header.split(';')[0].trim() === 'application/json';
}

/**
 * Whether compression() (negotiator over br, gzip, deflate, identity; preferring br, then gzip)
 * would answer this Accept-Encoding with gzip. Conservative: a wildcard or an acceptable br
 * means "let compression() decide".
 */
export function negotiatesGzip(header: string | undefined): boolean {
  if (typeof header !== 'string' || header === '') return false;
  const quality = new Map<string, number>();
  for (const part of header.split(',')) {
    const match = /^\s*([^\s;]+)\s*(?:;(.*))?$/.exec(part.trim());
    if (!match) continue;
    let q = 1;
    for (const param of (match[2] ?? '').split(';')) {
      const [key, value] = param.trim().split('=');
      if (key === 'q') {
        q = Number.parseFloat(value);
        break;
      }
    }
    if (Number.isNaN(q)) q = 0;
    const coding = match[1].toLowerCase();
    quality.set(coding, Math.max(quality.get(coding) ?? 0, q));
  }
  const gzip = quality.get('gzip') ?? 0;
  if (gzip <= 0 || quality.has('*') || (quality.get('br') ?? 0) > 0) return false;
  for (const [coding, q] of quality) if (coding !== 'gzip' && q > gzip) return false;
  return true; // ties with deflate / identity go to gzip (compression's preferred list)
}

function headerText(value: string | string[] | undefined): string {
  return Array.isArray(value) ? value.join('\n') : (value ?? '');
}

export function createStorageHttpHandler(deps: StorageHttpDeps): RequestHandler {
  const { host, cache, warn } = deps;
  const revisionOf = host.packumentRevision;

  /** Unauthorised callers get Verdaccio's own 401/403, whatever their body; bad bodies of authorised ones a 400. */
  const guard = (req: Request, res: Response, next: NextFunction, name: string, check: () => GuardVerdict): void => {
    if (!isJsonMedia(req.headers['content-type']) || !verdaccioAcceptsPackageName(name)) {
      next(); // Verdaccio's own 415 / 400 "invalid package"
      return;
    }
    const decide = (): void => {
      const verdict = check();
      if (verdict.ok) {
        next();
        return;
      }
      warn(`refused ${req.method} ${req.path}: ${verdict.error}`);
      res.status(400).json({ error: verdict.error });
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
      guard(req, res, next, tagRoute.name, () => checkDistTagBody(tagRoute.name, tagRoute.tag, req.body));
      return;
    }
    const route = req.method === 'PUT' ? matchPublishPath(req.path) : null;
    if (route === null) {
      next();
      return;
    }
    guard(req, res, next, route.name, () => checkPublishBody(route.name, route.viaRevisionPath, req.body));
  };

  const replay = (req: Request, res: Response, key: string, hit: NonNullable<ReturnType<ResponseCache['get']>>): void => {
    res.setHeader(CACHE_HEADER, 'hit');
    res.setHeader('Content-Type', hit.contentType);
    res.setHeader('ETag', hit.etag);
    if (req.method === 'GET' && hit.body.length >= COMPRESSION_THRESHOLD && negotiatesGzip(req.headers['accept-encoding']) && cache !== null) {
      res.setHeader('Content-Encoding', 'gzip'); // compression() passes an encoded body through (and still adds Vary)
      res.send(cache.gzipOf(key, hit));
      return;
    }
    res.send(hit.body);
  };

  /** Lets Verdaccio render, and keeps its 200 if the packument did not change meanwhile. */
  const record = (res: Response, key: string, name: string, revision: string): void => {
    res.setHeader(CACHE_HEADER, 'miss');
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

  const servePackument = (req: Request, res: Response, next: NextFunction): void => {
    if (cache === null || revisionOf === null || host.needsVerdaccioAuth(req) || req.headers.via !== undefined) {
      next(); // `via`: Verdaccio's anti-loop check answers those
      return;
    }
    const name = matchPackumentPath(req.path);
    if (name === null || !verdaccioAcceptsPackageName(name)) {
      next();
      return;
    }
    const revision = revisionOf(name);
    if (revision === null || !isSettledRevision(revision)) {
      next();
      return;
    }
    host.allowed('access', name, req, (allowed) => {
      if (!allowed) {
        next(); // Verdaccio asks again and answers 401/403 itself
        return;
      }
      // everything Verdaccio's rendering reads from the request: abbreviated or not, tarball URL base
      const key = [name, headerText(req.headers.accept), req.protocol, headerText(req.headers.host), headerText(req.headers[host.forwardedProtoHeader])].join('\u0000');
      const hit = cache.get(key, revision);
      if (hit) {
        replay(req, res, key, hit);
        return;
      }
      record(res, key, name, revision);
      next();
    });
  };

  return function storageHttp(req: Request, res: Response, next: NextFunction): void {
    const method = req.method;
    if (method === 'PUT' || method === 'POST') guardWrite(req, res, next);
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
