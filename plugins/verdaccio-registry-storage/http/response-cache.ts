/**
 * A bounded LRU of rendered packument responses. Pure (no HTTP, no Verdaccio): bounded both in
 * entries and in bytes; an entry is valid only for the packument revision it was rendered
 * from, so a lookup with another revision is a miss that drops the stale entry.
 */
import { brotliCompressSync, constants as zlibConstants, gzipSync } from 'node:zlib';
import { LRUCache } from 'lru-cache';
import { compressionEncoding } from '../../registry-core/content-encoding';

/** The encodings a cached response is kept in besides identity, each made once, on first demand. */
export type Precompressed = 'gzip' | 'br';

/** compression()'s threshold: smaller bodies are sent as they are. */
export const COMPRESSION_THRESHOLD = 1024;

/**
 * What Verdaccio's compression() will answer this Accept-Encoding with (the core's one negotiation,
 * content-encoding.ts), when the answer is one we keep pre-compressed or identity; null when deflate
 * wins (let compression() stream it). Nothing acceptable: compression() sends the body as it is.
 */
export function cachedVariantFor(header: string | undefined): Precompressed | 'identity' | null {
  const encoding = compressionEncoding(header);
  if (encoding === 'br' || encoding === 'gzip') return encoding;
  if (encoding === 'deflate') return null;
  return 'identity';
}

/** The one-shot equivalent of what compression() would stream (brotli at its quality 4). */
function compress(body: Buffer, encoding: Precompressed): Buffer {
  return encoding === 'gzip' ? gzipSync(body) : brotliCompressSync(body, { params: { [zlibConstants.BROTLI_PARAM_QUALITY]: 4, [zlibConstants.BROTLI_PARAM_SIZE_HINT]: body.length } });
}

export interface CachedResponse {
  /** The store's packumentRevision(name) the body was rendered from. */
  readonly revision: string;
  readonly body: Buffer;
  /** Exactly what Verdaccio sent (charset included). */
  readonly contentType: string;
  readonly etag: string;
  /** gzip / brotli of body, each made on the first request that takes it (what compression() would send). */
  gzip?: Buffer;
  br?: Buffer;
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
  return ENTRY_OVERHEAD + key.length * 2 + entry.body.length + (entry.gzip?.length ?? 0) + (entry.br?.length ?? 0) + entry.contentType.length + entry.etag.length + entry.revision.length;
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

  /** The gzip or brotli variant of a cached entry, made once; the byte budget counts it. */
  variantOf(key: string, entry: CachedResponse, encoding: Precompressed): Buffer {
    const made = entry[encoding];
    if (made) return made;
    const variant = compress(entry.body, encoding);
    entry[encoding] = variant;
    if (this.#entries.peek(key) === entry) {
      // lru-cache re-measures an entry only when the value stored under the key changes identity
      this.#entries.set(key, { ...entry }, { noUpdateTTL: true });
    }
    return variant;
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
