/**
 * Versioned schema migrations (docs/database.md "Migrations"). One file per version in
 * `migrations/`, named `NNNN-<what>.ts`, exporting `migration: Migration` whose `version` is NNNN.
 * They are found by listing that folder at run time, so a part adds its own file without touching
 * anyone else's: storage owns 0001–0099, the cluster parts (users, tokens, keys, config, audit,
 * rate limits) number theirs from 0100 on.
 *
 * `migrate(pool)` runs at start-up on every node: under a session advisory lock (one node migrates,
 * the others wait, then find nothing to do), each pending version in its own transaction together
 * with its `schema_migrations` row, so a crash leaves either the whole version or none of it.
 * A database that has a version this build does not know (a newer registry migrated it) is refused.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Pool, PoolClient } from 'pg';
import { RegistryCoreError } from '../errors';

export interface Migration {
  version: number;
  /** short description, stored in schema_migrations.name */
  name: string;
  /** SQL text (may hold several statements) or a function run on the migration's transaction */
  up: string | ((client: PoolClient) => Promise<void>);
}

export interface MigrationReport {
  applied: Array<{ version: number; name: string }>;
  current: number;
}

/** pg_advisory_lock key of the migration run: 'REGM' (a constant every node agrees on). */
export const MIGRATION_LOCK_KEY = 0x5245474d;
const FILE_PATTERN = /^(\d{4})-[a-z0-9-]+\.js$/;

let loaded: Migration[] | null = null;

/** Every migration file of this build, ordered by version; duplicates or misnumbered files throw. */
export function knownMigrations(dir = join(__dirname, 'migrations')): Migration[] {
  if (loaded !== null && dir === join(__dirname, 'migrations')) return loaded;
  const found: Migration[] = [];
  for (const file of readdirSync(dir).sort()) {
    const match = FILE_PATTERN.exec(file);
    if (!match) continue;
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const module = require(join(dir, file)) as { migration?: Migration };
    const migration = module.migration;
    if (!migration || migration.version !== Number(match[1]) || typeof migration.name !== 'string') {
      throw new RegistryCoreError('ERR_DATABASE_SCHEMA', `migration file ${file} must export \`migration\` with version ${Number(match[1])}`);
    }
    if (found.some((other) => other.version === migration.version)) {
      throw new RegistryCoreError('ERR_DATABASE_SCHEMA', `two migration files have version ${migration.version} (${file})`);
    }
    found.push(migration);
  }
  found.sort((a, b) => a.version - b.version);
  if (dir === join(__dirname, 'migrations')) loaded = found;
  return found;
}

/** Applies every pending migration; see the module comment. */
export async function migrate(pool: Pool, migrations: Migration[] = knownMigrations()): Promise<MigrationReport> {
  const client = await pool.connect();
  let broken = false;
  try {
    await client.query("SET lock_timeout = '120s'");
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    try {
      await client.query(
        'CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())',
      );
      const rows = (await client.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version')).rows;
      const done = new Set(rows.map((row) => row.version));
      const newest = migrations.length === 0 ? 0 : migrations[migrations.length - 1].version;
      const unknown = rows.map((row) => row.version).filter((version) => !migrations.some((m) => m.version === version));
      if (unknown.length > 0) {
        throw new RegistryCoreError('ERR_DATABASE_SCHEMA', `the database has schema version(s) ${unknown.join(', ')} that this registry does not know (it knows up to ${newest}): a newer registry migrated it`, {
          hint: 'run the same registry version on every node',
        });
      }
      const applied: MigrationReport['applied'] = [];
      for (const migration of migrations) {
        if (done.has(migration.version)) continue;
        await client.query('BEGIN');
        try {
          if (typeof migration.up === 'string') await client.query(migration.up);
          else await migration.up(client);
          await client.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [migration.version, migration.name]);
          await client.query('COMMIT');
        } catch (error) {
          await client.query('ROLLBACK').catch(() => undefined);
          throw new RegistryCoreError('ERR_DATABASE_SCHEMA', `schema migration ${migration.version} (${migration.name}) failed: ${(error as Error).message}`, { cause: error });
        }
        applied.push({ version: migration.version, name: migration.name });
      }
      return { applied, current: Math.max(0, ...rows.map((row) => row.version), ...applied.map((item) => item.version)) };
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => {
        broken = true;
      });
    }
  } catch (error) {
    broken = true;
    throw error;
  } finally {
    // a connection whose state is unknown (lock maybe still held) is closed, never reused
    client.release(broken);
  }
}
