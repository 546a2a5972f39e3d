/**
 * Which upstream answers npm audit: the ONE upstream of the registry, resolved by the core
 * (`plugins/registry-core/upstream-config.ts`, docs/upstream.md) — the same one packuments and
 * tarballs are proxied from. This file only maps the core's answer onto the relay's shape.
 */
import { DEFAULT_UPSTREAM_TIMEOUT_MS, configuredUpstream, parseDuration, type UpstreamResolution } from '../registry-core/index';

export interface AuditUpstream {
  /** the uplink's key in config.yaml (`upstream` for the environment or npm's registry) */
  name: string;
  /** normalized: no trailing slash */
  url: string;
  timeoutMs: number;
  /** `Authorization` header value from the uplink's `auth:` (bearer/basic, token or token_env) */
  authorization: string | undefined;
}

export type UpstreamChoice = { ok: true; upstream: AuditUpstream | null } | { ok: false; error: string };

export const DEFAULT_TIMEOUT_MS = DEFAULT_UPSTREAM_TIMEOUT_MS;

/** Verdaccio's uplink `timeout`: a number of ms, or `<n>ms|s|m` (e.g. `30s`); 0 is no timeout we accept. */
export function parseTimeout(value: unknown): number | undefined {
  const ms = parseDuration(value, DEFAULT_TIMEOUT_MS);
  return ms === undefined || ms === 0 ? undefined : ms;
}

/** The core's resolution as the relay needs it. */
export function auditUpstreamOf(resolution: UpstreamResolution): UpstreamChoice {
  if (!resolution.ok) return resolution;
  if (resolution.upstream === null) return { ok: true, upstream: null };
  const { name, url, timeoutMs, authorization } = resolution.upstream;
  return { ok: true, upstream: { name, url, timeoutMs, authorization } };
}

/** The choice `uplinks` alone makes (the core's rule without the environment and npm's config). */
export function chooseUpstream(uplinks: unknown, env: Record<string, string | undefined> = {}): UpstreamChoice {
  const resolution = configuredUpstream({ uplinks }, { ...env, REGISTRY_UPSTREAM_URL: undefined });
  return resolution === undefined ? { ok: true, upstream: null } : auditUpstreamOf(resolution);
}
