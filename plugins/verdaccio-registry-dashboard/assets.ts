/**
 * The page's static files, read once at start-up and kept in memory in three encodings
 * (identity, gzip, brotli) with a strong ETag each. Serving is a header lookup and one
 * `res.end(buffer)`: no disk, no compression per request. Each compressed body is made by the
 * first request that asks for that encoding and kept: compressing every file at start cost
 * ≈ 8 ms CPU of every cold start (issue 17), for a page many starts never serve. Setting Content-Encoding ourselves
 * also makes Verdaccio's app-wide `compression()` leave the body alone.
 */
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join } from 'node:path';
import { brotliCompressSync, constants as zlibConstants, gzipSync } from 'node:zlib';
import { negotiateEncoding } from '../registry-core/content-encoding';

export type Encoding = 'br' | 'gzip' | 'identity';

interface Representation {
  readonly body: Buffer;
  etag: string;
}

export interface Asset {
  /** URL below /_dashboard, e.g. `/assets/app.js` or `/` for the page */
  route: string;
  contentType: string;
  /** content hash, also the `?v=` of versioned asset URLs */
  version: string;
  representations: Record<Encoding, Representation>;
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.json': 'application/json; charset=utf-8',
};

export const PAGE_FILE = 'index.html';
/** The web login's sign-in page (docs/web-login-and-tokens.md), served as the asset `/login`. */
export const LOGIN_PAGE_FILE = 'login.html';
const PAGES: readonly { file: string; route: string }[] = [
  { file: PAGE_FILE, route: '/' },
  { file: LOGIN_PAGE_FILE, route: '/login' },
];
/** In index.html, `{{asset:app.js}}` becomes `/_dashboard/assets/app.js?v=<hash>`. */
const ASSET_REFERENCE = /\{\{asset:([\w.-]+)\}\}/g;

function makeAsset(route: string, contentType: string, content: Buffer): Asset {
  const version = createHash('sha256').update(content).digest('base64url').slice(0, 16);
  const compressible = !contentType.startsWith('image/') || contentType === 'image/svg+xml';
  const gzip = (): Buffer => (compressible ? gzipSync(content, { level: 9 }) : content);
  // Quality 5, not 11: for the page's ~45 KB q11 costs ~38 ms of CPU (once per process, on the
  // first request that accepts br) to save ~1 KB (12.6 → 11.5 KB).
  const br = (): Buffer =>
    compressible
      ? brotliCompressSync(content, {
          params: { [zlibConstants.BROTLI_PARAM_QUALITY]: 5, [zlibConstants.BROTLI_PARAM_SIZE_HINT]: content.length },
        })
      : content;
  return {
    route,
    contentType,
    version,
    representations: {
      identity: { body: content, etag: `"${version}"` },
      gzip: madeOnce(gzip, `"${version}-gz"`),
      br: madeOnce(br, `"${version}-br"`),
    },
  };
}

/** A representation whose body is made when first read, then kept. */
function madeOnce(make: () => Buffer, etag: string): Representation {
  let body: Buffer | undefined;
  return {
    get body(): Buffer {
      return (body ??= make());
    },
    etag,
  };
}

export function loadAssets(publicDir: string, mountPath: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  const files = readdirSync(publicDir).filter((file) => !PAGES.some((page) => page.file === file) && CONTENT_TYPES[extname(file)] !== undefined);
  for (const file of files) {
    const asset = makeAsset(`/assets/${file}`, CONTENT_TYPES[extname(file)], readFileSync(join(publicDir, file)));
    assets.set(asset.route, asset);
  }
  for (const page of PAGES) {
    const html = readFileSync(join(publicDir, page.file), 'utf8').replace(ASSET_REFERENCE, (_match, file: string) => {
      const asset = assets.get(`/assets/${file}`);
      if (!asset) throw new Error(`registry-dashboard: ${page.file} references missing asset ${file} (in ${publicDir})`);
      return `${mountPath}/assets/${file}?v=${asset.version}`;
    });
    assets.set(page.route, makeAsset(page.route, CONTENT_TYPES['.html'], Buffer.from(html, 'utf8')));
  }
  return assets;
}

const ASSET_ENCODINGS: readonly Encoding[] = ['br', 'gzip', 'identity'];

/** br > gzip > identity by q-value (core content-encoding.ts, the negotiator compression() uses); identity when nothing else is acceptable. */
export function chooseEncoding(acceptEncoding: string | undefined): Encoding {
  return (negotiateEncoding(acceptEncoding, ASSET_ENCODINGS, ['br', 'gzip']) as Encoding | undefined) ?? 'identity';
}

function etagMatches(ifNoneMatch: string, etag: string): boolean {
  if (ifNoneMatch.trim() === '*') return true;
  // If-None-Match uses the weak comparison: W/"x" matches "x".
  return ifNoneMatch.split(',').some((candidate) => candidate.trim().replace(/^W\//, '') === etag);
}

export function serveAsset(
  req: IncomingMessage,
  res: ServerResponse,
  asset: Asset,
  headers: Record<string, string>,
  cacheControl: string,
): void {
  const encoding = chooseEncoding(req.headers['accept-encoding']);
  const representation = asset.representations[encoding];
  const common: Record<string, string> = {
    ...headers,
    ETag: representation.etag,
    'Cache-Control': cacheControl,
    Vary: 'Accept-Encoding',
  };
  const ifNoneMatch = req.headers['if-none-match'];
  if (ifNoneMatch && etagMatches(ifNoneMatch, representation.etag)) {
    res.writeHead(304, common);
    res.end();
    return;
  }
  const full: Record<string, string> = {
    ...common,
    'Content-Type': asset.contentType,
    'Content-Length': String(representation.body.length),
  };
  if (encoding !== 'identity') full['Content-Encoding'] = encoding;
  res.writeHead(200, full);
  res.end(req.method === 'HEAD' ? undefined : representation.body);
}
