/**
 * File-system failures as a client may see them (issue 11.11): Node's errno messages name the
 * server's paths (`ENOSPC: no space left on device, open '/srv/registry/storage/…'`), so an
 * answer carries a status and a message per errno code instead, and the detail goes to the log.
 * One table for every part that writes files.
 */

export interface FileSystemFailure {
  status: number;
  /** What happened, for the client: no path, no errno text. */
  message: string;
  /** The errno code (ENOSPC…), for logs and tests. */
  code: string;
}

const ANSWERS: Record<string, { status: number; message: string }> = {
  ENOSPC: { status: 507, message: "storage is full: the registry's disk has no space left; nothing was stored — free space and retry" },
  EDQUOT: { status: 507, message: "storage is full: the registry's disk quota is used up; nothing was stored — free space and retry" },
  EFBIG: { status: 507, message: 'file too large for the storage file system; nothing was stored' },
  EROFS: { status: 503, message: 'storage is read-only at the moment; nothing was stored — retry once it is writable' },
  EACCES: { status: 500, message: 'the registry may not write its storage (file permissions); nothing was stored' },
  EPERM: { status: 500, message: 'the registry may not write its storage (file permissions); nothing was stored' },
  ENAMETOOLONG: { status: 400, message: 'name too long for the storage file system (a package file name is at most 255 bytes); nothing was stored' },
  EMFILE: { status: 503, message: 'the registry has too many files open; nothing was stored — retry' },
  ENFILE: { status: 503, message: 'the registry host has too many files open; nothing was stored — retry' },
  EAGAIN: { status: 503, message: 'storage is busy; nothing was stored — retry' },
  EBUSY: { status: 503, message: 'storage is busy; nothing was stored — retry' },
  ENOENT: { status: 500, message: 'part of the storage folder is missing (removed while the registry runs?)' },
  ENOTDIR: { status: 500, message: 'the storage folder is not laid out as expected (a file where a folder should be)' },
  EISDIR: { status: 500, message: 'the storage folder is not laid out as expected (a folder where a file should be)' },
  EIO: { status: 500, message: 'storage input/output error (the disk reports a failure)' },
};

/** The client-facing answer for an errno error (anything with a string `code` like `ENOSPC`), or null. */
export function fileSystemFailure(error: unknown): FileSystemFailure | null {
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  if (typeof code !== 'string' || !/^E[A-Z0-9]+$/.test(code)) return null;
  const known = ANSWERS[code];
  if (known) return { ...known, code };
  return { status: 500, message: `storage error (${code})`, code };
}

/** true when `error` is a Node errno error with this `code` (ENOENT, EEXIST…): the one errno test of the project. */
export function isErrno(error: unknown, code: string): error is NodeJS.ErrnoException {
  return typeof error === 'object' && error !== null && (error as NodeJS.ErrnoException).code === code;
}
