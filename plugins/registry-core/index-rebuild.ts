/**
 * Rebuilds the package index from a Verdaccio-layout storage folder
 * (`<storage>/<name>/package.json`, `<storage>/@scope/<name>/package.json`). The records replace
 * the old ones in place — ftruncate to the header, then one append — under the lockb lock, so the
 * inode (and every descriptor other processes hold) stays valid. The lock is taken BEFORE the
 * storage folder is read, so two rebuilds (or a rebuild and another lockb writer) in two
 * processes never write an index read from a folder state older than the last writer's.
 */
import { closeSync, existsSync, fsyncSync, ftruncateSync, openSync, readdirSync, readFileSync, realpathSync, statSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { REPAIR_HINT, RegistryCoreError } from './errors';
import { missingFile, readHeaderBytes } from './header-file';
import { encodeRecord, type IndexRecord } from './index-record';
import { HEADER_SIZE, MAGIC } from './layout';
import { withFileLockSync } from './lock';

interface Packument {
  name?: unknown;
  versions?: Record<string, { dist?: { integrity?: unknown }; deprecated?: unknown } | undefined>;
  time?: Record<string, unknown>;
  'dist-tags'?: Record<string, unknown>;
}

export interface RebuildResult {
  records: number;
  packages: number;
  /** package.json files that could not be read as a packument (reported, never silently dropped) */
  skipped: { path: string; reason: string }[];
}

/** "sha512-<base64>" (possibly among other space-separated hashes) → 128 hex chars, or ''. */
export function sha512FromIntegrity(integrity: unknown): string {
  if (typeof integrity !== 'string') return '';
  for (const part of integrity.trim().split(/\s+/)) {
    if (!part.startsWith('sha512-')) continue;
    const digest = Buffer.from(part.slice('sha512-'.length).split('?')[0], 'base64');
    if (digest.length === 64) return digest.toString('hex');
  }
  return '';
}

function timeOf(value: unknown): number | undefined {
  const ms = typeof value === 'string' ? Date.parse(value) : Number.NaN;
  return Number.isFinite(ms) && ms >= 0 ? Math.trunc(ms) : undefined;
}

/** Package folders: plain names and @scope/name, skipping dot-files and dot-folders. */
function packageFolders(storageDir: string): { dir: string; name: string }[] {
  const result: { dir: string; name: string }[] = [];
  const visible = (dir: string) => readdirSync(dir, { withFileTypes: true }).filter((entry) => entry.isDirectory() && !entry.name.startsWith('.'));
  for (const entry of visible(storageDir)) {
    if (entry.name.startsWith('@')) {
      for (const inner of visible(join(storageDir, entry.name))) {
        result.push({ dir: join(storageDir, entry.name, inner.name), name: `${entry.name}/${inner.name}` });
      }
    } else {
      result.push({ dir: join(storageDir, entry.name), name: entry.name });
    }
  }
  return result.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

const KIND_ORDER: Record<string, number> = { publish: 0, deprecate: 1, 'dist-tag': 2 };

export function collectIndexRecords(storageDir: string): { records: IndexRecord[]; packages: number; skipped: RebuildResult['skipped'] } {
  const records: IndexRecord[] = [];
  const skipped: RebuildResult['skipped'] = [];
  let packages = 0;
  for (const { dir, name: folderName } of packageFolders(storageDir)) {
    const file = join(dir, 'package.json');
    if (!existsSync(file)) continue; // not a package folder (e.g. an empty scope)
    let packument: Packument;
    try {
      packument = JSON.parse(readFileSync(file, 'utf8')) as Packument;
      if (!packument || typeof packument !== 'object') throw new Error('not a JSON object');
    } catch (error) {
      skipped.push({ path: file, reason: error instanceof Error ? error.message : String(error) });
      continue;
    }
    const name = typeof packument.name === 'string' && packument.name !== '' ? packument.name : folderName;
    const times = packument.time ?? {};
    const modified = timeOf(times.modified) ?? timeOf(times.created) ?? 0;
    const versions = Object.entries(packument.versions ?? {});
    packages++;
    for (const [version, manifest] of versions) {
      const time = timeOf(times[version]) ?? modified;
      records.push({ kind: 'publish', name, version, sha512: sha512FromIntegrity(manifest?.dist?.integrity), time, detail: '' });
      if (typeof manifest?.deprecated === 'string' && manifest.deprecated !== '') {
        records.push({ kind: 'deprecate', name, version, sha512: '', time: Math.max(time, modified), detail: manifest.deprecated });
      }
    }
    for (const [tag, version] of Object.entries(packument['dist-tags'] ?? {})) {
      if (typeof version !== 'string') continue;
      const time = Math.max(timeOf(times[version]) ?? 0, modified);
      records.push({ kind: 'dist-tag', name, version, sha512: '', time, detail: tag });
    }
  }
  // stable sort: by time, and at equal times a version exists before a tag points at it
  records.sort((a, b) => a.time - b.time || (KIND_ORDER[a.kind] ?? 9) - (KIND_ORDER[b.kind] ?? 9));
  return { records, packages, skipped };
}

export function rebuildIndex(lockbPath: string, storageDir: string): RebuildResult {
  const absolute = resolve(lockbPath);
  if (!existsSync(absolute)) throw missingFile(absolute);
  const storage = resolve(storageDir);
  if (!existsSync(storage) || !statSync(storage).isDirectory()) {
    throw new RegistryCoreError('ERR_STORAGE_MISSING', `storage folder ${storage} does not exist`, { hint: 'check `storage:` in config.yaml or pass --config' });
  }
  const path = realpathSync(absolute);
  // the lock first, then the storage read: a writer that holds the lock (config set, another
  // rebuild) finishes before the folder is read, so what is written is what the folder held
  return withFileLockSync(path, () => {
    const { records, packages, skipped } = collectIndexRecords(storage);
    writeIndexRecords(path, records);
    return { records: records.length, packages, skipped };
  });
}

/**
 * Replaces every index record of registry.lockb with `records` (the header stays), under the
 * lockb lock. Used by the PostgreSQL backend's index mirror (docs/database.md), whose records
 * come from the shared index.
 */
export function replaceIndexRecords(lockbPath: string, records: readonly IndexRecord[]): void {
  const absolute = resolve(lockbPath);
  if (!existsSync(absolute)) throw missingFile(absolute);
  const path = realpathSync(absolute);
  withFileLockSync(path, () => writeIndexRecords(path, records));
}

/** ftruncate to the header, then one append, fsync: the inode (and every descriptor other processes hold) stays valid. Caller holds the lock. */
function writeIndexRecords(path: string, records: readonly IndexRecord[]): void {
  const encoded = Buffer.concat(records.map(encodeRecord));
  const fd = openSync(path, 'r+');
  let appendFd: number | undefined;
  try {
    const header = readHeaderBytes(fd);
    if (header.length < HEADER_SIZE || !MAGIC.every((byte, i) => header[i] === byte)) {
      throw new RegistryCoreError('ERR_LOCKB_MAGIC', `${path} does not start with a registry.lockb header; not rebuilding its index`, { hint: REPAIR_HINT });
    }
    ftruncateSync(fd, HEADER_SIZE);
    appendFd = openSync(path, 'a');
    if (encoded.length > 0 && writeSync(appendFd, encoded) !== encoded.length) {
      throw new RegistryCoreError('ERR_INDEX_CORRUPT', `${path}: short write while rebuilding the index`, { hint: 'free disk space and run rebuild-index again' });
    }
    fsyncSync(appendFd);
  } finally {
    closeSync(fd);
    if (appendFd !== undefined) closeSync(appendFd);
  }
}
