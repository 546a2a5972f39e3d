/**
 * TEMPORARY seam (docs/offline-and-warm.md, "Upstream status"): the upstream status is owned by the
 * core module `registry-core/upstream-status`, which the storage plugin's upstream proxy fills.
 * Until that module is part of this build, this accessor loads it lazily and answers
 * `{available: false}` when it is absent; once it is merged, replace the lazy `require` with a
 * plain import of `upstreamStatus` from the core.
 */
import { join } from 'node:path';

export interface UpstreamStatus {
  url: string | null;
  offline: boolean;
  lastSuccess: number | null;
  lastFailure: { time: number; error: string } | null;
  latencyMs: number | null;
  cachedPackages: number;
  cachedBytes: number;
}

export type UpstreamView = ({ available: true } & UpstreamStatus) | { available: false; reason: string };

type StatusModule = { upstreamStatus(lockbPath: string): UpstreamStatus };

const MODULE_PATH = join(__dirname, '..', 'registry-core', 'upstream-status');
let loaded: StatusModule | null | undefined;

function load(): StatusModule | null {
  if (loaded !== undefined) return loaded;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const candidate = require(MODULE_PATH) as Partial<StatusModule>;
    loaded = typeof candidate.upstreamStatus === 'function' ? (candidate as StatusModule) : null;
  } catch (error) {
    // only "the module is not there" means unavailable; a module that fails to load is a real error
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'MODULE_NOT_FOUND' || !String((error as Error).message).includes(MODULE_PATH)) throw error;
    loaded = null;
  }
  return loaded;
}

export function readUpstreamStatus(lockbPath: string): UpstreamView {
  const module = load();
  if (!module) return { available: false, reason: 'this build has no upstream status (registry-core/upstream-status)' };
  return { available: true, ...module.upstreamStatus(lockbPath) };
}
