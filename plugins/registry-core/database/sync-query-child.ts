/**
 * The child of querySync (sync-query.ts): reads {url, statements} on stdin, answers JSON on stdout.
 *
 * It migrates only when the schema is behind this build (checked without a lock): the parent
 * process is blocked while its child runs, and may hold the migration lock on one of its own
 * pooled connections — a child waiting for that lock would wait for its blocked parent.
 */
import { readFileSync } from 'node:fs';
import { Pool } from 'pg';
import { RegistryCoreError } from '../errors';
import { redactDatabaseUrl } from './settings';
import { MIGRATION_LOCK_KEY, knownMigrations, migrate } from './migrate';

async function schemaIsCurrent(pool: Pool): Promise<boolean> {
  const known = knownMigrations();
  const newest = known.length === 0 ? 0 : known[known.length - 1].version;
  try {
    const rows = (await pool.query<{ version: number | null }>('SELECT max(version) AS version FROM schema_migrations')).rows;
    return (rows[0]?.version ?? 0) >= newest;
  } catch {
    return false; // no schema_migrations yet
  }
}

/**
 * Migrates when behind, but never queues for the migration lock: a waiter in PostgreSQL's queue
 * could be granted the lock after a blocked parent. Try, and meanwhile watch for another node (or
 * this node's parent) finishing the job; bounded.
 */
async function migrateWithoutQueueing(pool: Pool): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!(await schemaIsCurrent(pool))) {
    const got = (await pool.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [MIGRATION_LOCK_KEY])).rows[0].ok;
    if (got) {
      // migrate() takes the (re-entrant, session) lock itself on its own connection: release ours first
      await pool.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
      await migrate(pool);
      return;
    }
    if (Date.now() > deadline) throw new RegistryCoreError('ERR_DATABASE_SCHEMA', 'another process held the migration lock for 60 s');
    await new Promise((resolveWait) => setTimeout(resolveWait, 100));
  }
}

async function main(): Promise<void> {
  const request = JSON.parse(readFileSync(0, 'utf8')) as { url: string; statements: Array<{ text: string; values?: unknown[] }> };
  const pool = new Pool({ connectionString: request.url, max: 1, application_name: 'mycompany-registry start-up', connectionTimeoutMillis: 10_000 });
  pool.on('error', () => undefined);
  try {
    await migrateWithoutQueueing(pool);
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      const rows: unknown[][] = [];
      for (const statement of request.statements) rows.push((await client.query(statement.text, statement.values)).rows);
      await client.query('COMMIT');
      process.stdout.write(JSON.stringify({ ok: true, rows }));
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release(true);
    }
  } catch (error) {
    const code = error instanceof RegistryCoreError ? error.code : undefined;
    const message = `${redactDatabaseUrl(request.url)}: ${error instanceof Error ? error.message : String(error)}`;
    process.stdout.write(JSON.stringify({ ok: false, message, code }));
  } finally {
    await pool.end().catch(() => undefined);
  }
}

void main();
