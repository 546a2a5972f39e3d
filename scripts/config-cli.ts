/**
 * `npm run config -- [--file PATH] [--config PATH] <command>` — the command language on the
 * registry.lockb FILE, whether or not the registry runs (a running registry sees the change
 * through its watcher). Exit codes: 0 ok, 1 error, 2 usage.
 */
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseArgs as parseCliArgs } from 'node:util';
// Imported by path, not through the core's index: `registry config get` is a command people type,
// and loading the whole core (index rebuild, package index, token store, start-up) would be most of
// its run time. What only some commands need is required when they run (see the lazy loaders below).
import { ConfigFile, type ConfigSnapshot } from '../plugins/registry-core/config-file';
import { changeRegistryUrl, executeCommand, helpText, parseCommand, type Command, type CommandContext } from '../plugins/registry-core/commands';
import { describeConfig, describeConfigChange, formatConfig } from '../plugins/registry-core/describe';
import { readRegistryUrl } from '../plugins/registry-core/env';
import { lockbPathFor } from '../plugins/registry-core/layout';
import { RegistryCoreError, formatError } from '../plugins/registry-core/errors';
import { repairConfigFile } from '../plugins/registry-core/header-file';
import { configPathOf, envFileOf, writeLine } from './config-get';

type PackageIndexModule = typeof import('../plugins/registry-core/package-index');
type IndexSummaryModule = typeof import('../plugins/registry-core/index-summary');
type IndexRebuildModule = typeof import('../plugins/registry-core/index-rebuild');
type VerdaccioConfigModule = typeof import('./lib/verdaccio-config');
const packageIndexModule = (): PackageIndexModule => require('../plugins/registry-core/package-index') as PackageIndexModule;
const indexSummaryModule = (): IndexSummaryModule => require('../plugins/registry-core/index-summary') as IndexSummaryModule;
const indexRebuildModule = (): IndexRebuildModule => require('../plugins/registry-core/index-rebuild') as IndexRebuildModule;
/** js-yaml is loaded only when config.yaml must be read (no --file, or a command that needs storage:). */
const verdaccioConfigModule = (): VerdaccioConfigModule => require('./lib/verdaccio-config') as VerdaccioConfigModule;

class UsageError extends Error {}

const USAGE = `usage: npm run config -- [--file PATH] [--config PATH] <command>

  --file PATH     the registry.lockb to act on (default: next to config.yaml, or its registry_lockb:)
  --config PATH   the config.yaml whose storage:, registry_lockb: and .env.local to use
                  (default: ${configPathOf(undefined)})

commands:
${helpText('cli')}`;

interface CliOptions {
  file?: string;
  config?: string;
  words: string[];
}

export function parseArgs(argv: string[]): CliOptions {
  let parsed: ReturnType<typeof parseCliArgs<{ options: { file: { type: 'string' }; config: { type: 'string' }; help: { type: 'boolean'; short: 'h' } }; allowPositionals: true }>>;
  try {
    parsed = parseCliArgs({
      args: argv,
      options: { file: { type: 'string' }, config: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const { values, positionals } = parsed;
  for (const name of ['file', 'config'] as const) {
    if (values[name] === '') throw new UsageError(`--${name} needs a path`);
  }
  const options: CliOptions = { words: values.help ? ['help'] : positionals };
  if (values.file !== undefined) options.file = values.file;
  if (values.config !== undefined) options.config = values.config;
  return options;
}

interface Locations {
  configPath: string;
  lockbPath: string;
  envFile: string;
  storageDir: string | undefined;
}

function locate(options: CliOptions, needsStorage: boolean): Locations {
  const configPath = configPathOf(options.config);
  const configDir = dirname(configPath);
  let storageDir: string | undefined;
  let lockbFromConfig: string | undefined;
  if (existsSync(configPath)) {
    if (options.file === undefined || needsStorage) {
      const summary = verdaccioConfigModule().readVerdaccioConfig(configPath);
      storageDir = summary.storageDir;
      lockbFromConfig = summary.lockbPath;
    }
  } else if (options.config !== undefined) {
    throw new RegistryCoreError('ERR_LOCKB_MISSING', `no config file at ${configPath}`);
  }
  const lockbPath = resolve(options.file ?? lockbFromConfig ?? lockbPathFor(configDir, undefined));
  return { configPath, lockbPath, envFile: envFileOf(configPath), storageDir };
}

const out = (text: string): void => writeLine(1, text);
const err = (text: string): void => writeLine(2, text);

/** One `watch` line: when, what changed (core describeConfigChange), the bytes now. */
function watchLine(next: ConfigSnapshot, prev: ConfigSnapshot): string {
  return `${new Date().toISOString()}  ${describeConfigChange(prev.fields, next.fields)}  [${next.view.hex} ${next.view.check}]`;
}

async function watch(where: Locations): Promise<number> {
  const config = ConfigFile.open(where.lockbPath);
  out(`watching ${where.lockbPath} (Ctrl-C to stop)`);
  out(formatConfig(config.getConfig().view, readRegistryUrl(where.envFile)));
  config.watchConfig((next, prev) => out(watchLine(next, prev)));
  const keepAlive = setInterval(() => undefined, 1 << 30); // the watcher itself does not hold the process open
  return new Promise((resolveExit) => {
    const stop = (): void => {
      clearInterval(keepAlive);
      config.close();
      resolveExit(0);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}

function repair(where: Locations): number {
  const registryUrl = readRegistryUrl(where.envFile);
  const { changed } = repairConfigFile(where.lockbPath, { registryUrl });
  if (changed.length === 0) out(`${where.lockbPath}: header is valid; nothing to repair`);
  else out(`${where.lockbPath}: repaired\n${changed.map((line) => `  ${line}`).join('\n')}`);
  const index = packageIndexModule().PackageIndex.open(where.lockbPath); // drops (and reports) a torn last record; throws on corruption
  try {
    if (index.recovered) out(`package index: dropped a torn last record (${index.recovered.droppedBytes} bytes: ${index.recovered.reason})`);
    out(`package index: ${index.readAll().length} records verify`);
  } finally {
    index.close();
  }
  out(formatConfig(describeConfig(currentFields(where.lockbPath)), registryUrl));
  return 0;
}

function currentFields(path: string) {
  const config = ConfigFile.open(path);
  try {
    return config.getConfig().fields;
  } finally {
    config.close();
  }
}

function rebuild(where: Locations): number {
  if (!where.storageDir) throw new RegistryCoreError('ERR_STORAGE_MISSING', `no config.yaml at ${where.configPath} to take storage: from`, { hint: 'pass --config PATH' });
  // on PostgreSQL the storage folder holds no packages: the index is the database's (docs/database.md)
  const settings = (require('../plugins/registry-core/database/settings') as typeof import('../plugins/registry-core/database/settings')).databaseSettingsOf(
    verdaccioConfigModule().readVerdaccioConfig(where.configPath).mapping,
    process.env,
  );
  if (settings.backend === 'postgres') {
    err(`not rebuilt: this registry keeps its packages in PostgreSQL; ${where.lockbPath}'s index mirrors the database's and is restored by the node at its next start`);
    return 1;
  }
  const result = indexRebuildModule().rebuildIndex(where.lockbPath, where.storageDir);
  for (const skipped of result.skipped) err(`warning: skipped ${skipped.path}: ${skipped.reason}`);
  out(`rebuilt the package index of ${where.lockbPath}: ${result.records} records for ${result.packages} packages from ${where.storageDir}`);
  return 0;
}

async function runShared(command: Command, where: Locations): Promise<number> {
  const config = ConfigFile.open(where.lockbPath);
  try {
    const context: CommandContext = {
      config,
      registryUrl: () => readRegistryUrl(where.envFile),
      setRegistryUrl: async (url) => {
        await changeRegistryUrl(config, where.envFile, url);
      },
      listPackages: async () => {
        const index = packageIndexModule().PackageIndex.open(where.lockbPath);
        try {
          return indexSummaryModule().summarizeIndex(index.readAll());
        } finally {
          index.close();
        }
      },
    };
    const result = await executeCommand(command, context);
    (result.ok ? out : err)(result.text);
    return result.ok ? 0 : 1;
  } finally {
    config.close();
  }
}

export async function main(argv: string[]): Promise<number> {
  try {
    const options = parseArgs(argv);
    if (options.words.length === 0) throw new UsageError('no command given');
    const command = parseCommand(options.words.join(' '));
    if (command.name === 'help') {
      out(USAGE);
      return 0;
    }
    const where = locate(options, command.name === 'rebuild-index');
    switch (command.name) {
      case 'watch':
        return await watch(where);
      case 'repair':
        return repair(where);
      case 'rebuild-index':
        return rebuild(where);
      default:
        return await runShared(command, where);
    }
  } catch (error) {
    if (error instanceof UsageError) {
      err(`${error.message}\n\n${USAGE}`);
      return 2;
    }
    if (error instanceof RegistryCoreError) {
      err(formatError(error));
      return error.code === 'ERR_COMMAND_SYNTAX' ? 2 : 1;
    }
    err(error instanceof Error ? (error.stack ?? error.message) : String(error));
    return 1;
  }
}

/** The command itself: `registry config …` (bin/registry.js) and `node config-cli.js …` both land here. */
export function runCli(): void {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}

if (require.main === module) runCli();
