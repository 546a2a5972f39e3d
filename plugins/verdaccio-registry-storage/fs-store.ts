/**
 * `PackageStore` on the local file system, in Verdaccio's local-storage layout so an existing
 * storage folder is adopted as it is:
 *   <root>/<name>/package.json (tab-indented JSON), <root>/<name>/<name>-<version>.tgz,
 *   <root>/@scope/<name>/…, <root>/.verdaccio-db.json {list, secret}.
 * Additions of ours live in dot-folders no package name can take: `.locks/`.
 */
import { createHash, type Hash } from 'node:crypto';
import { accessSync, constants, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { link, open, readFile, rmdir, stat, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { ensureDir, fsyncDir, tempPathFor, unlinkDurable, writeFileAtomic } from './atomic';
import { scanPackages } from './scan';
import { StorageError, isErrno } from './errors';
import { KeyedLock } from './lock';
import { packageDirOf, parsePackageName, parseTarballName, type ParsedName } from './names';
import type { Manifest, PackageStore, StorageDb, TarballDigest, TarballReader, TarballWriteOptions, TarballWriter } from './store';

export const DB_FILE = '.verdaccio-db.json';
const LEGACY_DB_FILE = '.sinopia-db.json';
const LOCKS_DIR = '.locks';
const DB_LOCK_KEY = '.verdaccio-db';
const PACKUMENT = 'package.json';

export interface FileSystemStoreOptions {
  lockTimeoutMs?: number;
  lockStaleMs?: number;
  onLockCompromised?: (key: string, error: Error) => void;
  /** a lock acquisition that had to wait (see KeyedLock's onWait) */
  onLockWait?: (key: string, waitedMs: number) => void;
  /** Keep tarballs up to this size in memory after the first read (0 disables). */
  tarballCacheBytes?: number;
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
const RACY_WINDOW_NS = 100_000_000n;

function settled(mtimeNs: bigint): boolean {
  return BigInt(Date.now()) * 1_000_000n - mtimeNs > RACY_WINDOW_NS;
}

interface CachedTarball {
  ino: bigint;
  size: bigint;
  mtimeNs: bigint;
  bytes: Buffer;
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
    // Fail fast (before reading the body) when the tarball exists; commit() re-checks atomically.
    if (existsSync(this.finalPath) && !(await this.options.reclaim?.())) {
      throw new StorageError('ERR_EXISTS', `${this.finalPath.slice(this.root.length + 1)} already exists`);
    }
    await ensureDir(this.root, this.dir);
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
    await fsyncDir(this.dir);
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
  private readonly packuments = new Map<string, CachedText>();
  private readonly digests = new Map<string, TarballDigest & { ino: bigint }>();
  private readonly tarballs = new Map<string, CachedTarball>();
  private tarballCacheUsed = 0;
  private readonly tarballCacheBytes: number;
  private dbCache: { key: string; db: StorageDb } | null = null;

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
    this.tarballCacheBytes = options.tarballCacheBytes ?? 64 * 1024 * 1024;
    // A corrupt package list must stop start-up, not be silently replaced (stock "locks" instead).
    if (existsSync(this.dbPath)) parseDb(readFileSync(this.dbPath, 'utf8'), this.dbPath);
  }

  withLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    return this.locks.withLock(key, fn);
  }

  /** Resolved paths by name (and file): every cache-hit GET asks for one (docs/performance.md); bounded, rebuilt when full. */
  private readonly paths = new Map<string, string>();

  private rememberedPath(key: string, make: () => string): string {
    let path = this.paths.get(key);
    if (path === undefined) {
      path = make();
      if (this.paths.size >= 10_000) this.paths.clear();
      this.paths.set(key, path);
    }
    return path;
  }

  private packumentPath(pkg: ParsedName): string {
    return this.rememberedPath(pkg.name, () => join(packageDirOf(this.root, pkg), PACKUMENT));
  }

  private tarballPath(pkg: ParsedName, fileName: string): string {
    // checked before it is remembered: only valid names ever get a path
    return this.rememberedPath(`${pkg.name}\u0000${fileName}`, () => {
      parseTarballName(pkg, fileName);
      return join(packageDirOf(this.root, pkg), fileName);
    });
  }

  // ---- packuments -----------------------------------------------------------------------

  async readPackument(pkg: ParsedName): Promise<Manifest | null> {
    const text = await this.readPackumentText(pkg);
    if (text === null) return null;
    try {
      return JSON.parse(text) as Manifest;
    } catch (error) {
      throw new Error(`${this.packumentPath(pkg)} is not valid JSON: ${(error as Error).message}`);
    }
  }

  /** The file text, from memory while (ino, size, mtime ns) say it is unchanged on disk. */
  private async readPackumentText(pkg: ParsedName): Promise<string | null> {
    const path = this.packumentPath(pkg);
    const cached = this.packuments.get(path);
    if (cached) {
      // statSync on a cached inode is ~1 µs; an async stat costs ~10× that in main-thread CPU
      // (thread-pool round trip) and is the hottest line of a packument GET otherwise.
      const info = statSync(path, { bigint: true, throwIfNoEntry: false });
      if (!info) {
        this.packuments.delete(path);
        return null;
      }
      if (info.ino === cached.ino && info.size === cached.size && info.mtimeNs === cached.mtimeNs && settled(info.mtimeNs)) return cached.text;
    }
    const handle = await openIfExists(path);
    if (!handle) {
      this.packuments.delete(path);
      return null;
    }
    try {
      // fstat + read through one descriptor: the cached stat belongs to exactly this text
      const info = await handle.stat({ bigint: true });
      const text = await handle.readFile('utf8');
      this.packuments.set(path, { ino: info.ino, size: info.size, mtimeNs: info.mtimeNs, text });
      return text;
    } finally {
      await handle.close();
    }
  }

  async packumentExists(pkg: ParsedName): Promise<boolean> {
    try {
      await stat(this.packumentPath(pkg));
      return true;
    } catch (error) {
      if (isErrno(error, 'ENOENT') || isErrno(error, 'ENOTDIR')) return false;
      throw error;
    }
  }

  packumentStamp(pkg: ParsedName): string | null {
    const info = statSync(this.packumentPath(pkg), { bigint: true, throwIfNoEntry: false });
    if (!info) return null;
    // a file changed within the racy window gets a stamp that never repeats: nothing reuses it
    const racy = settled(info.mtimeNs) ? '' : `:racy-${process.hrtime.bigint()}`;
    return `${info.ino}:${info.size}:${info.mtimeNs}${racy}`;
  }

  async writePackument(pkg: ParsedName, manifest: Manifest): Promise<void> {
    if (manifest.name !== pkg.name) {
      throw new StorageError('ERR_BAD_MANIFEST', `manifest name ${JSON.stringify(manifest.name)} does not match ${pkg.name}`);
    }
    const dir = packageDirOf(this.root, pkg);
    const path = join(dir, PACKUMENT);
    const text = JSON.stringify(manifest, null, '\t');
    await ensureDir(this.root, dir);
    this.packuments.delete(path);
    await writeFileAtomic(path, text);
    try {
      const info = await stat(path, { bigint: true });
      // cache only if the file is still ours (another process may have replaced it meanwhile)
      if (info.size === BigInt(Buffer.byteLength(text))) this.packuments.set(path, { ino: info.ino, size: info.size, mtimeNs: info.mtimeNs, text });
    } catch {
      // next read re-reads the file
    }
  }

  async deletePackument(pkg: ParsedName): Promise<boolean> {
    const path = this.packumentPath(pkg);
    this.packuments.delete(path);
    return unlinkDurable(path);
  }

  // ---- tarballs -------------------------------------------------------------------------

  createTarball(pkg: ParsedName, fileName: string, options?: TarballWriteOptions): TarballWriter {
    const finalPath = this.tarballPath(pkg, fileName);
    const writer = new FileTarballWriter(this.root, packageDirOf(this.root, pkg), finalPath, options);
    const commit = writer.commit.bind(writer);
    // remember the digest computed while streaming, keyed by inode so a replaced file is re-hashed
    writer.commit = async () => {
      const digest = await commit();
      try {
        const info = await stat(finalPath, { bigint: true });
        this.digests.set(finalPath, { ...digest, ino: info.ino });
      } catch {
        // not cached: tarballDigest() re-hashes
      }
      return digest;
    };
    return writer;
  }

  async readTarball(pkg: ParsedName, fileName: string): Promise<TarballReader | null> {
    const path = this.tarballPath(pkg, fileName);
    const cached = this.tarballs.get(path);
    if (cached) {
      const info = statSync(path, { bigint: true, throwIfNoEntry: false });
      if (info && info.ino === cached.ino && info.size === cached.size && info.mtimeNs === cached.mtimeNs && settled(info.mtimeNs)) {
        return { bytes: cached.bytes, size: cached.bytes.length };
      }
      this.dropTarballCache(path);
      if (!info) return null;
    }
    const handle = await openIfExists(path);
    if (!handle) return null;
    const info = await handle.stat({ bigint: true });
    const size = Number(info.size);
    if (size <= 1024 * 1024 && this.tarballCacheBytes > 0) {
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
    if (entry.bytes.length > this.tarballCacheBytes) return;
    this.dropTarballCache(path);
    // Map iteration order = insertion order: evict the oldest entries first
    for (const [key, value] of this.tarballs) {
      if (this.tarballCacheUsed + entry.bytes.length <= this.tarballCacheBytes) break;
      this.tarballs.delete(key);
      this.tarballCacheUsed -= value.bytes.length;
    }
    this.tarballs.set(path, entry);
    this.tarballCacheUsed += entry.bytes.length;
  }

  private dropTarballCache(path: string): void {
    const entry = this.tarballs.get(path);
    if (entry) {
      this.tarballs.delete(path);
      this.tarballCacheUsed -= entry.bytes.length;
    }
  }

  async tarballDigest(pkg: ParsedName, fileName: string): Promise<TarballDigest | null> {
    const path = this.tarballPath(pkg, fileName);
    const handle = await openIfExists(path);
    if (!handle) return null;
    try {
      const info = await handle.stat({ bigint: true });
      const memo = this.digests.get(path);
      if (memo && memo.ino === info.ino && BigInt(memo.size) === info.size) {
        return { sha512: memo.sha512, sha1: memo.sha1, size: memo.size };
      }
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
    return unlinkDurable(path);
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
    let key: string;
    try {
      const info = await stat(this.dbPath, { bigint: true });
      key = `${info.ino}:${info.size}:${info.mtimeNs}`;
    } catch (error) {
      if (isErrno(error, 'ENOENT')) return { list: [], secret: '' };
      throw error;
    }
    if (this.dbCache && this.dbCache.key === key) return { ...this.dbCache.db, list: [...this.dbCache.db.list] };
    const db = parseDb(await readFile(this.dbPath, 'utf8'), this.dbPath);
    this.dbCache = { key, db };
    return { ...db, list: [...db.list] };
  }

  updateDb(mutate: (db: StorageDb) => StorageDb): Promise<StorageDb> {
    return this.withLock(DB_LOCK_KEY, async () => {
      const next = mutate(await this.readDb());
      await writeFileAtomic(this.dbPath, JSON.stringify(next));
      this.dbCache = null;
      return next;
    });
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
