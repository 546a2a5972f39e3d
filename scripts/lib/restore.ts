/**
 * `registry restore FILE [--into DIR] [--force]` (docs/backup.md). Order, so that a bad archive
 * changes nothing:
 *
 * 1. refuse a folder a registry is running on (a process holds its registry.lockb open), and a
 *    non-empty folder unless `--force`;
 * 2. unpack into a staging folder inside the target folder (regular files and folders only, no
 *    links, no path outside it), then check the manifest (`parseManifest`), that the staging
 *    folder holds exactly the files it lists with their sizes and sha512, that registry.lockb's
 *    header verifies, and every stored version's tarball against its packument's dist.integrity
 *    and the index against the storage (the storage part's `verifyStorage`);
 * 3. only then swap, one rename per item (the storage folder, keys/, signing-keys/, each file):
 *    the current item is renamed aside first; any failure renames everything back, so the target
 *    is as it was. The set-aside copies are removed once every item is in place.
 */
import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, realpathSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import * as tar from 'tar';
import { fsyncDirectory } from '../../plugins/registry-core/atomic-file';
import { inspectConfigFile, scanRecords } from '../../plugins/registry-core/index';
import { TEMP_PREFIX, verifyStorage } from '../../plugins/verdaccio-registry-storage/offline-tools';
import { DATA_DIR, MANIFEST_NAME, ROLES, parseManifest, roleOfPath, type BackupManifest, type Role } from './backup-manifest';
import { hashFile } from './backup';
import { pathOfRole, type StateLayout } from './state-layout';

export class RestoreError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RestoreError';
  }
}

export interface RestoreOptions {
  force?: boolean;
  onProgress?: (message: string) => void;
}

export interface RestoreSummary {
  manifest: BackupManifest;
  /** role → where it now is */
  placed: Array<{ role: Role; path: string }>;
  /** a role the target's own config.yaml was kept for */
  keptConfig: boolean;
}

/** Processes (other than this one) holding `file` open, by /proc (Linux); [] where /proc is absent. */
export function processesHolding(file: string): Array<{ pid: number; command: string }> {
  let target: string;
  try {
    target = realpathSync(file);
  } catch {
    return [];
  }
  const found: Array<{ pid: number; command: string }> = [];
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return [];
  }
  for (const pid of pids) {
    if (Number(pid) === process.pid) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue; // gone, or another user's process we may not inspect
    }
    const holds = fds.some((fd) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`) === target;
      } catch {
        return false;
      }
    });
    if (!holds) continue;
    let command = '';
    try {
      command = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
    } catch {
      // exited meanwhile
    }
    found.push({ pid: Number(pid), command });
  }
  return found;
}

/** Every file below `root`, `/`-separated, relative to `base`. Anything but files and folders is an error. */
function listTree(root: string, base: string, out: string[] = []): string[] {
  for (const entry of readdirSync(root, { withFileTypes: true })) {
    const full = join(root, entry.name);
    if (entry.isDirectory()) listTree(full, base, out);
    else if (entry.isFile()) out.push(relative(base, full).split(sep).join('/'));
    else throw new RestoreError(`the archive holds ${relative(base, full)}, which is neither a file nor a folder: refused`);
  }
  return out;
}

/** Unpacks and checks everything; returns the manifest. Throws RestoreError on the first fault. */
export async function unpackAndVerify(archive: string, staging: string, progress: (message: string) => void): Promise<BackupManifest> {
  if (!existsSync(archive) || !statSync(archive).isFile()) throw new RestoreError(`${archive}: no such backup file`);
  const refused: string[] = [];
  try {
    await tar.extract({
      file: archive,
      cwd: staging,
      strict: true,
      preserveOwner: false,
      // only files and folders, only the manifest and data/: no links, devices or stray names
      filter: (path, entry) => {
        const type = (entry as { type?: string }).type;
        const clean = path.replace(/^\.\//, '').replace(/\/$/, '');
        const allowed = (type === 'File' || type === 'OldFile' || type === 'Directory') && (clean === MANIFEST_NAME || clean === DATA_DIR || clean.startsWith(`${DATA_DIR}/`));
        if (!allowed) refused.push(`${path} (${type})`);
        return allowed;
      },
      onwarn: (_code, message) => refused.push(String(message)),
    });
  } catch (error) {
    throw new RestoreError(`${archive} is not a readable backup archive (gzip tar): ${(error as Error).message}`);
  }
  if (refused.length > 0) throw new RestoreError(`the archive holds entries a backup never has: ${refused.slice(0, 5).join(', ')}`);
  const manifestPath = join(staging, MANIFEST_NAME);
  if (!existsSync(manifestPath)) throw new RestoreError(`${archive} has no ${MANIFEST_NAME}: not a registry backup`);
  let manifest: BackupManifest;
  try {
    manifest = parseManifest(readFileSync(manifestPath, 'utf8'));
  } catch (error) {
    throw new RestoreError((error as Error).message);
  }
  progress(`manifest: ${manifest.files.length} files, ${manifest.packages} packages, ${manifest.versions} versions, taken ${manifest.created}`);

  // exactly the listed files, each with its size and sha512
  const present = existsSync(join(staging, DATA_DIR)) ? listTree(join(staging, DATA_DIR), staging) : [];
  const listed = new Map(manifest.files.map((file) => [file.path, file]));
  for (const path of present) {
    if (!listed.has(path)) throw new RestoreError(`${path} is in the archive but not in its manifest: refused (tampered or damaged)`);
    const role = roleOfPath(path);
    if ('problem' in role) throw new RestoreError(role.problem);
  }
  let checked = 0;
  for (const file of manifest.files) {
    const full = join(staging, ...file.path.split('/'));
    if (!existsSync(full)) throw new RestoreError(`${file.path} is in the manifest but not in the archive: refused (damaged)`);
    const actual = await hashFile(full);
    if (actual.size !== file.size || actual.sha512 !== file.sha512) {
      throw new RestoreError(`${file.path}: sha512 ${actual.sha512.slice(0, 16)}… (${actual.size} bytes) does not match the manifest's ${file.sha512.slice(0, 16)}… (${file.size} bytes): refused (tampered or damaged)`);
    }
    checked += 1;
  }
  progress(`sha512 verified for ${checked} files`);

  const lockb = join(staging, DATA_DIR, 'registry.lockb');
  const header = inspectConfigFile(lockb);
  if (!header.ok) throw new RestoreError(`registry.lockb in the archive: ${header.error.message}`);
  try {
    const scan = scanRecords(readFileSync(lockb), 'registry.lockb');
    if (scan.tail) throw new RestoreError(`registry.lockb in the archive ends in a damaged record (${scan.tail.reason})`);
  } catch (error) {
    if (error instanceof RestoreError) throw error;
    throw new RestoreError(`registry.lockb in the archive: ${(error as Error).message}`);
  }
  const storage = join(staging, DATA_DIR, 'storage');
  mkdirSync(storage, { recursive: true }); // a registry without packages has an empty storage folder
  const problems = verifyStorage(storage, lockb);
  if (problems.length > 0) {
    throw new RestoreError(`the archive's storage does not verify: ${problems.slice(0, 10).join('; ')}${problems.length > 10 ? ` … and ${problems.length - 10} more` : ''}`);
  }
  progress(`every tarball matches its dist.integrity; the index describes the storage`);
  return manifest;
}

/** Whether the folder holds anything besides config.yaml (which restore keeps). */
function nonEmptyEntries(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((name) => name !== 'config.yaml' && !name.startsWith(TEMP_PREFIX));
}

export async function restoreBackup(archive: string, layout: StateLayout, options: RestoreOptions = {}): Promise<RestoreSummary> {
  const progress = options.onProgress ?? (() => undefined);
  const dir = layout.configDir;
  const running = processesHolding(layout.lockbPath);
  if (running.length > 0) {
    throw new RestoreError(
      `a registry is running on ${dir} (pid ${running.map((p) => `${p.pid}: ${p.command.slice(0, 120)}`).join('; ')} holds ${layout.lockbPath} open): stop it first — a restore never replaces the state under a running registry, --force or not`,
    );
  }
  const existing = nonEmptyEntries(dir);
  if (existing.length > 0 && !options.force) {
    throw new RestoreError(`${dir} is not empty (${existing.slice(0, 6).join(', ')}${existing.length > 6 ? ', …' : ''}): restore into an empty folder (--into DIR), or pass --force to replace what the backup holds`);
  }
  const createdDir = !existsSync(dir);
  mkdirSync(dir, { recursive: true });
  const staging = join(dir, `${TEMP_PREFIX}${process.pid}-${randomBytes(4).toString('hex')}-restore`);
  mkdirSync(staging, { mode: 0o700 });
  const stamp = `${TEMP_PREFIX}${process.pid}-${randomBytes(4).toString('hex')}-pre-restore`;
  const done: Array<{ target: string; aside: string | null }> = [];
  const copies: string[] = [];
  try {
    const manifest = await unpackAndVerify(archive, staging, progress);
    const keptConfig = layout.hasConfig && manifest.roles.includes('config.yaml');
    const roles = manifest.roles.filter((role) => !(role === 'config.yaml' && layout.hasConfig));
    const placed: RestoreSummary['placed'] = [];
    for (const role of roles) {
      const source = join(staging, DATA_DIR, role);
      if (ROLES[role] === 'dir') mkdirSync(source, { recursive: true, mode: 0o700 });
      const target = pathOfRole(layout, role);
      mkdirSync(dirname(target), { recursive: true });
      let from = source;
      // a rename cannot cross file systems: copy next to the target first (same bytes, just verified)
      if (statSync(dirname(target)).dev !== statSync(staging).dev) {
        from = join(dirname(target), `${stamp}-${role}`);
        copies.push(from);
        cpSync(source, from, { recursive: true, preserveTimestamps: true });
      }
      const aside = existsSync(target) ? `${target}.${stamp}` : null;
      if (aside !== null) renameSync(target, aside);
      try {
        renameSync(from, target);
      } catch (error) {
        if (aside !== null) renameSync(aside, target);
        throw error;
      }
      done.push({ target, aside });
      placed.push({ role, path: target });
    }
    for (const parent of new Set(done.map((item) => dirname(item.target)))) fsyncDirectory(parent);
    for (const item of done) if (item.aside !== null) rmSync(item.aside, { recursive: true, force: true });
    return { manifest, placed, keptConfig };
  } catch (error) {
    // put back what was swapped, newest first: the target is as it was
    for (const item of done.reverse()) {
      try {
        rmSync(item.target, { recursive: true, force: true });
        if (item.aside !== null) renameSync(item.aside, item.target);
      } catch {
        // reported below with the original error
      }
    }
    throw error;
  } finally {
    rmSync(staging, { recursive: true, force: true });
    for (const copy of copies) rmSync(copy, { recursive: true, force: true });
    if (createdDir && done.length === 0) rmSync(dir, { recursive: true, force: true });
  }
}
