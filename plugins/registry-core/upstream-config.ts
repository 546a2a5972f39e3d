/**
 * The ONE resolution of the upstream registry (docs/upstream.md). The storage part (packument and
 * tarball proxy) and the audit relay both call `sharedUpstream()`, so they can never disagree.
 *
 * Order: `REGISTRY_UPSTREAM_URL` (`off` disables), else `uplinks` in config.yaml (the entry named
 * `upstream`, else the first), else the registry the user's npm is configured with — read from
 * npm's own sources the way npm reads them (environment, project `.npmrc`, user `.npmrc`), and
 * only when none of them names one, asked of npm (`npm config get registry`: ~0.2 s, run in the
 * background while Verdaccio boots; nothing waits for it until the first request that needs it).
 * No registry host name is written anywhere in this code base: npm knows its own default.
 *
 * An upstream that is this registry (same normalized URL as the registry URL, or the same
 * loopback host:port as a listen address) is refused: explicitly configured → an error that stops
 * start-up; found in npm's config (a user whose npm already points at this registry) → no upstream,
 * with the reason in `disabled`.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { normalizeRegistryUrl } from './registry-url';

export interface UpstreamSettings {
  /** always `upstream` (or the uplink's key when it came from config.yaml) */
  name: string;
  /** normalized: no trailing slash */
  url: string;
  source: 'env' | 'uplinks' | 'npm';
  timeoutMs: number;
  /** a cached packument is fresh this long; then revalidated with a conditional request */
  maxAgeMs: number;
  /** `Authorization` header value for the upstream, from the uplink's `auth:` */
  authorization: string | undefined;
}

export type UpstreamResolution =
  | { ok: true; upstream: UpstreamSettings; disabled?: undefined }
  /** no upstream: `disabled` says why (off, none configured, npm not answering, self-reference from npm) */
  | { ok: true; upstream: null; disabled: string }
  | { ok: false; error: string };

export const DEFAULT_UPSTREAM_TIMEOUT_MS = 30_000;
export const DEFAULT_UPSTREAM_MAXAGE_MS = 120_000;
export const DEFAULT_LOCAL_SCOPES: readonly string[] = ['@mycompany'];
export const UPSTREAM_ENV = 'REGISTRY_UPSTREAM_URL';

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Verdaccio's duration syntax for `timeout` / `maxage`: ms as a number, or `<n>ms|s|m|h`. */
export function parseDuration(value: unknown, fallback: number): number | undefined {
  if (value === undefined || value === null) return fallback;
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const match = /^\s*(\d{1,9})\s*(ms|s|m|h)?\s*$/.exec(value);
  if (!match) return undefined;
  const unit = match[2] === 'h' ? 3_600_000 : match[2] === 'm' ? 60_000 : match[2] === 's' ? 1000 : 1;
  return Number(match[1]) * unit;
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

function httpUrl(text: string, what: string): string | Error {
  let url: URL;
  try {
    url = new URL(text.trim());
  } catch {
    return new Error(`${what} is not a URL: ${JSON.stringify(text)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return new Error(`${what} must be http(s): ${JSON.stringify(text)}`);
  return `${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, '')}`;
}

/** `local_scopes` of config.yaml (default `['@mycompany']`): names there are never proxied. */
export function localScopesOf(config: unknown): string[] | Error {
  const value = isRecord(config) ? config.local_scopes : undefined;
  if (value === undefined || value === null) return [...DEFAULT_LOCAL_SCOPES];
  const list = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(list) || !list.every((item) => typeof item === 'string' && /^@[a-z0-9][a-z0-9._~-]*$/i.test(item))) {
    return new Error(`local_scopes must be a list of scopes like '@mycompany' (got ${JSON.stringify(value)})`);
  }
  return list.map((item) => item.toLowerCase());
}

/** Whether `name` lives in a local scope (never proxied). */
export function isLocalScope(name: string, scopes: readonly string[]): boolean {
  if (!name.startsWith('@')) return false;
  const scope = name.slice(0, name.indexOf('/') < 0 ? name.length : name.indexOf('/')).toLowerCase();
  return scopes.includes(scope);
}

/** What this registry is, for the self-reference refusal. */
export interface SelfIdentity {
  registryUrl?: string;
  /** listen addresses as Verdaccio takes them: `host:port`, `port`, `http://host:port` */
  listen?: readonly string[];
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]', '::1', '0.0.0.0', '[::]', '::']);

function hostPortOf(address: string): { host: string; port: string } | null {
  const text = address.trim();
  if (/^\d{1,5}$/.test(text)) return { host: 'localhost', port: text };
  try {
    const url = new URL(/^[a-z]+:\/\//i.test(text) ? text : `http://${text}`);
    return { host: url.hostname.toLowerCase(), port: url.port || (url.protocol === 'https:' ? '443' : '80') };
  } catch {
    return null;
  }
}

/** Why `url` is this registry, or null. */
export function selfReferenceProblem(url: string, self: SelfIdentity): string | null {
  if (self.registryUrl) {
    try {
      if (normalizeRegistryUrl(url) === normalizeRegistryUrl(self.registryUrl)) return `the upstream ${url} is this registry's own URL`;
    } catch {
      // an unusable registry URL is reported by start-up itself
    }
  }
  const target = hostPortOf(url);
  if (target === null) return null;
  for (const address of self.listen ?? []) {
    const own = hostPortOf(address);
    if (own === null || own.port !== target.port || own.port === '0') continue;
    const sameHost = own.host === target.host || (LOOPBACK.has(own.host) && LOOPBACK.has(target.host));
    if (sameHost) return `the upstream ${url} is this registry's own listen address ${address}`;
  }
  return null;
}

/** An explicit upstream (env or uplinks), or `undefined` when neither names one. Pure. */
export function configuredUpstream(config: unknown, env: Record<string, string | undefined>): UpstreamResolution | undefined {
  const uplinks = isRecord(config) ? config.uplinks : undefined;
  const fromEnv = env[UPSTREAM_ENV];
  let entry: Record<string, unknown> = {};
  let named = false;
  let name = 'upstream';
  if (uplinks !== undefined && uplinks !== null) {
    if (!isRecord(uplinks)) return { ok: false, error: 'uplinks must be a mapping of name → {url}' };
    const names = Object.keys(uplinks);
    if (names.length > 0) {
      name = names.includes('upstream') ? 'upstream' : names[0];
      if (!isRecord(uplinks[name])) return { ok: false, error: `uplinks.${name} must be a mapping {url, timeout, maxage}` };
      entry = uplinks[name] as Record<string, unknown>;
      named = true;
    }
  }
  let url: string | Error;
  let source: UpstreamSettings['source'];
  if (typeof fromEnv === 'string' && fromEnv.trim() !== '') {
    if (fromEnv.trim().toLowerCase() === 'off') return { ok: true, upstream: null, disabled: `${UPSTREAM_ENV}=off` };
    url = httpUrl(fromEnv, UPSTREAM_ENV);
    source = 'env';
  } else if (typeof entry.url === 'string') {
    url = httpUrl(entry.url, `uplinks.${name}.url`);
    source = 'uplinks';
  } else if (named) {
    return { ok: false, error: `uplinks.${name} has no url` };
  } else {
    return undefined;
  }
  if (url instanceof Error) return { ok: false, error: url.message };
  return settingsFor(name, url, source, entry, env);
}

function settingsFor(name: string, url: string, source: UpstreamSettings['source'], entry: Record<string, unknown>, env: Record<string, string | undefined>): UpstreamResolution {
  const timeoutMs = parseDuration(entry.timeout, DEFAULT_UPSTREAM_TIMEOUT_MS);
  if (timeoutMs === undefined || timeoutMs === 0) return { ok: false, error: `uplinks.${name}.timeout must be a duration like 30s (got ${JSON.stringify(entry.timeout)})` };
  const maxAgeMs = parseDuration(entry.maxage, DEFAULT_UPSTREAM_MAXAGE_MS);
  if (maxAgeMs === undefined) return { ok: false, error: `uplinks.${name}.maxage must be a duration like 2m (got ${JSON.stringify(entry.maxage)})` };
  const authorization = authorizationOf(name, entry.auth, env);
  if (authorization instanceof Error) return { ok: false, error: authorization.message };
  return { ok: true, upstream: { name, url, source, timeoutMs, maxAgeMs, authorization } };
}

/** `registry=` from one npmrc text (ini; `${VAR}` expanded as npm does), or undefined. */
export function npmrcRegistry(text: string, env: Record<string, string | undefined>): string | undefined {
  let found: string | undefined;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line.startsWith('[')) break; // sections are not npm's top level
    const match = /^registry\s*=\s*(.*)$/.exec(line);
    if (!match) continue;
    let value = match[1].trim().replace(/^(["'])(.*)\1$/, '$2');
    value = value.replace(/(\\*)\$\{([^}]+)\}/g, (whole, slashes: string, key: string) => (slashes.length % 2 === 1 ? whole.slice(1) : `${slashes}${env[key] ?? ''}`));
    found = value;
  }
  return found;
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * npm's registry from the sources npm reads first (cheap: a few file reads): `npm_config_registry`
 * in any case, the project `.npmrc` (cwd), the user config (`npm_config_userconfig`, else
 * `~/.npmrc`). undefined → only npm itself knows (global npmrc, its built-in default).
 */
export function npmRegistryFromFiles(env: Record<string, string | undefined>, cwd: string): string | undefined {
  for (const [key, value] of Object.entries(env)) if (key.toLowerCase() === 'npm_config_registry' && value) return value;
  const project = readText(join(cwd, '.npmrc'));
  const fromProject = project === undefined ? undefined : npmrcRegistry(project, env);
  if (fromProject) return fromProject;
  const userconfig = Object.entries(env).find(([key]) => key.toLowerCase() === 'npm_config_userconfig')?.[1];
  const user = readText(userconfig ? resolve(cwd, userconfig) : join(env.HOME ?? homedir(), '.npmrc'));
  return user === undefined ? undefined : npmrcRegistry(user, env);
}

/** `npm config get registry` (the one source that knows npm's built-in default). */
export function askNpmRegistry(env: Record<string, string | undefined>, cwd: string, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolveAsk, reject) => {
    execFile('npm', ['config', 'get', 'registry'], { cwd, env: env as NodeJS.ProcessEnv, timeout: timeoutMs, windowsHide: true }, (error, stdout) => {
      if (error) reject(new Error(`\`npm config get registry\` failed: ${error.message.split('\n')[0]}`));
      else resolveAsk(stdout.trim());
    });
  });
}

export interface ResolveOptions {
  config: unknown;
  env: Record<string, string | undefined>;
  self: SelfIdentity;
  cwd?: string;
  /** injected in unit tests; default: askNpmRegistry */
  askNpm?: (env: Record<string, string | undefined>, cwd: string) => Promise<string>;
}

/** The upstream for this registry (see the file comment). Never rejects. */
export async function resolveUpstream(options: ResolveOptions): Promise<UpstreamResolution> {
  const explicit = configuredUpstream(options.config, options.env);
  if (explicit !== undefined) {
    if (!explicit.ok || explicit.upstream === null) return explicit;
    const problem = selfReferenceProblem(explicit.upstream.url, options.self);
    return problem === null ? explicit : { ok: false, error: `refusing the upstream: ${problem} (it would proxy to itself); set ${UPSTREAM_ENV} to another registry or to off` };
  }
  const cwd = options.cwd ?? process.cwd();
  let text = npmRegistryFromFiles(options.env, cwd);
  if (text === undefined) {
    try {
      text = await (options.askNpm ?? askNpmRegistry)(options.env, cwd);
    } catch (error) {
      return { ok: true, upstream: null, disabled: `no upstream: ${(error as Error).message}` };
    }
  }
  const url = httpUrl(text, "npm's configured registry");
  if (url instanceof Error) return { ok: true, upstream: null, disabled: `no upstream: ${url.message}` };
  const problem = selfReferenceProblem(url, options.self);
  if (problem !== null) return { ok: true, upstream: null, disabled: `no upstream: npm's configured registry is this registry (${problem}); set ${UPSTREAM_ENV}` };
  return settingsFor('upstream', url, 'npm', {}, options.env);
}

function listenAddresses(config: unknown, argv: readonly string[]): string[] {
  const out: string[] = [];
  const listen = isRecord(config) ? config.listen : undefined;
  if (typeof listen === 'string' || typeof listen === 'number') out.push(String(listen));
  else if (Array.isArray(listen)) for (const item of listen) if (typeof item === 'string' || typeof item === 'number') out.push(String(item));
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if ((arg === '--listen' || arg === '-l') && i + 1 < argv.length) out.push(argv[i + 1]);
    else if (arg.startsWith('--listen=')) out.push(arg.slice('--listen='.length));
  }
  return out;
}

/**
 * The explicitly configured upstream's problem (bad entry, or this registry itself), checked
 * synchronously so a plugin constructor can stop start-up with it; null when there is none.
 */
export function explicitUpstreamError(config: unknown, env: Record<string, string | undefined>, registryUrl: string | undefined): string | null {
  const explicit = configuredUpstream(config, env);
  if (explicit === undefined) return null;
  if (!explicit.ok) return explicit.error;
  if (explicit.upstream === null) return null;
  const problem = selfReferenceProblem(explicit.upstream.url, { registryUrl, listen: listenAddresses(config, process.argv) });
  return problem === null ? null : `refusing the upstream: ${problem} (it would proxy to itself); set ${UPSTREAM_ENV} to another registry or to off`;
}

const SHARED = Symbol.for('mycompany-registry:upstream-resolution');
type SharedMap = Map<string, Promise<UpstreamResolution>>;

/**
 * One resolution per config file per process (both plugins share it, even if this module were
 * loaded twice). The first call starts it (npm is asked in the background); later calls get the
 * same promise. `self.registryUrl` is the registry URL start-up settled on.
 */
export function sharedUpstream(key: string, config: unknown, env: Record<string, string | undefined>, registryUrl: string | undefined): Promise<UpstreamResolution> {
  const holder = globalThis as unknown as Record<symbol, SharedMap | undefined>;
  const map = (holder[SHARED] ??= new Map());
  const id = resolve(key);
  let pending = map.get(id);
  if (!pending) {
    pending = resolveUpstream({ config, env: { ...env }, self: { registryUrl, listen: listenAddresses(config, process.argv) } });
    map.set(id, pending);
  }
  return pending;
}
