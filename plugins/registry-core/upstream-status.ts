/**
 * The upstream's health, per registry.lockb, for the dashboard and the terminal (docs/upstream.md).
 * The storage part reports (`reportUpstreamStatus`); readers call `upstreamStatus`. Every change
 * between "last request succeeded" and "last request failed" (and the first outcome) is emitted
 * on the core event bus as `{kind: 'upstream', detail: 'up' | 'down: <error>'}`.
 * Process-wide (a symbol on globalThis), so two copies of this module share one state.
 */
import { resolve } from 'node:path';
import { registryEvents } from './events';

export interface UpstreamStatus {
  /** null: no upstream (off, none configured, or refused) */
  url: string | null;
  /** the OFFLINE flag was set when this was last reported */
  offline: boolean;
  /** ms since epoch of the last answer the upstream gave (200 or 304) */
  lastSuccess: number | null;
  lastFailure: { time: number; error: string } | null;
  /** duration of the last successful upstream request */
  latencyMs: number | null;
  /** packages / tarball bytes held in the upstream cache */
  cachedPackages: number;
  cachedBytes: number;
}

const SHARED = Symbol.for('mycompany-registry:upstream-status');

function states(): Map<string, UpstreamStatus> {
  const holder = globalThis as unknown as Record<symbol, Map<string, UpstreamStatus> | undefined>;
  return (holder[SHARED] ??= new Map());
}

function empty(): UpstreamStatus {
  return { url: null, offline: false, lastSuccess: null, lastFailure: null, latencyMs: null, cachedPackages: 0, cachedBytes: 0 };
}

/** A copy of the current status (all zero / null before anything was reported). */
export function upstreamStatus(lockbPath: string): UpstreamStatus {
  const state = states().get(resolve(lockbPath)) ?? empty();
  return { ...state, lastFailure: state.lastFailure ? { ...state.lastFailure } : null };
}

function healthOf(state: UpstreamStatus): 'up' | 'down' | 'unknown' {
  if (state.lastSuccess === null && state.lastFailure === null) return 'unknown';
  if (state.lastFailure === null) return 'up';
  if (state.lastSuccess === null) return 'down';
  return state.lastSuccess >= state.lastFailure.time ? 'up' : 'down';
}

/** Merges `patch` into the status; emits an `upstream` event when health changes. Returns the new status. */
export function reportUpstreamStatus(lockbPath: string, patch: Partial<UpstreamStatus>): UpstreamStatus {
  const key = resolve(lockbPath);
  const map = states();
  const before = map.get(key) ?? empty();
  const next: UpstreamStatus = { ...before, ...patch };
  map.set(key, next);
  const was = healthOf(before);
  const now = healthOf(next);
  if (now !== was && now !== 'unknown') {
    const time = now === 'up' ? (next.lastSuccess ?? Date.now()) : (next.lastFailure?.time ?? Date.now());
    registryEvents(lockbPath).emit({ kind: 'upstream', time, detail: now === 'up' ? 'up' : `down: ${next.lastFailure?.error ?? ''}` });
  }
  return upstreamStatus(lockbPath);
}
