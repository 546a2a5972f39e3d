/**
 * The one per-registry seam table (docs/architecture.md, "Seams between parts"): what one part
 * registers for the registry whose config is a registry.lockb path, and another part looks up by
 * the same path (resolved, so spellings agree). Two registries in one process never see each
 * other's entries. The tables are module state: plugins import the core from the same build
 * folder, so they share them. Used by token-verifier.ts, package-owners.ts and
 * the storage part's store-port.ts.
 */
import { resolve } from 'node:path';

export interface RegistrySeam<T> {
  /** Registers (or replaces) the entry of the registry whose config is `lockbPath`. Returns the unregister function. */
  register(lockbPath: string, value: T): () => void;
  /** The registered entry, or undefined. */
  get(lockbPath: string): T | undefined;
}

export function registrySeam<T>(): RegistrySeam<T> {
  const entries = new Map<string, T>();
  return {
    register(lockbPath, value) {
      const key = resolve(lockbPath);
      entries.set(key, value);
      return () => {
        if (entries.get(key) === value) entries.delete(key);
      };
    },
    get: (lockbPath) => entries.get(resolve(lockbPath)),
  };
}
