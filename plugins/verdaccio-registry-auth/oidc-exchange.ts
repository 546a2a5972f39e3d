/**
 * Trusted publishing: `POST /-/npm/v1/oidc/token/exchange/package/<name>` turns a CI provider's
 * OIDC id_token into a short-lived token of OUR issuer that can act on that one package only
 * (the `pkg` claim). Contract: docs/trusted-publishing.md.
 *
 * The id_token is checked against a CONFIGURED provider (its issuer, its JWKS — from the
 * provider's discovery document or a configured `jwks_uri`, fetched with jose's
 * createRemoteJWKSet, which caches and refetches on an unknown `kid`), the audience
 * `npm:<registry host>`, expiry, and then against the package's trust rules (trust-rules.ts).
 * The token is issued to the maintainer who created the matching rule (with that user's groups
 * and token generation), so ownership checks, `_npmUser` and a password change of that user
 * apply to it as to any of their tokens — and the `pkg` claim keeps it to the one package.
 */
import type { JWTPayload, createRemoteJWKSet } from 'jose';
import { jose } from './jose';
import { OwnersUnavailableError } from '../registry-core/package-owners';
import { TokenRejectedError, type TokenUse } from '../registry-core/token-verifier';
import { AuthError } from './errors';
import { ruleMismatch, type TrustProviderType, type TrustRule } from './trust-rules';

/** The claim that limits a token to one package (trusted-publishing tokens). */
export const PACKAGE_CLAIM = 'pkg';
export const ID_TOKEN_ALGORITHMS = ['RS256', 'ES256', 'RS384', 'ES384', 'RS512', 'PS256', 'EdDSA'] as const;
const MAX_ID_TOKEN = 16_384;

export interface OidcProviderConfig {
  type: TrustProviderType;
  /** the exact `iss` of its id_tokens */
  issuer: string;
  /** default: the `jwks_uri` of `<issuer>/.well-known/openid-configuration` */
  jwksUri: string | null;
}

export interface TrustedPublishingSettings {
  enabled: boolean;
  /** lifetime of an exchanged token, seconds */
  tokenTtlSeconds: number;
  /** accepted `aud` values besides `npm:<hostname of the registry URL>` */
  audiences: string[];
  providers: OidcProviderConfig[];
}

/**
 * Default: GitHub Actions' issuer (npm's own default for GitHub). Every other provider (GitLab,
 * GitHub Enterprise, Forgejo — whose Actions tokens carry GitHub's claim names, so
 * `type: github`) is configured in config.yaml.
 */
export const DEFAULT_PROVIDERS: readonly OidcProviderConfig[] = [{ type: 'github', issuer: 'https://token.actions.githubusercontent.com', jwksUri: null }];

/** The `trusted_publishing:` section of `auth.registry-auth` (undefined → defaults, enabled). */
export function parseTrustedPublishing(section: unknown, parseDuration: (value: unknown, key: string) => number): TrustedPublishingSettings {
  const fail = (message: string): never => {
    throw new AuthError('ERR_AUTH_CONFIG', `auth.registry-auth.trusted_publishing${message}`);
  };
  if (section === undefined || section === null) return { enabled: true, tokenTtlSeconds: 900, audiences: [], providers: [...DEFAULT_PROVIDERS] };
  if (section === false) return { enabled: false, tokenTtlSeconds: 900, audiences: [], providers: [] };
  if (typeof section !== 'object' || Array.isArray(section)) return fail(': expected an object or false');
  const s = section as Record<string, unknown>;
  const ttl = parseDuration(s.token_ttl ?? '15m', 'trusted_publishing.token_ttl');
  if (ttl > 3600) fail('.token_ttl: at most 1h (exchanged tokens are meant to be short-lived)');
  const audiences = s.audiences ?? [];
  if (!Array.isArray(audiences) || !audiences.every((a) => typeof a === 'string' && a.startsWith('npm:') && a.length > 4)) fail('.audiences: expected a list like [npm:registry.example.com]');
  let providers: OidcProviderConfig[] = [...DEFAULT_PROVIDERS];
  if (s.providers !== undefined) {
    if (!Array.isArray(s.providers)) fail('.providers: expected a list of {type, issuer, jwks_uri?}');
    providers = (s.providers as unknown[]).map((raw, i) => {
      const p = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
      if (p.type !== 'github' && p.type !== 'gitlab') fail(`.providers[${i}].type: github or gitlab`);
      const url = (value: unknown, key: string): string => {
        if (typeof value !== 'string') return fail(`.providers[${i}].${key}: expected an http(s) URL`);
        try {
          const parsed = new URL(value);
          if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') throw new Error('protocol');
        } catch {
          fail(`.providers[${i}].${key}: expected an http(s) URL, got ${JSON.stringify(value)}`);
        }
        return value;
      };
      return { type: p.type as TrustProviderType, issuer: url(p.issuer, 'issuer'), jwksUri: p.jwks_uri === undefined ? null : url(p.jwks_uri, 'jwks_uri') };
    });
    const issuers = providers.map((p) => p.issuer);
    if (new Set(issuers).size !== issuers.length) fail('.providers: each issuer at most once');
  }
  return { enabled: s.enabled !== false, tokenTtlSeconds: ttl, audiences: audiences as string[], providers };
}

/**
 * The package-limited-token rule (called from `restrictionProblem`, the one restriction rule of
 * every channel): a token with a `pkg` claim is refused for any request that does not address
 * exactly that package — a channel that cannot name the package (undefined) is refused too — and
 * for any write that is not a publish.
 */
export function trustedPackageProblem(trustedPackage: string | null, use: TokenUse): TokenRejectedError | undefined {
  if (trustedPackage === null) return undefined;
  if (use.package !== trustedPackage) return new TokenRejectedError('package', `this token may only be used for package ${trustedPackage}`);
  // it publishes new versions; unpublish, deprecate, dist-tag and owner changes need a maintainer's own token
  if (use.intent === 'write' && use.publish !== true) return new TokenRejectedError('package', `this token may only publish new versions of ${trustedPackage}`);
  return undefined;
}

export interface ExchangeContext {
  settings: TrustedPublishingSettings;
  /** the registry URL the issuer uses now (its hostname is the default audience) */
  registryUrl(): string;
  rules(name: string): TrustRule[];
  /** current maintainers of the package (null: it does not exist) */
  owners(name: string): Promise<string[] | null>;
  isAdmin(user: string): boolean;
  userExists(user: string): boolean;
  issue(user: string, trustedPackage: string, ttlSeconds: number): Promise<{ token: string; expiresAt: number }>;
}

type JwksGetter = ReturnType<typeof createRemoteJWKSet>;

function refused(message: string): AuthError {
  return new AuthError('ERR_FORBIDDEN', `trusted publishing: ${message}`);
}

export class OidcExchange {
  private readonly context: ExchangeContext;
  private readonly jwks = new Map<string, Promise<JwksGetter>>();

  constructor(context: ExchangeContext) {
    this.context = context;
  }

  audiences(): string[] {
    return [`npm:${new URL(this.context.registryUrl()).hostname}`, ...this.context.settings.audiences];
  }

  private keySet(provider: OidcProviderConfig): Promise<JwksGetter> {
    let pending = this.jwks.get(provider.issuer);
    if (!pending) {
      pending = (async () => {
        if (provider.jwksUri !== null) return jose().createRemoteJWKSet(new URL(provider.jwksUri));
        const discovery = new URL(`${provider.issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`);
        const response = await fetch(discovery, { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(10_000) });
        if (!response.ok) throw new Error(`discovery document of ${provider.issuer} answered ${response.status}`);
        const document = (await response.json()) as { issuer?: unknown; jwks_uri?: unknown };
        if (document.issuer !== provider.issuer) throw new Error(`discovery document of ${provider.issuer} names issuer ${JSON.stringify(document.issuer)}`);
        if (typeof document.jwks_uri !== 'string') throw new Error(`discovery document of ${provider.issuer} has no jwks_uri`);
        return jose().createRemoteJWKSet(new URL(document.jwks_uri));
      })();
      // a failed discovery is retried by the next exchange, not remembered
      pending.catch(() => this.jwks.delete(provider.issuer));
      this.jwks.set(provider.issuer, pending);
    }
    return pending;
  }

  /** Verifies the id_token and the trust rules; resolves with our token, rejects with an AuthError (401/403/404/503). */
  async exchange(name: string, idToken: string): Promise<{ token: string; expiresAt: number; rule: TrustRule }> {
    const { settings } = this.context;
    if (!settings.enabled) throw new AuthError('ERR_NOT_FOUND', 'trusted publishing is switched off on this registry');
    if (idToken.length === 0 || idToken.length > MAX_ID_TOKEN) throw new AuthError('ERR_TOKEN_INVALID', 'trusted publishing: expected an id_token as Bearer');
    let unverified: JWTPayload;
    try {
      unverified = jose().decodeJwt(idToken);
    } catch {
      throw new AuthError('ERR_TOKEN_INVALID', 'trusted publishing: the Bearer credential is not a JWT id_token');
    }
    const provider = settings.providers.find((p) => p.issuer === unverified.iss);
    if (!provider) throw new AuthError('ERR_TOKEN_INVALID', `trusted publishing: issuer ${JSON.stringify(unverified.iss ?? null)} is not a configured CI provider`);
    let keys: JwksGetter;
    try {
      keys = await this.keySet(provider);
    } catch (error) {
      throw new AuthError('ERR_UNAVAILABLE', `trusted publishing: keys of ${provider.issuer} unavailable (${error instanceof Error ? error.message : String(error)})`);
    }
    let claims: JWTPayload;
    try {
      ({ payload: claims } = await jose().jwtVerify(idToken, keys, {
        issuer: provider.issuer,
        audience: this.audiences(),
        algorithms: [...ID_TOKEN_ALGORITHMS],
        requiredClaims: ['exp', 'iat'],
        clockTolerance: 30,
      }));
    } catch (error) {
      if (error instanceof jose().errors.JWKSTimeout || error instanceof jose().errors.JOSEError && error.code === 'ERR_JWKS_TIMEOUT') {
        throw new AuthError('ERR_UNAVAILABLE', `trusted publishing: keys of ${provider.issuer} unavailable`);
      }
      const reason =
        error instanceof jose().errors.JWTExpired
          ? 'expired'
          : error instanceof jose().errors.JWTClaimValidationFailed
            ? `claim ${error.claim} rejected (${error.reason}); expected audience ${this.audiences().join(' or ')}`
            : error instanceof jose().errors.JOSEError
              ? error.code
              : 'malformed';
      throw new AuthError('ERR_TOKEN_INVALID', `trusted publishing: id_token refused: ${reason}`);
    }
    let owners: string[] | null;
    try {
      owners = await this.context.owners(name);
    } catch (error) {
      // the storage's detail may name files: it is not shown (trust-routes logs refusals)
      throw new AuthError('ERR_UNAVAILABLE', `trusted publishing: the maintainers of ${name} could not be read (${error instanceof OwnersUnavailableError ? error.message : 'storage error'}); try again`);
    }
    if (owners === null) throw new AuthError('ERR_NOT_FOUND', `trusted publishing: package ${name} does not exist (publish its first version with a user token)`);
    const rules = this.context.rules(name).filter((rule) => rule.type === provider.type);
    if (rules.length === 0) throw refused(`package ${name} has no ${provider.type} trust configuration`);
    const reasons: string[] = [];
    for (const rule of rules) {
      const mismatch = ruleMismatch(rule, claims);
      if (mismatch !== null) {
        reasons.push(mismatch);
        continue;
      }
      // the rule acts for its creator: they must still exist and still maintain the package
      if (!this.context.userExists(rule.createdBy) || !(owners.includes(rule.createdBy) || this.context.isAdmin(rule.createdBy))) {
        reasons.push(`the rule's creator ${rule.createdBy} no longer maintains ${name}`);
        continue;
      }
      const issued = await this.context.issue(rule.createdBy, name, settings.tokenTtlSeconds);
      return { ...issued, rule };
    }
    throw refused(`no trust configuration of ${name} matches this id_token (${reasons.join('; ')})`);
  }
}
