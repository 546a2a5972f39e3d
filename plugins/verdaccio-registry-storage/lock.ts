/**
 * A per-key lock that really excludes: an in-process FIFO mutex (so one process never races
 * itself) plus a cross-process lock directory under `<storage>/.locks/` (proper-lockfile:
 * atomic mkdir, mtime refreshed while held, stale after `staleMs`).
 *
 * Unlike Verdaccio's legacy lock, waiting never degrades into "go on unlocked": after
 * `timeoutMs` the caller gets ERR_LOCK_TIMEOUT and changes nothing.
 *
 * A holder killed with SIGKILL leaves its lock directory behind. Waiting `staleMs` for it would
 * stall every publish after a crash, so each holder also writes an owner file
 * (`<lock>.owner`: host, pid); a waiter on the same host that finds the owner's pid dead ages the
 * lock directory so proper-lockfile treats it as stale at once. The owner file is removed before
 * the lock is released, so an owner file always belongs to the current (or a dead) holder.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { mkdir, readFile, unlink, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import * as lockfile from 'proper-lockfile';
import { StorageError, isErrno } from './errors';

export interface LockOptions {
  /** Give up (ERR_LOCK_TIMEOUT, nothing changed) after this long. */
  timeoutMs?: number;
  /** A lock directory not refreshed for this long is considered abandoned. */
  staleMs?: number;
  /** Called when a held lock was taken over by someone else (clock jump, frozen process). */
  onCompromised?: (key: string, error: Error) => void;
  /**
   * Called once the lock is held after the acquisition had to wait (another holder in this
   * process, or a lock directory of another process): the DEBUG log and the lock-wait metrics.
   */
  onWait?: (key: string, waitedMs: number) => void;
}

const HOST = hostname();

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Whether a process with this pid still exists on this host (EPERM means it does). */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return !isErrno(error, 'ESRCH');
  }
}

export class KeyedLock {
  readonly directory: string;
  private readonly timeoutMs: number;
  private readonly staleMs: number;
  private readonly onCompromised: (key: string, error: Error) => void;
  private readonly onWait: ((key: string, waitedMs: number) => void) | undefined;
  /** Tail of the in-process FIFO per key; resolves when the last queued holder is done. */
  private readonly tails = new Map<string, Promise<void>>();

  constructor(directory: string, options: LockOptions = {}) {
    this.directory = directory;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.staleMs = Math.max(options.staleMs ?? 10_000, 2_000);
    this.onCompromised = options.onCompromised ?? (() => undefined);
    this.onWait = options.onWait;
    if (!existsSync(directory)) mkdirSync(directory, { recursive: true });
  }

  /** Runs fn while holding the lock for key, in this process and against other processes. */
  async withLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const started = performance.now();
    const deadline = Date.now() + this.timeoutMs;
    const queued = this.tails.get(key);
    const previous = queued ?? Promise.resolve();
    let releaseLocal!: () => void;
    const mine = new Promise<void>((resolve) => (releaseLocal = resolve));
    // Successors wait for our predecessors AND for us, so leaving early on a timeout keeps order.
    const tail = previous.then(() => mine);
    this.tails.set(key, tail);
    try {
      await this.waitLocal(key, previous, deadline);
      const shared = { contended: false };
      const releaseShared = await this.acquireShared(key, deadline, shared);
      if ((queued !== undefined || shared.contended) && this.onWait) {
        try {
          this.onWait(key, performance.now() - started);
        } catch {
          // an observer must never fail the write it observes
        }
      }
      try {
        return await fn();
      } finally {
        await releaseShared();
      }
    } finally {
      releaseLocal();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }

  private async waitLocal(key: string, previous: Promise<void>, deadline: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), Math.max(0, deadline - Date.now()));
    });
    try {
      const outcome = await Promise.race([previous.then(() => 'ok' as const), timeout]);
      if (outcome === 'timeout') throw this.timeoutError(key);
    } finally {
      clearTimeout(timer);
    }
  }

  private timeoutError(key: string): StorageError {
    return new StorageError('ERR_LOCK_TIMEOUT', `could not lock ${key} within ${this.timeoutMs} ms (another write is in progress); nothing was changed, retry`);
  }

  private paths(key: string): { target: string; lockDir: string; owner: string } {
    // encodeURIComponent keeps '@scope/name' a single, reversible file name without '/'
    const target = join(this.directory, encodeURIComponent(key));
    return { target, lockDir: `${target}.lock`, owner: `${target}.owner` };
  }

  private async acquireShared(key: string, deadline: number, report: { contended: boolean }): Promise<() => Promise<void>> {
    const { target, lockDir, owner } = this.paths(key);
    let pause = 2;
    let recreated = false;
    for (;;) {
      try {
        const release = await lockfile.lock(target, {
          lockfilePath: lockDir,
          realpath: false,
          stale: this.staleMs,
          retries: 0,
          onCompromised: (error) => this.onCompromised(key, error),
        });
        const releaseAll = async (): Promise<void> => {
          await unlink(owner).catch(() => undefined);
          await release().catch(() => undefined);
        };
        try {
          await writeFile(owner, `${HOST}\n${process.pid}\n`);
        } catch (error) {
          // a full or read-only disk (ENOSPC, EROFS) fails here with the lock already taken:
          // give it back, or this key stays locked (refreshed by us) until the process ends
          await releaseAll();
          throw error;
        }
        return releaseAll;
      } catch (error) {
        if (isErrno(error, 'ENOENT') && !recreated) {
          // the locks folder was removed while running: make it again rather than fail every write
          recreated = true;
          await mkdir(this.directory, { recursive: true });
          continue;
        }
        if (!isErrno(error, 'ELOCKED')) throw error;
        report.contended = true;
      }
      if (await this.ageLockOfDeadOwner(lockDir, owner)) continue;
      if (Date.now() >= deadline) throw this.timeoutError(key);
      await sleep(pause + Math.random() * pause);
      pause = Math.min(pause * 2, 50);
    }
  }

  /** True when the holder was a dead process on this host and its lock is now stale. */
  private async ageLockOfDeadOwner(lockDir: string, owner: string): Promise<boolean> {
    let text: string;
    try {
      text = await readFile(owner, 'utf8');
    } catch {
      return false; // no owner yet (just acquired) or already released
    }
    const [host, pidText] = text.split('\n');
    if (host !== HOST || pidAlive(Number(pidText))) return false;
    try {
      await unlink(owner);
      const past = new Date(Date.now() - this.staleMs * 10);
      await utimes(lockDir, past, past);
      return true;
    } catch {
      return false; // someone else cleaned it up first
    }
  }
}
