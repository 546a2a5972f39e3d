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
