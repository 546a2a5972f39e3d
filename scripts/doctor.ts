/**
 * `registry doctor [--config F]`: read-only health checks of a registry folder, one line each
 * (PASS/FAIL, with a fix hint per failure). Exit 0 all pass, 1 any failure, 2 usage.
 * The checks and what each one means: docs/backup.md, "doctor".
 */
import { formatChecks, runDoctor } from './lib/doctor';
import { readCliArgs, runMain } from './lib/cli';
import { layoutFor } from './lib/state-layout';

const USAGE = `Usage: registry doctor [--config config.yaml]

Checks, without changing anything: config.yaml, registry.lockb's header (check byte, format
version) and index records, index vs storage (every version's tarball present with matching
integrity, every index record pointing at a stored version), token and signing keys load,
storage writable, the upstream reachable (unless OFFLINE or off), free disk space, stale locks
and temp files. Exit 1 when any check fails.
`;

const OPTIONS = { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } } as const;

async function main(): Promise<number> {
  const parsed = readCliArgs('doctor', USAGE, OPTIONS);
  if (typeof parsed === 'number') return parsed;
  const checks = await runDoctor(layoutFor(parsed.values.config));
  process.stdout.write(`${formatChecks(checks)}\n`);
  const failed = checks.filter((check) => !check.ok).length;
  process.stdout.write(failed === 0 ? `doctor: all ${checks.length} checks pass\n` : `doctor: ${failed} of ${checks.length} checks fail\n`);
  return failed === 0 ? 0 : 1;
}

/** `registry doctor …` (bin/registry.js) and `node doctor.js …` both land here. */
export function runCli(): void {
  runMain('doctor', main);
}

if (require.main === module) runCli();
