/**
 * `registry backup FILE [--config F] [--upstream-cache]`: a consistent snapshot of the registry's
 * state while it serves, as one gzip tar with a sha512 manifest (docs/backup.md). Progress on
 * stderr, the summary on stdout. Exit 0 written, 1 failed (nothing written), 2 usage.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { BackupError, createBackup, type BackupProgress } from './lib/backup';
import { readCliArgs, runMain } from './lib/cli';
import { layoutFor } from './lib/state-layout';

const USAGE = `Usage: registry backup FILE [--config config.yaml] [--upstream-cache]

Writes a consistent snapshot of the registry (storage: packuments and tarballs; registry.lockb;
keys/ and signing-keys/; htpasswd and its first-user record; the token store; audit.log;
.env.local and config.yaml) to FILE, a gzip tar with the sha512 of every file. Safe while the
registry serves: each package is captured under the same lock its publishes take.
  --config F          the registry's config.yaml (default ./config.yaml)
  --upstream-cache    also the cache of upstream packages (storage/.upstream; re-fetchable otherwise)
Restore with \`registry restore FILE --into DIR\`.
`;

const OPTIONS = {
  config: { type: 'string', short: 'c' },
  'upstream-cache': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

function packageId(): string {
  try {
    const pkg = JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as { name: string; version: string };
    return `${pkg.name}@${pkg.version}`;
  } catch {
    return '@mycompany/registry';
  }
}

function formatMiB(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(bytes < 10 * 1024 * 1024 ? 2 : 1)} MiB`;
}

function progressWriter(): (event: BackupProgress) => void {
  const tty = process.stderr.isTTY === true;
  let lastTenth = -1;
  return (event) => {
    if (event.phase === 'packages') {
      const line = `backup: packages ${event.done}/${event.total} ${event.name}`;
      if (tty) process.stderr.write(`\r\u001b[2K${line.slice(0, (process.stderr.columns ?? 80) - 1)}${event.done === event.total ? '\n' : ''}`);
      else {
        const tenth = Math.floor((event.done / event.total) * 10);
        if (tenth !== lastTenth || event.done === event.total) process.stderr.write(`${line}\n`);
        lastTenth = tenth;
      }
    } else if (event.phase === 'state') process.stderr.write(`backup: ${event.what}\n`);
    else if (event.phase === 'verify') process.stderr.write('backup: verifying the snapshot (tarballs vs dist.integrity, index vs storage)\n');
    else process.stderr.write(`backup: packing ${event.files} files (${formatMiB(event.bytes)})\n`);
  };
}

async function main(): Promise<number> {
  const parsed = readCliArgs('backup', USAGE, OPTIONS, 'where to? give the backup FILE');
  if (typeof parsed === 'number') return parsed;
  const { values, file } = parsed;
  const layout = layoutFor(values.config);
  if (!layout.hasConfig && !existsSync(layout.lockbPath)) {
    process.stderr.write(`backup: ${layout.configPath} does not exist: run it in the registry's folder or pass --config\n`);
    return 1;
  }
  const out = resolve(file);
  const started = performance.now();
  try {
    const summary = await createBackup(layout, out, { upstreamCache: values['upstream-cache'] === true, writtenBy: packageId(), onProgress: progressWriter() });
    const m = summary.manifest;
    process.stdout.write(
      `backup: wrote ${out} (${formatMiB(summary.bytes)}): ${m.packages} packages, ${m.versions} versions, ${m.files.length} files, ` +
        `${m.roles.join(', ')}${m.upstreamCache ? ' (with the upstream cache)' : ''}, in ${((performance.now() - started) / 1000).toFixed(1)} s\n`,
    );
    if (summary.recordsAfterSnapshot > 0) {
      process.stdout.write(`backup: ${summary.recordsAfterSnapshot} index records of changes made after their package was captured are not in it (they are in the next backup)\n`);
    }
    return 0;
  } catch (error) {
    process.stderr.write(`backup: failed: ${error instanceof BackupError ? error.message : error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    return 1;
  }
}

/** `registry backup …` (bin/registry.js) and `node backup.js …` both land here. */
export function runCli(): void {
  runMain('backup', main);
}

if (require.main === module) runCli();
