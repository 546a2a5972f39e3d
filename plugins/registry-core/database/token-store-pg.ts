/**
 * The token store on PostgreSQL (docs/cluster.md "Tokens"): the same records, revocations and
 * per-user generations as the file store (core token-store.ts), one row each, so two nodes never
 * overwrite each other's writes. Every write is one transaction that also bumps
 * `registry_token_state.revision`, then NOTIFYs `registry_tokens`.
 *
 * Reads are memory (the per-request checks stay a Map lookup). `sync()` compares the database's
 * revision with the one memory was loaded at (one prepared one-row SELECT) and reloads when it
 * moved: the auth plugin awaits it before it checks a token, so a token revoked on any node is
 * refused on every node at the next request, whether or not the NOTIFY has arrived yet. The
 * NOTIFY (and every LISTEN reconnection) reloads in the background so idle nodes stay current too.
 */
import { LAST_USED_RESOLUTION_MS, TokenStoreError, checkedTokenRecord, type IssuedTokenRecord, type TokenRecords } from '../token-store';
import { querySync } from './sync-query';
import type { ClusterLink } from './cluster';
import type { PoolClient } from 'pg';

interface Loaded {
  revision: string;
  tokens: Map<string, IssuedTokenRecord>;
  revoked: Map<string, number | null>;
  generations: Map<string, number>;
}

const LOAD_STATEMENTS = [
  { text: 'SELECT revision::text AS revision FROM registry_token_state WHERE id = 1' },
  { text: 'SELECT record FROM registry_tokens' },
  { text: 'SELECT jti, expires_at::text AS expires_at FROM registry_revocations' },
  { text: 'SELECT "user", generation FROM registry_generations' },
];

function copyRecord(record: IssuedTokenRecord): IssuedTokenRecord {
  const copy: IssuedTokenRecord = { ...record, cidr: [...record.cidr] };
  if (record.packages !== undefined) copy.packages = [...record.packages];
  if (record.scopes !== undefined) copy.scopes = [...record.scopes];
  return copy;
}

function loadedOf(rows: Array<Array<Record<string, unknown>>>): Loaded {
  const [state, tokens, revoked, generations] = rows;
  const loaded: Loaded = { revision: String(state[0]?.revision ?? '0'), tokens: new Map(), revoked: new Map(), generations: new Map() };
  for (const row of tokens) {
    const record = checkedTokenRecord(row.record, 'registry_tokens');
    loaded.tokens.set(record.key, record);
  }
  for (const row of revoked) loaded.revoked.set(String(row.jti), row.expires_at === null ? null : Number(row.expires_at));
  for (const row of generations) loaded.generations.set(String(row.user), Number(row.generation));
  return loaded;
}

const STORES = Symbol.for('mycompany.registry.pg-token-stores');

export class PgTokenStore implements TokenRecords {
  readonly link: ClusterLink;
  readonly shared = true;
  #memory: Loaded;
  #refs = 0;
  /** last-used marks not yet written (key → time) */
  readonly #lastUsed = new Map<string, number>();
  #reloading: Promise<void> | null = null;

  private constructor(link: ClusterLink) {
    this.link = link;
    // Verdaccio constructs plugins synchronously: the first load blocks (querySync), later ones never do
    this.#memory = loadedOf(querySync(link.database.url, LOAD_STATEMENTS));
    link.on('registry_tokens', () => void this.#reload().catch(() => undefined));
    link.onConnect(() => void this.#reload().catch(() => undefined));
  }

  /** One store per database per process (ref-counted like TokenStore.open). */
  static open(link: ClusterLink): PgTokenStore {
    const holder = globalThis as unknown as Record<symbol, Map<string, PgTokenStore> | undefined>;
    const table = (holder[STORES] ??= new Map());
    let store = table.get(link.database.url);
    if (!store) {
      store = new PgTokenStore(link);
      table.set(link.database.url, store);
    }
    store.#refs++;
    return store;
  }

  get revision(): string {
    return this.#memory.revision;
  }

  async #reload(): Promise<void> {
    const rows = await this.link.database.transaction(async (client) => {
      const all: Array<Array<Record<string, unknown>>> = [];
      for (const statement of LOAD_STATEMENTS) all.push((await client.query(statement.text)).rows as Array<Record<string, unknown>>);
      return all;
    });
    const next = loadedOf(rows);
    // a reload that started earlier may finish later: never go back to an older revision
    if (BigInt(next.revision) >= BigInt(this.#memory.revision)) {
      for (const [key, time] of this.#lastUsed) {
        const record = next.tokens.get(key);
        if (record) record.lastUsed = Math.max(record.lastUsed ?? 0, time);
      }
      this.#memory = next;
    }
  }

  sync(): Promise<void> {
    return this.link.database
      .query<{ revision: string }>('SELECT revision::text AS revision FROM registry_token_state WHERE id = 1', [], 'registry-token-revision')
      .then(async (rows) => {
        const revision = BigInt(rows[0]?.revision ?? '0');
        // a reload already in flight may have read before that revision: then one more (bounded)
        for (let attempt = 0; attempt < 3 && BigInt(this.#memory.revision) < revision; attempt++) {
          this.#reloading ??= this.#reload().finally(() => {
            this.#reloading = null;
          });
          await this.#reloading;
        }
      });
  }

  /** One write: fn on a transaction, the revision bumped in it, NOTIFY after COMMIT, memory reloaded. */
  async #write<T>(fn: (client: PoolClient) => Promise<T>): Promise<T> {
    const result = await this.link.database.transaction(async (client) => {
      const value = await fn(client);
      await client.query('UPDATE registry_token_state SET revision = revision + 1 WHERE id = 1');
      return value;
    });
    await this.#reload();
    await this.link.publish('registry_tokens', { revision: this.#memory.revision }).catch(() => undefined);
    return result;
  }

  async save(record: IssuedTokenRecord): Promise<void> {
    const clean = checkedTokenRecord(record, 'save()');
    await this.#write(async (client) => {
      const inserted = await client.query('INSERT INTO registry_tokens (key, "user", record) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING', [clean.key, clean.user, JSON.stringify(clean)]);
      if (inserted.rowCount === 0) throw new TokenStoreError('ERR_TOKEN_RECORD', `a token with key ${clean.key} already exists`);
    });
  }

  list(user: string, now = Date.now()): IssuedTokenRecord[] {
    return [...this.#memory.tokens.values()]
      .filter((record) => record.user === user && (record.expiresAt === null || record.expiresAt > now))
      .sort((a, b) => a.created - b.created)
      .map(copyRecord);
  }

  get(key: string): IssuedTokenRecord | undefined {
    const record = this.#memory.tokens.get(key);
    return record ? copyRecord(record) : undefined;
  }

  async revoke(user: string, key: string): Promise<IssuedTokenRecord> {
    return this.#write(async (client) => {
      const deleted = await client.query<{ record: unknown }>('DELETE FROM registry_tokens WHERE key = $1 AND "user" = $2 RETURNING record', [key, user]);
      if (deleted.rows.length === 0) throw new TokenStoreError('ERR_TOKEN_NOT_FOUND', `no token ${key} for user ${user}`);
      const record = checkedTokenRecord(deleted.rows[0].record, 'registry_tokens');
      await client.query('INSERT INTO registry_revocations (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO UPDATE SET expires_at = EXCLUDED.expires_at', [key, record.expiresAt]);
      return record;
    });
  }

  async revokeJti(jti: string, expiresAt: number | null): Promise<void> {
    if (jti.length === 0) throw new TokenStoreError('ERR_TOKEN_RECORD', 'a revocation needs a jti');
    if (this.#memory.revoked.has(jti) && !this.#memory.tokens.has(jti)) return;
    await this.#write(async (client) => {
      await client.query('DELETE FROM registry_tokens WHERE key = $1', [jti]);
      await client.query('INSERT INTO registry_revocations (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO UPDATE SET expires_at = EXCLUDED.expires_at', [jti, expiresAt]);
    });
  }

  markUsed(key: string, now = Date.now()): void {
    const record = this.#memory.tokens.get(key);
    if (!record || (record.lastUsed !== undefined && now - record.lastUsed < LAST_USED_RESOLUTION_MS)) return;
    record.lastUsed = now;
    this.#lastUsed.set(key, now);
  }

  async flushLastUsed(): Promise<boolean> {
    if (this.#lastUsed.size === 0) return false;
    const marks = [...this.#lastUsed];
    this.#lastUsed.clear();
    // last-used is not a security fact: no revision bump, no reload of every node
    await this.link.database.transaction(async (client) => {
      for (const [key, time] of marks) {
        await client.query(
          "UPDATE registry_tokens SET record = jsonb_set(record, '{lastUsed}', to_jsonb(GREATEST(COALESCE((record->>'lastUsed')::bigint, 0), $2::bigint))) WHERE key = $1",
          [key, time],
        );
      }
    });
    return true;
  }

  isRevoked(jti: string): boolean {
    return this.#memory.revoked.has(jti);
  }

  generation(user: string): number {
    return this.#memory.generations.get(user) ?? 0;
  }

  async invalidateUser(user: string): Promise<number> {
    if (user.length === 0) throw new TokenStoreError('ERR_TOKEN_RECORD', 'an invalidation needs a user');
    return this.#write(async (client) => {
      await client.query('DELETE FROM registry_tokens WHERE "user" = $1', [user]);
      const rows = await client.query<{ generation: number }>(
        'INSERT INTO registry_generations ("user", generation) VALUES ($1, 1) ON CONFLICT ("user") DO UPDATE SET generation = registry_generations.generation + 1 RETURNING generation',
        [user],
      );
      return rows.rows[0].generation;
    });
  }

  async prune(now = Date.now()): Promise<number> {
    const expiredTokens = [...this.#memory.tokens.values()].some((record) => record.expiresAt !== null && record.expiresAt <= now);
    const expiredRevocations = [...this.#memory.revoked.values()].some((expiresAt) => expiresAt !== null && expiresAt <= now);
    if (!expiredTokens && !expiredRevocations) return 0;
    return this.#write(async (client) => {
      const tokens = await client.query("DELETE FROM registry_tokens WHERE (record->>'expiresAt') IS NOT NULL AND (record->>'expiresAt')::bigint <= $1", [now]);
      const revoked = await client.query('DELETE FROM registry_revocations WHERE expires_at IS NOT NULL AND expires_at <= $1', [now]);
      return (tokens.rowCount ?? 0) + (revoked.rowCount ?? 0);
    });
  }

  close(): void {
    if (this.#refs > 0) this.#refs--;
  }
}
