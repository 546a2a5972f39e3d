/**
 * Storage verification, synchronous, changing nothing but what PackageIndex.open itself repairs
 * (a torn last record) — used by start-up reconciliation and `verifyStorage`:
 * what each package.json says, whether the registry.lockb index describes it, and whether every
 * stored version's tarball matches its packument's integrity.
 */
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { PackageIndex, foldIndex, type IndexedPackage } from '../registry-core/index';
import { verifyDist } from './integrity';
import { maintainersOf } from './owners';
import { scanPackagesSync } from './scan';
import type { Manifest } from './store';
import { RACY_MARGIN_NS, indexDigest, readWithIdentity, trustedEntry, type StoredPackageFile, type VerifiedEntry, type VerifiedStates } from './verified';

export interface StoredState {
  versions: Set<string>;
  distTags: Record<string, string>;
  deprecated: Record<string, string>;
}

/**
 * What one package.json says, read by the same rules rebuildIndex (core index-rebuild.ts) turns
 * into records: string dist-tags, non-empty string deprecations. Throws on text that is not JSON.
 */
export function parseStoredState(text: string): StoredState {
  const manifest = JSON.parse(text) as {
    versions?: Record<string, { deprecated?: unknown } | null>;
    'dist-tags'?: Record<string, unknown>;
  };
  const distTags: Record<string, string> = {};
  for (const [tag, version] of Object.entries(manifest?.['dist-tags'] ?? {})) if (typeof version === 'string') distTags[tag] = version;
  const deprecated: Record<string, string> = {};
  for (const [version, meta] of Object.entries(manifest?.versions ?? {})) {
    if (typeof meta?.deprecated === 'string' && meta.deprecated !== '') deprecated[version] = meta.deprecated;
  }
  return { versions: new Set(Object.keys(manifest?.versions ?? {})), distTags, deprecated };
}

/** What each stored package.json says (parseStoredState). An unreadable one never matches (rebuildIndex reports it). */
export function storedStates(storageDir: string, names: string[]): Map<string, StoredState | null> {
  const stored = new Map<string, StoredState | null>();
  for (const name of names) {
    try {
      stored.set(name, parseStoredState(readFileSync(join(storageDir, ...name.split('/'), 'package.json'), 'utf8')));
    } catch {
      stored.set(name, null);
    }
  }
  return stored;
}

export interface IndexCheck {
  /** stored packages whose package.json the index does not describe (or that cannot be read) */
  differing: string[];
  /** the packages found to match, to record for the next check (verified.ts) */
  verified: VerifiedStates;
  /** package.json files read and parsed (the others were trusted from `previous`) */
  read: number;
}

/**
 * The start-up comparison of every stored package with the folded index: a package whose
 * package.json identity and index digest are unchanged since `previous` (trustedEntry) is taken as
 * matching; every other package.json is read and compared (indexMatches). `takenAtNs` is the wall
 * clock before `files` was stat'ed (verified.ts: racy timestamps). Indexed packages with no
 * package.json are the caller's to compare (no file to read).
 */
export function checkAgainstIndex(
  files: readonly StoredPackageFile[],
  indexed: Map<string, IndexedPackage>,
  previous: VerifiedStates | null,
  takenAtNs: bigint,
  marginNs = RACY_MARGIN_NS,
): IndexCheck {
  const differing: string[] = [];
  const entries = new Map<string, VerifiedEntry>();
  let read = 0;
  for (const file of files) {
    const known = indexed.get(file.name);
    const digest = indexDigest(known);
    const trusted = trustedEntry(previous, file.name, file.identity, digest, marginNs);
    if (trusted !== null) {
      entries.set(file.name, trusted);
      continue;
    }
    read += 1;
    let state: StoredState | null = null;
    let identity = file.identity;
    try {
      const seen = readWithIdentity(file.path);
      identity = seen.identity;
      state = parseStoredState(seen.text);
    } catch {
      state = null;
    }
    if (indexMatches(known, state)) entries.set(file.name, { ...identity, digest, folder: null });
    else differing.push(file.name);
  }
  return { differing, verified: { takenAtNs, entries }, read };
}

function sameRecord(a: Record<string, string>, b: Record<string, string>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((key) => Object.prototype.hasOwnProperty.call(b, key) && b[key] === a[key]);
}

/** Whether the index describes this stored package: same versions, dist-tags and deprecations. */
export function indexMatches(known: IndexedPackage | undefined, stored: StoredState | null): boolean {
  if (stored === null) return false;
  if (!known) return stored.versions.size === 0;
  const versions = new Set(known.versions);
  return (
    versions.size === stored.versions.size &&
    [...stored.versions].every((v) => versions.has(v)) &&
    sameRecord(known.distTags, stored.distTags) &&
    sameRecord(known.deprecated, stored.deprecated)
  );
}


/**
 * Every problem of a storage folder (and its index when `lockbPath` is given), [] when it
 * verifies: each version's tarball present and matching dist.integrity / dist.shasum, every
 * dist-tag naming a stored version, maintainers well-formed, no temp file left, the index
 * describing exactly the stored versions, dist-tags and deprecations.
 */
export function verifyStorage(storageDir: string, lockbPath?: string): string[] {
  const problems: string[] = [];
  const names = scanPackagesSync(storageDir);
  for (const name of names) {
    const dir = join(storageDir, ...name.split('/'));
    let manifest: Manifest;
    try {
      manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Manifest;
    } catch (error) {
      problems.push(`${name}: package.json unreadable (${(error as Error).message})`);
      continue;
    }
    const bare = name.slice(name.lastIndexOf('/') + 1);
    for (const [version, meta] of Object.entries(manifest.versions ?? {})) {
      const file = `${bare}-${version}.tgz`;
      let bytes: Buffer;
      try {
        bytes = readFileSync(join(dir, file));
      } catch {
        problems.push(`${name}@${version}: tarball ${file} missing`);
        continue;
      }
      try {
        verifyDist(`${name}@${version}`, meta?.dist, {
          sha512: createHash('sha512').update(bytes).digest('hex'),
          sha1: createHash('sha1').update(bytes).digest('hex'),
          size: bytes.length,
        });
      } catch (error) {
        problems.push((error as Error).message);
      }
    }
    for (const [tag, version] of Object.entries(manifest['dist-tags'] ?? {})) {
      if (typeof version !== 'string' || !Object.prototype.hasOwnProperty.call(manifest.versions ?? {}, version)) problems.push(`${name}: dist-tag ${tag} → ${JSON.stringify(version)} names no stored version`);
    }
    const raw = (manifest as { maintainers?: unknown }).maintainers;
    if (raw !== undefined && (!Array.isArray(raw) || maintainersOf(manifest).length !== raw.length)) problems.push(`${name}: malformed maintainers ${JSON.stringify(raw).slice(0, 120)}`);
    for (const entry of readdirSync(dir)) if (entry.startsWith('.tmp-')) problems.push(`${name}: temp file ${entry} left behind`);
  }
  if (lockbPath !== undefined) {
    const index = PackageIndex.open(lockbPath);
    let indexed: Map<string, IndexedPackage>;
    try {
      indexed = foldIndex(index.readAll());
    } finally {
      index.close();
    }
    const stored = storedStates(storageDir, names);
    for (const [name, state] of stored) if (!indexMatches(indexed.get(name), state)) problems.push(`${name}: registry.lockb does not describe what is stored`);
    for (const [name, entry] of indexed) if (!stored.has(name) && entry.versions.length > 0) problems.push(`${name}: registry.lockb lists versions of a package that is not stored`);
  }
  return problems;
}
