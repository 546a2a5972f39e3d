/**
 * Where Verdaccio's untyped objects enter the dashboard: what only the dashboard needs is narrowed
 * here; what every plugin needs (VerdaccioRemoteUser, plugin options, allow_*) comes from the shared
 * boundary module plugins/verdaccio-boundary/. The package list comes from the storage plugin
 * through the core seam registry-core/local-packages.ts (never Verdaccio's internal
 * storage.localStorage.storagePlugin).
 */
/* eslint-disable @typescript-eslint/no-explicit-any */
import type { IncomingMessage, Server } from 'node:http';
import type { Application } from 'express';
import { localPackageNames } from '../registry-core/local-packages';
import { authAllows, pluginHostOf, stringsOf, type VerdaccioRemoteUser } from '../verdaccio-boundary/index';

export { anonymousUser, authenticatedUser, remoteUserOf, type VerdaccioRemoteUser } from '../verdaccio-boundary/index';

/** Verdaccio's plugin options: `{ config, logger }`. */
export interface PluginHost {
  configPath: string;
  /** Top-level `registry_lockb:` of config.yaml, unresolved. */
  lockbSetting: string | undefined;
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
}

/** Access to locally published packages, through Verdaccio's Storage (filters applied, no uplinks). */
export interface PackageSource {
  listNames(): Promise<string[]>;
  /** undefined when the package vanished between listing and reading. */
  readPackage(name: string): Promise<Packument | undefined>;
}

export interface AccessChecker {
  canAccess(packageName: string, user: VerdaccioRemoteUser): Promise<boolean>;
}

function asString(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

export function adaptPluginHost(options: unknown): PluginHost {
  const host = pluginHostOf(undefined, options);
  if (!host.configPath) throw new Error('registry-dashboard: Verdaccio did not pass config.configPath (needed to find registry.lockb)');
  const log = (level: 'info' | 'warn' | 'error') => (message: string): void => host.logger[level]({}, `registry-dashboard: ${message.replace(/@\{/g, '@ {')}`);
  return { configPath: host.configPath, lockbSetting: host.lockbSetting, logger: { info: log('info'), warn: log('warn'), error: log('error') } };
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

/** Names from the storage plugin's seam (core local-packages.ts), packuments through Verdaccio's public Storage.getPackage. */
export function adaptStorage(storage: unknown, lockbPath: string): PackageSource {
  const s = storage as any;
  if (typeof s?.getPackage !== 'function') {
    throw new Error('registry-dashboard: Verdaccio storage has no getPackage (unsupported Verdaccio version?)');
  }
  return {
    listNames: () => localPackageNames(lockbPath).then(stringsOf),
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
            });
          },
        });
      }),
  };
}

export function adaptAuth(auth: unknown): AccessChecker {
  const allows = authAllows(auth, 'registry-dashboard');
  // A 401/403 from the chain means "not for this user": the package is simply not listed.
  return { canAccess: (packageName, user) => new Promise((resolve) => allows('access', packageName, user, resolve)) };
}

/** The Express app Verdaccio hands to register_middlewares, used as a request listener of its http.Server. */
export function serverServesApp(server: Server, app: Application): boolean {
  return server.listeners('request').includes(app as any);
}
