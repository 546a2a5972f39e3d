/**
 * `registry restore FILE [--into DIR] [--config F] [--force]`: verifies a backup completely
 * (every sha512, every tarball against its dist.integrity, the index), then swaps it in, one
 * rename per item; a failure leaves the target as it was (docs/backup.md).
 * Exit 0 restored, 1 refused or failed (nothing changed), 2 usage.
 */
import { resolve } from 'node:path';
import { readCliArgs, runMain } from './lib/cli';
import { layoutFor } from './lib/state-layout';
import { RestoreError, restoreBackup } from './lib/restore';

const USAGE = `Usage: registry restore FILE [--into DIR] [--force]

Verifies the backup FILE (the sha512 of every file, every tarball against its packument's
dist.integrity, registry.lockb's header and index) and only then puts it in place, one rename per
item (storage/, keys/, signing-keys/, registry.lockb, htpasswd, …), in the layout of DIR's
config.yaml (the default layout without one; the backup's config.yaml is restored only into a
folder that has none).
  --into DIR     the registry folder to restore into (default: the current folder)
  --config F     restore into the layout of this config.yaml instead
  --force        replace the state of a folder that is not empty
Never into the folder of a running registry: stop it first.
`;

const OPTIONS = {
  into: { type: 'string' },
  config: { type: 'string', short: 'c' },
  force: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

async function main(): Promise<number> {
  const parsed = readCliArgs('restore', USAGE, OPTIONS, 'which backup? give its FILE');
  if (typeof parsed === 'number') return parsed;
  const { values, file } = parsed;
  if (values.into !== undefined && values.config !== undefined) {
    process.stderr.write('restore: --into and --config both name the target: give one\n');
    return 2;
  }
  const layout = layoutFor(values.config, values.into);
  try {
    const summary = await restoreBackup(resolve(file), layout, {
      force: values.force === true,
      onProgress: (message) => process.stderr.write(`restore: ${message}\n`),
    });
    const m = summary.manifest;
    process.stdout.write(`restore: restored ${m.packages} packages, ${m.versions} versions (backup of ${m.created}) into ${layout.configDir}\n`);
    for (const item of summary.placed) process.stdout.write(`  ${item.role.padEnd(20)} ${item.path}\n`);
    if (summary.keptConfig) process.stdout.write(`restore: kept the folder's own config.yaml (the backup's is not restored over it)\n`);
    return 0;
  } catch (error) {
    if (error instanceof RestoreError) {
      process.stderr.write(`restore: refused, nothing changed: ${error.message}\n`);
      return 1;
    }
    process.stderr.write(`restore: failed, the target is as it was: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    return 1;
  }
}

/** `registry restore …` (bin/registry.js) and `node restore.js …` both land here. */
export function runCli(): void {
  runMain('restore', main);
}

if (require.main === module) runCli();
