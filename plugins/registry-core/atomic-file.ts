import { closeSync, existsSync, fsyncSync, linkSync, openSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/** node:crypto is loaded on the first write: read-only commands (`registry config get`) never pay its load. */
function randomSuffix(): string {
  return (require('node:crypto') as typeof import('node:crypto')).randomBytes(6).toString('hex');
}

/** A durable temp file beside `target` (random name, written, fsynced, closed); removed again on failure. */
function writeDurableTemp(target: string, data: string | Uint8Array, mode: number): string {
  const temp = join(dirname(target), `.${basename(target)}.${randomSuffix()}.tmp`);
  const fd = openSync(temp, 'wx', mode);
  try {
    writeFileSync(fd, data);
    fsyncSync(fd);
  } catch (error) {
    closeSync(fd);
    unlinkSync(temp);
    throw error;
  }
  closeSync(fd);
  return temp;
}

/**
 * Replaces `target` so that a reader (or a crash) sees either the old or the new content, never a
 * mix: temp file in the same folder, fsync, rename, fsync of the folder (the rename itself is only
 * durable once the directory entry is). The temp name is random so two writers never collide.
 * `mode` defaults to the target's current mode, else 0o644.
 */
export function writeFileAtomicSync(target: string, data: string, mode?: number): void {
  const folder = dirname(target);
  const temp = writeDurableTemp(target, data, mode ?? (existsSync(target) ? statSync(target).mode & 0o777 : 0o644));
  try {
    renameSync(temp, target);
  } catch (error) {
    unlinkSync(temp);
    throw error;
  }
  fsyncDirectory(folder);
}

/**
 * Creates `target` with `data` unless it exists — for files that are written once and must never
 * be replaced (registry.lockb's first header, key files): temp file in the same folder, fsync,
 * link(2) (which refuses an existing name), folder fsync. Returns false when another writer's file
 * was already there (it wins, untouched). The one create-once rule of the repository.
 */
export function createFileOnceSync(target: string, data: string | Uint8Array, mode = 0o600): boolean {
  const folder = dirname(target);
  const temp = writeDurableTemp(target, data, mode);
  try {
    linkSync(temp, target);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  } finally {
    unlinkSync(temp);
  }
  fsyncDirectory(folder);
  return true;
}

export function fsyncDirectory(folder: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(folder, 'r');
    fsyncSync(fd);
  } catch {
    // some file systems refuse fsync on a directory; the file itself is already durable
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
