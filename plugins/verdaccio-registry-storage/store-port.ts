/**
 * What the storage part's HTTP entry (http/, a middleware plugin) uses of its store plugin, as a
 * seam inside this folder: the store plugin (plugin.ts) registers its port per registry.lockb
 * when Verdaccio constructs it; the HTTP entry looks it up by the same path instead of reaching
 * into Verdaccio's internal `storage.localStorage.storagePlugin`. No port registered = the
 * configured store is another plugin (no packument cache, ownership not enforced, no proxying:
 * boot lines say so).
 */
import { registrySeam } from '../registry-core/seam';
import type { Actor, Maintainer } from './owners';
import type { PackumentOutcome } from './upstream/proxy';
import type { ServerResponse } from 'node:http';

/** The store plugin's upstream proxy (upstream/proxy.ts), as the HTTP entry uses it. */
export interface UpstreamPort {
  packument(name: string, hops?: number): Promise<PackumentOutcome>;
  tarball(name: string, fileName: string, res: ServerResponse, hops?: number): Promise<'pass' | 'done'>;
  /** Synchronous freshness of a held copy (the HTTP fast path); false: let the full path revalidate. */
  servesHeldCopy(name: string): boolean;
}

export interface StorePort {
  /** a stamp that changes whenever the package's packument file changes (~1 µs, one stat); null: no such package */
  packumentRevision(name: string): string | null;
  /** the package's maintainers (null: no such package) */
  owners(name: string): Promise<Maintainer[] | null>;
  /** `npm owner add|rm` */
  changeOwners(name: string, maintainers: Maintainer[], actor: Actor): Promise<void>;
  /** the tarball's bytes for a packument stamp (the HTTP fast path); null when not held in memory-sized form */
  heldTarballBytes(name: string, fileName: string, stamp: string): Promise<Buffer | null>;
  /** the same, synchronously, when the bytes are in memory and still valid; undefined: ask heldTarballBytes */
  heldTarballBytesNow(name: string, fileName: string, stamp: string): Buffer | undefined;
  /** every locally stored package name */
  listNames(): Promise<string[]>;
  /** a JSON publish of this tarball was answered with an error (or its client left): take back what it left (PackageService.publishFailed) */
  publishFailed(name: string, fileName: string): Promise<void>;
  upstream: UpstreamPort;
}

const ports = registrySeam<StorePort>();

export function registerStorePort(lockbPath: string, port: StorePort): () => void {
  return ports.register(lockbPath, port);
}

export function storePortOf(lockbPath: string): StorePort | undefined {
  return ports.get(lockbPath);
}
