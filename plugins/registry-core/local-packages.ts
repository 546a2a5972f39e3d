/**
 * The names of the locally stored packages, as a seam between plugins: the storage plugin (the
 * only part that knows its folder) registers its list when it loads; the dashboard asks through
 * `localPackageNames` instead of reaching into Verdaccio's internal
 * `storage.localStorage.storagePlugin` (docs/architecture.md, "Seams between plugins").
 *
 * Registration is per registry.lockb (resolved path), like the token verifier and the owners
 * lookup. With no list registered (another store plugin is configured) a question rejects with
 * LocalPackagesUnavailableError, so callers say so instead of showing an empty registry.
 */
import { resolve } from 'node:path';

/** Every locally stored package name (scoped ones as `@scope/name`), in no particular order. */
export type LocalPackageList = () => Promise<string[]>;

export class LocalPackagesUnavailableError extends Error {
  constructor() {
    super('the local package list cannot be read: the registry storage plugin is not the configured store');
    this.name = 'LocalPackagesUnavailableError';
  }
}

const lists = new Map<string, LocalPackageList>();

/** Registers (or replaces) the package list of the registry whose config is `lockbPath`. Returns the unregister function. */
export function registerLocalPackages(lockbPath: string, list: LocalPackageList): () => void {
  const key = resolve(lockbPath);
  lists.set(key, list);
  return () => {
    if (lists.get(key) === list) lists.delete(key);
  };
}

export function localPackageNames(lockbPath: string): Promise<string[]> {
  const list = lists.get(resolve(lockbPath));
  if (!list) return Promise.reject(new LocalPackagesUnavailableError());
  return list();
}
