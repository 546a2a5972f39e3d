/**
 * Which package an HTTP request is about — the one derivation both the auth plugin (package-
 * limited tokens, docs/web-login-and-tokens.md) and anything else that needs it use.
 *
 * Verdaccio's package routes all have the package as their first path segment
 * (`/:package`, `/:package/:version`, `/:package/-/:filename`, `/:package/-rev/...`,
 * `/:package/:tag`), after its `encodeScopePackage` rewrite (`/@scope/name…` → `/@scope%2Fname…`);
 * the only package routes below `/-/` are `/-/package/:package/...` (dist-tags, access, trust,
 * collaborators). A first segment starting with `-` or `_` is never a package (npm names cannot
 * start with either), so `/-/whoami`, `/-/v1/search`, `/_auth/…` and `/_dashboard/…` address none.
 * Pure: no Verdaccio, no I/O.
 */

export type RequestPackage =
  /** the request reads or changes this package */
  | { kind: 'package'; name: string }
  /** not about one package (whoami, search, tokens, the dashboard…) */
  | { kind: 'none' }
  /** looks like a package route, but the name is not valid percent-encoding (Express answers 400) */
  | { kind: 'malformed' };

const NONE: RequestPackage = { kind: 'none' };
const MALFORMED: RequestPackage = { kind: 'malformed' };

/** @verdaccio/middleware encodeScopePackage, on the path only. */
function encodeScope(path: string): string {
  return path.replace(/\/%40/i, '/@').replace(/(\/@[^/%]+)\/(?!$)/, '$1%2F');
}

function decode(raw: string): string | null {
  try {
    return decodeURIComponent(raw);
  } catch {
    return null;
  }
}

const DASH_PACKAGE_ROUTE = /^\/-\/package\/([^/]+)(?:\/|$)/i;
/**
 * Verdaccio's web UI data routes that show one package (`/-/verdaccio/data/sidebar/…`,
 * `/-/verdaccio/data/package/readme/…[/:version]`), scoped as two segments `@scope/name`.
 */
const WEB_PACKAGE_ROUTE = /^\/-\/verdaccio\/data\/(?:sidebar|package\/readme)\/((?:@|%40)[^/]+\/[^/]+|[^/]+)(?:\/|$)/i;

/**
 * The package a request addresses. `path` is the URL path (a query string is ignored); `method`
 * is accepted for the rule's readers — every method of a package route addresses the package.
 */
export function packageOfRequest(_method: string, path: string): RequestPackage {
  const query = path.search(/[?#]/);
  const bare = query === -1 ? path : path.slice(0, query);
  if (!bare.startsWith('/')) return NONE;
  const web = WEB_PACKAGE_ROUTE.exec(bare);
  if (web) {
    const name = decode(web[1]);
    return name === null ? MALFORMED : { kind: 'package', name };
  }
  const encoded = encodeScope(bare);
  const dash = DASH_PACKAGE_ROUTE.exec(encoded);
  const raw = dash ? dash[1] : encoded.slice(1).split('/', 1)[0];
  if (raw === undefined || raw === '') return NONE;
  if (!dash && (raw.startsWith('-') || raw.startsWith('_'))) return NONE;
  const name = decode(raw);
  if (name === null) return MALFORMED;
  if (name === '' || name === 'favicon.ico') return NONE;
  return { kind: 'package', name };
}

/**
 * `PUT /<package>` — npm publish, Verdaccio's publish route without `-rev`, dist-tag or version
 * segments: the only write a trusted-publishing token may make (docs/trusted-publishing.md).
 */
export function isPublishRequest(method: string, path: string): boolean {
  if (method !== 'PUT') return false;
  const query = path.search(/[?#]/);
  const bare = (query === -1 ? path : path.slice(0, query)).replace(/\/$/, '');
  if (packageOfRequest(method, bare).kind !== 'package' || DASH_PACKAGE_ROUTE.test(bare)) return false;
  // one segment after Verdaccio's scope rewrite (`@scope%2Fname`, `name`)
  return encodeScope(bare).slice(1).split('/').length === 1;
}

/** The scope of a package name (`@scope`), or null for an unscoped name. */
export function scopeOf(name: string): string | null {
  if (!name.startsWith('@')) return null;
  const slash = name.indexOf('/');
  return slash > 1 ? name.slice(0, slash) : null;
}

/** Package and scope limits a token carries; both empty = not limited to packages. */
export interface PackageLimits {
  packages: readonly string[];
  /** `@scope` (with the `@`) */
  scopes: readonly string[];
}

export function isPackageLimited(limits: PackageLimits): boolean {
  return limits.packages.length > 0 || limits.scopes.length > 0;
}

/** true when a token with these limits may use `name` (an unlimited token may use every package). */
export function limitsAllowPackage(limits: PackageLimits, name: string): boolean {
  if (!isPackageLimited(limits)) return true;
  if (limits.packages.includes(name)) return true;
  const scope = scopeOf(name);
  return scope !== null && limits.scopes.includes(scope);
}
