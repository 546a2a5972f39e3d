/**
 * `registry backup FILE`: a consistent snapshot of a registry's state while it serves
 * (docs/backup.md). The rule that makes it consistent:
 *
 * - every package is captured while holding ITS lock — the storage part's per-package
 *   `KeyedLock` under `<storage>/.locks/`, the one every publish, unpublish, dist-tag change and
 *   upstream-cache fill takes — so a package is never captured half-written;
 * - captured = hard-linked into a staging folder (copied when the file system refuses links).
 *   The store replaces files (temp + fsync + rename, tarballs by link()), never rewrites one in
 *   place, so a linked inode keeps the bytes it had under the lock. Small state files (htpasswd,
 *   keys, the token store, config.yaml) are copied: a person may edit those in place;
 * - registry.lockb is rewritten for the snapshot: the header as it is at the end, and of its
 *   index records exactly those whose storage change the snapshot holds. Records of a package
 *   are appended under that package's lock after its files are durable, so "appended before the
 *   snapshot took the lock" (offset < the file's size read under the lock) is the same as "in
 *   the captured files". So the restored index describes the restored storage exactly;
 * - htpasswd, its first-user record, the token store, .env.local and config.yaml are replaced
 *   atomically by their writers (one read is one whole version); key files are created once;
 *   audit.log is append-only and is cut at its last complete line.
 *
 * Then the staged snapshot is verified (every version's tarball against its packument's
 * dist.integrity, the index against the storage — the storage part's own `verifyStorage`), its
 * manifest written (sha512 of every file) and packed with `tar` (gzip). Nothing of the live
 * registry is changed, except lock directories while they are held.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  copyFileSync,
  createReadStream,
  existsSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative, sep } from 'node:path';
import * as tar from 'tar';
import { HEADER_SIZE, RegistryCoreError, decodeRecordAt, type IndexRecord } from '../../plugins/registry-core/index';
import { fsyncDirectory } from '../../plugins/registry-core/atomic-file';
import { fileLockKey, withFileLock } from '../../plugins/registry-core/lock';
import {
  DB_FILE,
  DB_LOCK_KEY,
  KeyedLock,
  LOCKS_DIR,
  TEMP_PREFIX,
  TOKEN_STORE_FILE,
  UPSTREAM_CACHE_DIR,
  scanPackagesSync,
  verifyStorage,
} from '../../plugins/verdaccio-registry-storage/offline-tools';
import { DATA_DIR, MANIFEST_FORMAT, MANIFEST_NAME, MANIFEST_VERSION, formatManifest, type BackupManifest, type ManifestFile, type Role } from './backup-manifest';
import type { StateLayout } from './state-layout';

export interface BackupOptions {
  /** also capture `storage/.upstream/` (the upstream cache) */
  upstreamCache?: boolean;
  /** `<name>@<version>` of this tool, recorded in the manifest */
  writtenBy: string;
  /** how long to wait for one package's lock (default 30 s, the store's own default) */
  lockTimeoutMs?: number;
  /** progress: a phase and counts (stderr in the CLI) */
  onProgress?: (event: BackupProgress) => void;
}

export type BackupProgress =
  | { phase: 'packages'; done: number; total: number; name: string }
  | { phase: 'state'; what: string }
  | { phase: 'verify' }
  | { phase: 'pack'; files: number; bytes: number };

export interface BackupSummary {
  file: string;
  manifest: BackupManifest;
  bytes: number;
  /** index records left out because their change came after the package was captured */
  recordsAfterSnapshot: number;
}

export class BackupError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BackupError';
  }
}

function isErrno(error: unknown, ...codes: string[]): boolean {
  return typeof error === 'object' && error !== null && codes.includes((error as NodeJS.ErrnoException).code ?? '');
}

/** Captures one file: a hard link when the file system allows it, else a byte copy. */
class Capturer {
  links = true;
  constructor(readonly root: string) {}

  file(source: string, archivePath: string): void {
    const target = join(this.root, ...archivePath.split('/'));
    mkdirSync(dirname(target), { recursive: true });
    if (this.links) {
      try {
        linkSync(source, target);
        return;
      } catch (error) {
        if (isErrno(error, 'ENOENT')) throw error;
        if (!isErrno(error, 'EXDEV', 'EPERM', 'EACCES', 'ENOTSUP', 'EOPNOTSUPP', 'EMLINK')) throw error;
        this.links = false; // another file system (or links not allowed): copy from now on
      }
    }
    copyFileSync(source, target);
  }

  write(archivePath: string, data: Buffer | string): void {
    const target = join(this.root, ...archivePath.split('/'));
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, data, { mode: 0o600 });
  }

  /** A small state file read once (one read of an atomically replaced file is one whole version). */
  copy(source: string, archivePath: string): void {
    const target = join(this.root, ...archivePath.split('/'));
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, readFileSync(source), { mode: statSync(source).mode & 0o777 });
  }

  folder(archivePath: string): void {
    // keys/ and signing-keys/ hold private keys: the folder is restored as it is archived
    mkdirSync(join(this.root, ...archivePath.split('/')), { recursive: true, mode: 0o700 });
  }
}

/** Regular files directly in `dir` (never temp files), [] when it does not exist. */
function filesIn(dir: string): string[] {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch (error) {
    if (isErrno(error, 'ENOENT', 'ENOTDIR')) return [];
    throw error;
  }
  return entries.filter((entry) => entry.isFile() && !entry.name.startsWith(TEMP_PREFIX)).map((entry) => entry.name).sort();
}

/** A package folder's files (package.json + tarballs), captured; false when the package is not there. */
function capturePackage(capture: Capturer, root: string, name: string, archiveRoot: string): boolean {
  const dir = join(root, ...name.split('/'));
  const files = filesIn(dir);
  if (!files.includes('package.json')) return false;
  for (const file of files) {
    try {
      capture.file(join(dir, file), `${archiveRoot}/${name}/${file}`);
    } catch (error) {
      // a stray file removed meanwhile by a sweep: nothing of ours (writes are under this lock)
      if (!isErrno(error, 'ENOENT')) throw error;
    }
  }
  return true;
}

/** A flat folder of single files (keys/, signing-keys/): copied whole, each file once. */
function captureFolder(capture: Capturer, dir: string, archivePath: string): boolean {
  if (!existsSync(dir)) return false;
  capture.folder(archivePath);
  for (const file of filesIn(dir)) capture.copy(join(dir, file), `${archivePath}/${file}`);
  return true;
}

/** A single small state file (htpasswd, the token store, config.yaml…): copied, never linked, so an in-place edit later cannot change the archived bytes. */
function captureFile(capture: Capturer, file: string, archivePath: string): boolean {
  try {
    capture.copy(file, archivePath);
    return true;
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return false;
    throw error;
  }
}

/** registry.lockb read whole, under the core's lock (no header write is half done). */
async function readLockb(lockbPath: string): Promise<Buffer> {
  if (!existsSync(lockbPath)) throw new BackupError(`${lockbPath} does not exist: is this a registry folder? (pass --config <config.yaml>)`);
  const real = realpathSync(lockbPath);
  return withFileLock(real, () => readFileSync(real));
}

interface LocatedRecord {
  record: IndexRecord;
  offset: number;
  next: number;
}

/** The index records with their offsets; stops at the first record that does not verify (an append in flight). */
function locatedRecords(buf: Buffer): LocatedRecord[] {
  const out: LocatedRecord[] = [];
  let at = HEADER_SIZE;
  while (at < buf.length) {
    const result = decodeRecordAt(buf, at);
    if (!result.ok) break;
    out.push({ record: result.record, offset: at, next: result.next });
    at = result.next;
  }
  return out;
}

/** Walks the staging folder: every file with its size and sha512. */
async function hashTree(root: string): Promise<ManifestFile[]> {
  const out: ManifestFile[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const full = join(dir, entry.name);
      if (entry.isDirectory()) await walk(full);
      else if (entry.isFile()) out.push({ path: relative(root, full).split(sep).join('/'), ...(await hashFile(full)) });
      else throw new BackupError(`${full}: not a file or folder; a backup holds nothing else`);
    }
  };
  await walk(join(root, DATA_DIR));
  return out;
}

export async function hashFile(file: string): Promise<{ size: number; sha512: string }> {
  const hash = createHash('sha512');
  let size = 0;
  for await (const chunk of createReadStream(file)) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { size, sha512: hash.digest('hex') };
}

function stagingFolderNear(candidates: string[]): string {
  for (const parent of candidates) {
    const dir = join(parent, `${TEMP_PREFIX}${process.pid}-${randomBytes(4).toString('hex')}-backup`);
    try {
      mkdirSync(dir, { mode: 0o700 });
      return dir;
    } catch (error) {
      if (!isErrno(error, 'EACCES', 'EPERM', 'EROFS', 'ENOENT')) throw error;
    }
  }
  throw new BackupError(`no writable folder for the staging copy (tried ${candidates.join(', ')})`);
}

/** The archive's bytes on disk before its name is (a failed fsync of a file is an error, unlike a folder's). */
function fsyncFile(path: string): void {
  const fd = openSync(path, 'r+');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function countVersions(storageRoot: string, names: string[]): number {
  let versions = 0;
  for (const name of names) {
    try {
      const doc = JSON.parse(readFileSync(join(storageRoot, ...name.split('/'), 'package.json'), 'utf8')) as { versions?: Record<string, unknown> };
      versions += Object.keys(doc.versions ?? {}).length;
    } catch {
      // verifyStorage names an unreadable packument
    }
  }
  return versions;
}

export async function createBackup(layout: StateLayout, outFile: string, options: BackupOptions): Promise<BackupSummary> {
  const progress = options.onProgress ?? (() => undefined);
  const storage = layout.storageDir;
  if (!existsSync(storage) || !statSync(storage).isDirectory()) throw new BackupError(`storage folder ${storage} does not exist (check storage: in ${layout.configPath})`);
  // the same folder the registry state is in: links are free there; else next to the output, else tmp (copies)
  const staging = stagingFolderNear([layout.configDir, dirname(outFile), tmpdir()]);
  const capture = new Capturer(staging);
  try {
    const before = await readLockb(layout.lockbPath);
    const locks = new KeyedLock(join(storage, LOCKS_DIR), { timeoutMs: options.lockTimeoutMs ?? 30_000 });
    const upstreamRoot = join(storage, UPSTREAM_CACHE_DIR);
    const names = new Set<string>(scanPackagesSync(storage));
    for (const { record } of locatedRecords(before)) if (record.kind !== 'self-reference') names.add(record.name);
    if (options.upstreamCache) for (const name of scanPackagesSync(upstreamRoot)) names.add(name);

    // 1. each package under its lock; the index size at that moment is its cut-off
    const cutoff = new Map<string, number>();
    const local: string[] = [];
    const ordered = [...names].sort();
    for (const [i, name] of ordered.entries()) {
      await locks.withLock(name, async () => {
        if (capturePackage(capture, storage, name, `${DATA_DIR}/storage`)) local.push(name);
        if (options.upstreamCache) capturePackage(capture, upstreamRoot, name, `${DATA_DIR}/storage/${UPSTREAM_CACHE_DIR}`);
        cutoff.set(name, statSync(layout.lockbPath).size);
      });
      progress({ phase: 'packages', done: i + 1, total: ordered.length, name });
    }

    // 2. the package list, under its own lock, naming exactly the captured packages
    progress({ phase: 'state', what: 'package list and tokens' });
    const captured = new Set(local);
    await locks.withLock(DB_LOCK_KEY, async () => {
      const dbPath = join(storage, DB_FILE);
      if (!existsSync(dbPath)) return;
      const db = JSON.parse(readFileSync(dbPath, 'utf8')) as { list?: unknown; secret?: unknown };
      const listed = Array.isArray(db.list) ? db.list.filter((name): name is string => typeof name === 'string') : [];
      const list = [...listed.filter((name) => captured.has(name)), ...local.filter((name) => !listed.includes(name))];
      capture.write(`${DATA_DIR}/storage/${DB_FILE}`, JSON.stringify({ ...db, list }));
    });
    // other files at the storage root: the token store under its own lock (the one its writers take), anything else of ours
    for (const file of filesIn(storage)) {
      if (file === DB_FILE) continue;
      const path = join(storage, file);
      if (file === TOKEN_STORE_FILE) await withFileLock(fileLockKey(path), () => captureFile(capture, path, `${DATA_DIR}/storage/${file}`));
      else captureFile(capture, path, `${DATA_DIR}/storage/${file}`);
    }
    if (options.upstreamCache) for (const file of filesIn(upstreamRoot)) captureFile(capture, join(upstreamRoot, file), `${DATA_DIR}/storage/${UPSTREAM_CACHE_DIR}/${file}`);

    // 3. users, keys, config
    progress({ phase: 'state', what: 'users, keys, config' });
    const roles: Role[] = ['storage', 'registry.lockb'];
    if (captureFolder(capture, layout.keysDir, `${DATA_DIR}/keys`)) roles.push('keys');
    if (captureFolder(capture, layout.signingKeysDir, `${DATA_DIR}/signing-keys`)) roles.push('signing-keys');
    // users: htpasswd and its first-user record under the lock the htpasswd writer takes
    if (existsSync(dirname(layout.htpasswd))) {
      await withFileLock(fileLockKey(layout.htpasswd), () => {
        if (captureFile(capture, layout.htpasswd, `${DATA_DIR}/htpasswd`)) roles.push('htpasswd');
        if (captureFile(capture, layout.firstUser, `${DATA_DIR}/htpasswd.first-user`)) roles.push('htpasswd.first-user');
      });
    }
    if (captureFile(capture, layout.envFile, `${DATA_DIR}/.env.local`)) roles.push('.env.local');
    if (layout.hasConfig && captureFile(capture, layout.configPath, `${DATA_DIR}/config.yaml`)) roles.push('config.yaml');

    // 4. registry.lockb: today's header + the records whose change the snapshot holds
    progress({ phase: 'state', what: 'registry.lockb' });
    const after = await readLockb(layout.lockbPath);
    const beforeEnd = locatedRecords(before).at(-1)?.next ?? HEADER_SIZE;
    if (after.length < beforeEnd || !after.subarray(HEADER_SIZE, beforeEnd).equals(before.subarray(HEADER_SIZE, beforeEnd))) {
      throw new BackupError('the package index was rewritten during the backup (rebuild-index or a format migration); nothing was written — run the backup again');
    }
    const kept: Buffer[] = [after.subarray(0, HEADER_SIZE)];
    let left = 0;
    for (const { record, offset, next } of locatedRecords(after)) {
      const keep =
        record.kind === 'self-reference'
          ? true
          : record.kind === 'cache' && !options.upstreamCache
            ? false
            : offset < (cutoff.get(record.name) ?? -1);
      if (keep) kept.push(after.subarray(offset, next));
      else if (record.kind !== 'cache') left += 1;
    }
    capture.write(`${DATA_DIR}/registry.lockb`, Buffer.concat(kept));

    // 5. audit.log: append-only; whole lines only
    if (existsSync(layout.auditLog)) {
      const text = readFileSync(layout.auditLog);
      const end = text.lastIndexOf(0x0a) + 1;
      capture.write(`${DATA_DIR}/audit.log`, text.subarray(0, end));
      roles.push('audit.log');
    }

    // 6. verify the snapshot as restore will (copy, then verify)
    progress({ phase: 'verify' });
    const stagedStorage = join(staging, DATA_DIR, 'storage');
    const problems = verifyStorage(stagedStorage, join(staging, DATA_DIR, 'registry.lockb'));
    if (problems.length > 0) {
      throw new BackupError(
        `the snapshot does not verify, so it could not be restored; nothing was written. Fix the registry first (\`registry doctor\` names each fault):\n  ${problems.slice(0, 20).join('\n  ')}${problems.length > 20 ? `\n  … and ${problems.length - 20} more` : ''}`,
      );
    }

    // 7. manifest + archive (temp file next to the output, then rename: never a half archive under FILE)
    const files = await hashTree(staging);
    const manifest: BackupManifest = {
      format: MANIFEST_FORMAT,
      formatVersion: MANIFEST_VERSION,
      created: new Date().toISOString(),
      writtenBy: options.writtenBy,
      upstreamCache: options.upstreamCache === true,
      packages: local.length,
      versions: countVersions(stagedStorage, local),
      roles,
      files,
    };
    writeFileSync(join(staging, MANIFEST_NAME), formatManifest(manifest));
    const bytes = files.reduce((sum, file) => sum + file.size, 0);
    progress({ phase: 'pack', files: files.length, bytes });
    const temp = join(dirname(outFile), `${TEMP_PREFIX}${process.pid}-${randomBytes(4).toString('hex')}-${basename(outFile)}`);
    try {
      await tar.create({ gzip: true, file: temp, cwd: staging, portable: true, noDirRecurse: false }, [MANIFEST_NAME, DATA_DIR]);
      fsyncFile(temp);
      renameSync(temp, outFile);
      fsyncDirectory(dirname(outFile));
    } catch (error) {
      rmSync(temp, { force: true });
      throw error;
    }
    return { file: outFile, manifest, bytes: statSync(outFile).size, recordsAfterSnapshot: left };
  } catch (error) {
    if (error instanceof RegistryCoreError) throw new BackupError(`${error.message}${error.hint ? ` (${error.hint})` : ''}`, { cause: error });
    throw error;
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

