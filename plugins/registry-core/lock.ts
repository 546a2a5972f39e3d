/**
 * Cross-process lock around read-modify-write of registry.lockb.
 *
 * Why proper-lockfile (a `<file>.lock` directory created with mkdir, kept fresh by touching its
 * mtime) rather than an O_EXCL pid file: mkdir is atomic on every local file system, staleness is
 * decided by a heartbeat instead of a pid that may have been reused (or belongs to another
 * container sharing the volume), and it is already a dependency. A holder that dies leaves a lock
 * that is taken over after STALE_MS. The critical sections here are a few syscalls long, so the
 * retry schedule is short and bounded in total time (ERR_LOCK_TIMEOUT, never a silent proceed).
 */
import type * as ProperLockfile from 'proper-lockfile';
import { realpathSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { RegistryCoreError } from './errors';

let loaded: typeof ProperLockfile | undefined;
/**
 * proper-lockfile (and graceful-fs under it) is loaded on the first lock, not at import: a
 * read-only command (`registry config get`) never locks, and the load is ~9 ms of its start-up.
 */
function lockfile(): typeof ProperLockfile {
  loaded ??= require('proper-lockfile') as typeof ProperLockfile;
  return loaded;
}

const STALE_MS = 5_000;
/** Total wait before giving up ≈ RETRIES × average delay (~10 s). */
const RETRY = { retries: 1_000, factor: 1.2, minTimeout: 1, maxTimeout: 20, randomize: true } as const;
const SYNC_TIMEOUT_MS = 10_000;

function lockTimeout(path: string, cause: unknown): RegistryCoreError {
  return new RegistryCoreError('ERR_LOCK_TIMEOUT', `could not lock ${path} (another process holds ${path}.lock)`, {
    hint: `if no registry process or config command is running, remove the directory ${path}.lock`,
    cause,
  });
}

function isLocked(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === 'ELOCKED';
}

/**
 * The path a state file's writers lock (its lock directory is `<key>.lock`): the file's real
 * folder + its name, so every spelling of one file shares one lock. The token store and the
 * htpasswd writer lock by it; `registry backup` takes the same lock while it copies the file.
 * The folder must exist.
 */
export function fileLockKey(file: string): string {
  const absolute = resolve(file);
  return join(realpathSync(dirname(absolute)), basename(absolute));
}

/** Runs `critical` while holding the lock on `path` (which must exist and be a real path). */
export async function withFileLock<T>(path: string, critical: () => T): Promise<T> {
  let compromised: Error | undefined;
  let release: () => Promise<void>;
  try {
    release = await lockfile().lock(path, {
      realpath: false,
      stale: STALE_MS,
      retries: RETRY,
      onCompromised: (error) => {
        compromised = error;
      },
    });
  } catch (error) {
    if (isLocked(error)) throw lockTimeout(path, error);
    throw error;
  }
  try {
    const result = critical();
    if (compromised) throw lockTimeout(path, compromised);
    return result;
  } finally {
    await release().catch(() => undefined); // already released by a stale takeover: nothing left to undo
  }
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** Synchronous variant for CLI-style one-shot operations (repair, rebuild-index). Blocks the thread while waiting. */
export function withFileLockSync<T>(path: string, critical: () => T): T {
  const deadline = Date.now() + SYNC_TIMEOUT_MS;
  let delay = 1;
  let release: () => void;
  for (;;) {
    try {
      release = lockfile().lockSync(path, { realpath: false, stale: STALE_MS, onCompromised: () => undefined });
      break;
    } catch (error) {
      if (!isLocked(error)) throw error;
      if (Date.now() >= deadline) throw lockTimeout(path, error);
      Atomics.wait(sleeper, 0, 0, delay);
      delay = Math.min(delay * 2, 20);
    }
  }
  try {
    return critical();
  } finally {
    try {
      release();
    } catch {
      // lock taken over as stale meanwhile: nothing left to release
    }
  }
}
