/**
 * `registry migrate to-postgres | to-files` (docs/database.md "Migrating"): moves a registry's
 * packages between its storage folder and a PostgreSQL database, verified (counts and the sha512 of
 * every tarball), with progress on stderr and the summary on stdout.
 *
 *   registry migrate to-postgres [--database-url URL] [--config config.yaml]
 *   registry migrate to-files    [--database-url URL] [--config config.yaml]
 *
 * The folder is config.yaml's `storage:` (its registry.lockb beside it); the database is
 * --database-url, else REGISTRY_DATABASE_URL, else config.yaml's store.registry-storage.database_url.
 * A target that holds packages already is refused (exit 1), never merged. Exit 0 ok, 1 failed or
 * refused, 2 usage. Run it while no registry writes to the source.
 *
 * The one script that imports a plugin module: the migration IS the storage plugin's two stores
 * (plugins/verdaccio-registry-storage/migrate.ts, Verdaccio-free); a running registry is not involved.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DATABASE_URL_ENV, Database, databaseUrlProblem, storeOptionsOf } from '../plugins/registry-core/database/index';
import { registryLayoutOf } from '../plugins/registry-core/index';
import { MigrationRefused, migrateFilesToPostgres, migratePostgresToFiles, type MigrationSummary } from '../plugins/verdaccio-registry-storage/migrate';
import { readVerdaccioConfig } from './lib/verdaccio-config';

const USAGE = `Usage: registry migrate to-postgres | to-files [--database-url URL] [--config config.yaml]

  to-postgres    copy the storage folder (packages, tarballs, package list, index) into an EMPTY database
  to-files       copy the database into a storage folder WITHOUT packages
  --database-url postgres://user:password@host:5432/database
                 (default ${DATABASE_URL_ENV}, then store.registry-storage.database_url in config.yaml)
  --config       the registry's config.yaml (default ./config.yaml): its storage: and registry_lockb:
Verified: counts and the sha512 of every tarball. Exit 0 ok, 1 failed or refused, 2 usage error.
`;

function usageError(message: string): never {
  process.stderr.write(`migrate: ${message}\n\n${USAGE}`);
  process.exit(2);
}

const OPTIONS = { 'database-url': { type: 'string' }, config: { type: 'string' }, help: { type: 'boolean', short: 'h' } } as const;

function describe(summary: MigrationSummary): string {
  return `${summary.packages} packages, ${summary.versions} versions, ${summary.tarballs} tarballs (${(summary.bytes / 1024 / 1024).toFixed(1)} MB), ${summary.indexRecords} index records`;
}

async function main(): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: process.argv.slice(2), options: OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    return usageError((error as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const direction = positionals[0];
  if (positionals.length !== 1 || (direction !== 'to-postgres' && direction !== 'to-files')) usageError('say to-postgres or to-files');
  const configPath = resolve(values.config ?? 'config.yaml');
  if (!existsSync(configPath)) usageError(`no config file at ${configPath} (pass --config)`);
  const config = readVerdaccioConfig(configPath);
  const layout = registryLayoutOf(config.mapping, configPath);
  const configured = storeOptionsOf(config.mapping).database_url;
  const url = values['database-url'] ?? process.env[DATABASE_URL_ENV] ?? (typeof configured === 'string' ? configured : undefined);
  if (url === undefined || url.trim() === '') usageError(`which database? pass --database-url or set ${DATABASE_URL_ENV}`);
  const problem = databaseUrlProblem(url);
  if (problem !== null) usageError(`the database URL ${problem}`);

  const database = new Database(url, { applicationName: 'registry-migrate', onError: (text) => process.stderr.write(`migrate: ${text}\n`) });
  const progress = (line: string): void => void process.stderr.write(`${line}\n`);
  try {
    const started = performance.now();
    const summary =
      direction === 'to-postgres'
        ? await migrateFilesToPostgres({ storageDir: layout.storageDir, lockbPath: layout.lockbPath }, database, progress)
        : await migratePostgresToFiles(database, { storageDir: layout.storageDir, lockbPath: layout.lockbPath }, progress);
    const where = direction === 'to-postgres' ? `${layout.storageDir} → ${database.location}` : `${database.location} → ${layout.storageDir}`;
    process.stdout.write(`migrate: ${where}: ${describe(summary)}, verified, in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
    return 0;
  } catch (error) {
    if (error instanceof MigrationRefused) {
      process.stderr.write(`migrate: refused: ${error.message}\n`);
      return 1;
    }
    process.stderr.write(`migrate: failed, nothing was committed${direction === 'to-files' ? ' to the database (files written so far stay; remove the storage folder before retrying)' : ''}: ${(error as Error).message}\n`);
    return 1;
  } finally {
    await database.close();
  }
}

/** `registry migrate …` (bin/registry.js) and `node migrate.js …` both land here. */
export function runCli(): void {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`migrate: error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exitCode = 1;
    },
  );
}

if (require.main === module) runCli();
