/** The dashboard's HTTP API (docs/http-api.md): the config and the package list. */
import { TerminalError } from './errors';
import {
  activitySchema,
  check,
  configViewSchema,
  packagesResponseSchema,
  packageViewSchema,
  upstreamViewSchema,
  type ActivityView,
  type PackageDetail,
  type PackageInfo,
  type ServerConfig,
  type UpstreamView,
} from './protocol';

const TIMEOUT_MS = 5000;

async function getJson(registry: string, path: string, token: string | undefined): Promise<unknown> {
  const url = `${registry}${path}`;
  const headers: Record<string, string> = { accept: 'application/json' };
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  let response: Response;
  try {
    response = await fetch(url, { headers, signal: AbortSignal.timeout(TIMEOUT_MS) });
  } catch (error) {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    const reason = cause?.code ?? cause?.message ?? (error as Error).message;
    throw new TerminalError('ERR_REGISTRY_UNREACHABLE', `cannot reach the registry at ${registry} (${reason})`, {
      hint: 'start it with `npm start`, or point the client elsewhere with --registry URL',
      cause: error,
    });
  }
  const text = await response.text();
  if (response.status === 401 || response.status === 403) {
    throw new TerminalError('ERR_UNAUTHORIZED', `${path} answered ${response.status}: ${errorText(text)}`, {
      hint: token === undefined ? 'log in with `npm login --registry ' + registry + '` or pass --token' : 'the token was refused; log in again or pass another --token',
    });
  }
  if (!response.ok) {
    throw new TerminalError('ERR_REGISTRY_RESPONSE', `${url} answered ${response.status}: ${errorText(text)}`, {
      hint: response.status === 404 ? 'is this a @mycompany/registry server with the dashboard plugin?' : undefined,
    });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new TerminalError('ERR_REGISTRY_RESPONSE', `${url} did not answer JSON: ${text.slice(0, 80)}`);
  }
}

function errorText(text: string): string {
  try {
    const body = JSON.parse(text) as { error?: unknown };
    if (typeof body.error === 'string') return body.error;
  } catch {
    // not JSON: show the start of it
  }
  return text.slice(0, 120) || '(empty body)';
}

function validated<T>(parse: () => T, path: string): T {
  try {
    return parse();
  } catch (error) {
    throw new TerminalError('ERR_REGISTRY_RESPONSE', `${path}: ${(error as Error).message}`, { cause: error });
  }
}

export async function fetchConfig(registry: string, token: string | undefined): Promise<ServerConfig> {
  const path = '/_dashboard/api/config';
  const body = await getJson(registry, path, token);
  return validated(() => check(configViewSchema, body, 'config'), path);
}

export async function fetchPackages(registry: string, token: string | undefined): Promise<PackageInfo[]> {
  const path = '/_dashboard/api/packages';
  const body = await getJson(registry, path, token);
  return validated(() => check(packagesResponseSchema, body, 'package list').packages, path);
}

/** One package for the detail screen (`o` on the package list): versions, tags, publisher, sizes, integrity. */
export async function fetchPackage(registry: string, token: string | undefined, name: string): Promise<PackageDetail> {
  const path = `/_dashboard/api/package?name=${encodeURIComponent(name)}`;
  const body = await getJson(registry, path, token);
  return validated(() => check(packageViewSchema, body, 'package view'), path);
}

/** Publishes, downloads and requests per minute, and the storage size (the socket pushes the same document). */
export async function fetchActivity(registry: string, token: string | undefined): Promise<ActivityView> {
  const path = '/_dashboard/api/activity';
  const body = await getJson(registry, path, token);
  return validated(() => check(activitySchema, body, 'activity'), path);
}

/** Upstream health and cache size; a registry without the route (older build) is "not available". */
export async function fetchUpstream(registry: string, token: string | undefined): Promise<UpstreamView> {
  const path = '/_dashboard/api/upstream';
  const body = await getJson(registry, path, token);
  return validated(() => check(upstreamViewSchema, body, 'upstream status'), path);
}

/** `ws(s)://…/_dashboard/terminal` for an http(s) registry URL. */
export function terminalSocketUrl(registry: string): string {
  const url = new URL(registry);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  url.pathname = `${url.pathname.replace(/\/+$/, '')}/_dashboard/terminal`;
  return url.toString();
}
