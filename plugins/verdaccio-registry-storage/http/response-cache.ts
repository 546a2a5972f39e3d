/**
 * A bounded LRU of rendered packument responses. Pure (no HTTP, no Verdaccio): bounded both in
 * entries and in bytes; an entry is valid only for the packument revision it was rendered
 * from, so a lookup with another revision is a miss that drops the stale entry.
 */
import { gzipSync } from 'node:zlib';
import { LRUCache } from 'lru-cache';

export interface CachedResponse {
  /** The store's packumentRevision(name) the body was rendered from. */
  readonly revision: string;
  readonly body: Buffer;
  /** Exactly what Verdaccio sent (charset included). */
  readonly contentType: string;
  readonly etag: string;
  /** gzip of body, made on the first request that accepts it (what compression() would send). */
  gzip?: Buffer;
}

export interface CacheLimits {
  maxEntries: number;
  maxBytes: number;
}

export interface CacheStats {
  entries: number;
  bytes: number;
  hits: number;
  misses: number;
  stores: number;
  evictions: number;
}

/** Key strings and object headers are small next to packument bodies, but not free. */
const ENTRY_OVERHEAD = 256;

function sizeOf(key: string, entry: CachedResponse): number {
  return ENTRY_OVERHEAD + key.length * 2 + entry.body.length + (entry.gzip?.length ?? 0) + entry.contentType.length + entry.etag.length + entry.revision.length;
}

export class ResponseCache {
  readonly limits: CacheLimits;
  readonly #entries: LRUCache<string, CachedResponse>;
  #hits = 0;
  #misses = 0;
  #stores = 0;
  #evictions = 0;

  constructor(limits: CacheLimits) {
    if (!Number.isSafeInteger(limits.maxEntries) || limits.maxEntries < 1) throw new RangeError(`maxEntries must be a positive integer (got ${limits.maxEntries})`);
    if (!Number.isSafeInteger(limits.maxBytes) || limits.maxBytes < 1) throw new RangeError(`maxBytes must be a positive integer (got ${limits.maxBytes})`);
    this.limits = { ...limits };
    // lru-cache: bounded in entries and in bytes, least recently used out first
    this.#entries = new LRUCache<string, CachedResponse>({
      max: limits.maxEntries,
      maxSize: limits.maxBytes,
      sizeCalculation: (entry, key) => sizeOf(key, entry),
      dispose: (_entry, _key, reason) => {
        if (reason === 'evict') this.#evictions++;
      },
    });
  }

  /** The entry rendered from `revision`, most recently used from now on; undefined otherwise. */
  get(key: string, revision: string): CachedResponse | undefined {
    const entry = this.#entries.get(key);
    if (!entry || entry.revision !== revision) {
      if (entry) this.#entries.delete(key);
      this.#misses++;
      return undefined;
    }
    this.#hits++;
    return entry;
  }

  /** Stores (replacing any entry for key); false when one entry alone would take over a quarter of the byte budget. */
  set(key: string, entry: CachedResponse): boolean {
    this.delete(key);
    if (sizeOf(key, entry) > this.limits.maxBytes / 4) return false;
    this.#entries.set(key, entry);
    this.#stores++;
    return true;
  }

  /** The gzip variant of a cached entry, made once; the byte budget counts it. */
  gzipOf(key: string, entry: CachedResponse): Buffer {
    if (entry.gzip) return entry.gzip;
    const gzip = gzipSync(entry.body);
    if (this.#entries.peek(key) === entry) {
      entry.gzip = gzip;
      this.#entries.set(key, entry, { noUpdateTTL: true }); // re-measured with its gzip
    }
    return gzip;
  }

  delete(key: string): void {
    this.#entries.delete(key);
  }

  clear(): void {
    this.#entries.clear();
  }

  stats(): CacheStats {
    return { entries: this.#entries.size, bytes: this.#entries.calculatedSize, hits: this.#hits, misses: this.#misses, stores: this.#stores, evictions: this.#evictions };
  }
}
