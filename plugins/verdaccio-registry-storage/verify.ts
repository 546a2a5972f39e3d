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

export interface StoredState {
  versions: Set<string>;
  distTags: Record<string, string>;
  deprecated: Record<string, string>;
}

/**
 * What each stored package.json says, read by the same rules rebuildIndex (core
 * index-rebuild.ts) turns into records: string dist-tags, non-empty string deprecations.
 * An unreadable one never matches (rebuildIndex reports it).
 */
export function storedStates(storageDir: string, names: string[]): Map<string, StoredState | null> {
  const stored = new Map<string, StoredState | null>();
  for (const name of names) {
    try {
      const manifest = JSON.parse(readFileSync(join(storageDir, ...name.split('/'), 'package.json'), 'utf8')) as {
        versions?: Record<string, { deprecated?: unknown } | null>;
        'dist-tags'?: Record<string, unknown>;
      };
      const distTags: Record<string, string> = {};
      for (const [tag, version] of Object.entries(manifest?.['dist-tags'] ?? {})) if (typeof version === 'string') distTags[tag] = version;
      const deprecated: Record<string, string> = {};
      for (const [version, meta] of Object.entries(manifest?.versions ?? {})) {
        if (typeof meta?.deprecated === 'string' && meta.deprecated !== '') deprecated[version] = meta.deprecated;
      }
      stored.set(name, { versions: new Set(Object.keys(manifest?.versions ?? {})), distTags, deprecated });
    } catch {
      stored.set(name, null);
    }
  }
  return stored;
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
