/**
 * The one place where Verdaccio's untyped objects enter the dashboard. Everything else in this
 * plugin works with the small typed interfaces below, so a Verdaccio upgrade that changes a shape
 * breaks here, loudly, and nowhere else.
 */
/* eslint-disable @typescript-eslint/no-explicit-any */
import type { IncomingMessage, Server } from 'node:http';
import { dirname, resolve as resolvePath } from 'node:path';
import type { Application, Request } from 'express';

/** What `req.remote_user` holds (Verdaccio's RemoteUser, structurally). */
export interface RemoteUser {
  name: string | undefined;
  groups: string[];
  real_groups: string[];
  error?: string;
}

/** Verdaccio's plugin options: `{ config, logger }`. */
export interface PluginHost {
  configPath: string;
  /** Top-level `registry_lockb:` of config.yaml, unresolved. */
  lockbSetting: string | undefined;
  /** config.yaml's `storage:` folder, resolved (the activity card measures its size; undefined when not set) */
  storageDir: string | undefined;
  logger: DashboardLogger;
}

export interface DashboardLogger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/** A packument as far as the dashboard reads it. */
export interface Packument {
  name: string;
  versions: Record<string, unknown>;
  'dist-tags': Record<string, string>;
  time: Record<string, string>;
  /** the whole document as stored (readme, maintainers, description…), unvalidated: package-view.ts reads it defensively */
  document: Record<string, unknown>;
}

/** Access to locally published packages, through Verdaccio's Storage (filters applied, no uplinks). */
export interface PackageSource {
  listNames(): Promise<string[]>;
  /** undefined when the package vanished between listing and reading. */
  readPackage(name: string): Promise<Packument | undefined>;
}

export interface AccessChecker {
  canAccess(packageName: string, user: RemoteUser): Promise<boolean>;
}

function asString(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function stringArray(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];
}

export function adaptPluginHost(options: unknown): PluginHost {
  const opts = options as { config?: any; logger?: any } | undefined;
  const config = opts?.config;
  const configPath = asString(config?.configPath) ?? asString(config?.config_path) ?? asString(config?.self_path);
  if (!configPath) throw new Error('registry-dashboard: Verdaccio did not pass config.configPath (needed to find registry.lockb)');
  const storage = asString(config?.storage);
  const logger = opts?.logger;
  const log = (level: 'info' | 'warn' | 'error') => (message: string): void => {
    if (logger && typeof logger[level] === 'function') logger[level]({}, `registry-dashboard: ${message.replace(/@\{/g, '@ {')}`);
  };
  return {
    configPath,
    lockbSetting: asString(config?.registry_lockb),
    storageDir: storage === undefined ? undefined : resolvePath(dirname(resolvePath(configPath)), storage),
    logger: { info: log('info'), warn: log('warn'), error: log('error') },
  };
}

/** What Verdaccio's createAnonymousRemoteUser() gives: access rules like `$all` / `$anonymous` match it. */
export function anonymousUser(): RemoteUser {
  return { name: undefined, groups: ['$all', '$anonymous', '@all', '@anonymous'], real_groups: [] };
}

/** What Verdaccio's createRemoteUser(name, groups) gives a logged-in user: the real groups plus `$all`, `$authenticated`… */
export function authenticatedUser(name: string, groups: readonly string[]): RemoteUser {
  const realGroups = [...groups];
  return { name, groups: [...new Set([...realGroups, '$all', '$authenticated', '@all', '@authenticated', 'all'])], real_groups: realGroups };
}

/**
 * The client address Express would give this request as `req.ip` — the same trust-proxy rule
 * (`server.trustProxy`, which Verdaccio sets on the app) the auth plugin's CIDR check uses over
 * HTTP. An upgrade request never passes through Express, so it is read through the app's own
 * request prototype (the `ip` getter of Express 4) over the raw request's headers and socket.
 */
export function clientAddressOf(app: Application, req: IncomingMessage): string {
  const prototype: unknown = (app as any).request;
  if (typeof prototype !== 'object' || prototype === null) throw new Error('the Express app has no request prototype (unsupported Express version?)');
  const view = Object.create(prototype, {
    headers: { value: req.headers },
    socket: { value: req.socket },
    connection: { value: req.socket },
  });
  const ip: unknown = view.ip;
  return typeof ip === 'string' ? ip : (req.socket.remoteAddress ?? '');
}

/** `req.remote_user` as set by the app-wide auth middleware; anonymous when missing. */
export function remoteUserOf(req: Request): RemoteUser {
  const raw = (req as any).remote_user ?? (req as any).res?.locals?.remote_user;
  if (!raw || typeof raw !== 'object') return anonymousUser();
  const user: RemoteUser = {
    name: asString(raw.name) || undefined,
    groups: stringArray(raw.groups),
    real_groups: stringArray(raw.real_groups),
  };
  const error = asString(raw.error);
  if (error) user.error = error;
  return user;
}

export function adaptStorage(storage: unknown): PackageSource {
  const s = storage as any;
  const plugin = s?.localStorage?.storagePlugin;
  if (typeof plugin?.get !== 'function' || typeof s?.getPackage !== 'function') {
    throw new Error('registry-dashboard: Verdaccio storage has no localStorage.storagePlugin.get / getPackage (unsupported Verdaccio version?)');
  }
  return {
    listNames: () =>
      new Promise((resolve, reject) => {
        plugin.get((err: unknown, names: unknown) => (err ? reject(err) : resolve(stringArray(names))));
      }),
    readPackage: (name) =>
      new Promise((resolve, reject) => {
        s.getPackage({
          name,
          uplinksLook: false,
          keepUpLinkData: true,
          req: undefined,
          callback: (err: any, manifest: any) => {
            if (err) {
              const status = err.status ?? err.statusCode ?? err.code;
              if (status === 404 || status === 'ENOENT') return resolve(undefined);
              return reject(err);
            }
            resolve({
              name: asString(manifest?.name) ?? name,
              versions: manifest?.versions && typeof manifest.versions === 'object' ? manifest.versions : {},
              'dist-tags': manifest?.['dist-tags'] && typeof manifest['dist-tags'] === 'object' ? manifest['dist-tags'] : {},
              time: manifest?.time && typeof manifest.time === 'object' ? manifest.time : {},
              document: manifest && typeof manifest === 'object' ? manifest : {},
            });
          },
        });
      }),
  };
}

export function adaptAuth(auth: unknown): AccessChecker {
  const a = auth as any;
  if (typeof a?.allow_access !== 'function') throw new Error('registry-dashboard: Verdaccio auth has no allow_access');
  return {
    canAccess: (packageName, user) =>
      new Promise((resolve) => {
        // A 401/403 from the chain means "not for this user": the package is simply not listed.
        a.allow_access({ packageName }, user, (err: unknown, ok: unknown) => resolve(!err && ok === true));
      }),
  };
}

/** The Express app Verdaccio hands to register_middlewares, used as a request listener of its http.Server. */
export function serverServesApp(server: Server, app: Application): boolean {
  return server.listeners('request').includes(app as any);
}
