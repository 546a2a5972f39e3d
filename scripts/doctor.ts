/**
 * `registry doctor [--config F]`: read-only health checks of a registry folder, one line each
 * (PASS/FAIL, with a fix hint per failure). Exit 0 all pass, 1 any failure, 2 usage.
 * The checks and what each one means: docs/backup.md, "doctor".
 */
import { parseArgs } from 'node:util';
import { formatChecks, runDoctor } from './lib/doctor';
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
  let parsed;
  try {
    parsed = parseArgs({ args: process.argv.slice(2), options: OPTIONS, allowPositionals: false, strict: true });
  } catch (error) {
    process.stderr.write(`doctor: ${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (parsed.values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const checks = await runDoctor(layoutFor(parsed.values.config));
  process.stdout.write(`${formatChecks(checks)}\n`);
  const failed = checks.filter((check) => !check.ok).length;
  process.stdout.write(failed === 0 ? `doctor: all ${checks.length} checks pass\n` : `doctor: ${failed} of ${checks.length} checks fail\n`);
  return failed === 0 ? 0 : 1;
}

/** `registry doctor …` (bin/registry.js) and `node doctor.js …` both land here. */
export function runCli(): void {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`doctor: error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exitCode = 1;
    },
  );
}

if (require.main === module) runCli();
