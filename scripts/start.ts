/**
 * `npm start` = `verdaccio -c config.yaml`, plus what must hold before Verdaccio may serve:
 * registry.lockb exists and is valid, `.env.local` and the environment are applied to it,
 * and every plugin configured in config.yaml really loaded (Verdaccio itself only logs a
 * plugin that failed and serves anyway — for auth it silently falls back to htpasswd).
 *
 * All of that is the core's `bootRegistry` (plugins/registry-core/startup.ts), which the first
 * of our plugins also calls under a bare `verdaccio -c config.yaml`; here it runs before
 * Verdaccio starts so a bad registry.lockb or env value stops start-up with its message at once,
 * and the guard is armed even when none of our plugins can load.
 *
 * Verdaccio runs in this same process (its CLI module), so arguments after `--` reach it
 * unchanged and start-up costs one Node boot, not two.
 */
import './lib/compile-cache';
import diagnosticsChannel from 'node:diagnostics_channel';
import { existsSync } from 'node:fs';
import { constants } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { armSelfPublishOnStart } from './lib/self-publish-on-start';
import { readVerdaccioConfig } from './lib/verdaccio-config';
import { LISTEN_START_CHANNEL, RegistryCoreError, bootRegistry, describeStartupError, registryLayoutOf } from '../plugins/registry-core/index';
import { databaseSettingsOf } from '../plugins/registry-core/database/settings';

function fail(message: string): never {
  process.stderr.write(`\nregistry start-up failed: ${message}\n`);
  process.exit(1);
}

function splitConfigArgument(args: string[]): { configPath: string; verdaccioArgs: string[] } {
  const index = args.findIndex((arg) => arg === '-c' || arg === '--config');
  if (index >= 0) {
    const value = args[index + 1];
    if (!value) fail('`-c` needs a path to a config.yaml');
    return { configPath: resolve(value), verdaccioArgs: args };
  }
  const inline = args.find((arg) => arg.startsWith('--config='));
  if (inline) return { configPath: resolve(inline.slice('--config='.length)), verdaccioArgs: args };
  const configPath = resolve('config.yaml');
  return { configPath, verdaccioArgs: ['-c', configPath, ...args] };
}

/** How long a stop signal waits for in-flight requests (a slow download) before the process exits anyway. */
const STOP_GRACE_MS = 10_000;
const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/**
 * A stop signal (Ctrl-C, `kill`, a service manager's SIGTERM) ends the process through
 * `process.exit`, not by the signal's default: only then do the exit-time checkpoints run
 * (`audit.log.checkpoint`, `.registry-verified`), so the next start verifies what changed since
 * instead of everything (docs/operations.md, "Stopping"). Verdaccio closes its server gracefully
 * when VERDACCIO_HANDLE_KILL_SIGNALS is `true` (in-flight requests finish, idle keep-alive
 * connections close, the dashboard ends its WebSockets), then exits 0; an operator who sets it to
 * anything else keeps the signals' defaults. Bounded: a signal before the server listens, a second
 * signal, or STOP_GRACE_MS without the close finishing exits at once — through 'exit' as well,
 * which is safe at any moment: the checkpoints only read and record what matches, every write is
 * atomic and a lock left behind is taken over from its dead owner.
 */
function armGracefulStop(env: NodeJS.ProcessEnv): void {
  env.VERDACCIO_HANDLE_KILL_SIGNALS ??= 'true';
  if (env.VERDACCIO_HANDLE_KILL_SIGNALS !== 'true') return;
  // Verdaccio installs its own handlers right after it calls listen(); before that nobody closes anything
  let serving = false;
  diagnosticsChannel.subscribe(LISTEN_START_CHANNEL, () => (serving = true));
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (!serving || stopping) process.exit(128 + constants.signals[signal]);
    stopping = true;
    setTimeout(() => {
      process.stderr.write(`registry: still closing ${STOP_GRACE_MS / 1000} s after ${signal}; exiting now\n`);
      process.exit(0);
    }, STOP_GRACE_MS).unref();
  };
  for (const signal of STOP_SIGNALS) process.on(signal, onSignal);
}

function main(): void {
  const { configPath, verdaccioArgs } = splitConfigArgument(process.argv.slice(2));
  if (!existsSync(configPath)) fail(`no config file at ${configPath}`);
  const verdaccioConfig = readVerdaccioConfig(configPath);
  try {
    bootRegistry(verdaccioConfig.mapping, process.env, { configPath, alwaysGuard: true });
  } catch (error) {
    if (error instanceof RegistryCoreError) fail(describeStartupError(error, registryLayoutOf(verdaccioConfig.mapping, configPath).lockbPath));
    throw error;
  }
  // files or PostgreSQL (docs/database.md): a malformed choice stops here, before anything listens
  databaseSettingsOf(verdaccioConfig.mapping, process.env);
  armSelfPublishOnStart(configPath);
  armGracefulStop(process.env);

  const verdaccioBin = join(dirname(require.resolve('verdaccio/package.json')), 'bin', 'verdaccio');
  process.argv = [process.execPath, verdaccioBin, ...verdaccioArgs];
  require(verdaccioBin);
}

try {
  main();
} catch (error) {
  if (error instanceof RegistryCoreError) fail(`${error.message}${error.hint ? `\n  ${error.hint}` : ''}`);
  fail(error instanceof Error ? (error.stack ?? error.message) : String(error));
}
