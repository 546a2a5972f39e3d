/**
 * The one lock of the repository: exclusive sections per key, real across processes.
 *
 * Layout (the same for every user): a lock is the directory `<target>.lock` (mkdir is atomic on
 * every local file system and refuses an existing name) plus an owner file `<target>.owner`
 * (`host\npid\n`) written right after it; release removes the owner file, then the directory.
 *   - `KeyedLock`: per-key locks under one folder (`<folder>/<encoded key>.lock`), with an
 *     in-process FIFO per key in front of the cross-process lock, so a process never contends
 *     with itself on the file system (the storage plugin's packages, `.verdaccio-db`);
 *   - `withFileLock(path)` / `withFileLockSync(path)`: the lock of one file (`<path>.lock`,
 *     `registry.lockb` and its config bytes), for the server and the one-shot CLI commands.
 *
 * Staleness without a heartbeat per acquisition (what proper-lockfile did: an mtime refresh timer,
 * async mkdir/stat/utimes — about a third of a millisecond of main-thread work per lock):
 *   - a holder on this host is dead when its pid is gone (`kill(pid, 0)` → ESRCH), or when the pid
 *     is this very process but this process holds no such lock (a restarted registry that got its
 *     old pid back, e.g. pid 1 in a container): taken over at once;
 *   - a holder on another host (shared volume) cannot be asked: its lock is stale once the lock
 *     directory is older than `staleMs`; a holder refreshes that mtime only when it holds the lock
 *     longer than `staleMs / 3` (one unref'd timer, never armed in the common microsecond case);
 *   - without an owner file (taken, owner not yet written — or the writer died in between) the
 *     directory's age decides.
 * Taking over is done under a break lock (`<target>.break`, mkdir again): the waiter re-reads the
 * owner under it, removes the stale lock, takes the lock and writes its owner before letting go,
 * so two waiters can never both remove a lock and both take it. A break lock is a few synchronous
 * syscalls long; one older than BREAK_STALE_MS belonged to a process killed inside it.
 *
 * KeyedLock's acquisition and release run on the thread pool (a contended journal never blocks the
 * event loop); `withFileLockSync` blocks, for one-shot CLI commands. Waiting never degrades into "go on unlocked": after `timeoutMs` the caller gets
 * ERR_LOCK_TIMEOUT (or the error `timeoutError` makes) and changes nothing. Every error path gives
 * the lock back (also when the owner file cannot be written on a full or read-only disk).
 */
import { existsSync, mkdirSync, readFileSync, rmdirSync, statSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { realpathSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { RegistryCoreError } from './errors';

/**
 * node:fs/promises and node:os are required when a lock is first taken, not at load: this module is
 * on the path of `registry config get` (≤ 1.3× `node -e 0`), which takes no lock.
 */
const fsp = (): typeof import('node:fs/promises') => require('node:fs/promises') as typeof import('node:fs/promises');
let cachedHost: string | undefined;
const lockHost = (): string => (cachedHost ??= (require('node:os') as typeof import('node:os')).hostname());
const BREAK_STALE_MS = 2_000;
const FILE_LOCK_STALE_MS = 5_000;
const FILE_LOCK_TIMEOUT_MS = 10_000;

function errnoOf(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null ? ((error as { code?: unknown }).code as string | undefined) : undefined;
}

/** Whether a process with this pid still exists on this host (EPERM means it does). */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return errnoOf(error) !== 'ESRCH';
  }
}

interface LockPaths {
  lockDir: string;
  owner: string;
  breaker: string;
}

function pathsOf(target: string): LockPaths {
  return { lockDir: `${target}.lock`, owner: `${target}.owner`, breaker: `${target}.break` };
}

/** Lock directories this process holds right now (so "my own pid" can be told from a predecessor's). */
const heldHere = new Set<string>();

/** Age of a path in ms, null when it is gone. */
function ageMs(path: string): number | null {
  const info = statSync(path, { throwIfNoEntry: false });
  return info ? Date.now() - info.mtimeMs : null;
}

/** The owner file says a live holder (or nothing readable yet): false only for a provably dead one. */
function ownerDead(paths: LockPaths, staleMs: number): boolean {
  let text: string | null = null;
  try {
    text = readFileSync(paths.owner, 'utf8');
  } catch {
    text = null;
  }
  const [host, pidText] = text === null ? [] : text.split('\n');
  if (host === lockHost() && pidText !== undefined && pidText !== '') {
    const pid = Number(pidText);
    if (pid === process.pid) return !heldHere.has(paths.lockDir);
    return !pidAlive(pid);
  }
  // another host, or no owner yet: only the directory's age can tell
  const age = ageMs(paths.lockDir);
  return age !== null && age > staleMs;
}

type Attempt = { ok: true; release: () => void | Promise<void> } | { ok: false };

/** Takes the lock directory and writes the owner file, or gives the directory back on failure. */
function take(paths: LockPaths, staleMs: number, onCompromised?: (error: Error) => void): Attempt {
  try {
    mkdirSync(paths.lockDir);
  } catch (error) {
    if (errnoOf(error) === 'EEXIST') return { ok: false };
    throw error;
  }
  heldHere.add(paths.lockDir);
  try {
    writeFileSync(paths.owner, `${lockHost()}\n${process.pid}\n`);
  } catch (error) {
    // a full or read-only disk (ENOSPC, EROFS) fails here with the lock already taken: give it back
    heldHere.delete(paths.lockDir);
    try {
      rmdirSync(paths.lockDir);
    } catch {
      // nothing more to give back
    }
    throw error;
  }
  return held(paths, staleMs, onCompromised, () => {
    try {
      unlinkSync(paths.owner);
    } catch {
      // already removed by a takeover
    }
    try {
      rmdirSync(paths.lockDir);
    } catch {
      // already removed by a takeover
    }
  });
}

/** A taken lock: its mtime refreshed while held longer than staleMs / 3, and its release (once). */
function held(paths: LockPaths, staleMs: number, onCompromised: ((error: Error) => void) | undefined, remove: () => void | Promise<void>): Attempt {
  let refresher: NodeJS.Timeout | undefined;
  const refresh = (): void => {
    try {
      const now = new Date();
      utimesSync(paths.lockDir, now, now);
    } catch (error) {
      // taken over as stale (we held it longer than staleMs without refreshing: a frozen process)
      onCompromised?.(error as Error);
      return;
    }
    refresher = setTimeout(refresh, staleMs / 3);
    refresher.unref();
  };
  refresher = setTimeout(refresh, staleMs / 3);
  refresher.unref();
  let released = false;
  return {
    ok: true,
    release: () => {
      if (released) return undefined;
      released = true;
      clearTimeout(refresher);
      heldHere.delete(paths.lockDir);
      return remove();
    },
  };
}

/**
 * One try: the lock, or — when its holder is provably dead — a takeover under the break lock.
 * `contended` is set whenever someone else's lock was found.
 */
function tryLock(paths: LockPaths, staleMs: number, report: { contended: boolean }, onCompromised?: (error: Error) => void): Attempt {
  const first = take(paths, staleMs, onCompromised);
  if (first.ok) return first;
  report.contended = true;
  if (!ownerDead(paths, staleMs)) return { ok: false };
  return breakAndTake(paths, staleMs, onCompromised);
}

/** Removes a provably dead holder's lock and takes it, under the break lock; { ok: false } when someone else is at it. */
function breakAndTake(paths: LockPaths, staleMs: number, onCompromised?: (error: Error) => void): Attempt {
  try {
    mkdirSync(paths.breaker);
  } catch (error) {
    if (errnoOf(error) !== 'EEXIST') throw error;
    const age = ageMs(paths.breaker);
    if (age !== null && age > BREAK_STALE_MS) {
      try {
        rmdirSync(paths.breaker); // its maker died inside the break; the next try breaks again
      } catch {
        // someone else removed it
      }
    }
    return { ok: false };
  }
  try {
    // under the break lock nobody else removes or takes over: look again, then replace
    if (existsSync(paths.lockDir) && !ownerDead(paths, staleMs)) return { ok: false };
    try {
      unlinkSync(paths.owner);
    } catch {
      // no owner file (its holder died before writing it)
    }
    try {
      rmdirSync(paths.lockDir);
    } catch (error) {
      if (errnoOf(error) !== 'ENOENT') throw error;
    }
    return take(paths, staleMs, onCompromised);
  } finally {
    try {
      rmdirSync(paths.breaker);
    } catch {
      // removed as stale meanwhile (we were frozen for BREAK_STALE_MS)
    }
  }
}

/** `take`, with the syscalls on the thread pool: a contended file-system journal never blocks the event loop. */
async function takeAsync(paths: LockPaths, staleMs: number, onCompromised?: (error: Error) => void): Promise<Attempt> {
  try {
    await fsp().mkdir(paths.lockDir);
  } catch (error) {
    if (errnoOf(error) === 'EEXIST') return { ok: false };
    throw error;
  }
  heldHere.add(paths.lockDir);
  try {
    await fsp().writeFile(paths.owner, `${lockHost()}\n${process.pid}\n`);
  } catch (error) {
    heldHere.delete(paths.lockDir);
    await fsp().rmdir(paths.lockDir).catch(() => undefined);
    throw error;
  }
  return held(paths, staleMs, onCompromised, async () => {
    await fsp().unlink(paths.owner).catch(() => undefined);
    await fsp().rmdir(paths.lockDir).catch(() => undefined);
  });
}

async function tryLockAsync(paths: LockPaths, staleMs: number, report: { contended: boolean }, onCompromised?: (error: Error) => void): Promise<Attempt> {
  const first = await takeAsync(paths, staleMs, onCompromised);
  if (first.ok) return first;
  report.contended = true;
  if (!ownerDead(paths, staleMs)) return { ok: false };
  // the takeover is rare and short: the synchronous one (the break lock held for a few syscalls)
  return breakAndTake(paths, staleMs, onCompromised);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export interface LockOptions {
  /** Give up (ERR_LOCK_TIMEOUT, nothing changed) after this long. */
  timeoutMs?: number;
  /** A lock of another host not refreshed for this long is considered abandoned. */
  staleMs?: number;
  /**
   * Called once the lock is held after the acquisition had to wait (another holder in this
   * process, or a lock directory of another process): the DEBUG log and the lock-wait metrics.
   */
  onWait?: (key: string, waitedMs: number) => void;
  /** Called when a held lock was found taken over by someone else (a frozen holder, a clock jump). */
  onCompromised?: (key: string, error: Error) => void;
  /** Keep the cross-process lock until the next event-loop turn for this process's next holder (see KeyedLock.park). */
  handOff?: boolean;
  /** The error a timeout raises (callers with their own error type); default RegistryCoreError ERR_LOCK_TIMEOUT. */
  timeoutError?: (key: string, timeoutMs: number) => Error;
}

function defaultTimeoutError(key: string, timeoutMs: number): Error {
  return new RegistryCoreError('ERR_LOCK_TIMEOUT', `could not lock ${key} within ${timeoutMs} ms (another write is in progress); nothing was changed, retry`);
}

export class KeyedLock {
  readonly directory: string;
  private readonly timeoutMs: number;
  private readonly staleMs: number;
  private readonly onWait: ((key: string, waitedMs: number) => void) | undefined;
  private readonly makeTimeoutError: (key: string, timeoutMs: number) => Error;
  private readonly onCompromised: ((key: string, error: Error) => void) | undefined;
  /** Tail of the in-process FIFO per key; resolves when the last queued holder is done. */
  private readonly tails = new Map<string, Promise<void>>();
  private readonly handOff: boolean;
  /** Cross-process locks parked for the next holder of this process (see park). */
  private readonly lingering = new Map<string, { release: () => void | Promise<void>; timer: NodeJS.Immediate }>();

  constructor(directory: string, options: LockOptions = {}) {
    this.directory = directory;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.staleMs = Math.max(options.staleMs ?? 10_000, 2_000);
    this.onWait = options.onWait;
    this.makeTimeoutError = options.timeoutError ?? defaultTimeoutError;
    this.onCompromised = options.onCompromised;
    this.handOff = options.handOff ?? false;
    if (!existsSync(directory)) mkdirSync(directory, { recursive: true });
  }

  /** Runs fn while holding the lock for key, in this process and against other processes. */
  async withLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const started = performance.now();
    const deadline = Date.now() + this.timeoutMs;
    const queued = this.tails.get(key);
    let releaseLocal!: () => void;
    const mine = new Promise<void>((resolve) => (releaseLocal = resolve));
    // Successors wait for our predecessors AND for us, so leaving early on a timeout keeps order.
    const tail = queued === undefined ? mine : queued.then(() => mine);
    this.tails.set(key, tail);
    try {
      if (queued !== undefined) await this.waitLocal(key, queued, deadline);
      const shared = { contended: false };
      const releaseShared = this.reuse(key) ?? (await this.acquireShared(key, deadline, shared));
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
        await this.park(key, releaseShared);
      }
    } finally {
      releaseLocal();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }

  /**
   * With `handOff`, the cross-process lock outlives its section until the event loop's next turn
   * (setImmediate): a holder of this process that comes next — the in-process queue's next
   * waiter, or the next step of the same request (Verdaccio's publish runs three read-modify-writes
   * back to back) — takes it over without a mkdir/rmdir pair. Exclusion is unchanged (the lock is
   * held the whole time); other processes wait at most that one turn longer.
   */
  private async park(key: string, release: () => void | Promise<void>): Promise<void> {
    if (!this.handOff) {
      await release();
      return;
    }
    const entry = { release, timer: setImmediate(() => {
      if (this.lingering.get(key) !== entry) return;
      this.lingering.delete(key);
      void Promise.resolve(release()).catch(() => undefined);
    }) };
    this.lingering.set(key, entry);
  }

  /** Whether a holder of this process has key, waits for it or keeps it parked. */
  busy(key: string): boolean {
    return this.tails.has(key) || this.lingering.has(key);
  }

  /** The parked lock of key, if it is still ours on disk (its directory may have been removed under us). */
  private reuse(key: string): (() => void | Promise<void>) | null {
    const entry = this.lingering.get(key);
    if (!entry) return null;
    this.lingering.delete(key);
    clearImmediate(entry.timer);
    const lockDir = pathsOf(this.targetOf(key)).lockDir;
    if (heldHere.has(lockDir) && existsSync(lockDir)) return entry.release;
    void Promise.resolve(entry.release()).catch(() => undefined);
    return null;
  }

  private async waitLocal(key: string, previous: Promise<void>, deadline: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), Math.max(0, deadline - Date.now()));
    });
    try {
      const outcome = await Promise.race([previous.then(() => 'ok' as const), timeout]);
      if (outcome === 'timeout') throw this.makeTimeoutError(key, this.timeoutMs);
    } finally {
      clearTimeout(timer);
    }
  }

  /** The lock's target path for key: `<target>.lock`, `<target>.owner`. */
  protected targetOf(key: string): string {
    // encodeURIComponent keeps '@scope/name' a single, reversible file name without '/'
    return join(this.directory, encodeURIComponent(key));
  }

  private async acquireShared(key: string, deadline: number, report: { contended: boolean }): Promise<() => void | Promise<void>> {
    const paths = pathsOf(this.targetOf(key));
    let pause = 1;
    let recreated = false;
    for (;;) {
      let attempt: Attempt;
      try {
        const observer = this.onCompromised;
        attempt = await tryLockAsync(paths, this.staleMs, report, observer && ((error) => observer(key, error)));
      } catch (error) {
        if (errnoOf(error) === 'ENOENT' && !recreated) {
          // the locks folder was removed while running: make it again rather than fail every write
          recreated = true;
          await fsp().mkdir(this.directory, { recursive: true });
          continue;
        }
        throw error;
      }
      if (attempt.ok) return attempt.release;
      if (Date.now() >= deadline) throw this.makeTimeoutError(key, this.timeoutMs);
      await sleep(pause + Math.random() * pause);
      pause = Math.min(pause * 2, 20);
    }
  }
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

function fileLockTimeout(path: string): RegistryCoreError {
  return new RegistryCoreError('ERR_LOCK_TIMEOUT', `could not lock ${path} (another process holds ${path}.lock)`, {
    hint: `if no registry process or config command is running, remove the directory ${path}.lock and the file ${path}.owner`,
  });
}

/** The locks of files of one folder: the key is the file name itself (`<path>.lock`, as `withFileLockSync` takes it). */
class FileLocks extends KeyedLock {
  protected override targetOf(key: string): string {
    return join(this.directory, key);
  }
}

/** The in-process queue of each folder's locked files (one process never contends with itself). */
const fileLocks = new Map<string, FileLocks>();

/**
 * Runs `critical` (synchronous) while holding the lock on `path` (`<path>.lock`), in this process
 * and against other processes; ERR_LOCK_TIMEOUT after ~10 s, never a silent proceed.
 */
export async function withFileLock<T>(path: string, critical: () => T): Promise<T> {
  const folder = dirname(path);
  let lock = fileLocks.get(folder);
  if (!lock) {
    lock = new FileLocks(folder, { timeoutMs: FILE_LOCK_TIMEOUT_MS, staleMs: FILE_LOCK_STALE_MS, timeoutError: (name) => fileLockTimeout(join(folder, name)) });
    fileLocks.set(folder, lock);
  }
  return lock.withLock(basename(path), async () => critical());
}

/** A file lock taken by holdFileLock: held until release() (which resolves once it is given back). */
export interface FileLockHold {
  release(): Promise<void>;
}

/**
 * The lock of `path` (the same one withFileLock takes), held until the caller releases it: for a
 * caller that takes it ahead of time so the acquisition overlaps other work (the index append of
 * a publish, taken while the packument is written). Rejects when it cannot be taken.
 */
export function holdFileLock(path: string): Promise<FileLockHold> {
  return new Promise<FileLockHold>((resolveHeld, reject) => {
    let finish!: () => void;
    const finished = new Promise<void>((resolve) => (finish = resolve));
    let held = false;
    // the section's critical returns `finished`: withFileLock holds the lock until it settles
    const section: Promise<void> = withFileLock(path, () => {
      held = true;
      resolveHeld({ release: () => (finish(), section) });
      return finished;
    }).then(() => undefined);
    section.catch((error: unknown) => {
      if (!held) reject(error);
    });
  });
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** Synchronous variant for CLI-style one-shot operations (repair, rebuild-index). Blocks the thread while waiting. */
export function withFileLockSync<T>(path: string, critical: () => T): T {
  // an asynchronous holder of this process (withFileLock) cannot finish while this thread waits:
  // waiting would stall the event loop for the whole timeout, so it is refused at once
  if (fileLocks.get(dirname(path))?.busy(basename(path))) {
    throw new RegistryCoreError('ERR_LOCK_TIMEOUT', `could not lock ${path}: this process is writing it right now; nothing was changed, retry`);
  }
  const paths = pathsOf(path);
  const deadline = Date.now() + FILE_LOCK_TIMEOUT_MS;
  let delay = 1;
  let attempt: Attempt;
  for (;;) {
    attempt = tryLock(paths, FILE_LOCK_STALE_MS, { contended: false });
    if (attempt.ok) break;
    if (Date.now() >= deadline) throw fileLockTimeout(path);
    Atomics.wait(sleeper, 0, 0, delay);
    delay = Math.min(delay * 2, 20);
  }
  try {
    return critical();
  } finally {
    attempt.release();
  }
}
