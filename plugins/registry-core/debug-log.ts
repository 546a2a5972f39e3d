/**
 * Verbose logging switched by the `DEBUG` feature flag (featureFlags bit 2), live: every call
 * reads the flag from the ConfigFile snapshot (a few ns; the snapshot follows other processes'
 * writes within 100 ms, in-process writes at once), so a toggle from the dashboard, the terminal
 * or `registry config toggle DEBUG` takes effect on the next request, without restart.
 *
 * Lines go straight to stdout, one per event, independent of Verdaccio's `log.level`: the DEBUG
 * bit IS the switch, so the shipped `level: warn` must not hide them (docs/operations.md):
 *
 *   registry debug <topic>: <message> key=value …
 *
 * Any plugin may call `debugLog(lockbPath, topic, message, fields)` — today `http` (the ops
 * part), `lock` (storage lock waits) and `upstream` (the upstream proxy). Never pass a token: use
 * `redactUrl` for request paths.
 */
import { resolve } from 'node:path';
import { ConfigFile } from './config-file';
import { FEATURE_FLAGS } from './layout';

interface DebugSource {
  file: ConfigFile | null;
  /** when opening failed: do not retry before this time (ms) */
  retryAt: number;
  warned: boolean;
}

const SOURCES_KEY = Symbol.for('mycompany-registry:debug-sources');
type SourcesHolder = { [SOURCES_KEY]?: Map<string, DebugSource> };

/** by the caller's spelling of the path: checked on every request, so no path.resolve on the hot path */
const bySpelling = new Map<string, DebugSource>();

function sourceOf(lockbPath: string): DebugSource {
  const known = bySpelling.get(lockbPath);
  if (known) return known;
  const holder = globalThis as SourcesHolder;
  holder[SOURCES_KEY] ??= new Map();
  const key = resolve(lockbPath);
  let source = holder[SOURCES_KEY].get(key);
  if (!source) {
    source = { file: null, retryAt: 0, warned: false };
    holder[SOURCES_KEY].set(key, source);
  }
  if (bySpelling.size < 64) bySpelling.set(lockbPath, source);
  return source;
}

/** Whether DEBUG is set in the registry.lockb at `lockbPath` right now. */
export function debugEnabled(lockbPath: string): boolean {
  const source = sourceOf(lockbPath);
  if (source.file === null) {
    const now = Date.now();
    if (now < source.retryAt) return false;
    try {
      // kept open for the process's life: ConfigFile shares one state (and one watcher) per real path
      source.file = ConfigFile.open(lockbPath);
    } catch (error) {
      source.retryAt = now + 1000;
      if (!source.warned) {
        source.warned = true;
        process.emitWarning(`registry-core: DEBUG flag unreadable (${error instanceof Error ? error.message : String(error)}); debug logging off until registry.lockb opens`);
      }
      return false;
    }
  }
  return (source.file.getConfig().fields.featureFlags & FEATURE_FLAGS.DEBUG) !== 0;
}

export type DebugFields = Readonly<Record<string, string | number | boolean | undefined>>;

function fieldText(value: string | number | boolean): string {
  const text = String(value);
  // quoted when it would not read back as one token
  return /^[^\s"=]+$/.test(text) ? text : JSON.stringify(text);
}

/** The one debug line format (exported for tests and for callers that print elsewhere). */
export function formatDebugLine(topic: string, message: string, fields: DebugFields = {}): string {
  const extra = Object.entries(fields)
    .filter((entry): entry is [string, string | number | boolean] => entry[1] !== undefined)
    .map(([key, value]) => ` ${key}=${fieldText(value)}`)
    .join('');
  return `registry debug ${topic}: ${message.replace(/[\r\n]+/g, ' ')}${extra}\n`;
}

/** Writes one debug line when DEBUG is on; returns whether it did. */
export function debugLog(lockbPath: string, topic: string, message: string, fields?: DebugFields): boolean {
  if (!debugEnabled(lockbPath)) return false;
  process.stdout.write(formatDebugLine(topic, message, fields));
  return true;
}

/** What a redacted secret reads as in a URL or a log line. */
export const REDACTED = '[redacted]';
/** `npm logout` sends its token as the path segment after `/-/user/token/`. */
const LOGOUT_TOKEN_PATH = /\/-\/user\/token\/([^/?#]+)/i;

/**
 * The one logout-token rule: the token segment of an `npm logout` URL (`/-/user/token/<token>`,
 * raw, as spelled) and the URL with it replaced by REDACTED (the prefix keeps its spelling, so
 * routing matches as before); null when the URL carries none (or it is redacted already).
 */
export function splitLogoutToken(url: string): { token: string; redacted: string } | null {
  // every match holds `/-/` literally (no letters, so case does not matter): the regex is run only
  // for those URLs — this rule runs on every request (auth's request-start subscriber)
  if (!url.includes('/-/')) return null;
  const match = LOGOUT_TOKEN_PATH.exec(url);
  if (!match || match[1] === REDACTED) return null;
  const end = match.index + match[0].length;
  return { token: match[1], redacted: `${url.slice(0, end - match[1].length)}${REDACTED}${url.slice(end)}` };
}
/** A JWT (three base64url parts) or a long hex/base64url run: tokens, session ids, never a package name part we need. */
const TOKEN_SEGMENT = /^(?:[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}|[0-9a-fA-F]{32,}|[A-Za-z0-9_-]{64,})$/;

/**
 * A request URL fit for a log line: the path with token-shaped segments replaced by
 * `[redacted]` (`npm logout` sends its token in the path), and of the query only the parameter
 * names (`?text=…&size=…`) — values may be secrets.
 */
export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  const query = q === -1 ? '' : url.slice(q + 1);
  const redactedPath = (splitLogoutToken(path)?.redacted ?? path)
    .split('/')
    .map((segment) => (TOKEN_SEGMENT.test(segment) ? REDACTED : segment))
    .join('/');
  if (q === -1) return redactedPath;
  const names = query
    .split('&')
    .filter((part) => part !== '')
    .map((part) => {
      const name = part.split('=')[0];
      return `${/^[A-Za-z0-9_.-]{1,40}$/.test(name) ? name : '?'}=…`;
    });
  return `${redactedPath}?${names.join('&')}`;
}

/** Says whether a response came from one of our caches (`hit`, `miss`, `upstream`) — only when asked (docs/http-api.md). */
export const CACHE_HEADER = 'x-registry-cache';
/** The request header that asks for debug response headers: `x-registry-debug: cache` asks for CACHE_HEADER. */
export const DEBUG_REQUEST_HEADER = 'x-registry-debug';

/** true when the request asked for the cache header (`x-registry-debug: cache`, among comma-separated words). */
export function wantsCacheHeader(headers: { [name: string]: string | string[] | undefined }): boolean {
  const raw = headers[DEBUG_REQUEST_HEADER];
  if (raw === undefined) return false; // every cache hit asks: no split of an empty string
  const text = Array.isArray(raw) ? raw.join(',') : raw;
  return text.split(',').some((word) => word.trim().toLowerCase() === 'cache');
}
