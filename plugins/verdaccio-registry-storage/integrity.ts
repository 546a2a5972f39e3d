/**
 * Publish validation: the tarball actually stored must be the one the manifest describes.
 * Verdaccio only compares sha1 when an attachment record exists and never looks at sha512.
 */
import * as ssri from 'ssri';
import { StorageError } from './errors';
import type { TarballDigest, VersionManifest } from './store';
import { sha512FromIntegrity } from '../registry-core/index';

const CHECKED = ['sha512', 'sha1'] as const;

function hexOf(base64: string): string {
  return Buffer.from(base64, 'base64').toString('hex');
}

type ParsedIntegrity = Record<string, Array<{ digest: string }> | undefined>;

/** ssri.parse, which returns null for text it cannot read at all (e.g. "__proto__"). */
function parseIntegrity(text: string): ParsedIntegrity | null {
  const parsed = ssri.parse(text) as unknown;
  return parsed !== null && typeof parsed === 'object' ? (parsed as ParsedIntegrity) : null;
}

/** Own entries only: an algorithm named like an Object.prototype member must not count. */
function entriesFor(parsed: ParsedIntegrity, algorithm: string): Array<{ digest: string }> {
  const entries = Object.prototype.hasOwnProperty.call(parsed, algorithm) ? parsed[algorithm] : undefined;
  return Array.isArray(entries) ? entries.filter((entry) => typeof entry?.digest === 'string') : [];
}

/** Why a dist.integrity string cannot be checked, or null when it names a sha512 or sha1 hash. */
export function integrityProblem(integrity: string): string | null {
  const parsed = parseIntegrity(integrity.trim());
  if (parsed === null) return `dist.integrity ${JSON.stringify(integrity.slice(0, 80))} is not a Subresource Integrity string`;
  if (CHECKED.every((algorithm) => entriesFor(parsed, algorithm).length === 0)) {
    return `dist.integrity ${JSON.stringify(integrity.slice(0, 80))} has no sha512 or sha1 hash`;
  }
  return null;
}

/** Throws ERR_INTEGRITY unless dist.integrity and/or dist.shasum match the stored bytes. */
export function verifyDist(label: string, dist: VersionManifest['dist'], digest: TarballDigest): void {
  const integrity = typeof dist?.integrity === 'string' ? dist.integrity.trim() : '';
  const shasum = typeof dist?.shasum === 'string' ? dist.shasum.trim().toLowerCase() : '';
  if (integrity === '' && shasum === '') {
    throw new StorageError('ERR_INTEGRITY', `${label}: dist.integrity and dist.shasum are both missing; refusing a tarball nobody can verify`);
  }
  let checked = 0;
  if (integrity !== '') {
    const parsed = parseIntegrity(integrity);
    if (parsed === null) throw new StorageError('ERR_INTEGRITY', `${label}: ${integrityProblem(integrity)}`);
    for (const algorithm of CHECKED) {
      const entries = entriesFor(parsed, algorithm);
      if (entries.length === 0) continue;
      const actual = digest[algorithm];
      if (!entries.some((entry) => hexOf(entry.digest) === actual)) {
        throw new StorageError('ERR_INTEGRITY', `${label}: tarball ${algorithm} is ${Buffer.from(actual, 'hex').toString('base64')} but dist.integrity declares ${entries.map((e) => e.digest).join(' / ')}`);
      }
      checked += 1;
    }
    if (checked === 0) {
      throw new StorageError('ERR_INTEGRITY', `${label}: dist.integrity ${JSON.stringify(integrity.slice(0, 80))} has no sha512 or sha1 hash`);
    }
  }
  if (shasum !== '') {
    if (shasum !== digest.sha1) {
      throw new StorageError('ERR_INTEGRITY', `${label}: tarball sha1 is ${digest.sha1} but dist.shasum declares ${shasum}`);
    }
  }
}

/** sha512 of a dist block as 128 hex chars, '' when it declares none. */
export function sha512HexOf(dist: VersionManifest['dist']): string {
  // the index's one rule (core index-rebuild.ts), so a record written at publish and one rebuilt from the folder agree
  return sha512FromIntegrity(dist?.integrity);
}
