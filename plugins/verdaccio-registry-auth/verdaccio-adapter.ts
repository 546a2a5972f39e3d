/**
 * The one place where Verdaccio's untyped plugin boundary meets our types.
 *
 * Verdaccio 6.10.4 constructs an auth plugin as `new Plugin(mergedConfig, { config, logger })`,
 * calls its methods with Node-style callbacks and gives `apiJWTmiddleware` a `helpers` object;
 * all of it is `any` on its side. Everything is checked or narrowed here once.
 */
import { errorUtils } from '@verdaccio/core';
import { getPublicUrl } from '@verdaccio/url';
import type { NextFunction, Request, Response } from 'express';
import { AuthError } from './errors';

export interface RemoteUser {
  name: string | undefined;
  groups: string[];
  real_groups: string[];
  error?: string;
}

export interface RemoteUserHelpers {
  createAnonymousRemoteUser(): RemoteUser;
  createRemoteUser(name: string, groups: string[]): RemoteUser;
}

/** pino behind Verdaccio's `@{field}` templates */
export interface PluginLogger {
  debug(fields: Record<string, unknown>, template: string): void;
  info(fields: Record<string, unknown>, template: string): void;
  warn(fields: Record<string, unknown>, template: string): void;
  error(fields: Record<string, unknown>, template: string): void;
}

/** What `getMatchedPackagesSpec` gives the allow_* methods (the first matching `packages:` rule). */
export interface PackageRule {
  name: string;
  version?: string;
  access?: string[];
  publish?: string[];
  unpublish?: string[] | false;
}

/** A VerdaccioError: http-errors object with `status` and `code` = HTTP status. */
export type VerdaccioError = Error & { status: number; code?: number | string };
export type AuthCallback = (error: VerdaccioError | null, groups?: string[] | false) => void;
export type AddUserCallback = (error: VerdaccioError | null, created?: boolean | string) => void;
export type AccessCallback = (error: VerdaccioError | null, allowed?: boolean) => void;

export type AuthRequest = Request & { remote_user?: RemoteUser };
export type Middleware = (req: AuthRequest, res: Response, next: NextFunction) => void;

export interface PluginArguments {
  merged: Record<string, unknown>;
  configPath: string | undefined;
  logger: PluginLogger;
  /** Verdaccio's `url_prefix` (the path the registry is served under, behind a proxy) */
  urlPrefix: string | undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

const silentLogger: PluginLogger = { debug() {}, info() {}, warn() {}, error() {} };

/* eslint-disable @typescript-eslint/no-explicit-any -- the Verdaccio boundary */
export function adaptPluginArguments(config: any, options: any): PluginArguments {
  const merged = isRecord(config) ? config : {};
  const appConfig = isRecord(options) && isRecord(options.config) ? options.config : {};
  const configPath =
    typeof appConfig.configPath === 'string'
      ? appConfig.configPath
      : typeof appConfig.self_path === 'string'
        ? appConfig.self_path
        : typeof merged.configPath === 'string'
          ? merged.configPath
          : undefined;
  const rawLogger = isRecord(options) ? options.logger : undefined;
  const logger: PluginLogger =
    isRecord(rawLogger) && typeof rawLogger.info === 'function' && typeof rawLogger.warn === 'function'
      ? (rawLogger as unknown as PluginLogger)
      : silentLogger;
  const urlPrefix = typeof appConfig.url_prefix === 'string' ? appConfig.url_prefix : undefined;
  return { merged, configPath, logger, urlPrefix };
}

/**
 * The registry's public base URL for a request, exactly as Verdaccio builds tarball URLs
 * (`VERDACCIO_PUBLIC_URL`, else protocol incl. its forwarded-proto header, Host and `url_prefix`),
 * without the trailing slash; null for a Host header Verdaccio's rule refuses (it would throw).
 */
export function publicBaseUrl(req: Request, urlPrefix: string | undefined): string | null {
  try {
    const url = getPublicUrl(urlPrefix, { host: req.get('host') ?? '', protocol: req.protocol, headers: req.headers, remoteAddress: req.socket.remoteAddress });
    return /^https?:\/\//.test(url) ? url.replace(/\/+$/, '') : null;
  } catch {
    return null;
  }
}

export function adaptHelpers(helpers: any): RemoteUserHelpers {
  if (typeof helpers?.createRemoteUser !== 'function' || typeof helpers?.createAnonymousRemoteUser !== 'function') {
    throw new AuthError('ERR_AUTH_CONFIG', 'Verdaccio did not pass the remote-user helpers to apiJWTmiddleware');
  }
  return {
    createAnonymousRemoteUser: () => helpers.createAnonymousRemoteUser() as RemoteUser,
    createRemoteUser: (name, groups) => helpers.createRemoteUser(name, groups) as RemoteUser,
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

export function adaptRemoteUser(user: any): RemoteUser {
  if (!isRecord(user)) return { name: undefined, groups: [], real_groups: [] };
  const strings = (value: unknown): string[] => (Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : []);
  return {
    name: typeof user.name === 'string' && user.name.length > 0 ? user.name : undefined,
    groups: strings(user.groups),
    real_groups: strings(user.real_groups),
  };
}
/* eslint-enable @typescript-eslint/no-explicit-any */

/** Verdaccio's error objects carry the HTTP status it answers with. */
export function toVerdaccioError(error: unknown): VerdaccioError {
  if (error instanceof AuthError) return errorUtils.getCode(error.status, error.message) as VerdaccioError;
  return errorUtils.getInternalError(error instanceof Error ? error.message : String(error)) as VerdaccioError;
}

export const verdaccioErrors = {
  unauthorized: (message: string): VerdaccioError => errorUtils.getUnauthorized(message) as VerdaccioError,
  forbidden: (message: string): VerdaccioError => errorUtils.getForbidden(message) as VerdaccioError,
};
