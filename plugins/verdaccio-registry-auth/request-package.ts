/**
 * Which package an HTTP request addresses, for package-limited tokens (docs/trusted-publishing.md).
 * Follows Verdaccio's routing: its scope rewrite (`/@scope/name…` → `/@scope%2Fname…`), then the
 * first path segment of the package routes (`/:package`, `/:package/:version`,
 * `/:package/-/:filename`, `/:package/-rev/:rev`), or the `/-/package/:package/…` routes. Every
 * other `/-/…` or `/_…` path addresses no package (null), as does a malformed escape. A wrong
 * answer can only refuse a limited token, never widen it: the name must equal the token's exactly.
 */
const PACKAGE_ROUTES = /^\/-\/package\/([^/]+)(?:\/|$)/i;

function decode(part: string): string | null {
  try {
    return decodeURIComponent(part);
  } catch {
    return null;
  }
}

/** `PUT /<package>` (npm publish; Verdaccio's publish route without `-rev`): the only write a trusted-publishing token may make. */
export function isPublishRequest(method: string, rawPath: string): boolean {
  if (method !== 'PUT') return false;
  const q = rawPath.search(/[?#]/);
  const path = (q < 0 ? rawPath : rawPath.slice(0, q)).replace(/\/$/, '');
  const name = packageOfPath(path);
  if (name === null) return false;
  const rest = path.replace(/^\/%40/i, '/@').split('/').filter((part) => part !== '');
  // one segment (`@scope%2Fname`, `name`) or the scope's two (`@scope/name`)
  return rest.length === 1 || (rest.length === 2 && rest[0].startsWith('@') && !rest[0].includes('%'));
}

export function packageOfPath(rawPath: string): string | null {
  const q = rawPath.search(/[?#]/);
  const path = q < 0 ? rawPath : rawPath.slice(0, q);
  const route = PACKAGE_ROUTES.exec(path);
  if (route) return decode(route[1]);
  if (!path.startsWith('/') || path.startsWith('/-/') || path.startsWith('/_') || path === '/' || path === '/-') return null;
  const scoped = /^\/(@[^/%]+)\/([^/]+)/.exec(path.replace(/^\/%40/i, '/@'));
  const first = scoped ? `${scoped[1]}/${scoped[2]}` : path.slice(1).split('/')[0];
  const name = decode(first);
  if (name === null || name === '' || name.startsWith('-')) return null;
  return name;
}
