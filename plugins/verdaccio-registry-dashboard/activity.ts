/**
 * The registry's life per minute for the activity chart (issue 15.7): publishes, downloads and
 * requests, and the size of the storage folder. One source of truth: the counters are the core
 * metrics (plugins/registry-core/metrics.ts) that `GET /-/metrics` renders — the ops part counts
 * HTTP requests and publishes there, this module only reads them (it counts nothing itself):
 *   publishes  registry_publishes_total
 *   downloads  registry_http_requests_total{method="GET", route="/:package/-/:filename", status=2xx}
 *   requests   registry_http_requests_total without the dashboard's own routes (`/_dashboard…`)
 * A counter is cumulative; a minute's value is the difference between the first sample taken in
 * it and the first sample of the next sampled minute (or now). Samples are taken on a timer and
 * whenever the document is asked for. Time comes from `now` (tests freeze it).
 */
import type { Dirent } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { RegistryMetrics } from '../registry-core/index';

export interface ActivityTotals {
  publishes: number;
  downloads: number;
  requests: number;
}

export interface ActivityBucket extends ActivityTotals {
  /** ISO start of the minute */
  start: string;
}

export interface StorageSize {
  /** bytes of packages published here (storage folder without the upstream cache) */
  localBytes: number;
  /** bytes of the upstream cache (`.upstream/`) */
  cachedBytes: number;
  files: number;
  measuredAt: string;
  /** ms the walk took */
  tookMs: number;
}

/** The wire format of GET /_dashboard/api/activity and of the socket's `activity` message (docs/http-api.md). */
export interface ActivityDocument {
  bucketSeconds: number;
  now: string;
  /** oldest first; the last one is the current (still growing) minute */
  buckets: ActivityBucket[];
  /** since this process started counting */
  totals: ActivityTotals;
  /** null until the first walk of the storage folder finished (or when there is no storage folder) */
  storage: StorageSize | null;
}

export const DOWNLOAD_ROUTE = '/:package/-/:filename';

/** The three totals from the core metrics (no counting here). */
export function activityTotalsFrom(metrics: RegistryMetrics): () => ActivityTotals {
  return () => ({
    publishes: metrics.total('registry_publishes_total'),
    downloads: metrics.total('registry_http_requests_total', (l) => l.method === 'GET' && l.route === DOWNLOAD_ROUTE && /^2/.test(l.status ?? '')),
    requests: metrics.total('registry_http_requests_total', (l) => !(l.route ?? '').startsWith('/_dashboard')),
  });
}

export interface ActivityOptions {
  now?: () => number;
  bucketMs?: number;
  buckets?: number;
}

function minus(a: ActivityTotals, b: ActivityTotals): ActivityTotals {
  // a counter never decreases; a restart of the counting (new table) shows as 0, not negative
  return { publishes: Math.max(0, a.publishes - b.publishes), downloads: Math.max(0, a.downloads - b.downloads), requests: Math.max(0, a.requests - b.requests) };
}

export class ActivityRecorder {
  readonly #read: () => ActivityTotals;
  readonly #now: () => number;
  readonly #bucketMs: number;
  readonly #buckets: number;
  /** bucket start → the totals at the first sample taken in that bucket, oldest first */
  readonly #marks = new Map<number, ActivityTotals>();
  readonly #origin: ActivityTotals;

  constructor(read: () => ActivityTotals, options: ActivityOptions = {}) {
    this.#read = read;
    this.#now = options.now ?? Date.now;
    this.#bucketMs = options.bucketMs ?? 60_000;
    this.#buckets = options.buckets ?? 60;
    this.#origin = read();
    this.#marks.set(this.#bucketOf(this.#now()), this.#origin);
  }

  #bucketOf(time: number): number {
    return time - (time % this.#bucketMs);
  }

  /** Reads the counters; the first read in a new minute marks its start. Returns the current totals. */
  sample(): ActivityTotals {
    const totals = this.#read();
    const bucket = this.#bucketOf(this.#now());
    if (!this.#marks.has(bucket)) this.#marks.set(bucket, totals);
    // keep one mark before the window: it bounds the oldest shown minute
    const oldest = bucket - this.#bucketMs * this.#buckets;
    for (const start of this.#marks.keys()) {
      if (start < oldest && this.#marks.size > 1) this.#marks.delete(start);
      else break;
    }
    return totals;
  }

  document(storage: StorageSize | null): ActivityDocument {
    const current = this.sample();
    const now = this.#now();
    const bucket = this.#bucketOf(now);
    const starts = [...this.#marks.keys()];
    const values = new Map<number, ActivityTotals>();
    starts.forEach((start, i) => {
      const next = i + 1 < starts.length ? (this.#marks.get(starts[i + 1]) as ActivityTotals) : current;
      values.set(start, minus(next, this.#marks.get(start) as ActivityTotals));
    });
    const buckets: ActivityBucket[] = [];
    for (let i = this.#buckets - 1; i >= 0; i--) {
      const start = bucket - i * this.#bucketMs;
      buckets.push({ start: new Date(start).toISOString(), ...(values.get(start) ?? { publishes: 0, downloads: 0, requests: 0 }) });
    }
    return { bucketSeconds: this.#bucketMs / 1000, now: new Date(now).toISOString(), buckets, totals: minus(current, this.#origin), storage };
  }
}

/** Bytes and files under `dir`, the `.upstream` subtree apart. Symlinks are not followed. */
export async function measureStorage(dir: string, now: () => number = Date.now): Promise<StorageSize> {
  const started = performance.now();
  const size = { localBytes: 0, cachedBytes: 0, files: 0 };
  const walk = async (folder: string, cached: boolean): Promise<void> => {
    let entries: Dirent[];
    try {
      entries = await readdir(folder, { withFileTypes: true });
    } catch {
      return; // vanished while walking (an unpublish): not an error
    }
    await Promise.all(
      entries.map(async (entry) => {
        const path = join(folder, entry.name);
        if (entry.isDirectory()) return walk(path, cached || (folder === dir && entry.name === '.upstream'));
        if (!entry.isFile()) return;
        try {
          const stat = await lstat(path);
          size.files += 1;
          if (cached) size.cachedBytes += stat.size;
          else size.localBytes += stat.size;
        } catch {
          // gone between readdir and lstat
        }
      }),
    );
  };
  await walk(dir, false);
  return { ...size, measuredAt: new Date(now()).toISOString(), tookMs: Math.round((performance.now() - started) * 10) / 10 };
}

/** The storage size, measured in the background: at most one walk at a time, again when asked and older than `maxAgeMs` or marked stale. */
export class StorageMeter {
  readonly #dir: string | undefined;
  readonly #maxAgeMs: number;
  readonly #now: () => number;
  #last: StorageSize | null = null;
  #lastAt = 0;
  #running: Promise<StorageSize | null> | undefined;
  #stale = true;

  constructor(dir: string | undefined, options: { maxAgeMs?: number; now?: () => number } = {}) {
    this.#dir = dir;
    this.#maxAgeMs = options.maxAgeMs ?? 60_000;
    this.#now = options.now ?? Date.now;
  }

  get current(): StorageSize | null {
    return this.#last;
  }

  /** A publish or unpublish happened: the next refresh walks again. */
  markStale(): void {
    this.#stale = true;
  }

  /** Starts a walk if the last one is stale or old; resolves with the newest size (the running walk's when one runs). */
  refresh(): Promise<StorageSize | null> {
    if (this.#dir === undefined) return Promise.resolve(null);
    if (this.#running) return this.#running;
    if (!this.#stale && this.#now() - this.#lastAt < this.#maxAgeMs) return Promise.resolve(this.#last);
    this.#stale = false;
    const dir = this.#dir;
    this.#running = measureStorage(dir, this.#now)
      .then((size) => {
        this.#last = size;
        this.#lastAt = this.#now();
        return size;
      })
      .catch(() => this.#last)
      .finally(() => {
        this.#running = undefined;
      });
    return this.#running;
  }
}
