/**
 * Registry signatures on the versions this registry holds itself (docs/signatures.md).
 *
 * - At publish (package-service, under the package lock, after the tarball matched its
 *   integrity): the new version gets `dist.signatures: [{keyid, sig}]`, stored in the packument —
 *   reads cost nothing, the packument response cache keeps working, a restart changes nothing.
 *   Whatever the publish body claimed as `dist.signatures` is replaced: a client's claim is not ours.
 * - At read: a LOCAL version without `dist.signatures` (adopted from stock Verdaccio, published
 *   before this feature) is signed in the response only (memoised; the file is not rewritten).
 * - The seam for proxied packages: a packument that came from an upstream (`_uplinks` has an
 *   entry) is never signed, and a version that already has `dist.signatures` is never touched —
 *   upstream signatures pass through as they are.
 *
 * The signed message is npm's (pacote): `<name>@<version>:<integrity>`, integrity as ssri prints
 * it (`dist.integrity`, else the sha1 `dist.shasum` as an SRI string).
 */
import * as ssri from 'ssri';
import type { LRUCache } from 'lru-cache';
import { entryBoundedCache } from '../registry-core/bounded-cache';
import type { RegistrySignature, SigningKeyRing } from '../registry-core/index';
import type { Manifest, VersionManifest } from './store';

const MEMO_ENTRIES = 10_000;

/** What pacote verifies for this version, or null when it has no integrity to sign. */
export function signedMessage(name: string, version: string, dist: VersionManifest['dist']): string | null {
  let integrity: string | null = null;
  if (typeof dist?.integrity === 'string' && dist.integrity !== '') {
    const parsed = ssri.parse(dist.integrity) as unknown;
    integrity = parsed !== null && typeof parsed === 'object' ? String(parsed) : null;
  } else if (typeof dist?.shasum === 'string' && /^[0-9a-f]{40}$/i.test(dist.shasum)) {
    integrity = String(ssri.fromHex(dist.shasum, 'sha1'));
  }
  return integrity === null || integrity === '' ? null : `${name}@${version}:${integrity}`;
}

/** A packument cached from an upstream: its versions are not ours to sign. */
export function isProxiedPackument(manifest: Manifest): boolean {
  const uplinks = manifest._uplinks;
  return uplinks !== null && typeof uplinks === 'object' && Object.keys(uplinks).length > 0;
}

function hasSignatures(meta: VersionManifest): boolean {
  return Array.isArray(meta.dist?.signatures) && meta.dist.signatures.length > 0;
}

export class VersionSigner {
  readonly ring: SigningKeyRing;
  /** message + keyid → signature: ECDSA signatures are randomised; one per version keeps responses stable */
  readonly #memo: LRUCache<string, RegistrySignature> = entryBoundedCache(MEMO_ENTRIES);

  constructor(ring: SigningKeyRing) {
    this.ring = ring;
  }

  #signatureFor(message: string, keyid: string): RegistrySignature {
    const key = `${keyid}\u0000${message}`;
    const known = this.#memo.get(key);
    if (known) return known;
    const signature = this.ring.sign(message);
    this.#memo.set(key, signature);
    return signature;
  }

  /** A version being published here: signed, replacing whatever the body claimed. */
  signPublished(name: string, version: string, meta: VersionManifest): void {
    const message = signedMessage(name, version, meta.dist);
    if (message === null || meta.dist === undefined) return;
    meta.dist.signatures = [this.ring.sign(message)];
  }

  /**
   * The manifest as served: local versions without signatures get one. Returns the same object
   * when nothing needed signing, else a copy (the store's own object is left as it is).
   */
  withSignatures(manifest: Manifest): Manifest {
    if (isProxiedPackument(manifest) || manifest.versions === null || typeof manifest.versions !== 'object') return manifest;
    let versions: Manifest['versions'] | null = null;
    let keyid: string | null = null; // asked once per packument: active() looks at the keys folder
    // every GET of a full packument asks (the first after a publish too): no [key, value] pair per version
    for (const version of Object.keys(manifest.versions)) {
      const meta = manifest.versions[version];
      if (meta === null || typeof meta !== 'object' || hasSignatures(meta)) continue;
      const message = signedMessage(manifest.name, version, meta.dist);
      if (message === null) continue;
      versions ??= { ...manifest.versions };
      keyid ??= this.ring.active().keyid;
      versions[version] = { ...meta, dist: { ...meta.dist, signatures: [this.#signatureFor(message, keyid)] } };
    }
    return versions === null ? manifest : { ...manifest, versions };
  }
}
