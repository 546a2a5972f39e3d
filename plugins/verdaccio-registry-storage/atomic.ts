/**
 * Durable file primitives. A reader sees either the old or the new content, never a half
 * written file: data goes to a temp file in the same folder, is fsynced, then renamed (or
 * hard-linked) into place, and the folder is fsynced so the new name survives a power cut.
 *
 * Temp names start with `.tmp-<pid>-`: no package or tarball name can start with a dot, so a
 * temp file can never be served, and the pid lets start-up sweep temps of dead processes.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, unlink } from 'node:fs/promises';
import { readdirSync, statSync, unlinkSync, type BigIntStats } from 'node:fs';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { isErrno } from './errors';
import { pidAlive } from './lock';

export const TEMP_PREFIX = '.tmp-';

export function tempPathFor(finalPath: string): string {
  return join(dirname(finalPath), `${TEMP_PREFIX}${process.pid}-${randomBytes(6).toString('hex')}-${basename(finalPath)}`);
}

/** Per folder: the fsync running now, and the one every later caller waits for (not started yet). */
const dirSyncs = new Map<string, { running: Promise<void>; next: Promise<void> | null }>();

/**
 * Makes the folder's entries durable. Callers that ask while an fsync of the same folder runs
 * share the next one: the running one may have started before their change, the next starts
 * after it, so it covers every change made before the call (group commit). Concurrent new
 * packages of one scope, or `.verdaccio-db.json` rewrites in the storage root, then cost about
 * two fsyncs of that folder instead of one each, and nobody waits for more than two.
 */
export function fsyncDir(dir: string): Promise<void> {
  const slot = dirSyncs.get(dir);
  if (slot === undefined) return startDirSync(dir);
  const ignore = (): void => undefined;
  slot.next ??= slot.running.then(ignore, ignore).then(() => startDirSync(dir));
  return slot.next;
}

function startDirSync(dir: string): Promise<void> {
  const running = syncDirNow(dir);
  const slot = { running, next: null as Promise<void> | null };
  dirSyncs.set(dir, slot);
  const done = (): void => {
    if (dirSyncs.get(dir) === slot && slot.next === null) dirSyncs.delete(dir);
  };
  running.then(done, done);
  return running;
}

async function syncDirNow(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * mkdir -p below root, fsyncing the parent of every folder it creates (a new folder entry is
 * only durable once its parent is synced). Resolves true only when this call's mkdir made `dir` itself (so
 * nothing was in it before this call: the caller's "does the file already exist?" probe has its
 * answer without a syscall), false otherwise.
 */
export async function ensureDir(root: string, dir: string): Promise<boolean> {
  // the common case (every publish of an existing package): one sync stat, no recursive mkdir
  if (statSync(dir, { throwIfNoEntry: false })?.isDirectory()) return false;
  let first: string | undefined;
  try {
    first = await mkdir(dir, { recursive: true });
  } catch (error) {
    throw isErrno(error, 'ENOENT') ? await realMkdirError(root, dir, error) : error;
  }
  if (first === undefined) return false; // another writer made it between the stat and the mkdir
  const created = relative(root, dir).split(sep);
  let current = root;
  const toSync = new Set<string>();
  for (const part of created) {
    const next = join(current, part);
    if (next.length >= first.length) toSync.add(current);
    current = next;
  }
  for (const folder of toSync) await fsyncDir(folder);
  // dir itself came from this mkdir only when it is the first folder made (when an ancestor was,
  // another writer may still have made dir in between and put a file in it)
  return resolve(first) === resolve(dir);
}

/**
 * Node's recursive mkdir reports ENOENT for any failure on the way (a read-only file system
 * included): one plain mkdir of the first missing folder tells the real cause (EROFS, EACCES…).
 */
async function realMkdirError(root: string, dir: string, original: unknown): Promise<unknown> {
  let current = root;
  for (const part of relative(root, dir).split(sep)) {
    current = join(current, part);
    try {
      await mkdir(current);
    } catch (error) {
      if (isErrno(error, 'EEXIST')) continue;
      return error;
    }
  }
  return original;
}

/**
 * Atomically replaces path with data (temp + fsync + rename + fsync of the folder). Returns the
 * file's stat as written (rename keeps inode, size and mtime): the exact version stamp of what is
 * now at path, with no window in which another writer's file could be stat'ed instead.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<BigIntStats> {
  const temp = tempPathFor(path);
  const handle = await open(temp, 'wx', 0o644);
  let written: BigIntStats;
  try {
    try {
      await handle.writeFile(data);
      await handle.sync();
      written = await handle.stat({ bigint: true });
    } finally {
      await handle.close();
    }
    await rename(temp, path);
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw error;
  }
  await fsyncDir(dirname(path));
  return written;
}

/** Unlinks path and makes the removal durable; false when it was not there. */
export async function unlinkDurable(path: string): Promise<boolean> {
  try {
    await unlink(path);
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return false;
    throw error;
  }
  await fsyncDir(dirname(path));
  return true;
}


/**
 * Whether a `.tmp-<pid>-…` file (or staging folder) is abandoned: its process is gone (on this
 * host) or it is older than maxAgeMs. False when it no longer exists. The start-up sweep and
 * `registry doctor` decide by this one rule.
 */
export function isAbandonedTemp(path: string, maxAgeMs = 3_600_000): boolean {
  const pid = Number(basename(path).slice(TEMP_PREFIX.length).split('-')[0]);
  try {
    if (Date.now() - statSync(path).mtimeMs > maxAgeMs) return true;
  } catch {
    return false;
  }
  return !Number.isInteger(pid) || !pidAlive(pid);
}

/**
 * Lets the start-up sweep pass over package folders whose listing is known not to have changed
 * (verified.ts records each folder's identity when its listing held no temp file).
 */
export interface PackageFolderListing {
  /** true: the package folder `dir` is unchanged since it was last listed clean — not listed now */
  unchanged(dir: string): boolean;
  /** `dir` was listed; `clean`: no temp file of any age or owner in it */
  listed(dir: string, clean: boolean): void;
}

/**
 * Abandoned temp files (isAbandonedTemp) in the storage root, scope folders and package folders:
 * what the start-up sweep removes and `registry doctor` reports.
 */
export function abandonedTempFiles(root: string, maxAgeMs = 3_600_000, folders?: PackageFolderListing): string[] {
  const found: string[] = [];
  const visit = (dir: string, depth: number): void => {
    if (depth === 2 && folders?.unchanged(dir) === true) return;
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    let clean = true;
    for (const entry of entries) {
      const full = join(dir, entry.name);
      if (entry.isFile() && entry.name.startsWith(TEMP_PREFIX)) {
        clean = false;
        if (isAbandonedTemp(full, maxAgeMs)) found.push(full);
      } else if (entry.isDirectory() && depth < 2 && !entry.name.startsWith('.')) {
        visit(full, entry.name.startsWith('@') ? depth + 1 : 2);
      }
    }
    if (depth === 2) folders?.listed(dir, clean);
  };
  visit(root, 0);
  return found;
}

/**
 * Removes temp files left by dead processes (or older than maxAgeMs) in the storage root, scope
 * folders and package folders. Synchronous: runs once in the plugin constructor.
 */
export function sweepTempFiles(root: string, maxAgeMs = 3_600_000, folders?: PackageFolderListing): string[] {
  const removed: string[] = [];
  for (const file of abandonedTempFiles(root, maxAgeMs, folders)) {
    try {
      unlinkSync(file);
      removed.push(file);
    } catch {
      // gone already
    }
  }
  return removed;
}
