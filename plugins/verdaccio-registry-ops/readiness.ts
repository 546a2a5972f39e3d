/**
 * The checks of `GET /-/ready` this part owns: storage writable (a real temp-file write in the
 * storage folder, at most once a second), keys loaded (the auth plugin registered its token
 * verifier, which it does once its keys are loaded), config ok (registry.lockb's header reads and
 * its check byte verifies). Other parts register theirs through the core (`registerReadyCheck`);
 * `upstream` is what the storage part reports it proxies (core upstream-status), else what
 * config.yaml says — never probed here and never a failure: a local-first registry serves its own
 * packages without it. docs/operations.md.
 */
import { randomBytes } from 'node:crypto';
import { open, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { fileSystemFailure, inspectConfigFile, upstreamStatus, type ReadyCheckResult } from '../registry-core/index';
import { hasTokenVerifier } from '../registry-core/token-verifier';

/** The storage plugin's temp prefix: it sweeps `.tmp-<pid>-…` files a killed process left behind. */
const TEMP_PREFIX = '.tmp-';
export const STORAGE_CHECK_TTL_MS = 1000;

function errnoText(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  const failure = fileSystemFailure(error);
  return `not writable (${failure ? failure.message : 'error'}${typeof code === 'string' ? `, ${code}` : ''})`;
}

/** Writes, fsyncs and removes a small file in `storageDir`. */
export async function probeStorage(storageDir: string): Promise<ReadyCheckResult> {
  const path = join(storageDir, `${TEMP_PREFIX}${process.pid}-ready-${randomBytes(6).toString('hex')}`);
  let written = false;
  try {
    const handle = await open(path, 'wx', 0o600);
    written = true;
    try {
      await handle.writeFile('ready\n');
      await handle.datasync();
    } finally {
      await handle.close();
    }
    return { ok: true, state: 'writable' };
  } catch (error) {
    return { ok: false, state: errnoText(error) };
  } finally {
    if (written) await unlink(path).catch(() => undefined);
  }
}

/** probeStorage, its answer reused for `ttlMs` (and one probe in flight at a time). */
export function cachedStorageCheck(storageDir: string, now: () => number = Date.now, ttlMs = STORAGE_CHECK_TTL_MS): () => Promise<ReadyCheckResult> {
  let last: { at: number; result: Promise<ReadyCheckResult> } | null = null;
  return () => {
    const at = now();
    if (last === null || at - last.at >= ttlMs) last = { at, result: probeStorage(storageDir) };
    return last.result;
  };
}

export function keysCheck(lockbPath: string): ReadyCheckResult {
  return hasTokenVerifier(lockbPath) ? { ok: true, state: 'loaded' } : { ok: false, state: 'not loaded (the auth plugin has not registered its token verifier)' };
}

export function configCheck(lockbPath: string): ReadyCheckResult {
  const inspected = inspectConfigFile(lockbPath);
  return inspected.ok ? { ok: true, state: 'ok' } : { ok: false, state: `${inspected.error.code}: ${inspected.error.message.replace(lockbPath, 'registry.lockb')}` };
}

/**
 * The upstream as the storage part reports it (core upstream-status: the URL it resolved — from
 * REGISTRY_UPSTREAM_URL, config.yaml or the user's npm — and its last outcome), else what
 * config.yaml says. Never a failure: a local-first registry serves what it holds with the upstream
 * down, so a balancer must not drop the node for it.
 */
export function upstreamCheck(lockbPath: string, uplinks: unknown, now: number = Date.now()): ReadyCheckResult {
  const status = upstreamStatus(lockbPath);
  if (status.url === null) return upstreamFromConfig(uplinks);
  if (status.offline) return { ok: true, state: `OFFLINE (${status.url} not contacted)` };
  const failedLast = status.lastFailure !== null && (status.lastSuccess === null || status.lastFailure.time > status.lastSuccess);
  if (failedLast && status.lastFailure) return { ok: true, state: `proxying ${status.url}; last request failed ${Math.round((now - status.lastFailure.time) / 1000)} s ago: ${status.lastFailure.error}` };
  if (status.lastSuccess !== null) return { ok: true, state: `proxying ${status.url}; last answer ${Math.round((now - status.lastSuccess) / 1000)} s ago` };
  return { ok: true, state: `proxying ${status.url}; not contacted yet` };
}

/** What config.yaml says about the upstream, when no part registered a live `upstream` check. */
export function upstreamFromConfig(uplinks: unknown): ReadyCheckResult {
  const names = typeof uplinks === 'object' && uplinks !== null ? Object.keys(uplinks) : [];
  return { ok: true, state: names.length === 0 ? 'not configured' : `configured (${names.join(', ')}), not probed` };
}

/**
 * The `notifications` check (PostgreSQL backend, docs/cluster.md): the node's LISTEN connection is
 * up. Without it the node would not hear other nodes' changes (config, revocations, packages) at
 * once, so the balancer drops it until it has reconnected; the storage part's `database` check
 * probes the database itself.
 */
export function notificationsCheck(listen: () => { listening: boolean; error: string | null; reconnects: number }): ReadyCheckResult {
  const status = listen();
  if (status.listening) return { ok: true, state: `listening (connections made: ${status.reconnects})` };
  return { ok: false, state: `not listening (${status.error ?? 'reconnecting'})` };
}
