/** docs/identity.md: which algorithm signs new tokens, who issues them, for which audience. Pure. */
import { hasFeature, type ConfigFields } from './layout';
import { LOCAL_REGISTRY_URL, hashRegistryUrl, normalizeRegistryUrl } from './registry-url';
import { RegistryCoreError } from './errors';

export type TokenAlgorithm = 'EdDSA' | 'RS256';
export type IssuerKind = 'private' | 'local' | 'public';

export function getTokenAlgorithm(fields: ConfigFields): TokenAlgorithm {
  return hasFeature(fields, 'PREMIUM_TYPES') ? 'EdDSA' : 'RS256';
}

const LOCAL_HASH = hashRegistryUrl(LOCAL_REGISTRY_URL);

export function getIssuer(fields: ConfigFields, registryUrl: string): { url: string; kind: IssuerKind } {
  if (hasFeature(fields, 'PRIVATE_REGISTRY')) return { url: `${normalizeRegistryUrl(registryUrl)}/_auth`, kind: 'private' };
  if (fields.registryHash >>> 0 === LOCAL_HASH) return { url: `${LOCAL_REGISTRY_URL}/_auth`, kind: 'local' };
  return { url: normalizeRegistryUrl(registryUrl), kind: 'public' };
}

export function getAudience(fields: ConfigFields): string {
  return `registry:${(fields.registryHash >>> 0).toString(16).padStart(8, '0')}`;
}

/** Does the configured URL hash to the stored registryHash? An invalid URL matches nothing. */
export function registryUrlMatches(fields: ConfigFields, registryUrl: string): boolean {
  try {
    return hashRegistryUrl(registryUrl) === fields.registryHash >>> 0;
  } catch (error) {
    if (error instanceof RegistryCoreError) return false;
    throw error;
  }
}
