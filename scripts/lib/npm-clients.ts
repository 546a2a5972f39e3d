/**
 * Typed adapter for npm's own registry clients, which ship without type declarations:
 * `libnpmpublish` (what `npm publish` uses) and `npm-registry-fetch` (what every npm command
 * uses to talk to a registry). The untyped boundary is this file and nothing else.
 */

/** Authentication and target for one registry, in npm-registry-fetch's option vocabulary. */
export interface RegistryOptions {
  /** Base URL with a trailing slash. */
  registry: string;
  /** Bearer token; sent to this registry only. */
  token?: string;
  /** Request timeout in ms. */
  timeout?: number;
}

/** What npm-registry-fetch throws for a non-2xx answer. */
export interface RegistryHttpError extends Error {
  statusCode: number;
  code: string;
  body: unknown;
}

export function isRegistryHttpError(error: unknown): error is RegistryHttpError {
  return error instanceof Error && typeof (error as Partial<RegistryHttpError>).statusCode === 'number';
}

interface FetchOptions {
  registry: string;
  forceAuth?: { token: string };
  timeout?: number;
  method?: string;
  body?: unknown;
  preferOnline?: boolean;
  retry?: { retries: number };
  access?: string;
  defaultTag?: string;
  npmVersion?: string;
}

type RegistryFetchJson = (uri: string, options: FetchOptions) => Promise<unknown>;
type Publish = (manifest: Record<string, unknown>, tarball: Buffer, options: FetchOptions) => Promise<unknown>;

// eslint-disable-next-line @typescript-eslint/no-require-imports
const registryFetch = require('npm-registry-fetch') as { json: RegistryFetchJson };
// eslint-disable-next-line @typescript-eslint/no-require-imports
const libnpmpublish = require('libnpmpublish') as { publish: Publish };

function fetchOptions(options: RegistryOptions): FetchOptions {
  return {
    registry: options.registry,
    ...(options.token ? { forceAuth: { token: options.token } } : {}),
    timeout: options.timeout ?? 60_000,
  };
}

/** GET a JSON document (e.g. a packument, `/-/whoami`) from the registry, never from a cache. */
export function getJson(path: string, options: RegistryOptions): Promise<unknown> {
  return registryFetch.json(path, { ...fetchOptions(options), preferOnline: true });
}

/** PUT a JSON body (e.g. the couch login route) and return the JSON answer. */
export function putJson(path: string, body: unknown, options: RegistryOptions): Promise<unknown> {
  return registryFetch.json(path, { ...fetchOptions(options), method: 'PUT', body, retry: { retries: 0 } });
}

/**
 * `npm publish` of an already packed tarball: libnpmpublish builds the packument (dist.integrity,
 * shasum, tarball URL, base64 attachment) exactly as the npm CLI does. No retries: a retried PUT
 * of a publish that did land would answer 409 and hide the success.
 */
export async function publishTarball(
  manifest: Record<string, unknown>,
  tarball: Buffer,
  options: RegistryOptions & { npmVersion?: string },
): Promise<void> {
  await libnpmpublish.publish(manifest, tarball, {
    ...fetchOptions(options),
    access: 'public',
    defaultTag: 'latest',
    retry: { retries: 0 },
    ...(options.npmVersion ? { npmVersion: options.npmVersion } : {}),
  });
}
