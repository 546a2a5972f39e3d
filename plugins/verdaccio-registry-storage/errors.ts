/**
 * Typed storage errors with stable codes. The Verdaccio adapter maps them onto HTTP errors
 * (see `httpStatusOf`); nothing below the adapter knows about HTTP libraries.
 */
export type StorageErrorCode =
  | 'ERR_BAD_NAME' // invalid package or tarball name, or a path leaving the storage folder → 400
  | 'ERR_INTEGRITY' // tarball does not match dist.integrity / dist.shasum → 400
  | 'ERR_BAD_MANIFEST' // manifest content we refuse to store → 400
  | 'ERR_FORBIDDEN' // not a maintainer / admin of the package → 403
  | 'ERR_NOT_FOUND' // → 404
  | 'ERR_EXISTS' // package / tarball / version already there → 409
  | 'ERR_LOCK_TIMEOUT' // could not get the package lock in time; nothing was changed → 503
  | 'ERR_UNAVAILABLE' // the database (PostgreSQL backend) cannot be reached; nothing was changed → 503
  | 'ERR_STORAGE_DB' // .verdaccio-db.json unreadable → refuse to start
  | 'ERR_ABORTED'; // upload aborted by the client

const STATUS: Record<StorageErrorCode, number> = {
  ERR_BAD_NAME: 400,
  ERR_INTEGRITY: 400,
  ERR_BAD_MANIFEST: 400,
  ERR_FORBIDDEN: 403,
  ERR_NOT_FOUND: 404,
  ERR_EXISTS: 409,
  ERR_LOCK_TIMEOUT: 503,
  ERR_UNAVAILABLE: 503,
  ERR_STORAGE_DB: 500,
  ERR_ABORTED: 400,
};

export class StorageError extends Error {
  readonly code: StorageErrorCode;
  readonly status: number;
  constructor(code: StorageErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StorageError';
    this.code = code;
    this.status = STATUS[code];
  }
}

export function isStorageError(error: unknown, code?: StorageErrorCode): error is StorageError {
  return error instanceof StorageError && (code === undefined || error.code === code);
}

/** The core's errno test (registry-core/fs-errors.ts), re-exported for this plugin's modules. */
export { isErrno } from '../registry-core/fs-errors';
