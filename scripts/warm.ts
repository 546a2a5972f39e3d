/**
 * `registry warm <lockfile>`: fetch everything a lockfile names through this registry, so its
 * upstream cache holds what that project installs (then it installs with the upstream gone).
 *
 *   node build/scripts/warm.js <lockfile> [--registry URL] [--concurrency N] [--token T]
 *
 * Lockfiles: package-lock.json / npm-shrinkwrap.json (v2, v3), bun.lock, pnpm-lock.yaml (v9),
 * yarn.lock (v1 and Berry). Registry: --registry, else BUN_REGISTRY_URL, else http://localhost:4873.
 * Token (optional, for registries that need one to read): --token, else NPM_TOKEN, else .npmrc.
 * A progress bar on a TTY (stderr), plain lines otherwise; a summary on stdout. Exit 0 when all
 * were fetched or already cached, 1 when anything failed, 2 on a usage error.
 * Contract: docs/offline-and-warm.md.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { LOCAL_REGISTRY_URL, normalizeRegistryUrl } from '../plugins/registry-core/index';
import { LockfileError, parseLockfile } from './lib/lockfiles/index';
import { findToken } from './lib/self-publish';
import { formatBytes, progressBar, warmPackages, type WarmOutcome } from './lib/warm';

const USAGE = `Usage: registry warm <lockfile> [--registry URL] [--concurrency N] [--token T]

Fetches every package a lockfile names (packument, then tarball) through the registry, so a
proxying registry caches them. Reads package-lock.json, npm-shrinkwrap.json, bun.lock,
pnpm-lock.yaml (v9) and yarn.lock (v1 and Berry).
  --registry     registry URL (default BUN_REGISTRY_URL, then ${LOCAL_REGISTRY_URL})
  --concurrency  requests in flight, 1..64 (default 8)
  --token        a read token, if the registry needs one (default NPM_TOKEN, then .npmrc)
Exit 0: everything fetched or already cached; 1: something failed (listed); 2: usage error.
`;

function usageError(message: string): never {
  process.stderr.write(`warm: ${message}\n\n${USAGE}`);
  process.exit(2);
}

const OPTIONS = {
  registry: { type: 'string' },
  concurrency: { type: 'string' },
  token: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

function readArgs(): ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true; strict: true }>> {
  try {
    return parseArgs({ args: process.argv.slice(2), options: OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    return usageError((error as Error).message);
  }
}

async function main(): Promise<number> {
  const { values, positionals } = readArgs();
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (positionals.length !== 1) usageError(positionals.length === 0 ? 'which lockfile? give its path' : `one lockfile at a time, got ${positionals.length}`);
  const concurrency = values.concurrency === undefined ? 8 : Number(values.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) usageError(`--concurrency must be an integer 1..64, got ${values.concurrency}`);
  let registryUrl: string;
  try {
    registryUrl = normalizeRegistryUrl(values.registry ?? process.env.BUN_REGISTRY_URL ?? LOCAL_REGISTRY_URL);
  } catch (error) {
    return usageError((error as Error).message);
  }
  const lockfile = resolve(positionals[0]);
  let text: string;
  try {
    text = readFileSync(lockfile, 'utf8');
  } catch (error) {
    process.stderr.write(`warm: cannot read ${lockfile}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}\n`);
    return 1;
  }
  let lock;
  try {
    lock = parseLockfile(lockfile, text);
  } catch (error) {
    if (error instanceof LockfileError) {
      process.stderr.write(`warm: ${lockfile}: ${error.message}\n`);
      return 1;
    }
    throw error;
  }
  const token = values.token ?? findToken({ registryUrl, packageDir: dirname(lockfile) })?.token;
  const total = lock.packages.length;
  process.stdout.write(`warm: ${lockfile} (${lock.format}): ${total} package version(s) through ${registryUrl}` +
    `${lock.skipped.length ? `, ${lock.skipped.length} skipped (not from a registry)` : ''}\n`);

  const tty = process.stderr.isTTY === true;
  const onOutcome = (outcome: WarmOutcome, done: number, all: number): void => {
    const id = `${outcome.pkg.name}@${outcome.pkg.version}`;
    if (tty) {
      const width = Math.max(20, Math.min(process.stderr.columns ?? 80, 120));
      const bar = progressBar(done, all, Math.min(50, width - 10));
      const line = `${bar} ${id}`.slice(0, width - 1);
      process.stderr.write(`\r\x1b[2K${line}${done === all ? '\n' : ''}`);
      if (outcome.status === 'failed') process.stderr.write(`\r\x1b[2Kfailed ${id}: ${outcome.reason}\n`);
    } else {
      process.stdout.write(outcome.status === 'failed' ? `failed  ${id}: ${outcome.reason}\n` : `${outcome.status.padEnd(7)} ${id}\n`);
    }
  };
  const summary = await warmPackages(lock.packages, { registryUrl, token, concurrency, onOutcome });
  process.stdout.write(
    `warm: ${summary.fetched} fetched, ${summary.cached} already cached, ${summary.failed.length} failed` +
      ` (${formatBytes(summary.bytes)} of tarballs)\n`,
  );
  for (const failure of summary.failed) {
    if (failure.status === 'failed') process.stdout.write(`  failed ${failure.pkg.name}@${failure.pkg.version}: ${failure.reason}\n`);
  }
  return summary.failed.length === 0 ? 0 : 1;
}

/** `registry warm …` (bin/registry.js) and `node warm.js …` both land here. */
export function runCli(): void {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`warm: error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exitCode = 1;
    },
  );
}

if (require.main === module) runCli();
