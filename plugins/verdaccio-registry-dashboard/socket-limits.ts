/**
 * Per-socket limits of `/_dashboard/terminal` (issue 11.3: one anonymous socket once queued 257k
 * messages and kept the server busy for minutes after it left). Pure logic, time injected.
 */

export interface SocketLimits {
  /** sustained messages per second a socket may send */
  messagesPerSecond: number;
  /** messages a socket may send at once above the sustained rate */
  burst: number;
  /** messages waiting for their answer (the one being handled included); one more closes the socket */
  maxQueued: number;
}

/** Generous for people and the clients of this repository (a few messages per keypress at most). */
export const DEFAULT_SOCKET_LIMITS: SocketLimits = Object.freeze({ messagesPerSecond: 50, burst: 100, maxQueued: 32 });

/**
 * A token bucket: `capacity` tokens, refilled at `ratePerSecond`; `take()` spends one if there is
 * one. Time comes from `now` (ms), so tests freeze it instead of sleeping.
 */
export class TokenBucket {
  readonly #capacity: number;
  readonly #ratePerMs: number;
  readonly #now: () => number;
  #tokens: number;
  #updatedAt: number;

  constructor(capacity: number, ratePerSecond: number, now: () => number = Date.now) {
    if (!(capacity >= 1) || !(ratePerSecond > 0)) throw new RangeError('a token bucket needs capacity ≥ 1 and a positive rate');
    this.#capacity = capacity;
    this.#ratePerMs = ratePerSecond / 1000;
    this.#now = now;
    this.#tokens = capacity;
    this.#updatedAt = now();
  }

  take(): boolean {
    const now = this.#now();
    // a clock that goes backwards adds nothing
    const elapsed = Math.max(0, now - this.#updatedAt);
    this.#tokens = Math.min(this.#capacity, this.#tokens + elapsed * this.#ratePerMs);
    this.#updatedAt = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}

export type Admission = 'accept' | 'rate-limited' | 'close';

/**
 * What to do with the next message of one socket. Within the rate: accept. Over it: the message
 * is dropped and answered with an error, spending a second bucket of the same size — a client
 * that keeps sending after `burst` such answers (it does not read them) is closed with 1008.
 */
export class MessageAdmission {
  readonly #messages: TokenBucket;
  readonly #warnings: TokenBucket;

  constructor(limits: SocketLimits, now: () => number = Date.now) {
    this.#messages = new TokenBucket(limits.burst, limits.messagesPerSecond, now);
    this.#warnings = new TokenBucket(limits.burst, limits.messagesPerSecond, now);
  }

  admit(): Admission {
    if (this.#messages.take()) return 'accept';
    return this.#warnings.take() ? 'rate-limited' : 'close';
  }
}

/** Reads `socket_limits: {messages_per_second, burst, max_queued}` of the plugin options; absent keys keep the defaults. */
export function parseSocketLimits(raw: unknown): SocketLimits {
  if (raw === undefined || raw === null) return DEFAULT_SOCKET_LIMITS;
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new Error('registry-dashboard: `socket_limits` must be a mapping');
  const record = raw as Record<string, unknown>;
  const known = new Set(['messages_per_second', 'burst', 'max_queued']);
  for (const key of Object.keys(record)) {
    if (!known.has(key)) throw new Error(`registry-dashboard: unknown key socket_limits.${key} (known: ${[...known].join(', ')})`);
  }
  const positive = (key: string, fallback: number): number => {
    const value = record[key];
    if (value === undefined) return fallback;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 1_000_000) {
      throw new Error(`registry-dashboard: socket_limits.${key} must be an integer 1..1000000, got ${JSON.stringify(value)}`);
    }
    return value;
  };
  return {
    messagesPerSecond: positive('messages_per_second', DEFAULT_SOCKET_LIMITS.messagesPerSecond),
    burst: positive('burst', DEFAULT_SOCKET_LIMITS.burst),
    maxQueued: positive('max_queued', DEFAULT_SOCKET_LIMITS.maxQueued),
  };
}
