/**
 * The maintainers of a package, as a seam between plugins: the storage part (the only part that
 * reads packuments and owner records) registers its lookup here when its middleware entry
 * registers; the auth plugin asks through `packageOwnersOf` (who may manage a package's trusted
 * publishers, docs/trusted-publishing.md) without importing the storage plugin.
 *
 * Registration is per registry.lockb (resolved path), like the token verifier. With no lookup
 * registered a question rejects with OwnersUnavailableError: callers answer 503, never "allowed".
 */
import { registrySeam } from './seam';

/** The maintainer names of `name`, or null when the package does not exist. */
export type PackageOwnersLookup = (name: string) => Promise<string[] | null>;

export class OwnersUnavailableError extends Error {
  constructor() {
    super('package owners cannot be read: the registry storage part is not loaded');
    this.name = 'OwnersUnavailableError';
  }
}

const lookups = registrySeam<PackageOwnersLookup>();

/** Registers (or replaces) the owners lookup of the registry whose config is `lockbPath`. Returns the unregister function. */
export function registerPackageOwners(lockbPath: string, lookup: PackageOwnersLookup): () => void {
  return lookups.register(lockbPath, lookup);
}

export function packageOwnersOf(lockbPath: string, name: string): Promise<string[] | null> {
  const lookup = lookups.get(lockbPath);
  if (!lookup) return Promise.reject(new OwnersUnavailableError());
  return lookup(name);
}
