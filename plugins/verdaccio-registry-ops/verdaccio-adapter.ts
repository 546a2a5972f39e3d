/**
 * What this part reads from Verdaccio's objects (the one place that knows their shapes): the
 * user Verdaccio's auth middleware put on the request, the URL before Express's routers
 * rewrote it, the plugin options Verdaccio passes.
 */
import type { IncomingMessage } from 'node:http';

/** `req.remote_user.name` (set by the auth middleware; undefined for anonymous). */
export function remoteUserOf(request: IncomingMessage): string | undefined {
  const user = (request as IncomingMessage & { remote_user?: { name?: unknown } }).remote_user;
  return typeof user?.name === 'string' && user.name !== '' ? user.name : undefined;
}

/** Express's `originalUrl` (its routers strip mount paths from `url` while routing). */
export function originalUrlOf(request: IncomingMessage): string {
  const original = (request as IncomingMessage & { originalUrl?: unknown }).originalUrl;
  return typeof original === 'string' ? original : (request.url ?? '/');
}

export interface OpsPluginContext {
  config: unknown;
  uplinks: unknown;
}

export function contextOf(options: unknown): OpsPluginContext {
  const config = (options as { config?: unknown } | undefined)?.config;
  const uplinks = typeof config === 'object' && config !== null ? (config as { uplinks?: unknown }).uplinks : undefined;
  return { config, uplinks };
}
