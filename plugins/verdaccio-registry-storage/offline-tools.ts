/**
 * The storage part's public surface for OFFLINE tools (`registry backup`, `registry restore`,
 * `registry doctor` in scripts/): the folder layout's names, the same per-package lock the
 * store takes for every write, and the storage verification start-up uses. Verdaccio-free.
 * Nothing here needs a running registry; a tool that does talks to it over HTTP.
 */
export { KeyedLock, pidAlive } from './lock';
export { verifyStorage } from './verify';
export { scanPackagesSync } from './scan';
export { TEMP_PREFIX, abandonedTempFiles, isAbandonedTemp } from './atomic';
export { DB_FILE, DB_LOCK_KEY, LOCKS_DIR, UPSTREAM_CACHE_DIR } from './fs-store';
export { TOKEN_STORE_FILE } from '../registry-core/token-store';
