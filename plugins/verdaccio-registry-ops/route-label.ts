/**
 * The `route` label of the request metrics: the route PATTERN a request path matches (as
 * Verdaccio's and our routers would route it), never the raw path — so the label has a small,
 * fixed set of values (ROUTE_LABELS) whatever clients send. Pure.
 */

const FIXED_ROUTES = [
  '/',
  '/favicon.ico',
  '/-/ping',
  '/-/ready',
  '/-/metrics',
  '/-/whoami',
  '/-/all',
  '/-/v1/search',
  '/-/v1/login',
  '/-/npm/v1/keys',
  '/-/npm/v1/user',
  '/-/npm/v1/tokens',
  '/-/npm/v1/security/advisories/bulk',
  '/-/npm/v1/security/audits',
  '/-/npm/v1/security/audits/quick',
  '/_auth/token',
  '/_auth/.well-known/jwks.json',
  '/_auth/.well-known/openid-configuration',
] as const;

const PATTERN_ROUTES = [
  '/-/user/token/:token',
  '/-/user/:user',
  '/-/npm/v1/tokens/token/:key',
  '/-/v1/login/*',
  '/-/package/:package/dist-tags',
  '/-/package/:package/dist-tags/:tag',
  '/-/package/:package/*',
  '/-/*',
  '/_auth/*',
  '/_dashboard',
  '/_dashboard/api/*',
  '/_dashboard/terminal',
  '/_dashboard/*',
  '/:package',
  '/:package/:version',
  '/:package/-/:filename',
  '/:package/-/:filename/-rev/:revision',
  '/:package/-rev/:revision',
  '/:package/*',
  'other',
] as const;

export type RouteLabel = (typeof FIXED_ROUTES)[number] | (typeof PATTERN_ROUTES)[number];
export const ROUTE_LABELS: readonly RouteLabel[] = [...FIXED_ROUTES, ...PATTERN_ROUTES];

const FIXED = new Map<string, RouteLabel>(FIXED_ROUTES.map((route) => [route.toLowerCase(), route]));

/** The `method` label: the methods a registry serves, anything else `OTHER`. */
export function methodLabel(method: string | undefined): string {
  const upper = (method ?? '').toUpperCase();
  return ['GET', 'HEAD', 'PUT', 'POST', 'DELETE', 'PATCH', 'OPTIONS'].includes(upper) ? upper : 'OTHER';
}

function isSegment(text: string): boolean {
  return text !== '' && text !== '.' && text !== '..';
}

/** The route pattern of a request target (`/path?query`); always one of ROUTE_LABELS. */
export function routeLabel(target: string): RouteLabel {
  const q = target.search(/[?#]/);
  let path = q === -1 ? target : target.slice(0, q);
  if (!path.startsWith('/')) return 'other';
  // Express routes with one optional trailing slash, case-insensitively
  if (path.length > 1 && path.endsWith('/')) path = path.slice(0, -1);
  const lower = path.toLowerCase();
  const fixed = FIXED.get(lower);
  if (fixed) return fixed;
  const parts = path.split('/').slice(1);
  if (parts[0] === '-') {
    if (lower.startsWith('/-/user/token/')) return '/-/user/token/:token';
    if (lower.startsWith('/-/user/') && parts.length >= 3) return '/-/user/:user';
    if (lower.startsWith('/-/npm/v1/tokens/token/') && parts.length === 6) return '/-/npm/v1/tokens/token/:key';
    if (lower.startsWith('/-/v1/login/') || lower.startsWith('/-/v1/done')) return '/-/v1/login/*';
    if (lower.startsWith('/-/package/') && parts.length >= 3) {
      const scopedName = parts[2].startsWith('@') && !/%2f/i.test(parts[2]);
      const rest = parts.slice(scopedName ? 4 : 3);
      if (rest[0]?.toLowerCase() === 'dist-tags') return rest.length === 1 ? '/-/package/:package/dist-tags' : '/-/package/:package/dist-tags/:tag';
      return '/-/package/:package/*';
    }
    return '/-/*';
  }
  if (lower === '/_dashboard') return '/_dashboard';
  if (lower === '/_dashboard/terminal') return '/_dashboard/terminal';
  if (lower.startsWith('/_dashboard/api/')) return '/_dashboard/api/*';
  if (lower.startsWith('/_dashboard/')) return '/_dashboard/*';
  if (lower.startsWith('/_auth/')) return '/_auth/*';
  if (!isSegment(parts[0] ?? '')) return 'other';
  // a package: `name`, `@scope/name` or `@scope%2fname`
  const scoped = parts[0].startsWith('@') && !/%2f/i.test(parts[0]);
  if (scoped && !isSegment(parts[1] ?? '')) return 'other';
  const rest = parts.slice(scoped ? 2 : 1);
  if (rest.length === 0) return '/:package';
  if (rest[0] === '-') {
    if (rest.length === 2 && isSegment(rest[1])) return '/:package/-/:filename';
    if (rest.length === 4 && rest[2] === '-rev') return '/:package/-/:filename/-rev/:revision';
    return '/:package/*';
  }
  if (rest[0] === '-rev') return rest.length <= 2 ? '/:package/-rev/:revision' : '/:package/*';
  if (rest.length === 1 && isSegment(rest[0])) return '/:package/:version';
  return '/:package/*';
}
