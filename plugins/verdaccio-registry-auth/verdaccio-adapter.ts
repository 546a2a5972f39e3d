/**
 * The one place where Verdaccio's untyped plugin boundary meets our types.
 *
 * Verdaccio 6.10.4 constructs an auth plugin as `new Plugin(mergedConfig, { config, logger })`,
 * calls its methods with Node-style callbacks and gives `apiJWTmiddleware` a `helpers` object;
 * all of it is `any` on its side. What only this plugin needs is narrowed here; what several
 * plugins need (RemoteUser, plugin options, the public URL, error objects) comes from the shared
 * boundary module `plugins/verdaccio-boundary/`.
 */
import type { NextFunction, Request, Response } from 'express';
import { isRecord, pluginHostOf, verdaccioError, verdaccioInternalError, type PluginLogger, type VerdaccioError, type VerdaccioRemoteUser } from '../verdaccio-boundary/index';
import { AuthError } from './errors';

export { publicBaseUrl, type PluginLogger, type VerdaccioError } from '../verdaccio-boundary/index';

export interface RemoteUserHelpers {
  createAnonymousRemoteUser(): VerdaccioRemoteUser;
  createRemoteUser(name: string, groups: string[]): VerdaccioRemoteUser;
}

/** What `getMatchedPackagesSpec` gives the allow_* methods (the first matching `packages:` rule). */
export interface PackageRule {
  name: string;
  version?: string;
  access?: string[];
  publish?: string[];
  unpublish?: string[] | false;
}

export type AuthCallback = (error: VerdaccioError | null, groups?: string[] | false) => void;
export type AddUserCallback = (error: VerdaccioError | null, created?: boolean | string) => void;
export type AccessCallback = (error: VerdaccioError | null, allowed?: boolean) => void;

export type AuthRequest = Request & { remote_user?: VerdaccioRemoteUser };
export type Middleware = (req: AuthRequest, res: Response, next: NextFunction) => void;

export interface PluginArguments {
  merged: Record<string, unknown>;
  configPath: string | undefined;
  logger: PluginLogger;
  /** Verdaccio's `url_prefix` (the path the registry is served under, behind a proxy) */
  urlPrefix: string | undefined;
}

/* eslint-disable @typescript-eslint/no-explicit-any -- the Verdaccio boundary */
export function adaptPluginArguments(config: any, options: any): PluginArguments {
  const host = pluginHostOf(config, options);
  return { merged: isRecord(config) ? config : {}, configPath: host.configPath, logger: host.logger, urlPrefix: host.urlPrefix };
}

export function adaptHelpers(helpers: any): RemoteUserHelpers {
  if (typeof helpers?.createRemoteUser !== 'function' || typeof helpers?.createAnonymousRemoteUser !== 'function') {
    throw new AuthError('ERR_AUTH_CONFIG', 'Verdaccio did not pass the remote-user helpers to apiJWTmiddleware');
  }
  return {
    createAnonymousRemoteUser: () => helpers.createAnonymousRemoteUser() as VerdaccioRemoteUser,
    createRemoteUser: (name, groups) => helpers.createRemoteUser(name, groups) as VerdaccioRemoteUser, // kept whole: Verdaccio may add fields
  };
}

export function adaptPackageRule(pkg: any): PackageRule {
  const list = (value: unknown): string[] | undefined =>
    Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : typeof value === 'string' ? [value] : undefined;
  const rule: PackageRule = { name: isRecord(pkg) && typeof pkg.name === 'string' ? pkg.name : '' };
  if (!isRecord(pkg)) return rule;
  if (typeof pkg.version === 'string') rule.version = pkg.version;
  rule.access = list(pkg.access);
  rule.publish = list(pkg.publish);
  rule.unpublish = pkg.unpublish === false ? false : list(pkg.unpublish);
  return rule;
}

/* eslint-enable @typescript-eslint/no-explicit-any */

/** An AuthError as Verdaccio's error object (carrying the HTTP status it answers with). */
export function authErrorToVerdaccio(error: unknown): VerdaccioError {
  if (error instanceof AuthError) return verdaccioError(error.status, error.message);
  return verdaccioInternalError(error instanceof Error ? error.message : String(error));
}

export const verdaccioErrors = {
  unauthorized: (message: string): VerdaccioError => verdaccioError(401, message),
  forbidden: (message: string): VerdaccioError => verdaccioError(403, message),
};
