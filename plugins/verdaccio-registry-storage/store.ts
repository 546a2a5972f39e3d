/**
 * The narrow, promise-based storage contract. Nothing here knows Verdaccio: the callback
 * adapter (`verdaccio-adapter.ts`) drives a `PackageStore`, so a shared backend (PostgreSQL for
 * metadata + an object store for tarballs) can be added by implementing this interface alone.
 *
 * Guarantees every implementation must give:
 * - `readPackument` returns a fresh object the caller may mutate;
 * - `writePackument` and a committed tarball are atomic and durable when the promise resolves;
 * - `commit()` of a tarball fails with ERR_EXISTS if that tarball exists (never replaces it);
 * - `withLock(key)` excludes every other holder of key, in this process and in others.
 */
import type { Readable, Writable } from 'node:stream';
import type { ParsedName } from './names';

/**
 * The Content-Type of every tarball answer: Verdaccio's own (express's `res.header('Content-Type',
 * 'application/octet-stream')` adds the charset), so the fast path's held bytes and an upstream
 * fill say what a stored tarball says.
 */
export const TARBALL_CONTENT_TYPE = 'application/octet-stream; charset=utf-8';

export interface VersionManifest {
  name?: string;
  version?: string;
  deprecated?: string;
  dist?: { tarball?: string; integrity?: string; shasum?: string; [key: string]: unknown };
  _npmUser?: { name?: string };
  [key: string]: unknown;
}

export interface Manifest {
  name: string;
  versions: Record<string, VersionManifest>;
  'dist-tags': Record<string, string>;
  time?: Record<string, string>;
  _attachments?: Record<string, { shasum?: string; version?: string }>;
  _rev?: string;
  [key: string]: unknown;
}

/**
 * The stored text of a packument, for every backend (files, PostgreSQL, a migration into it).
 * Compact JSON: stock's local-storage writes it tab-indented, but every reader (stock adopting the
 * folder, our stores, the offline tools) parses it and none reads the layout; V8's stringify has a
 * fast path only without indentation, and at 1,000 versions the tabs are 16 % of the bytes written,
 * fsynced and re-read. Measured on a 1,000-version packument (issue 18, third pass): 12.1 → 7.2 ms
 * CPU per stringify, 1,055 → 885 KB.
 */
export function packumentText(manifest: Manifest): string {
  return JSON.stringify(manifest);
}

export interface TarballDigest {
  sha512: string; // hex
  sha1: string; // hex
  size: number;
}

export interface TarballWriter {
  /** The bytes go here; hashed while they stream. Emits 'open' once the temp file exists. */
  readonly stream: Writable;
  /** After `stream` finished: fsync, put in place (ERR_EXISTS if already there), fsync the folder. */
  commit(): Promise<TarballDigest>;
  /** Drops the temp file; safe to call at any time, also after a failed commit. */
  abort(): Promise<void>;
}

/** Either the whole tarball in memory (small, cached) or a stream of it. */
export type TarballReader = { readonly bytes: Buffer; readonly size: number } | { readonly stream: Readable; readonly size: number };

export interface TarballWriteOptions {
  /** Runs before anything is written (e.g. a name check that needs to look at storage). */
  precheck?: () => Promise<void>;
  /**
   * The tarball exists already. Return true when it was an abandoned leftover that has been
   * removed (the write then proceeds), false to refuse with ERR_EXISTS.
   */
  reclaim?: () => Promise<boolean>;
  /**
   * The packument write that names this tarball follows, in the same folder, and fsyncs that
   * folder: the tarball's own folder fsync is left to it (one directory fsync per publish). Only
   * for the tarball of a JSON publish; a tarball acknowledged by itself is made durable at once.
   */
  deferFolderSync?: boolean;
}

export interface PackumentWriteOptions {
  /**
   * The caller hands `manifest` over and never touches it again: a store may keep that object as
   * the document `readPackumentForUpdate` returns next (no parse of its own file per publish).
   */
  keep?: boolean;
}

export interface StorageDb {
  list: string[];
  secret: string;
}

export interface ReadOptions {
  keep?: boolean;
}

export interface PackageStore {
  /** Human-readable location (folder, connection string without secrets). */
  readonly location: string;

  /**
   * `keep: false`: a one-off read (Verdaccio's start-up search reindex reads every packument once)
   * that must not fill an in-memory text cache — 3,000 packuments were ≈ 25 MB resident after a
   * restart (issue 17). What is already cached is still used. Default true.
   */
  readPackument(pkg: ParsedName, options?: ReadOptions): Promise<Manifest | null>;
  packumentExists(pkg: ParsedName): Promise<boolean>;
  /**
   * A cheap token that changes whenever the stored packument changes (also by another process);
   * null when there is none. Lets an HTTP layer cache rendered responses safely.
   */
  packumentStamp(pkg: ParsedName): string | null;
  writePackument(pkg: ParsedName, manifest: Manifest, options?: PackumentWriteOptions): Promise<void>;
  /**
   * Optional: the `packumentStamp` of the packument this store itself last wrote (in this
   * process), while the file is still exactly that write (identity, and its bytes while the mtime
   * is racy); null otherwise. What a caller that wrote a document can tie its own state to.
   */
  writtenStamp?(pkg: ParsedName): string | null;
  /**
   * Optional (the read-modify-write under the package lock): like `readPackument`, but may return
   * the very object the last `writePackument(…, { keep: true })` stored, once it is proven to be
   * what the file still holds (stat, and the bytes while the mtime is racy). Handed out once: the
   * caller owns it, and gives it back with `returnPackument` when it wrote nothing.
   */
  readPackumentForUpdate?(pkg: ParsedName): Promise<Manifest | null>;
  /** Optional: an object from `readPackumentForUpdate`, unchanged (nothing was written), back to the store. */
  returnPackument?(pkg: ParsedName, manifest: Manifest): void;
  /**
   * Optional: a read-only view of the stored packument when the store has it at hand (never
   * mutate it); undefined when it has not (the caller reads it with `readPackument`).
   */
  peekPackument?(pkg: ParsedName): Manifest | null | undefined;
  deletePackument(pkg: ParsedName): Promise<boolean>;

  createTarball(pkg: ParsedName, fileName: string, options?: TarballWriteOptions): TarballWriter;
  readTarball(pkg: ParsedName, fileName: string): Promise<TarballReader | null>;
  /**
   * Optional: the tarball's bytes when this store holds them in memory and the file still holds
   * exactly them (checked as readTarball checks them), synchronously; undefined: ask readTarball.
   */
  peekTarball?(pkg: ParsedName, fileName: string): Buffer | undefined;
  /** Digest of a stored tarball (memoised from the upload when possible). */
  tarballDigest(pkg: ParsedName, fileName: string): Promise<TarballDigest | null>;
  /** ms since the tarball was written, null when there is none. */
  tarballAgeMs(pkg: ParsedName, fileName: string): Promise<number | null>;
  deleteTarball(pkg: ParsedName, fileName: string): Promise<boolean>;
  /** Removes the package container once its files are gone (no-op when something remains). */
  removePackageContainer(pkg: ParsedName): Promise<void>;

  /** Every stored package, sorted by name. */
  listPackages(): Promise<Array<{ name: string; mtimeMs: number }>>;

  readDb(): Promise<StorageDb>;
  /** Read-modify-write of the package list / secret under the store's own lock. */
  updateDb(mutate: (db: StorageDb) => StorageDb): Promise<StorageDb>;

  /** Exclusive section for key (package name, or a store-internal key). */
  withLock<T>(key: string, fn: () => Promise<T>): Promise<T>;
}
