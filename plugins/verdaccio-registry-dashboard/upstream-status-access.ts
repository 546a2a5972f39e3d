/**
 * The upstream panel's data (docs/offline-and-warm.md, "Upstream status"): the core's
 * `registry-core/upstream-status`, which the storage part's upstream proxy fills in this process.
 * `available` stays in the shape so the page and the terminal can tell a registry whose build has
 * no upstream status (older servers they may talk to) from one whose upstream is off (`url: null`).
 */
import { upstreamStatus, type UpstreamStatus } from '../registry-core/upstream-status';

export type { UpstreamStatus };
export type UpstreamView = ({ available: true } & UpstreamStatus) | { available: false; reason: string };

export function readUpstreamStatus(lockbPath: string): UpstreamView {
  return { available: true, ...upstreamStatus(lockbPath) };
}
