/**
 * The Verdaccio boundary shared by every plugin: the one place where Verdaccio 6.10.4's untyped
 * objects (plugin options, `req.remote_user`, the auth object's `allow_*`, its error objects,
 * its public-URL rule) are narrowed into our types. Not a plugin: no part loads it by itself;
 * each plugin imports it as it imports the core. It imports only Verdaccio's own packages,
 * Express types and Node built-ins — never a plugin, never the core.
 *
 * What is here is what more than one plugin needs. What only one plugin needs of Verdaccio
 * (the auth plugin's callback shapes, the storage plugin's IPluginStorage adapter, the dashboard's
 * Express request prototype) stays in that plugin's own `verdaccio-adapter.ts`, typed through
 * the helpers here. Contract: docs/architecture.md ("The Verdaccio boundary").
 */
import { verdaccioConfig, verdaccioCore, verdaccioUrl } from './verdaccio-modules';
import type { IncomingMessage } from 'node:http';

/** Verdaccio's RemoteUser (`req.remote_user`), structurally. */
export interface VerdaccioRemoteUser {
  /** undefined = anonymous */
  name: string | undefined;
  /** the real groups plus the pseudo groups Verdaccio's access rules match (`$all`, `$authenticated`…) */
  groups: string[];
  real_groups: string[];
  error?: string;
}

/** A VerdaccioError: an http-errors object whose `status` (and `code`) is the HTTP status Verdaccio answers with. */
export type VerdaccioError = Error & { status: number; code?: number | string };

/** pino behind Verdaccio's `@{field}` templates. */
export interface PluginLogger {
  debug(fields: Record<string, unknown>, template: string): void;
  info(fields: Record<string, unknown>, template: string): void;
  warn(fields: Record<string, unknown>, template: string): void;
  error(fields: Record<string, unknown>, template: string): void;
}

/** What a plugin may read of the `{ config, logger }` Verdaccio passes to its constructor. */
export interface PluginHost {
  /** the whole config.yaml as Verdaccio parsed it ({} when missing) */
  config: Record<string, unknown>;
  /** the config.yaml path (`configPath`, `config_path` or `self_path`, else the plugin config's `configPath`) */
  configPath: string | undefined;
  logger: PluginLogger;
  /** `url_prefix` (the path the registry is served under, behind a proxy) */
  urlPrefix: string | undefined;
  /** top-level `registry_lockb:`, unresolved */
  lockbSetting: string | undefined;
  /** `uplinks:` as written */
  uplinks: unknown;
}

export type AllowAction = 'access' | 'publish' | 'unpublish';

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

export function stringsOf(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];
}

function stringOf(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

const silentLogger: PluginLogger = { debug() {}, info() {}, warn() {}, error() {} };

/** Narrows the constructor arguments `(pluginConfig, { config, logger })`. */
export function pluginHostOf(pluginConfig: unknown, options: unknown): PluginHost {
  const merged = isRecord(pluginConfig) ? pluginConfig : {};
  const config = isRecord(options) && isRecord(options.config) ? options.config : {};
  const configPath = stringOf(config.configPath) ?? stringOf(config.config_path) ?? stringOf(config.self_path) ?? stringOf(merged.configPath);
  const raw = isRecord(options) ? options.logger : undefined;
  const logger =
    isRecord(raw) && ['debug', 'info', 'warn', 'error'].every((level) => typeof raw[level] === 'function') ? (raw as unknown as PluginLogger) : silentLogger;
  return { config, configPath, logger, urlPrefix: stringOf(config.url_prefix), lockbSetting: stringOf(config.registry_lockb), uplinks: config.uplinks };
}

/** Any value as a RemoteUser: anonymous (no name, no groups) when it is not one. */
export function toRemoteUser(raw: unknown): VerdaccioRemoteUser {
  if (!isRecord(raw)) return { name: undefined, groups: [], real_groups: [] };
  const user: VerdaccioRemoteUser = {
    name: typeof raw.name === 'string' && raw.name.length > 0 ? raw.name : undefined,
    groups: stringsOf(raw.groups),
    real_groups: stringsOf(raw.real_groups),
  };
  if (typeof raw.error === 'string' && raw.error !== '') user.error = raw.error;
  return user;
}

/** What the app-wide auth middleware put on the request (`req.remote_user`, or `res.locals.remote_user`); undefined when nothing. */
export function rawRemoteUserOf(request: IncomingMessage): Record<string, unknown> | undefined {
  const req = request as IncomingMessage & { remote_user?: unknown; res?: { locals?: { remote_user?: unknown } } };
  const raw = req.remote_user ?? req.res?.locals?.remote_user;
  return isRecord(raw) ? raw : undefined;
}

/** `req.remote_user` as a RemoteUser; Verdaccio's anonymous user when the middleware set none. */
export function remoteUserOf(request: IncomingMessage): VerdaccioRemoteUser {
  const raw = rawRemoteUserOf(request);
  return raw ? toRemoteUser(raw) : anonymousUser();
}

/** Verdaccio's createAnonymousRemoteUser(): access rules like `$all` / `$anonymous` match it. */
export function anonymousUser(): VerdaccioRemoteUser {
  return toRemoteUser(verdaccioConfig.createAnonymousRemoteUser());
}

/** Verdaccio's createRemoteUser(name, groups): the real groups plus `$all`, `$authenticated`… */
export function authenticatedUser(name: string, groups: readonly string[]): VerdaccioRemoteUser {
  return toRemoteUser(verdaccioConfig.createRemoteUser(name, [...groups]));
}

/** Express's `originalUrl` (its routers strip mount paths from `url` while routing). */
export function originalUrlOf(request: IncomingMessage): string {
  const original = (request as IncomingMessage & { originalUrl?: unknown }).originalUrl;
  return typeof original === 'string' ? original : (request.url ?? '/');
}

/**
 * The registry's public base URL for a request, exactly as Verdaccio builds tarball URLs
 * (`VERDACCIO_PUBLIC_URL`, else protocol incl. its forwarded-proto header, Host and `url_prefix`),
 * without the trailing slash; null for a Host header Verdaccio's rule refuses (it would throw).
 */
export function publicBaseUrl(request: { get(name: string): string | undefined; protocol: string; headers: IncomingMessage['headers']; socket: IncomingMessage['socket'] }, urlPrefix: string | undefined): string | null {
  try {
    const url = verdaccioUrl.getPublicUrl(urlPrefix, { host: request.get('host') ?? '', protocol: request.protocol, headers: request.headers, remoteAddress: request.socket.remoteAddress });
    return /^https?:\/\//.test(url) ? url.replace(/\/+$/, '') : null;
  } catch {
    return null;
  }
}

/** Whether Verdaccio's getPublicUrl accepts this Host header (it THROWS for one its isHost or `new URL()` refuses). */
export function verdaccioAcceptsHost(host: string, urlPrefix: string | undefined): boolean {
  try {
    verdaccioUrl.getPublicUrl(urlPrefix, { host, protocol: 'http', headers: { host } });
    return true;
  } catch {
    return false;
  }
}

/** Verdaccio's error object for an HTTP status (what its callbacks expect). */
export function verdaccioError(status: number, message: string): VerdaccioError {
  return verdaccioCore.errorUtils.getCode(status, message) as VerdaccioError;
}

export function verdaccioInternalError(message: string): VerdaccioError {
  return verdaccioCore.errorUtils.getInternalError(message) as VerdaccioError;
}

/**
 * Asks Verdaccio's auth chain (`auth.allow_<action>`) about `packageName` for `user`; `done(true)`
 * only for an explicit yes — a denial, an error or a throw is `false`. Throws at once when `auth`
 * has no allow_access/allow_publish (an unsupported Verdaccio).
 */
export function authAllows(auth: unknown, who: string): (action: AllowAction, packageName: string, user: unknown, done: (allowed: boolean) => void) => void {
  if (!isRecord(auth) || typeof auth.allow_access !== 'function' || typeof auth.allow_publish !== 'function') {
    throw new Error(`${who}: Verdaccio passed an auth object without allow_access/allow_publish (unsupported Verdaccio version?)`);
  }
  type Allow = (pkg: { packageName: string; packageVersion: undefined }, user: unknown, cb: (err: unknown, ok: unknown) => void) => void;
  const pick = (action: AllowAction): Allow =>
    (action === 'access' ? auth.allow_access : action === 'unpublish' && typeof auth.allow_unpublish === 'function' ? auth.allow_unpublish : auth.allow_publish) as Allow;
  return (action, packageName, user, done) => {
    let answered = false;
    const finish = (allowed: boolean): void => {
      if (answered) return;
      answered = true;
      done(allowed);
    };
    try {
      pick(action).call(auth, { packageName, packageVersion: undefined }, user, (err, ok) => finish(!err && ok === true));
    } catch {
      finish(false); // Verdaccio's own route meets the same failure and answers it
    }
  };
}
