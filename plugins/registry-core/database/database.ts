/**
 * The one PostgreSQL connection pool per database URL per process (docs/database.md), shared by
 * every part (a `Symbol.for` table on globalThis, like the core's other seams, so two copies of
 * this module agree). `ready()` runs the schema migrations once; a failure (database down at
 * start-up) is not memoised: the next call tries again, so a node comes up when its database does.
 */
import type { Pool, PoolClient, QueryResultRow } from 'pg';
import { RegistryCoreError } from '../errors';
import { migrate, type MigrationReport } from './migrate';
import { redactDatabaseUrl } from './settings';

export interface DatabaseOptions {
  /** pool size (default 10) */
  max?: number;
  /** shown in pg_stat_activity */
  applicationName?: string;
  /** where pool errors (a connection lost while idle) are reported; they never end the process */
  onError?: (message: string) => void;
}

/** A statement that holds a lock longer than this fails with ERR_LOCK_TIMEOUT-like 55P03. */
export const DEFAULT_LOCK_TIMEOUT_MS = 30_000;

export class Database {
  readonly url: string;
  /** the URL without its password */
  readonly location: string;
  readonly pool: Pool;
  #ready: Promise<MigrationReport> | null = null;
  #closed = false;

  constructor(url: string, options: DatabaseOptions = {}) {
    this.url = url;
    this.location = redactDatabaseUrl(url);
    // `pg` (≈ 12 ms CPU with pg-types) is loaded when a database is really opened: a registry on
    // files imports this module (the plugins decide at start which backend they run) but never needs it
    const { Pool: PgPool } = require('pg') as typeof import('pg');
    this.pool = new PgPool({
      connectionString: url,
      max: options.max ?? 10,
      application_name: options.applicationName ?? 'mycompany-registry',
      // also how long a request waits for a free connection of the pool
      connectionTimeoutMillis: 30_000,
      idleTimeoutMillis: 30_000,
    });
    // an idle client whose server went away emits here; unhandled it would end the process
    this.pool.on('error', (error) => options.onError?.(`database ${this.location}: ${error.message}`));
  }

  /** Migrations applied (once per process; retried after a failure). */
  ready(): Promise<MigrationReport> {
    if (this.#closed) return Promise.reject(new RegistryCoreError('ERR_CLOSED', `database ${this.location} is closed`));
    if (this.#ready === null) {
      const attempt = migrate(this.pool);
      this.#ready = attempt;
      attempt.catch(() => {
        if (this.#ready === attempt) this.#ready = null;
      });
    }
    return this.#ready;
  }

  async query<R extends QueryResultRow = QueryResultRow>(text: string, values?: unknown[], name?: string): Promise<R[]> {
    await this.ready();
    const result = await this.pool.query<R>(name === undefined ? { text, values } : { name, text, values });
    return result.rows;
  }

  /** BEGIN … COMMIT on one pooled client; ROLLBACK on any error (a broken client is discarded). */
  async transaction<T>(fn: (client: PoolClient) => Promise<T>): Promise<T> {
    await this.ready();
    const client = await this.pool.connect();
    let broken = false;
    try {
      await client.query('BEGIN');
      try {
        const result = await fn(client);
        await client.query('COMMIT');
        return result;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => {
          broken = true;
        });
        throw error;
      }
    } catch (error) {
      if (isConnectionError(error)) broken = true;
      throw error;
    } finally {
      client.release(broken);
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    forget(this);
    await this.pool.end();
  }
}

/** A pg error that means the connection (not the statement) failed. */
export function isConnectionError(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  if (typeof code === 'string' && /^(08|57P0[1-3])/.test(code)) return true;
  const message = error instanceof Error ? error.message : '';
  return /Connection terminated|ECONNREFUSED|ECONNRESET|connection timeout|Client has encountered a connection error/i.test(message);
}

/** 55P03 lock_not_available (lock_timeout) */
export function isLockTimeout(error: unknown): boolean {
  return (error as { code?: unknown })?.code === '55P03';
}

const TABLE = Symbol.for('mycompany.registry.databases');
type Table = Map<string, Database>;

function table(): Table {
  const holder = globalThis as unknown as Record<symbol, Table | undefined>;
  holder[TABLE] ??= new Map();
  return holder[TABLE];
}

function forget(database: Database): void {
  if (table().get(database.url) === database) table().delete(database.url);
}

/** The process's Database for url (created on first use; options apply to the first call only). */
export function sharedDatabase(url: string, options: DatabaseOptions = {}): Database {
  const existing = table().get(url);
  if (existing) return existing;
  const database = new Database(url, options);
  table().set(url, database);
  return database;
}
