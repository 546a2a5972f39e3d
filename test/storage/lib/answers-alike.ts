/**
 * The fast path's differential property (tests 17.10, 12.f3, 14.9): random requests sent to a
 * registry with the fast path and to one without, which must answer alike. Also the raw request
 * the fast-path tests read answers with (encodings undone, the cache header asked for).
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { CACHE_HEADER, DEBUG_REQUEST_HEADER } from '../../../plugins/registry-core/index';
import { rawRequest } from '../../harness/raw-http';
import type { RunningRegistry } from '../../harness/registry';

export const FULL = 'application/json';
export const ABBREVIATED = 'application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*';

export interface Raw {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** the bytes on the wire */
  body: Buffer;
  /** the bytes after Content-Encoding is undone */
  decoded: Buffer;
}

/** A raw HTTP request (fetch would decode Content-Encoding itself and hide what was sent). */
export async function raw(registry: { port: number }, path: string, options: { method?: string; headers?: Record<string, string>; token?: string; exact?: boolean } = {}): Promise<Raw> {
  // `exact`: only the given headers (and the debug header that names a cache hit), no default Accept
  const headers: Record<string, string> = { ...(options.exact === true ? {} : { accept: FULL }), [DEBUG_REQUEST_HEADER]: 'cache', ...options.headers };
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  const answer = await rawRequest(registry, { method: options.method, path, headers });
  const encoding = answer.headers['content-encoding'];
  // a 304 / HEAD may name an encoding and carry no body; a broken encoding throws and fails the test
  const decoded = answer.body.length === 0 ? answer.body : encoding === 'gzip' ? gunzipSync(answer.body) : encoding === 'br' ? brotliDecompressSync(answer.body) : answer.body;
  return { status: answer.status, headers: answer.headers, body: answer.body, decoded };
}

/** One request with exactly these headers (nothing added but the debug header that names a cache hit). */
export function exact(registry: { port: number }, path: string, method: string, headers: Record<string, string>): Promise<Raw> {
  return raw(registry, path, { method, headers, exact: true });
}

export interface Sides {
  on: RunningRegistry;
  off: RunningRegistry;
  /** The Authorization header a named credential stands for on a side (tokens are per registry unless the storage is shared). */
  authorization(side: 'on' | 'off', credential: string): string;
}

export const withFastPathOff = (config: Record<string, unknown>): void => {
  config.middlewares = { ...(config.middlewares as Record<string, unknown>), 'registry-storage-http': { fast_path: false } };
};

/**
 * Random requests (method, one of `paths`, Accept, Accept-Encoding, Host, X-Forwarded-Proto,
 * If-None-Match, Range, credentials) sent to both sides: the same status, headers and body; a HEAD
 * also says what the GET after it says.
 * Returns how many of the fast path's answers came from its cache (the comparison only means
 * something when the fast path was in play).
 */
export async function answersAlike(sides: Sides, paths: readonly string[], numRuns: number): Promise<number> {
  const headerToken = fc.stringMatching(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,12}$/);
  const coding = fc.constantFrom('gzip', 'br', 'deflate', 'identity', '*', 'x-gzip');
  const weighted = fc.tuple(coding, fc.option(fc.constantFrom('0', '0.5', '1'), { nil: undefined })).map(([name, q]) => (q === undefined ? name : `${name};q=${q}`));
  const request = fc.record(
    {
      method: fc.constantFrom('GET', 'HEAD'),
      path: fc.constantFrom(...paths),
      accept: fc.oneof(fc.constantFrom(FULL, ABBREVIATED, 'application/vnd.npm.install-v1+json', '*/*', 'text/html', 'application/vnd.npm.install-v1+json; q=0', 'application/json, application/vnd.npm.install-v1+json'), headerToken),
      acceptEncoding: fc.array(weighted, { maxLength: 3 }).map((list) => list.join(', ')),
      host: fc.oneof(fc.constant('registry.test:4873'), fc.constant('127.0.0.1:1'), fc.domain().map((domain) => `${domain}:8443`)),
      forwardedProto: fc.constantFrom('https', 'http', 'HTTPS', 'https, http', 'gopher'),
      ifNoneMatch: fc.constantFrom('*', '"nope"', 'W/"nope"', 'the etag', 'W/the etag', 'the etag, "x"'),
      range: fc.constantFrom('bytes=0-10', 'bytes=-5', 'bytes=100000-'),
      // no wrong password: failed logins are rate limited per user with a countdown in the answer,
      // which differs between two servers by the second it is asked in
      credentials: fc.constantFrom('alice', 'bob', 'alice basic', 'Bearer not-a-token', 'Basic Z2FyYmFnZQ==', 'Bearer ', 'Negotiate abc'),
    },
    // each header is present or not
    { requiredKeys: ['method', 'path', 'host'] },
  );
  const compared = ['content-type', 'content-encoding', 'etag', 'vary', 'access-control-allow-origin', 'x-powered-by', 'accept-ranges', 'content-range', 'cache-control', 'warning'];
  let hits = 0;
  await fc.assert(
    fc.asyncProperty(request, async (sent) => {
      const headersOf = (side: 'on' | 'off'): Record<string, string> => {
        const headers: Record<string, string> = { host: sent.host };
        if (sent.accept !== undefined) headers.accept = sent.accept;
        if (sent.acceptEncoding !== undefined) headers['accept-encoding'] = sent.acceptEncoding;
        if (sent.forwardedProto !== undefined) headers['x-forwarded-proto'] = sent.forwardedProto;
        if (sent.range !== undefined) headers.range = sent.range;
        if (sent.credentials !== undefined) headers.authorization = sides.authorization(side, sent.credentials);
        return headers;
      };
      const on = headersOf('on');
      const off = headersOf('off');
      if (sent.ifNoneMatch !== undefined) {
        let value: string = sent.ifNoneMatch;
        if (value.includes('the etag')) {
          // the ETag this very request would get without the condition (from the full path); asked
          // of both sides, so what the servers count and cache stays the same on both
          await exact(sides.on, sent.path, 'GET', on);
          const plain = await exact(sides.off, sent.path, 'GET', off);
          value = value.replace('the etag', String(plain.headers.etag ?? '"none"'));
        }
        on['if-none-match'] = value;
        off['if-none-match'] = value;
      }
      // fast path first, so a hit it serves is the cache's answer, not the full path's fresh one
      const fast = await exact(sides.on, sent.path, sent.method, on);
      const full = await exact(sides.off, sent.path, sent.method, off);
      if (fast.headers[CACHE_HEADER] === 'hit') hits++;
      const what = `${sent.method} ${sent.path} ${JSON.stringify({ ...off, authorization: sent.credentials })}`;
      assert.equal(fast.status, full.status, `${what}: status (${fast.decoded.toString().slice(0, 200)} | ${full.decoded.toString().slice(0, 200)})`);
      for (const name of compared) assert.equal(fast.headers[name], full.headers[name], `${what}: ${name}`);
      if (fast.headers['content-encoding'] === undefined) assert.equal(fast.headers['content-length'], full.headers['content-length'], `${what}: content-length`);
      assert.equal(fast.decoded.toString(), full.decoded.toString(), `${what}: body`);
      if (sent.method === 'HEAD') {
        // a HEAD says what the GET would (RFC 9110 §9.3.2), on both sides — but its encoding:
        // compression() never encodes a HEAD (Verdaccio's answer, which the fast path keeps)
        const [fastGet, fullGet] = [await exact(sides.on, sent.path, 'GET', on), await exact(sides.off, sent.path, 'GET', off)];
        for (const name of ['content-type', 'etag']) assert.equal(fast.headers[name], fastGet.headers[name], `${what}: HEAD and GET ${name}`);
        assert.equal(fast.status, fastGet.status, `${what}: HEAD and GET status (${fastGet.decoded.toString().slice(0, 200)})`);
        assert.equal(fullGet.status, fastGet.status, `${what}: the GET after it`);
      }
    }),
    { numRuns },
  );
  return hits;
}

export const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

