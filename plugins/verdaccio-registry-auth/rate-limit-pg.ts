/**
 * The failed-login limiter shared by every node (docs/cluster.md "Rate limits"): the same rule as
 * rate-limit.ts (recordFailure), kept in `registry_login_failures`, so a guesser spreading
 * attempts over the nodes behind a balancer meets one count. A failure is one transaction with the
 * row locked (FOR UPDATE): two nodes counting at once never lose a failure. Rows whose window and
 * lock-out are over are deleted now and then (the table stays bounded by live entries).
 */
import type { Database } from '../registry-core/database/index';
import { DEFAULT_RATE_LIMIT, recordFailure, secondsLocked, type LimiterEntry, type LoginLimiter, type RateLimitOptions } from './rate-limit';

const SWEEP_EVERY = 100;

/** text columns cannot hold NUL (FailedLoginLimiter's separator); a user name never holds a space (usernameProblem) */
function rowKey(user: string, ip: string): string {
  return `${user} ${ip}`;
}

export class PgLoginLimiter implements LoginLimiter {
  readonly #database: Database;
  readonly #options: RateLimitOptions;
  #failuresSinceSweep = 0;

  constructor(database: Database, options: Partial<RateLimitOptions> = {}) {
    this.#database = database;
    this.#options = { ...DEFAULT_RATE_LIMIT, ...options };
  }

  async retryAfter(user: string, ip: string, now = Date.now()): Promise<number> {
    const rows = await this.#database.query<{ locked_until: string }>(
      'SELECT locked_until::text AS locked_until FROM registry_login_failures WHERE key = $1',
      [rowKey(user, ip)],
      'registry-login-locked',
    );
    return rows.length === 0 ? 0 : secondsLocked({ failures: [], lockouts: 0, lockedUntil: Number(rows[0].locked_until) }, now);
  }

  async fail(user: string, ip: string, now = Date.now()): Promise<number> {
    const key = rowKey(user, ip);
    const entry = await this.#database.transaction(async (client) => {
      await client.query('INSERT INTO registry_login_failures (key, failures, locked_until, lockouts) VALUES ($1, $2, 0, 0) ON CONFLICT DO NOTHING', [key, []]);
      const row = (
        await client.query<{ failures: string[]; locked_until: string; lockouts: number }>(
          'SELECT failures::text[] AS failures, locked_until::text AS locked_until, lockouts FROM registry_login_failures WHERE key = $1 FOR UPDATE',
          [key],
        )
      ).rows[0];
      const current: LimiterEntry = { failures: row.failures.map(Number), lockedUntil: Number(row.locked_until), lockouts: row.lockouts };
      recordFailure(current, now, this.#options);
      await client.query('UPDATE registry_login_failures SET failures = $2, locked_until = $3, lockouts = $4, touched_at = now() WHERE key = $1', [
        key,
        current.failures,
        current.lockedUntil,
        current.lockouts,
      ]);
      return current;
    });
    if (++this.#failuresSinceSweep >= SWEEP_EVERY) {
      this.#failuresSinceSweep = 0;
      await this.#database
        .query("DELETE FROM registry_login_failures WHERE locked_until < $1 AND touched_at < now() - ($2::bigint * interval '1 millisecond')", [now, this.#options.windowMs + this.#options.maxLockMs])
        .catch(() => undefined);
    }
    return secondsLocked(entry, now);
  }

  async succeed(user: string, ip: string): Promise<void> {
    await this.#database.query('DELETE FROM registry_login_failures WHERE key = $1', [rowKey(user, ip)], 'registry-login-clear');
  }
}
