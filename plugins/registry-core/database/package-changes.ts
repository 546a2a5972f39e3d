/**
 * Seam between the PostgreSQL storage backend and the cross-node transport (LISTEN/NOTIFY, the
 * cluster part), one bus per registry.lockb per process (docs/database.md "Package changes"):
 *
 * - the storage calls `committed(change)` after every COMMIT that changed a package (packument,
 *   tarball, index rows); the transport subscribes with `onCommitted` and tells the other nodes;
 * - the transport calls `deliver(change)` for a change another node committed (`name: '*'` =
 *   anything may have changed, e.g. after the LISTEN connection was lost and re-established); the
 *   storage subscribes with `onDelivered`: it drops its caches for the name and brings its
 *   registry.lockb mirror up to date (which also emits the change's events on this node);
 * - `attachTransport()` while deliveries are live: only then does the storage trust its per-node
 *   packument caches (without a transport it re-reads every packument and polls the index).
 *
 * Plain objects on a `Symbol.for` table on globalThis: two copies of this module agree; no pg here.
 */
import { resolve } from 'node:path';

export interface PackageChange {
  /** the package, or '*' for "anything may have changed" */
  name: string;
  /** the packument revision after the change (null: deleted, or unknown) */
  revision: string | null;
  /** the newest package_index id the change wrote (null: none) */
  indexId: string | null;
}

export type PackageChangeListener = (change: PackageChange) => void;

export interface PackageChangeBus {
  committed(change: PackageChange): void;
  onCommitted(listener: PackageChangeListener): () => void;
  deliver(change: PackageChange): void;
  onDelivered(listener: PackageChangeListener): () => void;
  /** marks deliveries live; returns the detach function */
  attachTransport(): () => void;
  transportAttached(): boolean;
}

interface BusState {
  committed: Set<PackageChangeListener>;
  delivered: Set<PackageChangeListener>;
  transports: number;
}

const TABLE = Symbol.for('mycompany.registry.package-changes');

function stateOf(lockbPath: string): BusState {
  const holder = globalThis as unknown as Record<symbol, Map<string, BusState> | undefined>;
  holder[TABLE] ??= new Map();
  const key = resolve(lockbPath);
  let state = holder[TABLE].get(key);
  if (!state) holder[TABLE].set(key, (state = { committed: new Set(), delivered: new Set(), transports: 0 }));
  return state;
}

function fire(listeners: Set<PackageChangeListener>, change: PackageChange): void {
  for (const listener of [...listeners]) {
    try {
      listener(change);
    } catch (error) {
      // a listener's failure never fails the commit (or the delivery) that already happened
      process.emitWarning(`registry-core: package change listener threw: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
}

export function packageChanges(lockbPath: string): PackageChangeBus {
  const state = stateOf(lockbPath);
  return {
    committed: (change) => fire(state.committed, change),
    onCommitted: (listener) => {
      state.committed.add(listener);
      return () => void state.committed.delete(listener);
    },
    deliver: (change) => fire(state.delivered, change),
    onDelivered: (listener) => {
      state.delivered.add(listener);
      return () => void state.delivered.delete(listener);
    },
    attachTransport: () => {
      state.transports += 1;
      let attached = true;
      return () => {
        if (attached) state.transports -= 1;
        attached = false;
      };
    },
    transportAttached: () => state.transports > 0,
  };
}
