/**
 * `PackageStore` on the local file system, in Verdaccio's local-storage layout so an existing
 * storage folder is adopted as it is:
 *   <root>/<name>/package.json (JSON; stock writes it tab-indented, we compact), <root>/<name>/<name>-<version>.tgz,
 *   <root>/@scope/<name>/…, <root>/.verdaccio-db.json {list, secret}.
 * Additions of ours live in dot-folders no package name can take: `.locks/`.
 */
import { createHash, type Hash } from 'node:crypto';
import { accessSync, closeSync, constants, existsSync, fstatSync, mkdirSync, openSync, readFileSync, readSync, statSync, type BigIntStats } from 'node:fs';
import { link, open, readFile, rmdir, stat, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { LRUCache } from 'lru-cache';
import { ClearingMemo, entryBoundedCache } from '../registry-core/bounded-cache';
import { ensureDir, fsyncDir, tempPathFor, unlinkDurable, writeFileAtomic } from './atomic';
import { jsonCopy } from './json-copy';
import { scanPackages } from './scan';
import { StorageError, isErrno } from './errors';
import { KeyedLock } from './lock';
import { packageDirOf, parsePackageName, parseTarballName, type ParsedName } from './names';
import { packumentText, type Manifest, type PackageStore, type PackumentWriteOptions, type ReadOptions, type StorageDb, type TarballDigest, type TarballReader, type TarballWriteOptions, type TarballWriter } from './store';

export const DB_FILE = '.verdaccio-db.json';
const LEGACY_DB_FILE = '.sinopia-db.json';
/** per-package lock directories (KeyedLock, key = package name) */
export const LOCKS_DIR = '.locks';
/** the key locked while `.verdaccio-db.json` is rewritten */
export const DB_LOCK_KEY = '.verdaccio-db';
/** the upstream cache: a second store rooted here (docs/upstream.md) */
export const UPSTREAM_CACHE_DIR = '.upstream';
const PACKUMENT = 'package.json';
/** A changed packument up to this size is re-read synchronously (readPackumentText). */
const SYNC_REREAD_MAX_BYTES = 256n * 1024n;
/** The in-memory caches' bounds (lru-cache, least recently used out first). */
export const PACKUMENT_CACHE_ENTRIES = 10_000;
export const PACKUMENT_CACHE_BYTES = 128 * 1024 * 1024;
const DIGEST_CACHE_ENTRIES = 100_000;

export interface FileSystemStoreOptions {
  lockTimeoutMs?: number;
  lockStaleMs?: number;
  onLockCompromised?: (key: string, error: Error) => void;
  /** a lock acquisition that had to wait (see KeyedLock's onWait) */
  onLockWait?: (key: string, waitedMs: number) => void;
  /** Keep tarballs up to this size in memory after the first read (0 disables). */
  tarballCacheBytes?: number;
  /**
   * Remember the bytes of every packument this store writes, so its stamp is reusable inside the
   * racy window while the file still holds exactly them (holdsOwnWrite): the upstream cache, where
   * a cold fill's answer is then recorded by the response cache at once. Off (default) for the
   * local storage: there the first GET after a publish would pay for the byte proof and the record
   * (the "first read after a publish" row), and a GET 100 ms later is a cache hit anyway.
   */
  recordOwnWrites?: boolean;
  /** packument texts kept in memory: at most this many (default PACKUMENT_CACHE_ENTRIES) … */
  packumentCacheEntries?: number;
  /** … and this many bytes (default PACKUMENT_CACHE_BYTES) */
  packumentCacheBytes?: number;
}

interface CachedText {
  ino: bigint;
  size: bigint;
  mtimeNs: bigint;
  text: string;
}

/**
 * File timestamps come from the kernel's coarse clock (a few ms per tick), so two writes in one
 * tick can leave the same mtime. Like git's "racily clean" rule: a stat is only trusted as a
 * version stamp once the file is older than this; fresher files are simply re-read.
 */
/** A file changed within this window may still change within the same mtime tick: not trusted from memory yet. */
export const RACY_WINDOW_MS = 100;
const RACY_WINDOW_NS = BigInt(RACY_WINDOW_MS) * 1_000_000n;

function settled(mtimeNs: bigint): boolean {
  return BigInt(Date.now()) * 1_000_000n - mtimeNs > RACY_WINDOW_NS;
}

/** A document this store wrote and kept (writePackument keep): the object and the exact bytes of the file. */
interface KeptDocument {
  ino: bigint;
  size: bigint;
  mtimeNs: bigint;
  bytes: Buffer;
  doc: Manifest;
}

/**
 * A packument this store wrote itself (writeFileAtomic: temp + fsync + rename, this process): the
 * file's identity right after the rename and its exact bytes. Needed only while the mtime is inside
 * the racy window (afterwards the identity alone is trusted, as for every file): bounded, and
 * dropped once settled.
 */
interface WrittenFile {
  ino: bigint;
  size: bigint;
  mtimeNs: bigint;
  bytes: Buffer;
}

const WRITTEN_MAX_ENTRIES = 256;
const WRITTEN_MAX_BYTES = 32 * 1024 * 1024;

/** Kept documents: the packages being published right now; bounded so a bulk import does not hold every packument. */
const KEPT_MAX_ENTRIES = 16;
const KEPT_MAX_BYTES = 32 * 1024 * 1024;

/**
 * Entries that hold file bytes, bounded in count and in bytes, oldest first out (a read does not
 * make an entry younger: these are the last few writes, not a read cache). An entry larger than the
 * byte budget is not kept at all.
 */
class BytesBoundedMap<V extends { bytes: Buffer }> {
  readonly #entries = new Map<string, V>();
  #bytes = 0;
  readonly #maxEntries: number;
  readonly #maxBytes: number;

  constructor(maxEntries: number, maxBytes: number) {
    this.#maxEntries = maxEntries;
    this.#maxBytes = maxBytes;
  }

  get size(): number {
    return this.#entries.size;
  }

  get(key: string): V | undefined {
    return this.#entries.get(key);
  }

  delete(key: string): void {
    const entry = this.#entries.get(key);
    if (entry === undefined) return;
    this.#entries.delete(key);
    this.#bytes -= entry.bytes.length;
  }

  /** Replaces key's entry (dropped first, also when the new one is too large to keep). */
  set(key: string, entry: V): void {
    this.delete(key);
    if (entry.bytes.length > this.#maxBytes) return;
    for (const [oldest, value] of this.#entries) {
      if (this.#entries.size < this.#maxEntries && this.#bytes + entry.bytes.length <= this.#maxBytes) break;
      this.#entries.delete(oldest);
      this.#bytes -= value.bytes.length;
    }
    this.#entries.set(key, entry);
    this.#bytes += entry.bytes.length;
  }
}
/** validKept compares a racy file through one reused buffer up to this size (larger: a fresh read). */
const PROOF_BUFFER_MAX_BYTES = 1024 * 1024;

interface CachedTarball {
  ino: bigint;
  size: bigint;
  mtimeNs: bigint;
  bytes: Buffer;
  /** The turn's stat (turnStats) this entry was last proven against: the same object means the same turn and the same answer. */
  provenBy?: BigIntStats;
}

interface DbChange {
  mutate(db: StorageDb): StorageDb;
  resolve(db: StorageDb): void;
  reject(error: unknown): void;
}

function parseDb(text: string, path: string): StorageDb {
  let parsed: unknown;
  try {
    parsed = text.trim() === '' ? {} : JSON.parse(text);
  } catch (error) {
    throw new StorageError('ERR_STORAGE_DB', `${path} is not valid JSON (${(error as Error).message}); fix or remove it — the package list can be rebuilt from the storage folder`);
  }
  const record = (parsed ?? {}) as { list?: unknown; secret?: unknown };
  const list = Array.isArray(record.list) ? record.list.filter((item): item is string => typeof item === 'string') : [];
  const secret = typeof record.secret === 'string' ? record.secret : '';
  return { ...(parsed as object), list, secret };
}

class FileTarballWriter implements TarballWriter {
  readonly stream: Writable;
  private readonly finalPath: string;
  private readonly tempPath: string;
  private readonly dir: string;
  private readonly root: string;
  private handle: FileHandle | null = null;
  private readonly sha512: Hash = createHash('sha512');
  private readonly sha1: Hash = createHash('sha1');
  private size = 0;
  private done = false;
  private readonly options: TarballWriteOptions;

  constructor(root: string, dir: string, finalPath: string, options: TarballWriteOptions = {}) {
    this.root = root;
    this.dir = dir;
    this.finalPath = finalPath;
    this.options = options;
    this.tempPath = tempPathFor(finalPath);
    this.stream = new Writable({
      construct: (callback) => {
        this.prepare().then(() => callback(), callback);
      },
      write: (chunk: Buffer, _encoding, callback) => {
        this.sha512.update(chunk);
        this.sha1.update(chunk);
        this.size += chunk.length;
        const handle = this.handle;
        if (!handle) return callback(new Error('tarball temp file is not open'));
        handle.write(chunk).then(() => callback(), callback);
      },
    });
  }

  private async prepare(): Promise<void> {
    await this.options.precheck?.();
    // Fail fast (before reading the body) when the tarball exists; commit() re-checks atomically
    // (link() refuses an existing name). A package folder this call just made holds no tarball:
    // the probe is only asked of a folder that was there (every new package saves one syscall).
    const created = await ensureDir(this.root, this.dir);
    if (!created && existsSync(this.finalPath) && !(await this.options.reclaim?.())) {
      throw new StorageError('ERR_EXISTS', `${this.finalPath.slice(this.root.length + 1)} already exists`);
    }
    this.handle = await open(this.tempPath, 'wx', 0o644);
    this.stream.emit('open');
  }

  async commit(): Promise<TarballDigest> {
    if (this.done) throw new Error('tarball already committed or aborted');
    this.done = true;
    const handle = this.handle;
    if (!handle) throw new StorageError('ERR_ABORTED', 'tarball upload never started');
    try {
      await handle.sync();
      await handle.close();
      this.handle = null;
      // link() fails with EEXIST instead of replacing: a concurrent winner is never overwritten
      await link(this.tempPath, this.finalPath);
    } catch (error) {
      await this.cleanup();
      if (isErrno(error, 'EEXIST')) throw new StorageError('ERR_EXISTS', `${this.finalPath.slice(this.root.length + 1)} already exists`);
      throw error;
    }
    await unlink(this.tempPath).catch(() => undefined);
    // the link's directory entry: durable now, or with the packument write of the same folder that follows
    if (!this.options.deferFolderSync) await fsyncDir(this.dir);
    return { sha512: this.sha512.digest('hex'), sha1: this.sha1.digest('hex'), size: this.size };
  }

  async abort(): Promise<void> {
    this.done = true;
    if (!this.stream.destroyed) this.stream.destroy();
    await this.cleanup();
  }

  private async cleanup(): Promise<void> {
    const handle = this.handle;
    this.handle = null;
    if (handle) await handle.close().catch(() => undefined);
    await unlink(this.tempPath).catch(() => undefined);
  }
}

export class FileSystemStore implements PackageStore {
  readonly location: string;
  readonly root: string;
  private readonly locks: KeyedLock;
  private readonly dbPath: string;
  /** packument texts (hot path of every GET), bounded in entries and bytes, least recently used out first */
  private readonly packuments: LRUCache<string, CachedText>;
  /** tarball digests (small records), bounded in entries */
  private readonly digests = entryBoundedCache<string, TarballDigest & { ino: bigint }>(DIGEST_CACHE_ENTRIES);
  /** small tarballs (≤ 1 MB each), bounded in bytes; null when tarballCacheBytes is 0 */
  private readonly tarballs: LRUCache<string, CachedTarball> | null;
  private readonly recordOwnWrites: boolean;
  private readonly kept = new BytesBoundedMap<KeptDocument>(KEPT_MAX_ENTRIES, KEPT_MAX_BYTES);
  /** Packuments this store wrote, for the stamps inside the racy window (holdsOwnWrite); oldest first. */
  private readonly written = new BytesBoundedMap<WrittenFile>(WRITTEN_MAX_ENTRIES, WRITTEN_MAX_BYTES);
  /** Kept documents handed out by readPackumentForUpdate and not yet written or given back. */
  private readonly checkedOut = new Map<string, KeptDocument>();
  private dbCache: { key: string; db: StorageDb } | null = null;
  /** updateDb changes waiting for the next rewrite of `.verdaccio-db.json` (group commit). */
  private dbWaiting: DbChange[] = [];
  /**
   * Stats of the read hot paths (packument stamp, held tarball), shared by the requests one turn
   * of the event loop handles: cleared in the next check phase (setImmediate) and by every write of
   * this store. Under load one poll phase hands over the requests of many sockets at once (≈ 9 per
   * turn measured with 10 busy connections), and each used to stat the same file (≈ 3 µs, the
   * largest single cost of a cache hit after the socket write; issue 17). A write by this process
   * is seen at once; one by another process (a hand edit, an offline tool) at the next turn —
   * those requests were read from their sockets while that write was in progress.
   */
  private readonly turnStats = new Map<string, BigIntStats | null>();
  /**
   * Kept documents proven (validKept) to be what their file holds, for the reads of the same turn:
   * the first GET after a publish asks twice (the owners, then Verdaccio's read of the packument),
   * and inside the racy window each proof is a read of the whole file and a compare. Same lifetime
   * as turnStats: the next check phase, or any write of this store.
   */
  private readonly turnKept = new Map<string, KeptDocument>();
  /** Written files proven (holdsOwnWrite) for the stamps of this turn: same lifetime as turnKept. */
  private readonly turnWritten = new Map<string, WrittenFile>();
  /**
   * Settled packument stamps of this turn, by path: made from the turn's one stat, so the same
   * string for every request of the turn — built once (three bigint-to-text conversions and the
   * racy-window arithmetic were ≈ 1 µs of every cache hit; issue 17). Same lifetime as turnStats.
   */
  private readonly turnStamps = new Map<string, string>();
  private turnArmed = false;
  private readonly endTurn = (): void => {
    this.turnArmed = false;
    this.turnStats.clear();
    this.turnKept.clear();
    this.turnWritten.clear();
    this.turnStamps.clear();
  };

  /** Synchronous so a Verdaccio plugin constructor can fail loudly when the folder is unusable. */
  constructor(root: string, options: FileSystemStoreOptions = {}) {
    this.root = root;
    this.location = root;
    mkdirSync(root, { recursive: true });
    accessSync(root, constants.R_OK | constants.W_OK);
    this.locks = new KeyedLock(join(root, LOCKS_DIR), {
      timeoutMs: options.lockTimeoutMs,
      staleMs: options.lockStaleMs,
      onCompromised: options.onLockCompromised,
      onWait: options.onLockWait,
    });
    this.dbPath = existsSync(join(root, LEGACY_DB_FILE)) && !existsSync(join(root, DB_FILE)) ? join(root, LEGACY_DB_FILE) : join(root, DB_FILE);
    const tarballBytes = options.tarballCacheBytes ?? 64 * 1024 * 1024;
    this.recordOwnWrites = options.recordOwnWrites ?? false;
    this.tarballs = tarballBytes > 0 ? new LRUCache<string, CachedTarball>({ maxSize: tarballBytes, sizeCalculation: (entry) => Math.max(1, entry.bytes.length) }) : null;
    this.packuments = new LRUCache<string, CachedText>({
      max: options.packumentCacheEntries ?? PACKUMENT_CACHE_ENTRIES,
      maxSize: options.packumentCacheBytes ?? PACKUMENT_CACHE_BYTES,
      sizeCalculation: (entry) => Math.max(1, entry.text.length * 2),
    });
    // A corrupt package list must stop start-up, not be silently replaced (stock "locks" instead).
    if (existsSync(this.dbPath)) parseDb(readFileSync(this.dbPath, 'utf8'), this.dbPath);
  }

  withLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    return this.locks.withLock(key, fn);
  }

  /** How many packument texts the read cache holds (what a `keep: false` read must not add to). */
  get cachedPackumentTexts(): number {
    return this.packuments.size;
  }

  /** statSync (bigint, undefined when absent), shared within this event-loop turn (turnStats). */
  private turnStat(path: string): BigIntStats | undefined {
    const known = this.turnStats.get(path);
    if (known !== undefined) return known ?? undefined;
    const info = statSync(path, { bigint: true, throwIfNoEntry: false });
    this.turnStats.set(path, info ?? null);
    this.armTurn();
    return info;
  }

  private armTurn(): void {
    if (!this.turnArmed) {
      this.turnArmed = true;
      setImmediate(this.endTurn).unref();
    }
  }

  /** Called by every write of this store before and after it changes a file. */
  private forgetTurnStats(): void {
    this.turnStats.clear();
    this.turnKept.clear();
    this.turnWritten.clear();
    this.turnStamps.clear();
  }

  /**
   * Resolved paths by name, and by name then file: every cache-hit GET asks for one
   * (docs/performance.md); bounded, rebuilt when full. A hit builds no key string and no closure
   * (issue 17).
   */
  private readonly paths = new ClearingMemo<string, string>(10_000);
  private readonly tarballPaths = new Map<string, Map<string, string>>();
  private tarballPathCount = 0;

  private packumentPath(pkg: ParsedName): string {
    let path = this.paths.get(pkg.name);
    if (path === undefined) {
      path = join(packageDirOf(this.root, pkg), PACKUMENT);
      this.paths.set(pkg.name, path);
    }
    return path;
  }

  private tarballPath(pkg: ParsedName, fileName: string): string {
    let files = this.tarballPaths.get(pkg.name);
    const known = files?.get(fileName);
    if (known !== undefined) return known;
    // checked before it is remembered: only valid names ever get a path
    parseTarballName(pkg, fileName);
    const path = join(packageDirOf(this.root, pkg), fileName);
    if (this.tarballPathCount >= 10_000) {
      this.tarballPaths.clear();
      this.tarballPathCount = 0;
      files = undefined;
    }
    if (files === undefined) {
      files = new Map();
      this.tarballPaths.set(pkg.name, files);
    }
    files.set(fileName, path);
    this.tarballPathCount++;
    return path;
  }

  // ---- packuments -----------------------------------------------------------------------

  async readPackument(pkg: ParsedName, options: ReadOptions = {}): Promise<Manifest | null> {
    // the document this store wrote, while the file still holds exactly it: a copy of it is what a
    // parse of the file would give, for less than half the CPU (the first GET after a publish)
    const kept = this.keptForRead(this.packumentPath(pkg));
    if (kept) return jsonCopy(kept.doc);
    const text = await this.readPackumentText(pkg, options.keep !== false);
    if (text === null) return null;
    try {
      return JSON.parse(text) as Manifest;
    } catch (error) {
      throw new Error(`${this.packumentPath(pkg)} is not valid JSON: ${(error as Error).message}`);
    }
  }

  /** The file text, from memory while (ino, size, mtime ns) say it is unchanged on disk. */
  private async readPackumentText(pkg: ParsedName, keep = true): Promise<string | null> {
    const path = this.packumentPath(pkg);
    const cached = this.packuments.get(path);
    if (cached) {
      // statSync on a cached inode is ~1 µs; an async stat costs ~10× that in main-thread CPU
      // (thread-pool round trip) and is the hottest line of a packument GET otherwise.
      const info = this.turnStat(path);
      if (!info) {
        this.packuments.delete(path);
        return null;
      }
      if (info.ino === cached.ino && info.size === cached.size && info.mtimeNs === cached.mtimeNs && settled(info.mtimeNs)) return cached.text;
      // changed (or just written, within the racy window) and small: the file was written a moment
      // ago, so its pages are in memory — one synchronous read (≈ 15 µs for 8 KB) instead of four
      // thread-pool round trips (open, fstat, read, close), which were most of the latency of the
      // first GET after a publish (issue 17). Large documents keep the asynchronous read.
      if (info.size <= SYNC_REREAD_MAX_BYTES) return this.rereadSync(path, keep);
    }
    // a package that does not exist (every first publish asks): one sync stat instead of a failing open
    if (!cached && !existsSync(path)) return null;
    const handle = await openIfExists(path);
    if (!handle) {
      this.packuments.delete(path);
      return null;
    }
    try {
      // fstat + read through one descriptor: the cached stat belongs to exactly this text
      const info = await handle.stat({ bigint: true });
      const text = await handle.readFile('utf8');
      if (keep) this.packuments.set(path, { ino: info.ino, size: info.size, mtimeNs: info.mtimeNs, text });
      // a stale entry must not outlive a read that saw the file changed
      else this.packuments.delete(path);
      return text;
    } finally {
      await handle.close();
    }
  }

  /** readPackumentText's synchronous re-read: fstat + read through one descriptor, like the asynchronous one. */
  private rereadSync(path: string, keep: boolean): string | null {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (error) {
      if (isErrno(error, 'ENOENT') || isErrno(error, 'ENOTDIR')) {
        this.packuments.delete(path);
        return null;
      }
      throw error;
    }
    try {
      const info = fstatSync(fd, { bigint: true });
      const text = readFileSync(fd, 'utf8');
      if (keep) this.packuments.set(path, { ino: info.ino, size: info.size, mtimeNs: info.mtimeNs, text });
      else this.packuments.delete(path);
      return text;
    } finally {
      closeSync(fd);
    }
  }

  /**
   * The kept document of path if the file still holds exactly its bytes: same (ino, size, mtime),
   * and — while the mtime is within the racy window, when another writer's file could carry the
   * same stamp — the same bytes (one read and a memcmp: far less than a parse).
   */
  private validKept(path: string): KeptDocument | null {
    const entry = this.kept.get(path);
    if (!entry) return null;
    const valid = this.holdsOwnWrite(path, statSync(path, { bigint: true, throwIfNoEntry: false }), entry);
    if (!valid) this.dropKept(path);
    return valid ? entry : null;
  }

  /**
   * THE rule for trusting, from memory, a file this store wrote itself (kept documents, the stamps
   * of written packuments): the file's stat `info` is the identity (ino, size, mtime) recorded
   * right after the write, and — while the mtime is within the racy window, when another writer's
   * in-place edit in the same timestamp tick would leave the same identity — the file holds
   * exactly the bytes written (one read and a memcmp). Past the window the identity is trusted by
   * design, as for every file (readPackumentText, packumentStamp).
   */
  private holdsOwnWrite(path: string, info: BigIntStats | undefined, own: WrittenFile): boolean {
    if (info === undefined || info.ino !== own.ino || info.size !== own.size || info.mtimeNs !== own.mtimeNs) return false;
    if (settled(own.mtimeNs)) return true;
    try {
      return this.fileHolds(path, own.bytes);
    } catch {
      return false;
    }
  }

  /**
   * Whether the packument file at path (stat `info`, inside the racy window) is the one this store
   * wrote, proven once per turn (turnWritten, like turnKept). Settled or disproven entries are
   * dropped: they are never needed again.
   */
  private vouchesForWrite(path: string, info: BigIntStats): boolean {
    const own = this.written.get(path);
    if (own === undefined) return false;
    if (this.turnWritten.get(path) === own) return true;
    if (settled(own.mtimeNs) || !this.holdsOwnWrite(path, info, own)) {
      this.dropWritten(path);
      return false;
    }
    this.turnWritten.set(path, own);
    this.armTurn();
    return true;
  }

  private dropWritten(path: string): void {
    this.turnWritten.delete(path);
    this.written.delete(path);
  }

  private recordWritten(path: string, own: WrittenFile): void {
    this.turnWritten.delete(path);
    this.written.set(path, own);
  }

  /** validKept for the reads (never for an update: that one proves it again), shared by the reads of one turn (turnKept). */
  private keptForRead(path: string): KeptDocument | null {
    const proven = this.turnKept.get(path);
    if (proven !== undefined && this.kept.get(path) === proven) return proven;
    const entry = this.validKept(path);
    if (entry) {
      this.turnKept.set(path, entry);
      this.armTurn();
    }
    return entry;
  }

  /** A reused buffer for fileHolds (a racy proof per publish and per first read: no allocation of the whole file each time). */
  private proofBuffer: Buffer | null = null;

  /** Whether the file holds exactly `bytes` (read in full: one byte more would show a longer file). */
  private fileHolds(path: string, bytes: Buffer): boolean {
    const want = bytes.length + 1;
    if (want > PROOF_BUFFER_MAX_BYTES) return readFileSync(path).equals(bytes);
    if (this.proofBuffer === null || this.proofBuffer.length < want) this.proofBuffer = Buffer.allocUnsafe(Math.min(PROOF_BUFFER_MAX_BYTES, Math.max(want, 64 * 1024)));
    const buffer = this.proofBuffer;
    const fd = openSync(path, 'r');
    try {
      let length = 0;
      for (;;) {
        const read = readSync(fd, buffer, length, want - length, length);
        if (read === 0) break;
        length += read;
        if (length === want) break;
      }
      return length === bytes.length && buffer.subarray(0, length).equals(bytes);
    } finally {
      closeSync(fd);
    }
  }

  private dropKept(path: string): void {
    this.turnKept.delete(path);
    this.kept.delete(path);
  }

  private keep(path: string, entry: KeptDocument): void {
    this.turnKept.delete(path);
    this.kept.set(path, entry);
  }

  async readPackumentForUpdate(pkg: ParsedName): Promise<Manifest | null> {
    const path = this.packumentPath(pkg);
    const entry = this.validKept(path);
    if (entry) {
      this.dropKept(path); // handed out once: the caller owns the object now
      this.checkedOut.set(path, entry);
      return entry.doc;
    }
    return this.readPackument(pkg);
  }

  returnPackument(pkg: ParsedName, manifest: Manifest): void {
    const path = this.packumentPath(pkg);
    const entry = this.checkedOut.get(path);
    this.checkedOut.delete(path);
    if (entry && entry.doc === manifest) this.keep(path, entry);
  }

  peekPackument(pkg: ParsedName): Manifest | null | undefined {
    return this.keptForRead(this.packumentPath(pkg))?.doc;
  }

  async packumentExists(pkg: ParsedName): Promise<boolean> {
    // asked on every publish (createPackage): a sync stat (µs) rather than a thread-pool round trip
    try {
      return statSync(this.packumentPath(pkg), { throwIfNoEntry: false }) !== undefined;
    } catch (error) {
      if (isErrno(error, 'ENOTDIR')) return false;
      throw error;
    }
  }

  packumentStamp(pkg: ParsedName): string | null {
    const path = this.packumentPath(pkg);
    const known = this.turnStamps.get(path);
    if (known !== undefined) return known; // settled at this turn's stat: it stays settled
    const info = this.turnStat(path);
    if (!info) return null;
    const stamp = `${info.ino}:${info.size}:${info.mtimeNs}`;
    if (settled(info.mtimeNs)) {
      if (this.written.size > 0) this.dropWritten(path);
      this.turnStamps.set(path, stamp);
      return stamp;
    }
    // Inside the racy window the stamp is reusable only for the file this store wrote itself,
    // while it still holds exactly those bytes (holdsOwnWrite): a cold-filled upstream copy, or a
    // publish, can then be recorded by the response cache at once. Any other file changed within
    // the window — an in-place edit by another writer included — gets a stamp that never repeats.
    return this.vouchesForWrite(path, info) ? stamp : `${stamp}:racy-${process.hrtime.bigint()}`;
  }

  writtenStamp(pkg: ParsedName): string | null {
    const path = this.packumentPath(pkg);
    const own = this.written.get(path);
    if (own === undefined) return null;
    const info = this.turnStat(path);
    if (!this.holdsOwnWrite(path, info, own)) {
      this.dropWritten(path);
      return null;
    }
    return `${own.ino}:${own.size}:${own.mtimeNs}`;
  }

  async writePackument(pkg: ParsedName, manifest: Manifest, options: PackumentWriteOptions = {}): Promise<void> {
    if (manifest.name !== pkg.name) {
      throw new StorageError('ERR_BAD_MANIFEST', `manifest name ${JSON.stringify(manifest.name)} does not match ${pkg.name}`);
    }
    const dir = packageDirOf(this.root, pkg);
    const path = join(dir, PACKUMENT);
    const text = packumentText(manifest);
    const bytes = Buffer.from(text);
    await ensureDir(this.root, dir);
    this.packuments.delete(path);
    this.dropKept(path);
    this.dropWritten(path);
    this.checkedOut.delete(path);
    this.forgetTurnStats();
    // the stamp of exactly the file we wrote: if another process replaced it meanwhile, the next
    // read sees another stamp and re-reads
    const info = await writeFileAtomic(path, bytes);
    this.forgetTurnStats();
    this.packuments.set(path, { ino: info.ino, size: info.size, mtimeNs: info.mtimeNs, text });
    if (this.recordOwnWrites) this.recordWritten(path, { ino: info.ino, size: info.size, mtimeNs: info.mtimeNs, bytes });
    if (options.keep) this.keep(path, { ino: info.ino, size: info.size, mtimeNs: info.mtimeNs, bytes, doc: manifest });
  }

  async deletePackument(pkg: ParsedName): Promise<boolean> {
    const path = this.packumentPath(pkg);
    this.packuments.delete(path);
    this.dropKept(path);
    this.dropWritten(path);
    this.checkedOut.delete(path);
    this.forgetTurnStats();
    try {
      return await unlinkDurable(path);
    } finally {
      this.forgetTurnStats();
    }
  }

  // ---- tarballs -------------------------------------------------------------------------

  createTarball(pkg: ParsedName, fileName: string, options?: TarballWriteOptions): TarballWriter {
    const finalPath = this.tarballPath(pkg, fileName);
    const writer = new FileTarballWriter(this.root, packageDirOf(this.root, pkg), finalPath, options);
    const commit = writer.commit.bind(writer);
    // remember the digest computed while streaming, keyed by inode so a replaced file is re-hashed
    writer.commit = async () => {
      this.forgetTurnStats();
      const digest = await commit().finally(() => this.forgetTurnStats());
      // a committed tarball is never replaced (link refuses an existing name): a sync stat of it is safe
      const info = statSync(finalPath, { bigint: true, throwIfNoEntry: false });
      if (info) this.digests.set(finalPath, { ...digest, ino: info.ino });
      return digest;
    };
    return writer;
  }

  /** The held bytes while the file still holds exactly them (same ino, size, mtime, settled); the one check of readTarball too. */
  peekTarball(pkg: ParsedName, fileName: string): Buffer | undefined {
    const path = this.tarballPath(pkg, fileName);
    const cached = this.tarballs?.get(path);
    if (!cached) return undefined;
    const info = this.turnStat(path);
    // the turn's one stat, already proven for this entry: every later download of the turn (issue 17)
    if (info !== undefined && info === cached.provenBy) return cached.bytes;
    // anything but an exact, settled match: readTarball decides (and drops or refills the entry)
    if (!(info && info.ino === cached.ino && info.size === cached.size && info.mtimeNs === cached.mtimeNs && settled(info.mtimeNs))) return undefined;
    cached.provenBy = info;
    return cached.bytes;
  }

  async readTarball(pkg: ParsedName, fileName: string): Promise<TarballReader | null> {
    const held = this.peekTarball(pkg, fileName);
    if (held !== undefined) return { bytes: held, size: held.length };
    const path = this.tarballPath(pkg, fileName);
    if (this.tarballs?.has(path)) {
      this.dropTarballCache(path); // changed, or still within the racy window: read again
      if (!this.turnStat(path)) return null;
    }
    const handle = await openIfExists(path);
    if (!handle) return null;
    const info = await handle.stat({ bigint: true });
    const size = Number(info.size);
    if (size <= 1024 * 1024 && this.tarballs !== null) {
      try {
        const bytes = await handle.readFile();
        if (bytes.length === size) this.cacheTarball(path, { ino: info.ino, size: info.size, mtimeNs: info.mtimeNs, bytes });
        return { bytes, size: bytes.length };
      } finally {
        await handle.close();
      }
    }
    return { stream: handle.createReadStream({ autoClose: true }), size };
  }

  private cacheTarball(path: string, entry: CachedTarball): void {
    this.tarballs?.set(path, entry); // lru-cache refuses an entry larger than the whole budget
  }

  private dropTarballCache(path: string): void {
    this.tarballs?.delete(path);
  }

  async tarballDigest(pkg: ParsedName, fileName: string): Promise<TarballDigest | null> {
    const path = this.tarballPath(pkg, fileName);
    const memo = this.digests.get(path);
    if (memo) {
      // the digest computed while the upload streamed, if that very file is still there (one sync stat, no open)
      const info = statSync(path, { bigint: true, throwIfNoEntry: false });
      if (!info) return null;
      if (info.ino === memo.ino && BigInt(memo.size) === info.size) return { sha512: memo.sha512, sha1: memo.sha1, size: memo.size };
    }
    const handle = await openIfExists(path);
    if (!handle) return null;
    try {
      const info = await handle.stat({ bigint: true });
      const sha512 = createHash('sha512');
      const sha1 = createHash('sha1');
      let size = 0;
      for await (const chunk of handle.createReadStream({ autoClose: false }) as AsyncIterable<Buffer>) {
        sha512.update(chunk);
        sha1.update(chunk);
        size += chunk.length;
      }
      const digest = { sha512: sha512.digest('hex'), sha1: sha1.digest('hex'), size };
      this.digests.set(path, { ...digest, ino: info.ino });
      return digest;
    } finally {
      await handle.close();
    }
  }

  async tarballAgeMs(pkg: ParsedName, fileName: string): Promise<number | null> {
    try {
      return Date.now() - (await stat(this.tarballPath(pkg, fileName))).mtimeMs;
    } catch (error) {
      if (isErrno(error, 'ENOENT') || isErrno(error, 'ENOTDIR')) return null;
      throw error;
    }
  }

  async deleteTarball(pkg: ParsedName, fileName: string): Promise<boolean> {
    const path = this.tarballPath(pkg, fileName);
    this.digests.delete(path);
    this.dropTarballCache(path);
    this.forgetTurnStats();
    try {
      return await unlinkDurable(path);
    } finally {
      this.forgetTurnStats();
    }
  }

  async removePackageContainer(pkg: ParsedName): Promise<void> {
    const dir = packageDirOf(this.root, pkg);
    try {
      await rmdir(dir);
    } catch (error) {
      // ENOTEMPTY: an upload in flight or a stray file; the package itself is gone (no package.json)
      if (isErrno(error, 'ENOENT') || isErrno(error, 'ENOTEMPTY') || isErrno(error, 'EEXIST')) return;
      throw error;
    }
    if (pkg.scope) await rmdir(join(this.root, pkg.scope)).catch(() => undefined);
    await fsyncDir(this.root).catch(() => undefined);
  }

  async listPackages(): Promise<Array<{ name: string; mtimeMs: number }>> {
    const found = await scanPackages(this.root);
    const result: Array<{ name: string; mtimeMs: number }> = [];
    for (const item of found) {
      try {
        parsePackageName(item.name, 'read');
      } catch {
        continue; // a folder whose name no package can have is not ours to list
      }
      result.push({ name: item.name, mtimeMs: item.mtimeMs });
    }
    return result;
  }

  // ---- .verdaccio-db.json ---------------------------------------------------------------

  async readDb(): Promise<StorageDb> {
    // asked on every publish (Verdaccio's addVersion adds the name): a sync stat (µs) rather than a thread-pool round trip
    const info = statSync(this.dbPath, { bigint: true, throwIfNoEntry: false });
    if (!info) return { list: [], secret: '' };
    const key = `${info.ino}:${info.size}:${info.mtimeNs}`;
    if (this.dbCache && this.dbCache.key === key) return { ...this.dbCache.db, list: [...this.dbCache.db.list] };
    const db = parseDb(await readFile(this.dbPath, 'utf8'), this.dbPath);
    this.dbCache = { key, db };
    return { ...db, list: [...db.list] };
  }

  /**
   * Group commit: the changes asked for while a rewrite runs (or waits for the lock) are applied
   * together, in order, in the next rewrite, and each caller is answered once that rewrite is
   * durable. A burst of first publishes then rewrites and fsyncs the list about twice, not once per
   * package one after another (each rewrite: temp + fsync + rename + fsync of the storage folder).
   */
  updateDb(mutate: (db: StorageDb) => StorageDb): Promise<StorageDb> {
    return new Promise<StorageDb>((resolve, reject) => {
      this.dbWaiting.push({ mutate, resolve, reject });
      if (this.dbWaiting.length > 1) return; // the rewrite already asked for takes this one too
      this.withLock(DB_LOCK_KEY, () => this.rewriteDb(this.dbWaiting.splice(0))).catch((error: unknown) => {
        // the lock was never taken: nobody took the waiting changes
        for (const waiting of this.dbWaiting.splice(0)) waiting.reject(error);
      });
    });
  }

  private async rewriteDb(batch: DbChange[]): Promise<void> {
    const applied: Array<{ change: DbChange; db: StorageDb }> = [];
    try {
      const before = await this.readDb();
      let db = before;
      for (const change of batch) {
        try {
          db = change.mutate(db);
          applied.push({ change, db });
        } catch (error) {
          change.reject(error); // this change only: the others still apply
        }
      }
      // every change already held (a name added twice): the file says it already
      if (db !== before) {
        // The stamp of exactly the file written (its new inode) keys the copy kept: the next publish's
        // readDb answers from memory instead of reading and parsing the whole list again — at 3,000
        // packages that re-read + parse was ≈ 0.5–1 ms of main thread per new package (issue 18).
        // Another process's rewrite is a new inode, so it is seen and read, as before. The old copy
        // stays keyed to the old file while this one is written: a reader meanwhile gets what the
        // file still says, without a parse; once renamed, the old key no longer matches.
        const info = await writeFileAtomic(this.dbPath, JSON.stringify(db));
        this.dbCache = { key: `${info.ino}:${info.size}:${info.mtimeNs}`, db: { ...db, list: [...db.list] } };
      }
    } catch (error) {
      for (const { change } of applied) change.reject(error);
      if (applied.length === 0) for (const change of batch) change.reject(error);
      return;
    }
    for (const { change, db } of applied) change.resolve(db);
  }

  /** Sync read for the constructor (package count in the boot line). */
  readDbSync(): StorageDb {
    if (!existsSync(this.dbPath)) return { list: [], secret: '' };
    return parseDb(readFileSync(this.dbPath, 'utf8'), this.dbPath);
  }

  dbFileExists(): boolean {
    try {
      return statSync(this.dbPath).isFile();
    } catch {
      return false;
    }
  }
}

/** Opens a file for reading, or null when it (or a folder on its path) does not exist. */
async function openIfExists(path: string): Promise<FileHandle | null> {
  try {
    return await open(path, 'r');
  } catch (error) {
    if (isErrno(error, 'ENOENT') || isErrno(error, 'ENOTDIR')) return null;
    throw error;
  }
}
