/**
 * Failed-login limiter, per (username, client IP).
 *
 * `maxFailures` failures inside `windowMs` lock the pair out for `windowMs`, and each further
 * lock-out doubles (capped at `maxLockMs`). While locked out every attempt is refused, even with
 * the right password, so guessing cannot continue. A success clears the pair. The table is
 * bounded (oldest entries go first), so a flood of random names cannot exhaust memory.
 */
export interface RateLimitOptions {
  maxFailures: number;
  windowMs: number;
  maxLockMs: number;
  maxEntries: number;
}

export const DEFAULT_RATE_LIMIT: RateLimitOptions = { maxFailures: 5, windowMs: 60_000, maxLockMs: 15 * 60_000, maxEntries: 10_000 };

export interface LimiterEntry {
  failures: number[];
  lockedUntil: number;
  lockouts: number;
}
type Entry = LimiterEntry;

/** What the auth service needs: this in-memory limiter, or the one shared by every node (rate-limit-pg.ts). */
export interface LoginLimiter {
  retryAfter(user: string, ip: string, now?: number): number | Promise<number>;
  fail(user: string, ip: string, now?: number): number | Promise<number>;
  succeed(user: string, ip: string): void | Promise<void>;
}

/** The one rule: records a failure at `now` in `entry` (changed in place). */
export function recordFailure(entry: LimiterEntry, now: number, options: RateLimitOptions): void {
  entry.failures = entry.failures.filter((time) => now - time < options.windowMs);
  entry.failures.push(now);
  if (entry.failures.length >= options.maxFailures) {
    const lockMs = Math.min(options.windowMs * 2 ** entry.lockouts, options.maxLockMs);
    entry.lockedUntil = now + lockMs;
    entry.lockouts += 1;
    entry.failures = [];
  }
}

/** Seconds still locked out at `now` (0 = allowed). */
export function secondsLocked(entry: LimiterEntry | undefined, now: number): number {
  if (!entry || entry.lockedUntil <= now) return 0;
  return Math.max(1, Math.ceil((entry.lockedUntil - now) / 1000));
}

export class FailedLoginLimiter implements LoginLimiter {
  private readonly options: RateLimitOptions;
  private readonly entries = new Map<string, Entry>();

  constructor(options: Partial<RateLimitOptions> = {}) {
    this.options = { ...DEFAULT_RATE_LIMIT, ...options };
  }

  /** How many (user, address) pairs are tracked now: at most maxEntries. */
  get size(): number {
    return this.entries.size;
  }

  static key(user: string, ip: string): string {
    return `${user}\u0000${ip}`;
  }

  /** Seconds the caller must wait, or 0 when an attempt is allowed now. */
  retryAfter(user: string, ip: string, now = Date.now()): number {
    return secondsLocked(this.entries.get(FailedLoginLimiter.key(user, ip)), now);
  }

  /** Records a failure; returns the lock-out in seconds it caused (0 when none). */
  fail(user: string, ip: string, now = Date.now()): number {
    const key = FailedLoginLimiter.key(user, ip);
    let entry = this.entries.get(key);
    if (entry) this.entries.delete(key);
    else entry = { failures: [], lockedUntil: 0, lockouts: 0 };
    this.entries.set(key, entry); // re-insert: Map order = least recently failed first
    recordFailure(entry, now, this.options);
    while (this.entries.size > this.options.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
    return this.retryAfter(user, ip, now);
  }

  succeed(user: string, ip: string): void {
    this.entries.delete(FailedLoginLimiter.key(user, ip));
  }
}
