/**
 * What the routes and Verdaccio's callbacks do, without HTTP: password checks behind the
 * failed-login limiter, registration, login tokens, generated (npm token) tokens, revocation.
 */
import { createHash } from 'node:crypto';
import type { LRUCache } from 'lru-cache';
import { entryBoundedCache } from '../registry-core/bounded-cache';
import { TokenStoreError, maskToken, type IssuedTokenRecord, type TokenRecords } from '../registry-core/token-store';
import { AuthError } from './errors';
import type { FirstUserRecord } from './first-user';
import type { PluginLogger } from './verdaccio-adapter';
import { parseCidr } from './network';
import type { LoginLimiter } from './rate-limit';
import type { IssuedToken, TokenIssuer } from './token-issuer';
import { passwordProblem, type Users } from './users';

import { ADMIN_GROUP } from '../registry-core/index';

/** The admin group: the core's (user-names.ts), shared with the storage and dashboard plugins. */
export { ADMIN_GROUP };
/** Names that would read as one of Verdaccio's role groups (or ours) when used as a group. */
export const RESERVED_USERNAMES: readonly string[] = [ADMIN_GROUP, 'all', 'anonymous', 'authenticated', 'undefined', 'null'];

const BASIC_CACHE_MS = 60_000;
const BASIC_CACHE_SIZE = 1000;
const COUCH_RETRY_MS = 30_000;
/**
 * Login sessions listed per user. Each login writes one record; beyond this many live sessions
 * the oldest is revoked, so a script that logs in over and over cannot grow the token store
 * (and the file rewritten on every login) without bound.
 */
export const MAX_SESSIONS_PER_USER = 100;

/** Where a login session came from: shown as its name in `npm token list`. */
export type SessionOrigin = 'npm login' | 'POST /_auth/token' | 'web login';

/**
 * npm 11 `token create` options we cannot honour. Refused rather than ignored: ignoring an org
 * limit would hand out a broader token than asked for. This registry has no organisations.
 */
const UNSUPPORTED_TOKEN_OPTIONS = ['orgs', 'orgs_permission'] as const;
/** At most this many package and scope limits per token (each is checked on every request). */
export const MAX_TOKEN_LIMITS = 100;
/** npm's package-name alphabet (old names may have capitals), optionally scoped; ≤ 214 characters. */
const PACKAGE_NAME = /^(?:@[A-Za-z0-9~-][A-Za-z0-9._~-]*\/)?[A-Za-z0-9~-][A-Za-z0-9._~-]*$/;
const SCOPE_NAME = /^@?[A-Za-z0-9~-][A-Za-z0-9._~-]*$/;

function limitList(body: Record<string, unknown>, field: 'packages' | 'scopes'): string[] {
  const value = body[field];
  if (value === undefined || value === null) return [];
  const list = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(list) || !list.every((item): item is string => typeof item === 'string')) {
    throw new AuthError('ERR_TOKEN_OPTIONS', `${field} must be a list of ${field === 'packages' ? 'package names' : 'scopes (@scope)'}`);
  }
  if (list.length > MAX_TOKEN_LIMITS) throw new AuthError('ERR_TOKEN_OPTIONS', `at most ${MAX_TOKEN_LIMITS} ${field} per token`);
  const out: string[] = [];
  for (const item of list) {
    if (field === 'packages') {
      if (item.length > 214 || !PACKAGE_NAME.test(item)) throw new AuthError('ERR_TOKEN_OPTIONS', `packages: ${JSON.stringify(item.slice(0, 230))} is not a package name`);
      if (!out.includes(item)) out.push(item);
    } else {
      if (item.length > 214 || !SCOPE_NAME.test(item)) throw new AuthError('ERR_TOKEN_OPTIONS', `scopes: ${JSON.stringify(item.slice(0, 230))} is not a scope (@scope)`);
      const scope = item.startsWith('@') ? item : `@${item}`;
      if (!out.includes(scope)) out.push(scope);
    }
  }
  return out;
}

export interface RegistryEventSink {
  emit(event: { kind: 'login' | 'logout' | 'token'; time: number; user?: string; detail?: string; actor?: string; tokenId?: string }): void;
}

export interface AuthServiceOptions {
  users: Users;
  firstUser: FirstUserRecord;
  issuer: TokenIssuer;
  tokens: TokenRecords;
  limiter: LoginLimiter;
  events: RegistryEventSink;
  logger: PluginLogger;
  admins: readonly string[] | undefined;
  generatedTokenTtlSeconds: number;
}

export interface GeneratedTokenResult {
  issued: IssuedToken;
  record: IssuedTokenRecord;
}

/** The npm `POST /-/npm/v1/tokens` body after validation. */
export interface TokenRequest {
  password: string;
  readonly: boolean;
  cidr: string[];
  /** package limits; both empty = not limited to packages */
  packages: string[];
  scopes: string[];
  name?: string;
  description?: string;
  ttlSeconds?: number;
}

/** Three base64url parts: what a whole token (rather than a key) looks like. */
export function looksLikeJwt(value: string): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(value);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Validates npm's token-create body (npm 11 sends `packages_and_scopes_permission`, older npm `readonly`). */
export function parseTokenRequest(body: unknown, maxTtlSeconds: number): TokenRequest {
  if (!isRecord(body)) throw new AuthError('ERR_BAD_REQUEST', 'expected a JSON object body');
  if (typeof body.password !== 'string' || body.password.length === 0) throw new AuthError('ERR_BAD_REQUEST', 'password is required to create a token');
  const unsupported = UNSUPPORTED_TOKEN_OPTIONS.filter((option) => body[option] !== undefined && body[option] !== null && body[option] !== false);
  if (unsupported.length > 0) {
    throw new AuthError('ERR_TOKEN_OPTIONS', `this registry has no organisations: ${unsupported.join(', ')} cannot be honoured (limit the token with packages or scopes)`);
  }
  if (body.packages_all !== undefined && body.packages_all !== null && typeof body.packages_all !== 'boolean') {
    throw new AuthError('ERR_TOKEN_OPTIONS', 'packages_all must be true or false');
  }
  // bypass_2fa: there is no two-factor authentication here to bypass, so it changes nothing
  if (body.bypass_2fa !== undefined && body.bypass_2fa !== null && typeof body.bypass_2fa !== 'boolean') {
    throw new AuthError('ERR_TOKEN_OPTIONS', 'bypass_2fa must be true or false');
  }
  const packages = limitList(body, 'packages');
  const scopes = limitList(body, 'scopes');
  if (body.packages_all === true && (packages.length > 0 || scopes.length > 0)) {
    throw new AuthError('ERR_TOKEN_OPTIONS', 'packages_all cannot be combined with packages or scopes');
  }
  if (body.readonly !== undefined && typeof body.readonly !== 'boolean') throw new AuthError('ERR_TOKEN_OPTIONS', 'readonly must be true or false');
  const permission = body.packages_and_scopes_permission;
  if (permission !== undefined && permission !== null && permission !== 'read-only' && permission !== 'read-write') {
    throw new AuthError('ERR_TOKEN_OPTIONS', `packages_and_scopes_permission ${JSON.stringify(permission)} is not supported (read-only or read-write)`);
  }
  const cidrInput = body.cidr_whitelist ?? [];
  if (!Array.isArray(cidrInput)) throw new AuthError('ERR_TOKEN_OPTIONS', 'cidr_whitelist must be a list of CIDR ranges');
  const cidr = cidrInput.map((entry) => parseCidr(entry).text);
  const request: TokenRequest = { password: body.password, readonly: body.readonly === true || permission === 'read-only', cidr, packages, scopes };
  if (body.name !== undefined && body.name !== null) {
    if (typeof body.name !== 'string' || body.name.length > 100) throw new AuthError('ERR_TOKEN_OPTIONS', 'name must be a string of at most 100 characters');
    request.name = body.name;
  }
  if (body.description !== undefined && body.description !== null) {
    if (typeof body.description !== 'string' || body.description.length > 500) throw new AuthError('ERR_TOKEN_OPTIONS', 'description must be a string of at most 500 characters');
    request.description = body.description;
  }
  if (body.expires !== undefined && body.expires !== null) {
    const days = body.expires;
    if (typeof days !== 'number' || !Number.isInteger(days) || days < 1 || days * 86_400 > maxTtlSeconds) {
      throw new AuthError('ERR_TOKEN_OPTIONS', `expires must be a whole number of days between 1 and ${Math.floor(maxTtlSeconds / 86_400)}`);
    }
    request.ttlSeconds = days * 86_400;
  }
  return request;
}

export class AuthService {
  private readonly options: AuthServiceOptions;
  /** bcrypt results of Basic credentials (lru-cache, bounded), each valid BASIC_CACHE_MS and for one htpasswd version */
  private readonly basicCache: LRUCache<string, { groups: string[]; until: number; version: number }> = entryBoundedCache(BASIC_CACHE_SIZE);
  /** couch logins that just failed: npm retries them at once on /-rev/, which must not count twice */
  private readonly couchFailures = new Map<string, number>();

  constructor(options: AuthServiceOptions) {
    this.options = options;
  }

  get users(): Users {
    return this.options.users;
  }

  /**
   * THE admin rule (the dashboard only reads the `registry-admin` group this grants): the users
   * listed in `admins:`, else the first user ever created — recorded durably (first-user.ts),
   * never "whoever is on the first line of htpasswd now".
   */
  isAdmin(user: string): boolean {
    const admins = this.options.admins;
    if (admins) return admins.includes(user);
    return this.options.firstUser.user === user;
  }

  /** Real groups: the user's own name (Verdaccio's htpasswd convention) and `registry-admin` for admins. */
  groupsOf(user: string): string[] {
    return this.isAdmin(user) ? [user, ADMIN_GROUP] : [user];
  }

  /** Password check behind the limiter. Throws ERR_RATE_LIMITED while locked out (even for a right password). */
  async checkPassword(user: string, password: string, ip: string): Promise<boolean> {
    const { limiter } = this.options;
    const wait = await limiter.retryAfter(user, ip);
    if (wait > 0) throw new AuthError('ERR_RATE_LIMITED', `too many failed logins for ${user}; retry in ${wait} s`, { retryAfter: wait });
    const ok = await this.options.users.verify(user, password);
    if (ok) {
      await limiter.succeed(user, ip);
      return true;
    }
    const lock = await limiter.fail(user, ip);
    this.options.logger.warn({ user, ip, locked: lock }, 'failed login for @{user} from @{ip} (lock-out @{locked} s)');
    return false;
  }

  /** `Authorization: Basic` on any request: the bcrypt result is cached briefly by a hash of user and password. */
  async basic(user: string, password: string, ip: string): Promise<string[] | null> {
    const key = createHash('sha256').update(user).update('\u0000').update(password).digest('base64');
    const version = this.options.users.version;
    const cached = this.basicCache.get(key);
    if (cached && cached.until > Date.now() && cached.version === version) return cached.groups;
    if (cached) this.basicCache.delete(key);
    if (this.recentCouchFailure(user, password, ip)) return null;
    if (!(await this.checkPassword(user, password, ip))) return null;
    const groups = this.groupsOf(user);
    this.basicCache.set(key, { groups, until: Date.now() + BASIC_CACHE_MS, version });
    return groups;
  }

  private static credentialKey(user: string, password: string, ip: string): string {
    return createHash('sha256').update(user).update('\u0000').update(password).update('\u0000').update(ip).digest('base64');
  }

  /** A first couch PUT with a wrong password answered 409; remember it for npm's immediate retry. */
  rememberCouchFailure(user: string, password: string, ip: string): void {
    const now = Date.now();
    for (const [key, until] of this.couchFailures) if (until <= now || this.couchFailures.size > BASIC_CACHE_SIZE) this.couchFailures.delete(key);
    this.couchFailures.set(AuthService.credentialKey(user, password, ip), now + COUCH_RETRY_MS);
  }

  /** true when these exact credentials failed on the first couch PUT moments ago (already counted). */
  recentCouchFailure(user: string, password: string, ip: string): boolean {
    const until = this.couchFailures.get(AuthService.credentialKey(user, password, ip));
    return until !== undefined && until > Date.now();
  }

  /** Login token for an existing user (couch login, POST /_auth/token, web login). */
  async login(user: string, password: string, ip: string, origin: SessionOrigin): Promise<IssuedToken> {
    if (typeof user !== 'string' || typeof password !== 'string' || user.length === 0) {
      throw new AuthError('ERR_BAD_REQUEST', 'username and password are required');
    }
    // read before the (slow) password check: a password change meanwhile makes this token invalid
    await this.options.tokens.sync();
    const generation = this.options.tokens.generation(user);
    if (!(await this.checkPassword(user, password, ip))) throw new AuthError('ERR_BAD_CREDENTIALS', 'bad username or password');
    return this.issueSession(user, ip, origin, generation);
  }

  /** `npm adduser` for a new name: registration rules, then a login token. */
  async register(user: string, password: string, ip: string): Promise<IssuedToken> {
    await this.addUser(user, password);
    this.options.logger.info({ user, ip }, 'user @{user} registered from @{ip}');
    return this.issueSession(user, ip, 'npm login');
  }

  /** Registration rules (name, password policy, max_users) without issuing a token; records the first user ever. */
  async addUser(user: string, password: string): Promise<void> {
    if (RESERVED_USERNAMES.includes(user)) throw new AuthError('ERR_USER_NAME', `the name ${user} is reserved`);
    const { users, firstUser } = this.options;
    // the recorded first user was deleted and its name is taken again: not the admin any more
    if (firstUser.recordedName === user && !users.has(user)) firstUser.retire();
    await users.add(user, password);
    // the first line right after the first registration IS the first user (whatever ran concurrently)
    if (firstUser.recordedName === null) {
      const first = users.names()[0];
      if (first !== undefined) firstUser.recordIfMissing(first, 'registration');
    }
  }

  /**
   * A login token, recorded in the token store (kind `session`) so that `npm token list` shows
   * it and `npm token revoke` can end a stolen session.
   */
  async issueSession(user: string, ip: string, origin: SessionOrigin, generation?: number): Promise<IssuedToken> {
    const options = generation === undefined ? {} : { generation };
    const issued = await this.options.issuer.issue(user, this.groupsOf(user), options);
    const { tokens } = this.options;
    await tokens.save({
      key: issued.jti,
      user,
      created: issued.issuedAt,
      expiresAt: issued.expiresAt,
      readonly: false,
      cidr: [],
      token: maskToken(issued.token),
      name: `${origin} from ${ip || 'unknown address'}`.slice(0, 100),
      kind: 'session',
    });
    const sessions = tokens.list(user).filter((record) => record.kind === 'session');
    for (const old of sessions.slice(0, Math.max(0, sessions.length - MAX_SESSIONS_PER_USER))) {
      await tokens.revokeJti(old.key, old.expiresAt);
      this.options.logger.info({ user, key: old.key }, 'login session @{key} of @{user} revoked: too many live sessions');
    }
    this.options.logger.info({ user, ip, alg: issued.alg, key: issued.jti }, 'issued a @{alg} login token @{key} for @{user} (@{ip})');
    // the actor is the user who proved the password; the token id is the session just issued
    this.options.events.emit({ kind: 'login', time: Date.now(), user, actor: user, detail: `session ${issued.jti}` });
    return issued;
  }

  /**
   * The web login's sign-in (docs/web-login-and-tokens.md): an existing user signs in with the
   * password (behind the failed-login limiter); with `create` (npm adduser) a new name is
   * registered under the usual rules first. The token is a login session like every other.
   */
  async webSignIn(user: string, password: string, ip: string, create: boolean): Promise<IssuedToken> {
    await this.options.users.sync();
    if (create && !this.options.users.has(user)) {
      await this.addUser(user, password);
      this.options.logger.info({ user, ip }, 'user @{user} registered from @{ip} (web login)');
      return this.issueSession(user, ip, 'web login');
    }
    return this.login(user, password, ip, 'web login');
  }

  /** A web-login token nobody collected: it must not stay valid. */
  async revokeUncollected(jti: string, expiresAt: number): Promise<void> {
    await this.options.tokens.revokeJti(jti, expiresAt);
    this.options.logger.info({ key: jti }, 'web login token @{key} was never collected: revoked');
  }

  /**
   * Password change (`npm profile set password`): the old password is checked behind the
   * failed-login limiter, then every token of the user is invalidated (generation bump, durable)
   * BEFORE the new password is written — a failure in between leaves the old password and no
   * valid old session, never the new password with the old sessions still alive.
   */
  async changePassword(user: string, oldPassword: string, newPassword: string, ip: string): Promise<void> {
    if (typeof oldPassword !== 'string' || typeof newPassword !== 'string') throw new AuthError('ERR_BAD_REQUEST', 'old and new password are required');
    const problem = passwordProblem(newPassword, this.options.users.passwordMinLength);
    if (problem) throw new AuthError('ERR_PASSWORD_POLICY', problem);
    if (!(await this.checkPassword(user, oldPassword, ip))) throw new AuthError('ERR_BAD_CREDENTIALS', 'bad username or password');
    const generation = await this.options.tokens.invalidateUser(user);
    this.basicCache.clear();
    await this.options.users.setPassword(user, newPassword);
    this.options.logger.warn({ user, ip, generation }, 'password of @{user} changed from @{ip}: every earlier token of @{user} is invalid (generation @{generation})');
    this.options.events.emit({ kind: 'token', time: Date.now(), user, detail: 'password changed: all tokens invalidated' });
  }

  /** `npm token create`: re-checks the password, issues a restricted token and records it. */
  async createGeneratedToken(user: string, request: TokenRequest, ip: string): Promise<GeneratedTokenResult> {
    await this.options.tokens.sync();
    const generation = this.options.tokens.generation(user);
    if (!(await this.checkPassword(user, request.password, ip))) throw new AuthError('ERR_BAD_CREDENTIALS', 'bad username or password');
    const issued = await this.options.issuer.issue(user, this.groupsOf(user), {
      generation,
      ttlSeconds: request.ttlSeconds ?? this.options.generatedTokenTtlSeconds,
      readonly: request.readonly,
      cidr: request.cidr,
      packages: request.packages,
      scopes: request.scopes,
    });
    const record: IssuedTokenRecord = {
      key: issued.jti,
      user,
      created: issued.issuedAt,
      expiresAt: issued.expiresAt,
      readonly: request.readonly,
      cidr: request.cidr,
      token: maskToken(issued.token),
    };
    if (request.packages.length > 0) record.packages = [...request.packages];
    if (request.scopes.length > 0) record.scopes = [...request.scopes];
    if (request.name !== undefined) record.name = request.name;
    if (request.description !== undefined) record.description = request.description;
    await this.options.tokens.save(record);
    this.options.logger.info({ user, key: record.key, readonly: record.readonly }, 'token @{key} created for @{user} (readonly @{readonly})');
    this.options.events.emit({ kind: 'token', time: Date.now(), user, detail: `created ${record.key}` });
    return { issued, record };
  }

  async listTokens(user: string): Promise<IssuedTokenRecord[]> {
    await this.options.tokens.sync();
    return this.options.tokens.list(user);
  }

  /**
   * `npm token revoke <id|token>`: npm sends the key (our jti) — or, given a whole token, the
   * token itself. A token is resolved to its jti by its signature; it must be one of the
   * caller's own tokens (another user's is "not found", as for a key).
   */
  async revokeToken(user: string, keyOrToken: string): Promise<{ key: string }> {
    const { tokens, issuer } = this.options;
    await tokens.sync();
    let key = keyOrToken;
    if (tokens.get(keyOrToken) === undefined && looksLikeJwt(keyOrToken)) {
      let signed: { jti: string; user: string; expiresAt: number | null };
      try {
        signed = await issuer.verifySignatureOnly(keyOrToken);
      } catch {
        throw new AuthError('ERR_BAD_REQUEST', 'not a token key, nor a token issued by this registry');
      }
      if (signed.user !== user) throw new TokenStoreError('ERR_TOKEN_NOT_FOUND', `no such token for user ${user}`);
      key = signed.jti;
      if (tokens.get(key) === undefined) {
        // a token of ours without a record (issued before sessions were recorded): revoke by jti
        await tokens.revokeJti(key, signed.expiresAt);
        this.revoked(user, key);
        return { key };
      }
    }
    await tokens.revoke(user, key);
    this.revoked(user, key);
    return { key };
  }

  private revoked(user: string, key: string): void {
    this.options.logger.info({ user, key }, 'token @{key} of @{user} revoked');
    this.options.events.emit({ kind: 'token', time: Date.now(), user, detail: `revoked ${key}` });
  }

  /** `npm logout`: holding a token we signed is authority enough to revoke it. */
  async logout(token: string): Promise<{ user: string; jti: string }> {
    const { jti, user, expiresAt } = await this.options.issuer.verifySignatureOnly(token);
    await this.options.tokens.revokeJti(jti, expiresAt);
    this.options.logger.info({ user, jti }, 'logout: token @{jti} of @{user} revoked');
    this.options.events.emit({ kind: 'logout', time: Date.now(), user, actor: user, tokenId: jti });
    return { user, jti };
  }
}
