/**
 * What the last verification of the storage folder against registry.lockb established, so a
 * restart need not read and parse every package.json again (issue 17: 3,000 packages cost ≈ 300 ms
 * of JSON reads per start).
 *
 * The file `.registry-verified` in the storage folder (a dot-name: never a package, never swept)
 * says, per package: "the package.json with this file identity (dev, ino, size, mtime ns, ctime ns)
 * held exactly the versions, dist-tags and deprecations whose digest is D, and the index said the
 * same". A later start trusts a package without reading it only when its package.json has the
 * same identity AND the index, folded now, gives the same digest D — then the file and the index
 * still agree. Anything else (a new package, a file written since, an index changed by a publish,
 * a torn record dropped, a rebuild) is read and compared as before.
 *
 * ctime is in the identity because nothing in user space can set it: an edit that restores mtime
 * and size (`touch -r`, `rsync -t`, an editor) still changes ctime, and a restored backup or a
 * copied folder gets new ctimes (and inodes).
 *
 * Racy timestamps (git's "racy index"): a file changed again in the same timestamp tick as the
 * stat that was recorded would keep its identity. Every recorded stat is taken after `takenAtNs`
 * (the wall clock before the walk); a change after it gets a timestamp of at least
 * takenAtNs − (clock tick + the file system's granularity). So an entry is trusted only if its
 * mtime and ctime are older than takenAtNs − RACY_MARGIN_NS, a margin (2 s) above any tick and
 * the coarsest granularity in use (FAT: 2 s, ext3/HFS+: 1 s); younger files are always read.
 * Limits: the file timestamps are taken to come from this host's clock (a network file system
 * whose server clock runs behind by more than the margin weakens the racy rule), and a wall clock
 * stepped back by more than the margin could, in theory, give a rewritten file its old timestamps
 * to the nanosecond; ctime, size and inode must match too.
 *
 * The same record lets the start-up sweep skip listing a package folder whose identity is unchanged
 * since a listing that held no temp file (FolderListings; a directory's mtime and ctime change with
 * every entry added, removed or renamed in it), by the same racy rule.
 *
 * A missing file means "read everything" (first start, adopted storage); a damaged one (its
 * SHA-256 over the body does not verify, or any line does not parse) too, and is reported.
 */
import { hash } from 'node:crypto';
import { closeSync, fstatSync, openSync, readFileSync, statSync, type BigIntStats } from 'node:fs';
import { join } from 'node:path';
import { packageFolders } from '../registry-core/storage-folders';
import type { IndexedPackage } from '../registry-core/index';
import type { PackageFolderListing } from './atomic';
import { isErrno } from './errors';

export const VERIFIED_FILE = '.registry-verified';
const MAGIC_LINE = '#registry-verified v1 sha256=';
/** See the module comment: files younger than this before the walk are never trusted. */
export const RACY_MARGIN_NS = 2_000_000_000n;

export interface FileIdentity {
  dev: bigint;
  ino: bigint;
  size: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

export interface VerifiedEntry extends FileIdentity {
  /** indexDigest of the index entry the file was found to match */
  digest: string;
  /**
   * The package folder's identity, stat'ed before a listing that held no temp file (start-up sweep,
   * atomic.ts): while it is unchanged no entry was added or removed, so the sweep need not list it.
   * null: list it at the next start.
   */
  folder: FileIdentity | null;
}

export interface VerifiedStates {
  /** ns since the epoch (wall clock) before any recorded stat was taken */
  takenAtNs: bigint;
  entries: Map<string, VerifiedEntry>;
}

export function identityOf(stat: BigIntStats): FileIdentity {
  return { dev: stat.dev, ino: stat.ino, size: stat.size, mtimeNs: stat.mtimeNs, ctimeNs: stat.ctimeNs };
}

export function sameIdentity(a: FileIdentity, b: FileIdentity): boolean {
  return a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs;
}

function sortedPairs(record: Record<string, string>): [string, string][] {
  return Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * 128 bits of SHA-256 over what reconciliation compares (indexMatches in verify.ts): the version
 * set, the dist-tags and the deprecations; '-' for a package the index does not know.
 */
export function indexDigest(entry: IndexedPackage | undefined): string {
  if (entry === undefined) return '-';
  const canonical = JSON.stringify([[...entry.versions].sort(), sortedPairs(entry.distTags), sortedPairs(entry.deprecated)]);
  return hash('sha256', canonical, 'hex').slice(0, 32);
}

/** Whether a package can be taken as matching the index without reading its package.json. */
export function trustedEntry(previous: VerifiedStates | null, name: string, now: FileIdentity, digest: string, marginNs = RACY_MARGIN_NS): VerifiedEntry | null {
  const entry = previous?.entries.get(name);
  if (previous === null || entry === undefined || entry.digest !== digest) return null;
  return unchangedSince(previous, entry, now, marginNs) ? entry : null;
}

/** Same identity as recorded, and the recorded timestamps older than the record's time minus the margin (racy). */
function unchangedSince(previous: VerifiedStates, recorded: FileIdentity, now: FileIdentity, marginNs: bigint): boolean {
  const limit = previous.takenAtNs - marginNs;
  return sameIdentity(recorded, now) && recorded.mtimeNs < limit && recorded.ctimeNs < limit;
}

/** The folder of a package's files (what the sweep passes to PackageFolderListing). */
export function packageDirOf(storageDir: string, name: string): string {
  return join(storageDir, ...name.split('/'));
}

/**
 * The start-up sweep's PackageFolderListing from the previous record: a package folder whose
 * identity is unchanged (and not racy) is not listed; a folder that is listed has its identity
 * taken BEFORE the listing, kept in `clean` when the listing held no temp file.
 */
export class FolderListings implements PackageFolderListing {
  /** package folder → the identity to record for it */
  readonly clean = new Map<string, FileIdentity>();
  readonly #before = new Map<string, FileIdentity>();
  readonly #previous: VerifiedStates | null;
  readonly #recorded = new Map<string, FileIdentity>();
  readonly #marginNs: bigint;

  constructor(storageDir: string, previous: VerifiedStates | null, marginNs = RACY_MARGIN_NS) {
    this.#previous = previous;
    this.#marginNs = marginNs;
    for (const [name, entry] of previous?.entries ?? []) if (entry.folder !== null) this.#recorded.set(packageDirOf(storageDir, name), entry.folder);
  }

  unchanged(dir: string): boolean {
    const stat = statSync(dir, { bigint: true, throwIfNoEntry: false });
    if (stat === undefined) return false;
    const now = identityOf(stat);
    const recorded = this.#recorded.get(dir);
    if (this.#previous !== null && recorded !== undefined && unchangedSince(this.#previous, recorded, now, this.#marginNs)) {
      this.clean.set(dir, recorded);
      return true;
    }
    this.#before.set(dir, now);
    return false;
  }

  listed(dir: string, clean: boolean): void {
    const before = this.#before.get(dir);
    if (clean && before !== undefined) this.clean.set(dir, before);
  }
}

/** `states` with each entry's folder identity from `folderOf` (null: list that folder next time). */
export function withFolders(states: VerifiedStates, storageDir: string, folderOf: (name: string, dir: string) => FileIdentity | null): VerifiedStates {
  const entries = new Map<string, VerifiedEntry>();
  for (const [name, entry] of states.entries) entries.set(name, { ...entry, folder: folderOf(name, packageDirOf(storageDir, name)) });
  return { takenAtNs: states.takenAtNs, entries };
}

/**
 * At exit (no sweep runs): a folder identity recorded at start-up is kept only while the folder
 * still has it — a write since then (a publish's temp file, a new tarball) changed it.
 */
export function foldersStillUnchanged(previous: VerifiedStates): (name: string, dir: string) => FileIdentity | null {
  return (name, dir) => {
    const recorded = previous.entries.get(name)?.folder ?? null;
    if (recorded === null) return null;
    const stat = statSync(dir, { bigint: true, throwIfNoEntry: false });
    return stat !== undefined && sameIdentity(recorded, identityOf(stat)) ? recorded : null;
  };
}

const DIGEST = /^(?:-|[0-9a-f]{32})$/;
const NUMBER = /^(?:0|[1-9][0-9]*)$/;
const N = '(0|[1-9][0-9]*)';
/** name, 5 identity numbers, the digest, then '-' or the folder's 5 numbers joined by ':' (encodeVerified) */
const LINE = new RegExp(`^([^\\t]*)\\t${N}\\t${N}\\t${N}\\t${N}\\t${N}\\t(-|[0-9a-f]{32})\\t(-|${N}:${N}:${N}:${N}:${N})$`);

/** Why a line LINE refused is malformed, in the words of the field it broke. */
function lineProblem(line: string, i: number): string {
  const fields = line.split('\t');
  if (fields.length !== 8) return `line ${i + 2}: ${fields.length} fields, expected 8`;
  const [name, dev, ino, size, mtimeNs, ctimeNs, digest] = fields;
  if (!recordableName(name)) return `line ${i + 2}: empty or repeated name`;
  if (![dev, ino, size, mtimeNs, ctimeNs].every((field) => NUMBER.test(field)) || !DIGEST.test(digest)) return `line ${i + 2}: malformed field`;
  return `line ${i + 2}: malformed folder identity`;
}

function sameFolder(a: FileIdentity | null, b: FileIdentity | null): boolean {
  return a === null || b === null ? a === b : sameIdentity(a, b);
}

/** Whether `next` records exactly what `previous` does (its time apart): then there is nothing to write. */
export function sameRecord(previous: VerifiedStates | null, next: VerifiedStates): boolean {
  if (previous === null || previous.entries.size !== next.entries.size) return false;
  for (const [name, entry] of next.entries) {
    const before = previous.entries.get(name);
    if (before === undefined || before.digest !== entry.digest || !sameIdentity(before, entry) || !sameFolder(before.folder, entry.folder)) return false;
  }
  return true;
}

/** Names that can sit on one line of the file; any other folder name is simply read at every start. */
export function recordableName(name: string): boolean {
  return name !== '' && !/[\t\n\r]/.test(name);
}

export function encodeVerified(states: VerifiedStates): string {
  const lines = [`${states.takenAtNs}`];
  for (const [name, e] of states.entries) {
    if (!recordableName(name)) continue;
    const folder = e.folder === null ? '-' : `${e.folder.dev}:${e.folder.ino}:${e.folder.size}:${e.folder.mtimeNs}:${e.folder.ctimeNs}`;
    lines.push(`${name}\t${e.dev}\t${e.ino}\t${e.size}\t${e.mtimeNs}\t${e.ctimeNs}\t${e.digest}\t${folder}`);
  }
  const body = `${lines.join('\n')}\n`;
  return `${MAGIC_LINE}${hash('sha256', body, 'hex')}\n${body}`;
}

export type DecodedVerified = { ok: true; states: VerifiedStates } | { ok: false; reason: string };

/** Never throws: any damage is a reason (and the caller reads every package.json). */
export function decodeVerified(text: string): DecodedVerified {
  const firstEnd = text.indexOf('\n');
  if (firstEnd < 0 || !text.startsWith(MAGIC_LINE)) return { ok: false, reason: 'not a .registry-verified file (first line)' };
  const sum = text.slice(MAGIC_LINE.length, firstEnd);
  const body = text.slice(firstEnd + 1);
  if (!/^[0-9a-f]{64}$/.test(sum) || hash('sha256', body, 'hex') !== sum) return { ok: false, reason: 'its SHA-256 does not match its content' };
  if (!body.endsWith('\n')) return { ok: false, reason: 'the last line is cut off' };
  const lines = body.slice(0, -1).split('\n');
  if (!NUMBER.test(lines[0])) return { ok: false, reason: 'no time on the second line' };
  const entries = new Map<string, VerifiedEntry>();
  for (let i = 1; i < lines.length; i += 1) {
    // one match per line (issue 17: the split and six tests per line were most of a cold parse);
    // the reasons stay the same as field-by-field checks would give
    const match = LINE.exec(lines[i]);
    if (match === null) return { ok: false, reason: lineProblem(lines[i], i) };
    const [, name, dev, ino, size, mtimeNs, ctimeNs, digest, folderField, fdev, fino, fsize, fmtime, fctime] = match;
    if (!recordableName(name) || entries.has(name)) return { ok: false, reason: `line ${i + 2}: empty or repeated name` };
    const folder: FileIdentity | null =
      folderField === '-' ? null : { dev: BigInt(fdev), ino: BigInt(fino), size: BigInt(fsize), mtimeNs: BigInt(fmtime), ctimeNs: BigInt(fctime) };
    entries.set(name, { dev: BigInt(dev), ino: BigInt(ino), size: BigInt(size), mtimeNs: BigInt(mtimeNs), ctimeNs: BigInt(ctimeNs), digest, folder });
  }
  return { ok: true, states: { takenAtNs: BigInt(lines[0]), entries } };
}

/** null when there is none; a reason when it is there but unusable (the caller reports it). */
export function readVerified(storageDir: string): { states: VerifiedStates | null; problem?: string } {
  let text: string;
  try {
    text = readFileSync(join(storageDir, VERIFIED_FILE), 'utf8');
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return { states: null };
    return { states: null, problem: `${VERIFIED_FILE} unreadable (${(error as Error).message})` };
  }
  const decoded = decodeVerified(text);
  return decoded.ok ? { states: decoded.states } : { states: null, problem: `${VERIFIED_FILE} ignored: ${decoded.reason}` };
}

export interface StoredPackageFile {
  name: string;
  /** the package.json */
  path: string;
  identity: FileIdentity;
}

/**
 * The storage folder's packages with one bigint stat of each package.json — the same list as
 * scanPackagesSync (core packageFolders, those with a package.json file), sorted by name.
 */
export function storedPackageFiles(storageDir: string): StoredPackageFile[] {
  const found: StoredPackageFile[] = [];
  for (const folder of packageFolders(storageDir)) {
    const path = join(folder.dir, 'package.json');
    const stat = statSync(path, { bigint: true, throwIfNoEntry: false });
    if (stat?.isFile()) found.push({ name: folder.name, path, identity: identityOf(stat) });
  }
  return found;
}

/**
 * One package.json read, its identity taken from the open descriptor BEFORE the read: a write
 * that lands after the fstat changes the identity (or the inode, for a rename), so what is
 * recorded can only be older than what was read — never newer, which would vouch for content
 * that was not checked.
 */
export function readWithIdentity(path: string): { text: string; identity: FileIdentity } {
  const fd = openSync(path, 'r');
  try {
    const identity = identityOf(fstatSync(fd, { bigint: true }));
    return { text: readFileSync(fd, 'utf8'), identity };
  } finally {
    closeSync(fd);
  }
}
