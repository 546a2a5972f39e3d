/**
 * Request-body limits, applied where Verdaccio's app-wide JSON parser sits — before any body is
 * buffered or parsed (issue 11.6: 12 anonymous 49 MB bodies to `/-/ping` took 1.75 GB).
 *
 * - Only a publish (`PUT /:package`, `PUT /:package/-rev/:rev`, scoped forms incl. `%2f`) by a
 *   caller Verdaccio's auth allows to publish that package may send up to `max_body_size`.
 * - Every other JSON body (login, token create, dist-tags, dashboard, stars, profile…) gets at most
 *   `body_limit_kb` (default 64 KB; the largest real one is a dashboard URL op under 4 KB).
 * - A declared `Content-Length` over the limit is answered 413 at once, nothing read; a chunked
 *   body is counted while it streams and answered 413 at the limit. After an early answer the
 *   connection reads nothing more and ends (see answerEarly).
 * - `application/octet-stream` PUTs (Verdaccio's legacy tarball upload) are streamed to storage
 *   by their route and never buffered: left alone.
 *
 * The parsing itself stays Verdaccio's choice (express.json, strict: false); only the limit
 * depends on the route and the caller.
 */
import express from 'express';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { matchPublishPath } from './route-match';

export const DEFAULT_BODY_LIMIT_KB = 64;
/** What a publish body carries besides the base64 tarball (manifest, readme) at most, for the "largest tarball" figure. */
export const PUBLISH_METADATA_ALLOWANCE = 4 * 1024 * 1024;

export interface BodyLimits {
  /** Every body but an authorised publish. */
  smallBytes: number;
  /** `max_body_size`: an authorised publish. */
  publishBytes: number;
}

/** body-parser's size syntax (`bytes`: 1 kb = 1024 b) for `max_body_size`; a number means bytes. */
export function parseSize(value: unknown, key: string): number {
  if (typeof value === 'number' && Number.isSafeInteger(value) && value > 0) return value;
  const match = typeof value === 'string' ? /^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb)?\s*$/i.exec(value) : null;
  if (!match) throw new Error(`\`${key}\` must be a size like 64kb or 100mb (got ${JSON.stringify(value)})`);
  const unit = (match[2] ?? 'b').toLowerCase();
  const factor = unit === 'gb' ? 1024 ** 3 : unit === 'mb' ? 1024 ** 2 : unit === 'kb' ? 1024 : 1;
  return Math.floor(Number(match[1]) * factor);
}

/** The largest tarball a publish body of `publishBytes` can carry (base64 is 4/3 of the bytes). */
export function maxTarballBytes(publishBytes: number): number {
  return Math.max(0, Math.floor(((publishBytes - PUBLISH_METADATA_ALLOWANCE) * 3) / 4));
}

export function formatMb(bytes: number): string {
  return `${Math.round((bytes / 1024 / 1024) * 10) / 10} MB`;
}

function formatKb(bytes: number): string {
  return bytes >= 1024 * 1024 ? formatMb(bytes) : `${Math.round(bytes / 1024)} KB`;
}

/** The declared body length, null when none (chunked or no body), NaN when unreadable. */
export function declaredLength(header: string | undefined): number | null {
  if (header === undefined) return null;
  return /^\d+$/.test(header.trim()) ? Number(header.trim()) : Number.NaN;
}

/** Verdaccio's publish route — the only one whose bodies carry tarballs. */
export function isPublishRoute(method: string, path: string): string | null {
  if (method !== 'PUT') return null;
  const route = matchPublishPath(path);
  return route ? route.name : null;
}

export interface BodyLimitDeps {
  limits: BodyLimits;
  /**
   * Whether the caller may publish `name` (Verdaccio's credential middleware + allow_publish):
   * null when allowed, else the error Verdaccio would answer. Never called back when the
   * credential check answered by itself (e.g. a read-only token's 403).
   */
  publishVerdict(name: string, req: Request, res: Response, done: (verdict: null | { status: number; message: string }) => void): void;
}

/** How long a refused client gets to read its answer before the unread rest of its body resets the connection. */
export const LINGER_MS = 2000;

/**
 * Answers before (the rest of) the body is read, and reads no more of it: the connection stops
 * reading (TCP holds the sender back) and is closed once the client read the answer and hung up,
 * or after LINGER_MS. Reading the rest only to discard it would cost as much as the client cares
 * to send; closing at once would reset the connection under a client still sending, and most
 * clients then lose the answer.
 */
function answerEarly(req: Request, res: Response, status: number, error: string): void {
  res.setHeader('Connection', 'close');
  if (!req.complete) {
    // Node would end the socket right after the answer (Connection: close); with unread bytes
    // waiting that is a reset, so the socket is kept (paused) until the client is done or LINGER_MS
    const socket = req.socket as Request['socket'] & { destroySoon?: () => void };
    const destroySoon = socket.destroySoon;
    socket.destroySoon = () => undefined;
    res.once('finish', () => {
      socket.destroySoon = destroySoon;
    });
    stopReading(req, res);
  }
  res.status(status).json({ error });
}

/** No more of this request's body is read; once answered, the connection ends within LINGER_MS. */
function stopReading(req: Request, res: Response): void {
  const socket = req.socket;
  req.pause();
  socket.pause();
  const end = (): void => {
    const timer = setTimeout(() => socket.destroy(), LINGER_MS);
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
    socket.end(); // our side is done (FIN); the client's unread rest is never read
  };
  if (res.writableFinished) end();
  else res.once('finish', end);
}

/** Bodies Verdaccio streams to storage without parsing (the legacy `PUT /:package/-/:file` tarball upload). */
function isOctetStream(req: Request): boolean {
  const type = req.headers['content-type'];
  return typeof type === 'string' && type.split(';')[0].trim().toLowerCase() === 'application/octet-stream';
}

export function createBodyLimitParser(deps: BodyLimitDeps): RequestHandler {
  const { limits } = deps;
  const small = express.json({ strict: false, limit: limits.smallBytes });
  const large = express.json({ strict: false, limit: limits.publishBytes });
  const tarballMax = formatMb(maxTarballBytes(limits.publishBytes));
  const publishWhat = `a publish body carries the tarball in base64 (4/3 of its size), so the largest tarball is about ${tarballMax}; raise max_body_size in config.yaml`;
  const tooLarge = (req: Request, res: Response, limit: number, what: string): void =>
    answerEarly(req, res, 413, `request body too large: ${what} (at most ${formatKb(limit)})`);

  /**
   * Runs a parser. A body of unknown length is counted as it streams and answered 413 as soon as
   * it passes the limit (body-parser alone stops buffering there too, but answers only once the
   * client finished sending). Whatever the parser reports after we answered is moot.
   */
  const parse = (parser: RequestHandler, limit: number, what: string, req: Request, res: Response, next: NextFunction): void => {
    parser(req, res, (error?: unknown) => {
      if (res.headersSent) return;
      if ((error as { type?: unknown } | undefined)?.type === 'entity.too.large') tooLarge(req, res, limit, what);
      else next(error);
    });
    // body-parser marks a body it reads (synchronously, before the first chunk); others are not ours to count
    if ((req as Request & { _body?: boolean })._body !== true || req.complete) return;
    let received = 0;
    const count = (chunk: Buffer): void => {
      received += chunk.length;
      if (received <= limit) return;
      req.off('data', count);
      if (!res.headersSent) tooLarge(req, res, limit, what);
    };
    req.on('data', count);
    req.once('end', () => req.off('data', count));
  };

  // named like body-parser's so Verdaccio's hasBodyParser() still finds "the" JSON parser
  return function jsonParser(req: Request, res: Response, next: NextFunction): void {
    if (req.method === 'PUT' && isOctetStream(req)) {
      next(); // streamed to storage by its route (after Verdaccio's publish check), never buffered
      return;
    }
    const length = declaredLength(req.headers['content-length']);
    const fitsSmall = length !== null && !Number.isNaN(length) && length <= limits.smallBytes && req.headers['transfer-encoding'] === undefined;
    const publishName = fitsSmall ? null : isPublishRoute(req.method, req.path);
    if (publishName === null) {
      if (length !== null && length > limits.smallBytes) {
        // answered before a byte of it is read
        tooLarge(req, res, limits.smallBytes, 'only a publish (PUT /<package>) may send more');
        return;
      }
      parse(small, limits.smallBytes, 'only a publish (PUT /<package>) may send more', req, res, next);
      return;
    }
    if (length !== null && length > limits.publishBytes) {
      tooLarge(req, res, limits.publishBytes, publishWhat);
      return;
    }
    // Verdaccio's request logger listens to 'data' from the start (the request is flowing): during
    // an asynchronous credential check every chunk would go past the parser. Held until it reads.
    req.pause();
    let decided = false;
    // the credential check may answer by itself (a read-only token's 403): the body is never read
    res.once('finish', () => {
      if (!decided && !req.complete) stopReading(req, res);
    });
    deps.publishVerdict(publishName, req, res, (verdict) => {
      decided = true;
      if (verdict === null) {
        parse(large, limits.publishBytes, publishWhat, req, res, next);
        req.resume();
        return;
      }
      // not allowed to publish: Verdaccio would refuse it after parsing, so nothing is parsed
      answerEarly(req, res, verdict.status, verdict.message);
    });
  };
}
