/**
 * The work of `registry warm`: for each package a lockfile names, GET its packument from THIS
 * registry (npm's install Accept header, as `npm install` asks) and then GET each named version's
 * tarball from the URL the registry gave, reading the body to the end — so a proxying registry
 * fills its cache exactly as a real install would. Contract: docs/offline-and-warm.md.
 */
import type { LockedPackage } from './lockfiles/index';

/** What npm sends for a packument during install (abbreviated metadata, full as fallback). */
export const NPM_INSTALL_ACCEPT = 'application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*';
/** The response header a proxying registry sets on a tarball: `hit` = served from its cache. */
import { CACHE_HEADER, DEBUG_REQUEST_HEADER } from '../../plugins/registry-core/debug-log';

export { CACHE_HEADER };
/** So a registry's log tells warm requests from installs. */
export const WARM_USER_AGENT = 'mycompany-registry-warm';

export type WarmOutcome =
  | { pkg: LockedPackage; status: 'fetched' | 'cached'; bytes: number }
  | { pkg: LockedPackage; status: 'failed'; reason: string };

export interface WarmOptions {
  registryUrl: string;
  token?: string;
  concurrency: number;
  /** per request */
  timeoutMs?: number;
  onOutcome?: (outcome: WarmOutcome, done: number, total: number) => void;
}

export interface WarmSummary {
  fetched: number;
  cached: number;
  failed: WarmOutcome[];
  bytes: number;
  outcomes: WarmOutcome[];
}

/** `@scope/name` → `@scope%2fname`, as npm writes packument paths. */
export function packumentPath(name: string): string {
  return name.startsWith('@') ? `@${encodeURIComponent(name.slice(1))}` : encodeURIComponent(name);
}

interface Packument {
  versions?: Record<string, { dist?: { tarball?: unknown } } | undefined>;
}

function describeError(error: unknown): string {
  if (error instanceof Error) {
    const cause = (error as Error & { cause?: unknown }).cause;
    return cause instanceof Error ? `${error.message}: ${cause.message}` : error.message;
  }
  return String(error);
}

async function errorText(response: Response): Promise<string> {
  const text = await response.text().catch(() => '');
  try {
    const body = JSON.parse(text) as { error?: unknown };
    if (typeof body.error === 'string') return `${response.status} ${body.error}`;
  } catch {
    // not JSON: the status line says enough
  }
  return `${response.status} ${response.statusText}`.trim();
}

/** Runs `work` over `items` with at most `limit` in flight; results in input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index]);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return results;
}

export async function warmPackages(packages: readonly LockedPackage[], options: WarmOptions): Promise<WarmSummary> {
  const base = options.registryUrl.replace(/\/+$/, '');
  const headers = (accept: string): Record<string, string> => ({
    accept,
    'user-agent': WARM_USER_AGENT,
    [DEBUG_REQUEST_HEADER]: 'cache', // asks for the cache header (docs/http-api.md)
    ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
  });
  const timeout = options.timeoutMs ?? 120_000;
  // one packument request per name, however many versions the lockfile holds
  const packuments = new Map<string, Promise<Packument | string>>();
  const packument = (name: string): Promise<Packument | string> => {
    let pending = packuments.get(name);
    if (!pending) {
      pending = (async () => {
        try {
          const response = await fetch(`${base}/${packumentPath(name)}`, { headers: headers(NPM_INSTALL_ACCEPT), signal: AbortSignal.timeout(timeout) });
          if (!response.ok) return `packument: ${await errorText(response)}`;
          return (await response.json()) as Packument;
        } catch (error) {
          return `packument: ${describeError(error)}`;
        }
      })();
      packuments.set(name, pending);
    }
    return pending;
  };

  let done = 0;
  const one = async (pkg: LockedPackage): Promise<WarmOutcome> => {
    const doc = await packument(pkg.name);
    if (typeof doc === 'string') return { pkg, status: 'failed', reason: doc };
    const tarball = doc.versions?.[pkg.version]?.dist?.tarball;
    if (typeof tarball !== 'string') return { pkg, status: 'failed', reason: `version ${pkg.version} is not in the registry's packument` };
    try {
      const response = await fetch(tarball, { headers: headers('*/*'), signal: AbortSignal.timeout(timeout) });
      if (!response.ok) return { pkg, status: 'failed', reason: `tarball: ${await errorText(response)}` };
      const bytes = (await response.arrayBuffer()).byteLength;
      const cache = response.headers.get(CACHE_HEADER)?.toLowerCase();
      return { pkg, status: cache === 'hit' ? 'cached' : 'fetched', bytes };
    } catch (error) {
      return { pkg, status: 'failed', reason: `tarball: ${describeError(error)}` };
    }
  };
  const outcomes = await mapLimit(packages, options.concurrency, async (pkg) => {
    const outcome = await one(pkg);
    options.onOutcome?.(outcome, ++done, packages.length);
    return outcome;
  });
  const summary: WarmSummary = { fetched: 0, cached: 0, failed: [], bytes: 0, outcomes };
  for (const outcome of outcomes) {
    if (outcome.status === 'failed') summary.failed.push(outcome);
    else {
      summary[outcome.status]++;
      summary.bytes += outcome.bytes;
    }
  }
  return summary;
}

/** `[########......]  12/40` in `width` columns. */
export function progressBar(done: number, total: number, width: number): string {
  const counter = ` ${String(done).padStart(String(total).length)}/${total}`;
  const inner = Math.max(4, width - counter.length - 2);
  const filled = total === 0 ? inner : Math.round((done / total) * inner);
  return `[${'#'.repeat(filled)}${'.'.repeat(inner - filled)}]${counter}`;
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}
