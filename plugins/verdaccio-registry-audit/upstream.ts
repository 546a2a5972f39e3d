/**
 * Which upstream answers npm audit, read from config.yaml's `uplinks` (there is no upstream
 * feature of ours yet: the uplink entry is the upstream). Pure; the relay is relay.ts.
 */

export interface AuditUpstream {
  /** the uplink's key in config.yaml */
  name: string;
  /** normalized: no trailing slash */
  url: string;
  timeoutMs: number;
  /** `Authorization` header value from the uplink's `auth:` (bearer/basic, token or token_env) */
  authorization: string | undefined;
}

export type UpstreamChoice = { ok: true; upstream: AuditUpstream | null } | { ok: false; error: string };

export const DEFAULT_TIMEOUT_MS = 30_000;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Verdaccio's uplink `timeout`: a number of ms, or `<n>ms|s|m` (e.g. `30s`). */
export function parseTimeout(value: unknown): number | undefined {
  if (value === undefined || value === null) return DEFAULT_TIMEOUT_MS;
  if (typeof value === 'number') return Number.isSafeInteger(value) && value > 0 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const match = /^\s*(\d{1,9})\s*(ms|s|m)?\s*$/.exec(value);
  if (!match) return undefined;
  const amount = Number(match[1]) * (match[2] === 'm' ? 60_000 : match[2] === 's' ? 1000 : 1);
  return amount > 0 ? amount : undefined;
}

function authorizationOf(name: string, auth: unknown, env: Record<string, string | undefined>): string | undefined | Error {
  if (auth === undefined || auth === null) return undefined;
  if (!isRecord(auth)) return new Error(`uplinks.${name}.auth must be a mapping {type, token | token_env}`);
  const type = typeof auth.type === 'string' ? auth.type.toLowerCase() : '';
  if (type !== 'bearer' && type !== 'basic') return new Error(`uplinks.${name}.auth.type must be bearer or basic`);
  let token: string | undefined;
  if (typeof auth.token === 'string' && auth.token !== '') token = auth.token;
  else if (auth.token_env === true) token = env.NPM_TOKEN;
  else if (typeof auth.token_env === 'string' && auth.token_env !== '') token = env[auth.token_env];
  if (token === undefined || token === '') return new Error(`uplinks.${name}.auth has no token (set token, or token_env and that variable)`);
  return `${type === 'bearer' ? 'Bearer' : 'Basic'} ${token}`;
}

/**
 * The upstream for audits: the uplink named `upstream`, else the first uplink; null when
 * `uplinks` is empty. An uplink without a usable http(s) `url` is a configuration error.
 */
export function chooseUpstream(uplinks: unknown, env: Record<string, string | undefined> = {}): UpstreamChoice {
  if (uplinks === undefined || uplinks === null) return { ok: true, upstream: null };
  if (!isRecord(uplinks)) return { ok: false, error: 'uplinks must be a mapping of name → {url}' };
  const names = Object.keys(uplinks);
  if (names.length === 0) return { ok: true, upstream: null };
  const name = names.includes('upstream') ? 'upstream' : names[0];
  const entry = uplinks[name];
  if (!isRecord(entry) || typeof entry.url !== 'string') return { ok: false, error: `uplinks.${name} has no url` };
  let url: URL;
  try {
    url = new URL(entry.url);
  } catch {
    return { ok: false, error: `uplinks.${name}.url is not a URL: ${JSON.stringify(entry.url)}` };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return { ok: false, error: `uplinks.${name}.url must be http(s): ${JSON.stringify(entry.url)}` };
  const timeoutMs = parseTimeout(entry.timeout);
  if (timeoutMs === undefined) return { ok: false, error: `uplinks.${name}.timeout must be a duration like 30s (got ${JSON.stringify(entry.timeout)})` };
  const authorization = authorizationOf(name, entry.auth, env);
  if (authorization instanceof Error) return { ok: false, error: authorization.message };
  return { ok: true, upstream: { name, url: url.href.replace(/\/+$/, ''), timeoutMs, authorization } };
}
