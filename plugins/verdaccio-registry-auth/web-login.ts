/**
 * npm's web login (`npm login` / `npm adduser` with auth-type web, npm 11's default), the
 * session side (docs/web-login-and-tokens.md). No HTTP here: http.ts maps the routes onto this.
 *
 * A session has TWO secrets, each 256 random bits: the login id (in `loginUrl`, which the user
 * sees, opens in a browser and may paste elsewhere) and the done id (in `doneUrl`, which only
 * the npm process that started the session knows). Signing in needs the login id; collecting
 * the token needs the done id — so someone who saw the login URL (browser history, a shared
 * screen) cannot collect the token. Sessions live in memory only (a restart ends them; npm then
 * gets 404 and says so), expire after `ttlMs`, are single-use (the token is handed out once and
 * forgotten), and their creation is limited per client address.
 */
import { randomBytes } from 'node:crypto';
import { AuthError } from './errors';

export interface WebLoginOptions {
  /** how long a session may wait for the browser, and then for npm to collect the token (default 5 min) */
  ttlMs?: number;
  /** sessions one address may start within `windowMs` (default 10 per minute) */
  perAddress?: number;
  windowMs?: number;
  /** pending sessions in total (default 1000): beyond it new ones are refused until some end */
  maxSessions?: number;
  now?: () => number;
}

export interface WebLoginStarted {
  loginId: string;
  doneId: string;
  expiresAt: number;
}

/** What the sign-in page may know about a session (no secrets of npm's side). */
export interface WebLoginView {
  create: boolean;
  /** the address that ran `npm login`: the page shows it, so a user can tell a session someone else started */
  requestedFrom: string;
  createdAt: number;
  expiresAt: number;
}

export type WebLoginPoll = { state: 'pending'; retryAfterSeconds: number } | { state: 'done'; token: string };

/** A token handed to a session that nobody collected before it expired (the caller revokes it). */
export interface UncollectedToken {
  jti: string;
  expiresAt: number;
}

interface Session {
  loginId: string;
  doneId: string;
  create: boolean;
  requestedFrom: string;
  createdAt: number;
  expiresAt: number;
  state: 'pending' | 'signing-in' | 'done';
  token?: string;
  jti?: string;
  tokenExpiresAt?: number;
}

/** 32 random bytes, base64url (43 characters): the id alphabet the routes accept. */
export const SESSION_ID = /^[A-Za-z0-9_-]{43}$/;
export const POLL_RETRY_AFTER_SECONDS = 1;

function newId(): string {
  return randomBytes(32).toString('base64url');
}

export class WebLoginSessions {
  private readonly byLogin = new Map<string, Session>();
  private readonly byDone = new Map<string, Session>();
  private readonly starts = new Map<string, number[]>();
  private readonly ttlMs: number;
  private readonly perAddress: number;
  private readonly windowMs: number;
  private readonly maxSessions: number;
  private readonly now: () => number;

  constructor(options: WebLoginOptions = {}) {
    this.ttlMs = options.ttlMs ?? 5 * 60_000;
    this.perAddress = options.perAddress ?? 10;
    this.windowMs = options.windowMs ?? 60_000;
    this.maxSessions = options.maxSessions ?? 1000;
    this.now = options.now ?? Date.now;
  }

  get size(): number {
    return this.byLogin.size;
  }

  /**
   * `POST /-/v1/login`. Throws ERR_RATE_LIMITED (429 + Retry-After) past the per-address limit
   * or the global cap; returns the uncollected tokens of sessions that expired meanwhile.
   */
  start(address: string, create: boolean): { started: WebLoginStarted; expired: UncollectedToken[] } {
    const now = this.now();
    const expired = this.sweep(now);
    const recent = (this.starts.get(address) ?? []).filter((time) => now - time < this.windowMs);
    if (recent.length >= this.perAddress) {
      const wait = Math.max(1, Math.ceil((recent[0] + this.windowMs - now) / 1000));
      this.starts.set(address, recent);
      throw new AuthError('ERR_RATE_LIMITED', `too many web logins from ${address}; retry in ${wait} s`, { retryAfter: wait });
    }
    if (this.byLogin.size >= this.maxSessions) {
      throw new AuthError('ERR_RATE_LIMITED', 'too many web logins in progress; retry in a minute', { retryAfter: 60 });
    }
    recent.push(now);
    this.starts.set(address, recent);
    const session: Session = { loginId: newId(), doneId: newId(), create, requestedFrom: address, createdAt: now, expiresAt: now + this.ttlMs, state: 'pending' };
    this.byLogin.set(session.loginId, session);
    this.byDone.set(session.doneId, session);
    return { started: { loginId: session.loginId, doneId: session.doneId, expiresAt: session.expiresAt }, expired };
  }

  /** The page's view of a session waiting for a sign-in; undefined when unknown, expired or already signed in. */
  view(loginId: string): WebLoginView | undefined {
    const session = this.live(this.byLogin.get(loginId));
    if (!session || session.state !== 'pending') return undefined;
    return { create: session.create, requestedFrom: session.requestedFrom, createdAt: session.createdAt, expiresAt: session.expiresAt };
  }

  /**
   * Claims a pending session for one sign-in attempt (so two concurrent attempts cannot both
   * issue a token). Throws 404 for unknown/expired, 409 for one already signed in or in progress.
   */
  beginSignIn(loginId: string): { create: boolean } {
    const session = this.live(this.byLogin.get(loginId));
    if (!session) throw new AuthError('ERR_NOT_FOUND', 'this login link is unknown or has expired: run npm login again');
    if (session.state !== 'pending') throw new AuthError('ERR_CONFLICT', 'this login link has already been used');
    session.state = 'signing-in';
    return { create: session.create };
  }

  /** The attempt failed (wrong password…): the session waits for another one. */
  abortSignIn(loginId: string): void {
    const session = this.byLogin.get(loginId);
    if (session?.state === 'signing-in') session.state = 'pending';
  }

  /**
   * The attempt succeeded: npm's next poll gets this token. false when the session expired during
   * the attempt (the caller then revokes the token it just issued).
   */
  finishSignIn(loginId: string, token: string, jti: string, tokenExpiresAt: number): boolean {
    const session = this.live(this.byLogin.get(loginId));
    if (!session || session.state !== 'signing-in') return false;
    session.state = 'done';
    session.token = token;
    session.jti = jti;
    session.tokenExpiresAt = tokenExpiresAt;
    return true;
  }

  /** `GET doneUrl`: pending → retry later; done → the token, exactly once (the session ends). */
  poll(doneId: string): WebLoginPoll | undefined {
    const session = this.live(this.byDone.get(doneId));
    if (!session) return undefined;
    if (session.state !== 'done' || session.token === undefined) return { state: 'pending', retryAfterSeconds: POLL_RETRY_AFTER_SECONDS };
    const token = session.token;
    this.remove(session);
    return { state: 'done', token };
  }

  /** Drops expired sessions; returns the tokens nobody collected (to revoke). */
  sweep(now = this.now()): UncollectedToken[] {
    const uncollected: UncollectedToken[] = [];
    for (const session of this.byLogin.values()) {
      if (session.expiresAt > now) continue;
      if (session.jti !== undefined && session.tokenExpiresAt !== undefined) uncollected.push({ jti: session.jti, expiresAt: session.tokenExpiresAt });
      this.remove(session);
    }
    for (const [address, times] of this.starts) {
      if (times.every((time) => now - time >= this.windowMs)) this.starts.delete(address);
    }
    return uncollected;
  }

  private live(session: Session | undefined): Session | undefined {
    if (!session) return undefined;
    return session.expiresAt > this.now() ? session : undefined;
  }

  private remove(session: Session): void {
    this.byLogin.delete(session.loginId);
    this.byDone.delete(session.doneId);
  }
}
