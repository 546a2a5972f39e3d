/**
 * A bounded LRU of rendered packument responses. Pure (no HTTP, no Verdaccio): bounded both in
 * entries and in bytes; an entry is valid only for the packument revision it was rendered
 * from, so a lookup with another revision is a miss that drops the stale entry.
 */
import { brotliCompressSync, constants as zlibConstants, gzipSync } from 'node:zlib';

/** The encodings a cached response is kept in besides identity, each made once, on first demand. */
export type Precompressed = 'gzip' | 'br';

/** compression()'s threshold: smaller bodies are sent as they are. */
export const COMPRESSION_THRESHOLD = 1024;

/**
 * What Verdaccio's compression() (negotiator over br, gzip, deflate, identity; preferring br, then
 * gzip; identity when nothing is acceptable) would answer this Accept-Encoding with — when the
 * answer is one we keep pre-compressed or identity. null: a wildcard, or deflate winning: let
 * compression() decide. Codings compression() does not know (zstd…) play no part, as in negotiator.
 */
export function chooseEncoding(header: string | undefined): Precompressed | 'identity' | null {
  if (header === undefined || header === '') return 'identity';
  const quality = new Map<string, number>();
  let lowest = 1;
  for (const part of header.split(',')) {
    const match = /^\s*([^\s;]+)\s*(?:;(.*))?$/.exec(part.trim());
    if (!match) continue;
    let q = 1;
    for (const param of (match[2] ?? '').split(';')) {
      const [key, value] = param.trim().split('=');
      if (key === 'q') {
        q = Number.parseFloat(value);
        break;
      }
    }
    if (Number.isNaN(q)) q = 0;
    const coding = match[1].toLowerCase();
    if (coding === '*') return null;
    lowest = Math.min(lowest, q);
    quality.set(coding, Math.max(quality.get(coding) ?? 0, q));
  }
  const br = quality.get('br') ?? 0;
  const gzip = quality.get('gzip') ?? 0;
  const deflate = quality.get('deflate') ?? 0;
  // negotiator: identity, when not named, is acceptable at the lowest quality named
  const identity = quality.get('identity') ?? lowest;
  const best = Math.max(br, gzip, deflate, identity);
  if (best <= 0) return 'identity'; // nothing acceptable: compression() sends the body as it is
  if (br === best) return 'br';
  if (gzip === best) return 'gzip';
  if (deflate === best) return null; // ties with identity included: negotiator's order decides
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
  readonly #entries = new Map<string, { entry: CachedResponse; bytes: number }>();
  #bytes = 0;
  #hits = 0;
  #misses = 0;
  #stores = 0;
  #evictions = 0;

  constructor(limits: CacheLimits) {
    if (!Number.isSafeInteger(limits.maxEntries) || limits.maxEntries < 1) throw new RangeError(`maxEntries must be a positive integer (got ${limits.maxEntries})`);
    if (!Number.isSafeInteger(limits.maxBytes) || limits.maxBytes < 1) throw new RangeError(`maxBytes must be a positive integer (got ${limits.maxBytes})`);
    this.limits = { ...limits };
  }

  /** The entry rendered from `revision`, most recently used from now on; undefined otherwise. */
  get(key: string, revision: string): CachedResponse | undefined {
    const slot = this.#entries.get(key);
    if (!slot) {
      this.#misses++;
      return undefined;
    }
    this.#entries.delete(key);
    if (slot.entry.revision !== revision) {
      this.#bytes -= slot.bytes;
      this.#misses++;
      return undefined;
    }
    this.#entries.set(key, slot);
    this.#hits++;
    return slot.entry;
  }

  /** Stores (replacing any entry for key); false when one entry alone would take over a quarter of the byte budget. */
  set(key: string, entry: CachedResponse): boolean {
    this.delete(key);
    const bytes = sizeOf(key, entry);
    if (bytes > this.limits.maxBytes / 4) return false;
    this.#entries.set(key, { entry, bytes });
    this.#bytes += bytes;
    this.#stores++;
    this.#evict();
    return true;
  }

  /** The gzip or brotli variant of a cached entry, made once; the byte budget counts it. */
  variantOf(key: string, entry: CachedResponse, encoding: Precompressed): Buffer {
    const made = entry[encoding];
    if (made) return made;
    const variant = compress(entry.body, encoding);
    const slot = this.#entries.get(key);
    if (slot && slot.entry === entry) {
      entry[encoding] = variant;
      this.#bytes -= slot.bytes;
      slot.bytes = sizeOf(key, entry);
      this.#bytes += slot.bytes;
      this.#evict();
    }
    return variant;
  }

  delete(key: string): void {
    const slot = this.#entries.get(key);
    if (!slot) return;
    this.#entries.delete(key);
    this.#bytes -= slot.bytes;
  }

  clear(): void {
    this.#entries.clear();
    this.#bytes = 0;
  }

  stats(): CacheStats {
    return { entries: this.#entries.size, bytes: this.#bytes, hits: this.#hits, misses: this.#misses, stores: this.#stores, evictions: this.#evictions };
  }

  #evict(): void {
    // Map iteration order is insertion order, and get() re-inserts: the first key is the least recently used
    while (this.#entries.size > this.limits.maxEntries || this.#bytes > this.limits.maxBytes) {
      const oldest = this.#entries.keys().next();
      if (oldest.done) break;
      this.delete(oldest.value);
      this.#evictions++;
    }
  }
}
