/**
 * `npm run config -- [--file PATH] [--config PATH] <command>` — the command language on the
 * registry.lockb FILE, whether or not the registry runs (a running registry sees the change
 * through its watcher). Exit codes: 0 ok, 1 error, 2 usage.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import {
  ConfigFile,
  PackageIndex,
  RegistryCoreError,
  changeRegistryUrl,
  describeConfig,
  executeCommand,
  formatConfig,
  formatError,
  helpText,
  parseCommand,
  readRegistryUrl,
  rebuildIndex,
  repairConfigFile,
  summarizeIndex,
  type Command,
  type CommandContext,
  type ConfigSnapshot,
} from '../plugins/registry-core/index';
import { readVerdaccioConfig } from './lib/verdaccio-config';

const PROJECT_ROOT = resolve(__dirname, '..', '..');

class UsageError extends Error {}

const USAGE = `usage: npm run config -- [--file PATH] [--config PATH] <command>

  --file PATH     the registry.lockb to act on (default: next to config.yaml, or its registry_lockb:)
  --config PATH   the config.yaml whose storage:, registry_lockb: and .env.local to use
                  (default: ${join(PROJECT_ROOT, 'config.yaml')})

commands:
${helpText('cli')}`;

interface CliOptions {
  file?: string;
  config?: string;
  words: string[];
}

export function parseArgs(argv: string[]): CliOptions {
  const options: CliOptions = { words: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const takeValue = (name: 'file' | 'config'): void => {
      const inline = arg.startsWith(`--${name}=`) ? arg.slice(name.length + 3) : undefined;
      const value = inline ?? argv[++i];
      if (!value) throw new UsageError(`--${name} needs a path`);
      options[name] = value;
    };
    if (arg === '--file' || arg.startsWith('--file=')) takeValue('file');
    else if (arg === '--config' || arg.startsWith('--config=')) takeValue('config');
    else if (arg === '--help' || arg === '-h') options.words = ['help'];
    else if (arg.startsWith('--')) throw new UsageError(`unknown option ${arg}`);
    else options.words.push(arg);
  }
  return options;
}

interface Locations {
  configPath: string;
  lockbPath: string;
  envFile: string;
  storageDir: string | undefined;
}

function locate(options: CliOptions): Locations {
  const configPath = resolve(options.config ?? join(PROJECT_ROOT, 'config.yaml'));
  const configDir = dirname(configPath);
  let storageDir: string | undefined;
  let lockbFromConfig: string | undefined;
  if (existsSync(configPath)) {
    const summary = readVerdaccioConfig(configPath);
    storageDir = summary.storageDir;
    lockbFromConfig = summary.lockbPath;
  } else if (options.config !== undefined) {
    throw new RegistryCoreError('ERR_LOCKB_MISSING', `no config file at ${configPath}`);
  }
  const lockbPath = resolve(options.file ?? lockbFromConfig ?? join(configDir, 'registry.lockb'));
  return { configPath, lockbPath, envFile: join(configDir, '.env.local'), storageDir };
}

const out = (text: string): void => void process.stdout.write(`${text}\n`);
const err = (text: string): void => void process.stderr.write(`${text}\n`);

function describeChange(next: ConfigSnapshot, prev: ConfigSnapshot): string {
  const changes = (Object.keys(next.view.fields) as (keyof ConfigSnapshot['view']['fields'])[])
    .filter((key) => next.view.fields[key] !== prev.view.fields[key])
    .map((key) => `${key} ${prev.view.fields[key]} → ${next.view.fields[key]}`);
  return `${new Date().toISOString()}  ${changes.join(', ') || 'bytes rewritten (same values)'}  [${next.view.hex} ${next.view.check}]`;
}

async function watch(where: Locations): Promise<number> {
  const config = ConfigFile.open(where.lockbPath);
  out(`watching ${where.lockbPath} (Ctrl-C to stop)`);
  out(formatConfig(config.getConfig().view, readRegistryUrl(where.envFile)));
  config.watchConfig((next, prev) => out(describeChange(next, prev)));
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
  const index = PackageIndex.open(where.lockbPath); // drops (and reports) a torn last record; throws on corruption
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
  const result = rebuildIndex(where.lockbPath, where.storageDir);
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
        const index = PackageIndex.open(where.lockbPath);
        try {
          return summarizeIndex(index.readAll());
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
    const where = locate(options);
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
