/**
 * An LRU cache bounded in entries, without lru-cache's up-front allocation.
 *
 * lru-cache's `max` option allocates its key, value and link arrays for all `max` entries in the
 * constructor: ≈ 12 ms CPU and ≈ 3 MB for 100,000 entries, paid at every start for caches that
 * are empty then (the storage plugin builds two of those, the auth and signature caches 10,000
 * each; issue 17's cold-start profile). Counting every entry as size 1 under `maxSize` bounds the
 * count exactly the same way (least recently used out first) while the arrays grow as entries
 * arrive. Not exported from the core's index: the CLI loads that and needs no cache.
 */
import { LRUCache } from 'lru-cache';

export function entryBoundedCache<K extends {}, V extends {}>(maxEntries: number): LRUCache<K, V> {
  if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) throw new RangeError(`maxEntries must be a positive integer (got ${maxEntries})`);
  return new LRUCache<K, V>({ maxSize: maxEntries, sizeCalculation: () => 1 });
}

/**
 * Results of a pure function by key, bounded in entries: when full it starts over. No recency
 * bookkeeping on a hit — the memos of the hot read path (route of a path, a parsed name, a file's
 * path, a metrics target), where an lru-cache get's cost showed (issue 17) and losing every entry
 * at once only means recomputing them.
 */
export class ClearingMemo<K, V> {
  readonly #entries = new Map<K, V>();
  readonly #maxEntries: number;

  constructor(maxEntries: number) {
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) throw new RangeError(`maxEntries must be a positive integer (got ${maxEntries})`);
    this.#maxEntries = maxEntries;
  }

  get size(): number {
    return this.#entries.size;
  }

  get(key: K): V | undefined {
    return this.#entries.get(key);
  }

  set(key: K, value: V): void {
    if (this.#entries.size >= this.#maxEntries) this.#entries.clear();
    this.#entries.set(key, value);
  }
}
