/**
 * Issued-token records (`npm token create`) and revocations (`npm logout`, `npm token revoke`)
 * in one small JSON file: `<storage>/.registry-tokens.json`.
 *
 * The auth plugin writes it and checks revocations on every request; the storage plugin
 * implements Verdaccio's saveToken/readTokens/deleteToken by delegating here. Both live in one
 * Verdaccio process, so ONE instance per real path (ref-counted close) makes a revocation
 * visible to every reader at once. Several processes may share the file (two registries on one
 * storage folder, the CLI): every write takes the core file lock (lock.ts), re-reads the file,
 * applies its one change and replaces the whole file atomically (atomic-file.ts), so a revocation
 * written by one process is never erased by another's write; every read first compares the
 * file's (inode, mtime, size) with the copy in memory (one stat) and re-reads it when it changed.
 * Writes are rare (login, logout, token create/revoke).
 * The file holds masked tokens only, never a usable token.
 */
import { writeFileAtomicSync } from './atomic-file';
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { fileLockKey, withFileLockSync } from './lock';
import { dirname, resolve } from 'node:path';

export const TOKEN_STORE_FILE = '.registry-tokens.json';

export type TokenStoreErrorCode = 'ERR_TOKEN_STORE_CORRUPT' | 'ERR_TOKEN_NOT_FOUND' | 'ERR_TOKEN_RECORD' | 'ERR_TOKEN_STORE_CLOSED';

export class TokenStoreError extends Error {
  readonly code: TokenStoreErrorCode;
  constructor(code: TokenStoreErrorCode, message: string) {
    super(message);
    this.name = 'TokenStoreError';
    this.code = code;
  }
}

/**
 * One token the user can see in `npm token list` and revoke: made by `npm token create` (or the
 * dashboard), or a login session (`kind: 'session'`: npm login/adduser, `POST /_auth/token`, the
 * web login). `key` is the token's `jti`.
 */
export interface IssuedTokenRecord {
  key: string;
  user: string;
  /** ms since epoch */
  created: number;
  /** ms since epoch; null = the token itself carries no expiry (foreign records adopted by the storage plugin) */
  expiresAt: number | null;
  readonly: boolean;
  cidr: string[];
  /** masked: the first characters and an ellipsis, never the whole token */
  token: string;
  name?: string;
  description?: string;
  /** granular tokens: limited to these packages / scopes (`@scope`); absent = not limited */
  packages?: string[];
  scopes?: string[];
  /** 'session' = a login token; absent = a generated token */
  kind?: 'session';
  /** ms since epoch of the last request made with it, to LAST_USED_RESOLUTION_MS; absent = never used */
  lastUsed?: number;
}

/**
 * How precisely "last used" is kept: a token used again within this time is not marked again, so
 * a busy token costs one Map lookup per request and the store is rewritten at most once per
 * resolution for all tokens together (see markUsed / flushLastUsed).
 */
export const LAST_USED_RESOLUTION_MS = 60_000;

export interface RevocationRecord {
  jti: string;
  /** when the revoked token would have expired anyway; null = keep forever */
  expiresAt: number | null;
}

interface StoreFileShape {
  version: 1;
  tokens: IssuedTokenRecord[];
  revoked: RevocationRecord[];
  /**
   * Per-user token generation (absent = 0). Every token carries the generation its user had when
   * it was issued and verifies only while it is still the current one, so bumping it (a password
   * change) invalidates every token of that user at once — durably, across restarts. Optional so
   * files written before it existed still load.
   */
  generations?: Record<string, number>;
}

/** Shows enough of a token to recognise it in `npm token list`, never enough to use it. */
export function maskToken(token: string, visible = 6): string {
  return `${token.slice(0, visible)}…`;
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((item) => typeof item === 'string');
}

function isExpiry(value: unknown): value is number | null {
  return value === null || (typeof value === 'number' && Number.isFinite(value));
}

function checkTokenRecord(value: unknown, where: string): IssuedTokenRecord {
  const record = value as Partial<IssuedTokenRecord> | null;
  if (
    !record ||
    typeof record !== 'object' ||
    typeof record.key !== 'string' ||
    record.key.length === 0 ||
    typeof record.user !== 'string' ||
    record.user.length === 0 ||
    typeof record.created !== 'number' ||
    !isExpiry(record.expiresAt) ||
    typeof record.readonly !== 'boolean' ||
    !isStringArray(record.cidr) ||
    typeof record.token !== 'string' ||
    (record.name !== undefined && typeof record.name !== 'string') ||
    (record.description !== undefined && typeof record.description !== 'string') ||
    (record.kind !== undefined && record.kind !== 'session') ||
    (record.packages !== undefined && !isStringArray(record.packages)) ||
    (record.scopes !== undefined && !isStringArray(record.scopes)) ||
    (record.lastUsed !== undefined && (typeof record.lastUsed !== 'number' || !Number.isFinite(record.lastUsed)))
  ) {
    throw new TokenStoreError('ERR_TOKEN_RECORD', `${where}: not a valid token record`);
  }
  const clean: IssuedTokenRecord = {
    key: record.key,
    user: record.user,
    created: record.created,
    expiresAt: record.expiresAt,
    readonly: record.readonly,
    cidr: [...record.cidr],
    token: record.token,
  };
  if (record.name !== undefined) clean.name = record.name;
  if (record.description !== undefined) clean.description = record.description;
  if (record.kind !== undefined) clean.kind = record.kind;
  if (record.packages !== undefined) clean.packages = [...record.packages];
  if (record.scopes !== undefined) clean.scopes = [...record.scopes];
  if (record.lastUsed !== undefined) clean.lastUsed = record.lastUsed;
  return clean;
}

/** A copy the caller may change without touching the store. */
function copyRecord(record: IssuedTokenRecord): IssuedTokenRecord {
  const copy: IssuedTokenRecord = { ...record, cidr: [...record.cidr] };
  if (record.packages !== undefined) copy.packages = [...record.packages];
  if (record.scopes !== undefined) copy.scopes = [...record.scopes];
  return copy;
}

function isGeneration(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function parseStoreFile(path: string, text: string): StoreFileShape {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new TokenStoreError('ERR_TOKEN_STORE_CORRUPT', `${path} is not valid JSON (${(error as Error).message}); fix or remove it`);
  }
  const shape = parsed as Partial<StoreFileShape> | null;
  if (!shape || typeof shape !== 'object' || shape.version !== 1 || !Array.isArray(shape.tokens) || !Array.isArray(shape.revoked)) {
    throw new TokenStoreError('ERR_TOKEN_STORE_CORRUPT', `${path} is not a token store (expected {"version":1,"tokens":[],"revoked":[]})`);
  }
  try {
    const tokens = shape.tokens.map((record, index) => checkTokenRecord(record, `${path} tokens[${index}]`));
    const revoked = shape.revoked.map((entry, index) => {
      const candidate = entry as Partial<RevocationRecord> | null;
      if (!candidate || typeof candidate.jti !== 'string' || candidate.jti.length === 0 || !isExpiry(candidate.expiresAt)) {
        throw new TokenStoreError('ERR_TOKEN_RECORD', `${path} revoked[${index}]: not a valid revocation`);
      }
      return { jti: candidate.jti, expiresAt: candidate.expiresAt };
    });
    const generations: Record<string, number> = Object.create(null) as Record<string, number>; // a user may be called __proto__
    if (shape.generations !== undefined) {
      const raw = shape.generations as unknown;
      if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new TokenStoreError('ERR_TOKEN_RECORD', `${path} generations: expected an object`);
      for (const [user, value] of Object.entries(raw)) {
        if (!isGeneration(value)) throw new TokenStoreError('ERR_TOKEN_RECORD', `${path} generations.${user}: not a whole number >= 0`);
        generations[user] = value;
      }
    }
    return { version: 1, tokens, revoked, generations };
  } catch (error) {
    if (error instanceof TokenStoreError) throw new TokenStoreError('ERR_TOKEN_STORE_CORRUPT', error.message);
    throw error;
  }
}


/**
 * What the auth and storage plugins need of a token store. Two implementations: the file store
 * below (the default) and the PostgreSQL one (database/token-store-pg.ts, docs/cluster.md). Writes
 * may be asynchronous (callers await them); the per-request checks (isRevoked, generation) are
 * synchronous reads of memory, which `sync()` first brings up to date with every other node
 * (null: nothing to do — the file store is the only writer's memory).
 */
export interface TokenRecords {
  save(record: IssuedTokenRecord): void | Promise<void>;
  list(user: string, now?: number): IssuedTokenRecord[];
  get(key: string): IssuedTokenRecord | undefined;
  revoke(user: string, key: string): IssuedTokenRecord | Promise<IssuedTokenRecord>;
  revokeJti(jti: string, expiresAt: number | null): void | Promise<void>;
  markUsed(key: string, now?: number): void;
  flushLastUsed(): boolean | Promise<boolean>;
  isRevoked(jti: string): boolean;
  generation(user: string): number;
  invalidateUser(user: string): number | Promise<number>;
  prune(now?: number): number | Promise<number>;
  sync(): Promise<void> | null;
  /** true when other processes write too (PostgreSQL) */
  readonly shared?: boolean;
  close(): void;
}

/** Exported for the PostgreSQL store: the same record rules. */
export function checkedTokenRecord(value: unknown, where: string): IssuedTokenRecord {
  return checkTokenRecord(value, where);
}

const openStores = new Map<string, { store: TokenStore; refs: number }>();

/** What identifies one version of the file: a rename (every write) changes the inode. */
function stampOf(file: string): string {
  // every token check stats the file (isRevoked, generation), and on a registry where nobody has
  // logged in yet it does not exist: throwIfNoEntry keeps that common case from building an
  // ENOENT error (with its stack) per check — that was a quarter of a token issue + verify
  const stats = statSync(file, { throwIfNoEntry: false });
  return stats === undefined ? 'missing' : `${stats.ino}:${stats.mtimeMs}:${stats.size}`;
}

export class TokenStore implements TokenRecords {
  readonly file: string;
  private tokens = new Map<string, IssuedTokenRecord>();
  private revoked = new Map<string, number | null>();
  private generations = new Map<string, number>();
  private closed = false;
  /** (inode, mtime, size) of the file the maps were read from; 'missing' = no file yet */
  private stamp = '';
  /** last-used marks not yet on disk (markUsed), re-applied after every re-read; written by the next write or flushLastUsed */
  private pendingLastUsed = new Map<string, number>();

  private constructor(file: string) {
    this.file = file;
    this.reload();
  }

  /**
   * Opens (creating the folder, not the file) the store at `file`. Every call for the same real
   * path in this process returns the same instance; each call needs its own close().
   */
  static open(file: string): TokenStore {
    const absolute = resolve(file);
    mkdirSync(dirname(absolute), { recursive: true });
    const key = fileLockKey(absolute);
    const existing = openStores.get(key);
    if (existing) {
      existing.refs += 1;
      return existing.store;
    }
    const store = new TokenStore(key);
    openStores.set(key, { store, refs: 1 });
    return store;
  }

  /** Records a newly issued token. A record with the same key is refused (keys are random jtis). */
  save(record: IssuedTokenRecord): void {
    this.assertOpen();
    const clean = checkTokenRecord(record, 'save()');
    this.update(() => {
      if (this.tokens.has(clean.key)) throw new TokenStoreError('ERR_TOKEN_RECORD', `a token with key ${clean.key} already exists`);
      this.tokens.set(clean.key, clean);
      return true;
    });
  }

  /** The user's live (unexpired, unrevoked) tokens, oldest first. */
  list(user: string, now = Date.now()): IssuedTokenRecord[] {
    this.assertOpen();
    this.refresh();
    return [...this.tokens.values()]
      .filter((record) => record.user === user && (record.expiresAt === null || record.expiresAt > now))
      .sort((a, b) => a.created - b.created)
      .map(copyRecord);
  }

  get(key: string): IssuedTokenRecord | undefined {
    this.assertOpen();
    this.refresh();
    const record = this.tokens.get(key);
    return record ? copyRecord(record) : undefined;
  }

  /**
   * `npm token revoke`: removes the user's token `key` and remembers its jti as revoked until it
   * would have expired. Another user's key is "not found" (no hint that it exists).
   */
  revoke(user: string, key: string): IssuedTokenRecord {
    this.assertOpen();
    let revoked: IssuedTokenRecord | undefined;
    this.update(() => {
      const record = this.tokens.get(key);
      if (!record || record.user !== user) throw new TokenStoreError('ERR_TOKEN_NOT_FOUND', `no token ${key} for user ${user}`);
      this.tokens.delete(key);
      this.revoked.set(key, record.expiresAt);
      revoked = copyRecord(record);
      return true;
    });
    return revoked as IssuedTokenRecord;
  }

  /** `npm logout` and friends: revokes any token by its jti (idempotent). */
  revokeJti(jti: string, expiresAt: number | null): void {
    this.assertOpen();
    if (jti.length === 0) throw new TokenStoreError('ERR_TOKEN_RECORD', 'a revocation needs a jti');
    this.refresh();
    if (this.revoked.has(jti) && !this.tokens.has(jti)) return;
    this.update(() => {
      if (this.revoked.has(jti) && !this.tokens.has(jti)) return false;
      this.tokens.delete(jti);
      this.revoked.set(jti, expiresAt);
      return true;
    });
  }

  /**
   * Notes that the token `key` was just used (called for every accepted token, on every channel).
   * In memory only, at most once per LAST_USED_RESOLUTION_MS per token; flushLastUsed() or the next
   * write puts it on disk. Unknown keys (tokens without a record) are ignored.
   */
  markUsed(key: string, now = Date.now()): void {
    this.refresh();
    const record = this.tokens.get(key);
    if (!record || (record.lastUsed !== undefined && now - record.lastUsed < LAST_USED_RESOLUTION_MS)) return;
    record.lastUsed = now;
    this.pendingLastUsed.set(key, now);
  }

  /** Writes pending last-used marks (one atomic write); false when there was nothing to write. */
  flushLastUsed(): boolean {
    this.assertOpen();
    if (this.pendingLastUsed.size === 0) return false;
    this.update(() => true);
    return true;
  }

  /** The file is re-read when it changed (isRevoked/generation stat it): nothing to ask first. */
  sync(): null {
    return null;
  }

  /** Called on every authenticated request: one stat (sees other processes' revocations) and one Map lookup. */
  isRevoked(jti: string): boolean {
    this.refresh();
    return this.revoked.has(jti);
  }

  /** The user's current token generation (0 until the first invalidation); one stat and one Map lookup per request. */
  generation(user: string): number {
    this.refresh();
    return this.generations.get(user) ?? 0;
  }

  /**
   * Invalidates every token of `user` (a password change): bumps the user's generation and drops
   * the user's records (those tokens no longer verify, so `npm token list` must not show them).
   * One atomic write; on failure nothing changed. Returns the new generation.
   */
  invalidateUser(user: string): number {
    this.assertOpen();
    if (user.length === 0) throw new TokenStoreError('ERR_TOKEN_RECORD', 'an invalidation needs a user');
    let next = 0;
    this.update(() => {
      next = (this.generations.get(user) ?? 0) + 1;
      for (const record of [...this.tokens.values()]) if (record.user === user) this.tokens.delete(record.key);
      this.generations.set(user, next);
      return true;
    });
    return next;
  }

  /** Drops records and revocations of tokens that have expired anyway; returns how many. */
  prune(now = Date.now()): number {
    this.assertOpen();
    let dropped = 0;
    this.update(() => {
      for (const [key, record] of this.tokens) {
        if (record.expiresAt !== null && record.expiresAt <= now) {
          this.tokens.delete(key);
          dropped += 1;
        }
      }
      for (const [jti, expiresAt] of this.revoked) {
        if (expiresAt !== null && expiresAt <= now) {
          this.revoked.delete(jti);
          dropped += 1;
        }
      }
      return dropped > 0;
    });
    return dropped;
  }

  close(): void {
    if (this.closed) return;
    const entry = openStores.get(this.file);
    if (!entry || entry.store !== this) {
      this.closed = true;
      return;
    }
    entry.refs -= 1;
    if (entry.refs === 0) {
      openStores.delete(this.file);
      this.closed = true;
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new TokenStoreError('ERR_TOKEN_STORE_CLOSED', `token store ${this.file} is closed`);
  }

  /** Reads the file into the maps (a missing file is an empty store) and re-applies this process's pending last-used marks. */
  private reload(): void {
    const stamp = stampOf(this.file);
    const shape = stamp === 'missing' ? undefined : parseStoreFile(this.file, readFileSync(this.file, 'utf8'));
    this.tokens = new Map((shape?.tokens ?? []).map((record) => [record.key, record]));
    this.revoked = new Map((shape?.revoked ?? []).map((entry) => [entry.jti, entry.expiresAt]));
    this.generations = new Map(Object.entries(shape?.generations ?? {}));
    for (const [key, at] of this.pendingLastUsed) {
      const record = this.tokens.get(key);
      if (!record) this.pendingLastUsed.delete(key);
      else if (record.lastUsed === undefined || record.lastUsed < at) record.lastUsed = at;
    }
    this.stamp = stamp;
  }

  /**
   * Reads the file again when another writer (this or another process) replaced it. A file made
   * unreadable by hand keeps the last good state for readers; the next write reports it.
   */
  private refresh(): void {
    if (stampOf(this.file) === this.stamp) return;
    try {
      this.reload();
    } catch (error) {
      if (!(error instanceof TokenStoreError)) throw error;
    }
  }

  /**
   * Every write: under the file lock (core lock.ts, across processes) re-read the file, apply one
   * change, write the whole file atomically. `apply` returns false when there is nothing to write.
   * On any failure the maps are re-read from the file, so memory never runs ahead of the disk.
   */
  private update(apply: () => boolean): void {
    withFileLockSync(this.file, () => {
      try {
        this.reload();
        if (!apply() && this.pendingLastUsed.size === 0) return;
        this.write();
      } catch (error) {
        this.stamp = ''; // the next read re-reads the file
        throw error;
      }
    });
  }

  private write(): void {
    const now = Date.now();
    const shape: StoreFileShape = {
      version: 1,
      tokens: [...this.tokens.values()].filter((record) => record.expiresAt === null || record.expiresAt > now),
      revoked: [...this.revoked.entries()]
        .filter(([, expiresAt]) => expiresAt === null || expiresAt > now)
        .map(([jti, expiresAt]) => ({ jti, expiresAt })),
    };
    if (this.generations.size > 0) shape.generations = Object.fromEntries(this.generations);
    writeFileAtomicSync(this.file, `${JSON.stringify(shape, null, 1)}\n`, 0o600);
    this.pendingLastUsed.clear();
    this.stamp = stampOf(this.file);
  }
}
