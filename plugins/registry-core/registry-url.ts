import { lazyModule } from './lazy-module';
import { RegistryCoreError } from './errors';

export const LOCAL_REGISTRY_URL = 'http://localhost:4873';

/**
 * `protocol//host` + path without trailing slash. `new URL()` lower-cases the host and drops
 * default ports, so spellings of one registry hash alike. Query, fragment and credentials are
 * refused rather than dropped: a URL that hashes differently from what the user typed would be
 * a silent surprise.
 */
export function normalizeRegistryUrl(url: string): string {
  if (typeof url !== 'string' || url.trim() === '') {
    throw new RegistryCoreError('ERR_REGISTRY_URL', 'registry URL is empty', { field: 'registryUrl' });
  }
  let parsed: URL;
  try {
    parsed = new URL(url.trim());
  } catch {
    throw new RegistryCoreError('ERR_REGISTRY_URL', `registry URL ${JSON.stringify(url)} is not an absolute URL (expected e.g. http://localhost:4873)`, {
      field: 'registryUrl',
    });
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new RegistryCoreError('ERR_REGISTRY_URL', `registry URL must use http: or https:, got ${parsed.protocol}`, { field: 'registryUrl' });
  }
  if (parsed.username || parsed.password) {
    throw new RegistryCoreError('ERR_REGISTRY_URL', 'registry URL must not contain credentials', { field: 'registryUrl' });
  }
  if (parsed.search || parsed.hash) {
    throw new RegistryCoreError('ERR_REGISTRY_URL', `registry URL must not have a query or fragment, got ${JSON.stringify(url)}`, {
      field: 'registryUrl',
    });
  }
  return `${parsed.protocol}//${parsed.host}${parsed.pathname.replace(/\/+$/, '')}`;
}

const encoder = new TextEncoder();

// required on first use, not at load: `registry config get` loads this module but rarely hashes
const murmur = lazyModule(() => require('murmurhash3js-revisited') as typeof import('murmurhash3js-revisited'));

/** MurmurHash3 x86_32, seed 0, of the UTF-8 bytes of the normalized URL (unsigned). */
export function hashRegistryUrl(url: string): number {
  return murmur().x86.hash32(encoder.encode(normalizeRegistryUrl(url)), 0) >>> 0;
}

/** `0xceb6960a` — how hashes are shown everywhere. */
export function formatHash(hash: number): string {
  return `0x${(hash >>> 0).toString(16).padStart(8, '0')}`;
}
