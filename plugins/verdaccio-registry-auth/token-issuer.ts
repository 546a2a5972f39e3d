/**
 * The JWT issuer and verifier (jose), steered by the 13-byte config.
 *
 * Algorithm, issuer and audience are computed from the config NOW (core's docs/identity.md decision
 * functions), for every token issued and every token verified — never stored at start-up — so a
 * flag flipped by the dashboard or the CLI applies to the very next request.
 *
 * Verification: the `kid` names one of our keys and the header `alg` must be that key's
 * algorithm (no algorithm confusion, no `none`), then jose checks signature, `iss`, `aud`,
 * `exp`, and we check the claim types and the revocation list. A verified token is cached by
 * its exact string (bounded): a hit is re-checked against expiry, revocation, the user's token
 * generation and the CURRENT issuer/audience, so the cache can never outlive a logout, a
 * password change or a registry-URL change.
 *
 * Generation (`gen` claim): each token carries the generation its user had when it was issued;
 * a password change bumps the user's generation in the token store, and every token with an
 * older one stops verifying — on every channel, because every channel verifies here.
 */
import { randomUUID } from 'node:crypto';
import type { LRUCache } from 'lru-cache';
import { entryBoundedCache } from '../registry-core/bounded-cache';
import type { CompactJWSHeaderParameters, JWTHeaderParameters, JWTPayload } from 'jose';
import { jose } from './jose';
import { getAudience, getIssuer, getTokenAlgorithm, type ConfigFields } from '../registry-core/index';
import { isPackageLimited, limitsAllowPackage } from '../registry-core/request-package';
import { TokenRejectedError, type TokenIdentity, type TokenRejectionCode, type TokenUse } from '../registry-core/token-verifier';
import { AuthError } from './errors';
import { TOKEN_ALGORITHMS, type KeyRing, type PublicJwk, type TokenAlgorithm } from './keys';
import { CidrAllowList, normalizeIp } from './network';
import { PACKAGE_CLAIM, trustedPackageProblem } from './oidc-exchange';

export const MAX_TOKEN_LENGTH = 8192;

/** Where the issuer reads the live config from (a ConfigFile and `.env.local` in the plugin). */
export interface IssuerContext {
  fields(): ConfigFields;
  registryUrl(): string;
}

export interface RevocationList {
  isRevoked(jti: string): boolean;
  /** the user's current token generation; tokens of another generation do not verify */
  generation(user: string): number;
  /** "last used" for `npm token list` (in memory; the store writes it out in batches) */
  markUsed(jti: string): void;
  /** brings isRevoked/generation up to date with every other node (null: memory is current); docs/cluster.md */
  sync?(): Promise<void> | null;
  /** true: other nodes write too (sync() asks the database on every check) */
  readonly shared?: boolean;
}

export interface IssuerState {
  alg: TokenAlgorithm;
  issuer: { url: string; kind: 'private' | 'local' | 'public' };
  audience: string;
  registryUrl: string;
}

export interface IssueOptions {
  /** lifetime in seconds (default: the plugin's token_ttl) */
  ttlSeconds?: number;
  /** generated tokens only: no writes with this token */
  readonly?: boolean;
  /** generated tokens only: requests must come from one of these ranges */
  cidr?: readonly string[];
  /** generated tokens only: limited to these packages (`packages` claim) */
  packages?: readonly string[];
  /** generated tokens only: limited to packages of these scopes, `@scope` (`scopes` claim) */
  scopes?: readonly string[];
  /**
   * the user's token generation to embed (default: the current one). A login passes the
   * generation it read BEFORE checking the password, so a login racing a password change with
   * the old password yields a token that is already invalid.
   */
  generation?: number;
  /** trusted publishing: the one package this token may act on (the `pkg` claim, docs/trusted-publishing.md) */
  trustedPackage?: string;
  /** defaults to 32 random hex digits (a UUID without dashes: npm redacts UUID-shaped strings in its output, and the jti is also the `npm token` key) */
  jti?: string;
}

export interface IssuedToken {
  token: string;
  jti: string;
  alg: TokenAlgorithm;
  kid: string;
  /** ms since epoch */
  issuedAt: number;
  /** ms since epoch */
  expiresAt: number;
  issuer: string;
  audience: string;
}

export interface VerifiedToken {
  user: string;
  groups: string[];
  jti: string;
  alg: TokenAlgorithm;
  kid: string;
  issuer: string;
  audience: string;
  /** ms since epoch */
  expiresAt: number;
  readonly: boolean;
  cidr: CidrAllowList | null;
  /** package limits (`packages` / `scopes` claims); both empty = not limited */
  packages: string[];
  scopes: string[];
  /** the `gen` claim (0 when absent: tokens issued before generations existed) */
  generation: number;
  /** the `pkg` claim: a trusted-publishing token acts on this package only (null: not limited this way) */
  trustedPackage: string | null;
}

export interface TokenIssuerOptions {
  defaultTtlSeconds: number;
  cacheSize?: number;
  /**
   * How long the registry URL read from `.env.local` is trusted while the 13 bytes stay the same
   * (default 1000 ms). A URL change through the dashboard/CLI also rewrites registryHash, which is
   * seen at once; this bound only covers a hand edit of `.env.local`.
   */
  urlRecheckMs?: number;
  /** the clock (ms since epoch) for issuing, expiry checks and jose's `currentDate`; default Date.now — tests freeze it instead of sleeping */
  now?: () => number;
}

/** ERR_TOKEN_INVALID that also says which of the core's stable reasons applies (HTTP shows the message, the seam the code). */
export class InvalidTokenError extends AuthError {
  readonly problem: TokenRejectionCode;

  constructor(reason: string, problem: TokenRejectionCode = 'invalid') {
    super('ERR_TOKEN_INVALID', `invalid token: ${reason}`);
    this.problem = problem;
  }
}

function invalid(reason: string, problem: TokenRejectionCode = 'invalid'): AuthError {
  return new InvalidTokenError(reason, problem);
}

function problemFor(error: unknown): TokenRejectionCode {
  if (error instanceof InvalidTokenError) return error.problem;
  if (error instanceof jose().errors.JWTExpired) return 'expired';
  if (error instanceof jose().errors.JWTClaimValidationFailed && (error.claim === 'iss' || error.claim === 'aud')) return 'wrong-issuer';
  return 'invalid';
}

/**
 * The restrictions a verified token carries, for one use — the rule HTTP and the WebSocket share.
 * CIDR applies to every use (any method answers 403 over HTTP); read-only refuses writes.
 */
export function restrictionProblem(verified: VerifiedToken, use: TokenUse): TokenRejectedError | undefined {
  if (verified.cidr && !verified.cidr.allows(use.peerAddress)) {
    return new TokenRejectedError('cidr', `this token may not be used from ${normalizeIp(use.peerAddress)} (allowed: ${verified.cidr.ranges.join(', ')})`);
  }
  // package limits (docs/web-login-and-tokens.md): reads AND writes of other packages are refused
  // (every package here is private to the registry's users), and so is any write that is about
  // no package (config changes, creating tokens…): the token was granted for packages only
  if (isPackageLimited(verified)) {
    if (use.package !== undefined && !limitsAllowPackage(verified, use.package)) {
      return new TokenRejectedError('package', `this token is limited to ${describeLimits(verified)}; it may not be used for ${use.package}`);
    }
    if (use.package === undefined && use.intent === 'write') {
      return new TokenRejectedError('package', `this token is limited to ${describeLimits(verified)}; it may only write those packages`);
    }
  }
  if (verified.readonly && use.intent === 'write') return new TokenRejectedError('read-only', 'this token is read-only');
  const trusted = trustedPackageProblem(verified.trustedPackage, use);
  if (trusted) return trusted;
  return undefined;
}

/** "packages a, b and scopes @s" — for refusals and `npm token list`. */
export function describeLimits(limits: { packages: readonly string[]; scopes: readonly string[] }): string {
  const parts: string[] = [];
  if (limits.packages.length > 0) parts.push(`package${limits.packages.length === 1 ? '' : 's'} ${limits.packages.join(', ')}`);
  if (limits.scopes.length > 0) parts.push(`scope${limits.scopes.length === 1 ? '' : 's'} ${limits.scopes.join(', ')}`);
  return parts.join(' and ');
}

export function identityOf(verified: VerifiedToken): TokenIdentity {
  return {
    user: verified.user,
    groups: [...verified.groups],
    jti: verified.jti,
    expiresAt: verified.expiresAt,
    readonly: verified.readonly,
    cidr: verified.cidr ? [...verified.cidr.ranges] : [],
    packages: [...verified.packages],
    scopes: [...verified.scopes],
  };
}

/** A short, token-free reason for logs and 401 bodies. */
function reasonFor(error: unknown): string {
  if (error instanceof AuthError) return error.message.replace(/^invalid token: /, '');
  if (error instanceof jose().errors.JWTExpired) return 'expired';
  if (error instanceof jose().errors.JWTClaimValidationFailed) return `claim ${error.claim} rejected (${error.reason})`;
  if (error instanceof jose().errors.JWSSignatureVerificationFailed) return 'signature verification failed';
  if (error instanceof jose().errors.JOSEAlgNotAllowed) return 'algorithm not allowed';
  if (error instanceof jose().errors.JWSInvalid || error instanceof jose().errors.JWTInvalid) return 'malformed token';
  if (error instanceof jose().errors.JOSEError) return error.code;
  return 'malformed token';
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((item) => typeof item === 'string');
}

export class TokenIssuer {
  private readonly ring: KeyRing;
  private readonly context: IssuerContext;
  private readonly revocations: RevocationList;
  private readonly defaultTtlSeconds: number;
  /** verified tokens (lru-cache, bounded by cacheSize); every hit is re-checked against revocations and expiry */
  private readonly cache: LRUCache<string, VerifiedToken>;
  private readonly urlRecheckMs: number;
  private readonly now: () => number;
  private stateKey: { fields: ConfigFields; registryUrl: string; checkedAt: number } | null = null;
  private stateValue: IssuerState | null = null;

  constructor(ring: KeyRing, context: IssuerContext, revocations: RevocationList, options: TokenIssuerOptions) {
    this.ring = ring;
    this.context = context;
    this.revocations = revocations;
    this.defaultTtlSeconds = options.defaultTtlSeconds;
    this.cache = entryBoundedCache(options.cacheSize ?? 10_000);
    this.urlRecheckMs = options.urlRecheckMs ?? 1000;
    this.now = options.now ?? Date.now;
  }

  /** Algorithm, issuer and audience for the config as it is right now. */
  state(): IssuerState {
    const fields = this.context.fields();
    const now = this.now();
    const key = this.stateKey;
    if (this.stateValue && key && key.fields === fields && now - key.checkedAt < this.urlRecheckMs) return this.stateValue;
    const registryUrl = this.context.registryUrl();
    if (this.stateValue && key && key.fields === fields && key.registryUrl === registryUrl) {
      key.checkedAt = now;
      return this.stateValue;
    }
    const state: IssuerState = {
      alg: getTokenAlgorithm(fields),
      issuer: getIssuer(fields, registryUrl),
      audience: getAudience(fields),
      registryUrl,
    };
    this.stateKey = { fields, registryUrl, checkedAt: now };
    this.stateValue = state;
    return state;
  }

  jwks(): Promise<{ keys: PublicJwk[] }> {
    return this.ring.jwks();
  }

  async issue(user: string, groups: readonly string[], options: IssueOptions = {}): Promise<IssuedToken> {
    if (typeof user !== 'string' || user.length === 0) throw new AuthError('ERR_BAD_REQUEST', 'a token needs a user');
    const state = this.state();
    const key = this.ring.byAlg[state.alg] ?? (await this.ring.signingKey(state.alg));
    const ttl = options.ttlSeconds ?? this.defaultTtlSeconds;
    if (!Number.isInteger(ttl) || ttl <= 0) throw new AuthError('ERR_TOKEN_OPTIONS', `token lifetime must be a positive number of seconds, got ${ttl}`);
    const now = Math.floor(this.now() / 1000);
    const jti = options.jti ?? randomUUID().replaceAll('-', '');
    const generation = options.generation ?? this.revocations.generation(user);
    const payload: JWTPayload = { groups: [...groups], gen: generation };
    if (options.readonly !== undefined) payload.readonly = options.readonly;
    // an empty allow-list means "no restriction" (npm's meaning), so it is left out of the token
    if (options.cidr !== undefined && options.cidr.length > 0) payload.cidr = new CidrAllowList(options.cidr).ranges;
    if (options.trustedPackage !== undefined) payload[PACKAGE_CLAIM] = options.trustedPackage;
    // empty = not limited, left out like cidr
    if (options.packages !== undefined && options.packages.length > 0) payload.packages = [...options.packages];
    if (options.scopes !== undefined && options.scopes.length > 0) payload.scopes = [...options.scopes];
    const token = await new (jose().SignJWT)(payload)
      .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT' })
      .setSubject(user)
      .setIssuer(state.issuer.url)
      .setAudience(state.audience)
      .setIssuedAt(now)
      .setExpirationTime(now + ttl)
      .setJti(jti)
      .sign(key.privateKey);
    return {
      token,
      jti,
      alg: key.alg,
      kid: key.kid,
      issuedAt: now * 1000,
      expiresAt: (now + ttl) * 1000,
      issuer: state.issuer.url,
      audience: state.audience,
    };
  }

  /**
   * The cached verification of a token seen before, if it still holds NOW (expiry, revocation,
   * current issuer and audience); undefined otherwise. Synchronous: the per-request fast path.
   */
  peekVerified(token: string): VerifiedToken | undefined {
    const cached = this.cache.get(token);
    if (!cached) return undefined;
    const state = this.state();
    if (
      cached.expiresAt > this.now() &&
      cached.issuer === state.issuer.url &&
      cached.audience === state.audience &&
      !this.revocations.isRevoked(cached.jti) &&
      cached.generation === this.revocations.generation(cached.user)
    ) {
      return cached;
    }
    this.cache.delete(token);
    return undefined;
  }

  /**
   * Brings revocations and generations up to date with the other nodes before a check (null when
   * the store is this process's alone). A database that cannot answer leaves memory as it is
   * (its last state, kept current by notifications): the node's readiness reports the database.
   */
  /** true when revocations are shared with other nodes (PostgreSQL): no per-request cache hit without asking */
  get sharedRevocations(): boolean {
    return this.revocations.shared === true;
  }

  fresh(): Promise<void> | null {
    const pending = this.revocations.sync?.() ?? null;
    return pending === null ? null : pending.catch(() => undefined);
  }

  /** Full check of a token against the current config. Throws ERR_TOKEN_INVALID with a reason. */
  async verify(token: string): Promise<VerifiedToken> {
    if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_LENGTH) throw invalid('malformed token');
    const pending = this.fresh();
    if (pending !== null) await pending;
    const seen = this.peekVerified(token);
    if (seen) return seen;
    const verified = await this.verifyUncached(token, this.state());
    this.cache.set(token, verified);
    return verified;
  }

  /**
   * The whole check for one use, as the core's token seam defines it: verification (signature,
   * issuer/audience now, expiry, revocation) and then the token's restrictions. Rejects with a
   * TokenRejectedError whose code says why.
   */
  async check(token: string, use: TokenUse): Promise<VerifiedToken> {
    let verified: VerifiedToken;
    try {
      verified = await this.verify(token);
    } catch (error) {
      throw new TokenRejectedError(problemFor(error), error instanceof Error ? error.message : 'invalid token');
    }
    const problem = restrictionProblem(verified, use);
    if (problem) throw problem;
    this.noteUse(verified);
    return verified;
  }

  /** A request was accepted with this token (every channel calls it once its restrictions passed). */
  noteUse(verified: VerifiedToken): void {
    this.revocations.markUsed(verified.jti);
  }

  /**
   * Signature and key only — for revoking a token (logout): presenting a token we signed is
   * enough authority to revoke it, even once it no longer verifies for access (expired, or
   * issued for a registry URL that has since changed).
   */
  async verifySignatureOnly(token: string): Promise<{ jti: string; user: string; expiresAt: number | null }> {
    if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_LENGTH) throw invalid('malformed token');
    try {
      const { payload: bytes } = await jose().compactVerify(token, this.keyResolver, { algorithms: [...TOKEN_ALGORITHMS] });
      const payload = JSON.parse(new TextDecoder().decode(bytes)) as JWTPayload;
      if (typeof payload.jti !== 'string' || typeof payload.sub !== 'string') throw invalid('missing jti or sub');
      return { jti: payload.jti, user: payload.sub, expiresAt: typeof payload.exp === 'number' ? payload.exp * 1000 : null };
    } catch (error) {
      throw invalid(reasonFor(error), problemFor(error));
    }
  }

  private readonly keyResolver = (header: JWTHeaderParameters | CompactJWSHeaderParameters): CryptoKey => {
    const key = typeof header.kid === 'string' ? this.ring.byKid.get(header.kid) : undefined;
    if (!key) throw invalid('unknown kid');
    if (header.alg !== key.alg) throw invalid(`algorithm ${String(header.alg)} does not match key ${key.kid} (${key.alg})`);
    return key.publicKey as CryptoKey;
  };

  private async verifyUncached(token: string, state: IssuerState): Promise<VerifiedToken> {
    let payload: JWTPayload;
    let header: JWTHeaderParameters;
    try {
      ({ payload, protectedHeader: header } = await jose().jwtVerify(token, this.keyResolver, {
        algorithms: [...TOKEN_ALGORITHMS],
        issuer: state.issuer.url,
        audience: state.audience,
        requiredClaims: ['sub', 'jti', 'iat', 'exp'],
        currentDate: new Date(this.now()),
      }));
    } catch (error) {
      throw invalid(reasonFor(error), problemFor(error));
    }
    const { sub, jti, exp, groups, readonly, cidr, gen, packages, scopes } = payload;
    const pkg = payload[PACKAGE_CLAIM];
    if (pkg !== undefined && (typeof pkg !== 'string' || pkg.length === 0)) throw invalid(`${PACKAGE_CLAIM} must be a package name`);
    if (typeof sub !== 'string' || sub.length === 0) throw invalid('sub must be a user name');
    if (typeof jti !== 'string' || jti.length === 0) throw invalid('jti must be a string');
    if (typeof exp !== 'number') throw invalid('exp must be a number');
    if (groups !== undefined && !isStringArray(groups)) throw invalid('groups must be a list of strings');
    if (readonly !== undefined && typeof readonly !== 'boolean') throw invalid('readonly must be a boolean');
    if (cidr !== undefined && !isStringArray(cidr)) throw invalid('cidr must be a list of ranges');
    if (packages !== undefined && !isStringArray(packages)) throw invalid('packages must be a list of package names');
    if (scopes !== undefined && !isStringArray(scopes)) throw invalid('scopes must be a list of scopes');
    if (gen !== undefined && !(typeof gen === 'number' && Number.isSafeInteger(gen) && gen >= 0)) throw invalid('gen must be a whole number');
    if (this.revocations.isRevoked(jti)) throw invalid('revoked', 'revoked');
    const generation = typeof gen === 'number' ? gen : 0;
    if (generation !== this.revocations.generation(sub)) throw invalid('issued before the password of its user was changed', 'revoked');
    let allowList: CidrAllowList | null = null;
    if (cidr !== undefined && cidr.length > 0) {
      try {
        allowList = new CidrAllowList(cidr);
      } catch {
        throw invalid('cidr holds an invalid range');
      }
    }
    return {
      user: sub,
      groups: groups ?? [],
      jti,
      alg: header.alg as TokenAlgorithm,
      kid: header.kid as string,
      issuer: state.issuer.url,
      audience: state.audience,
      expiresAt: exp * 1000,
      readonly: readonly === true,
      cidr: allowList,
      packages: packages ?? [],
      scopes: scopes ?? [],
      generation,
      trustedPackage: typeof pkg === 'string' ? pkg : null,
    };
  }
}
