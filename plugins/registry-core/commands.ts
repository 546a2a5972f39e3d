/**
 * The one command language shared by the dashboard WebSocket, the terminal client and the
 * config CLI: parse a line into a Command, run it against a CommandContext, get text back.
 */
import type { ConfigFile, ConfigSnapshot } from './config-file';
import { formatConfig, type ConfigView } from './describe';
import { exportEnv, setEnvFileValue } from './env';
import { RegistryCoreError, formatError } from './errors';
import type { PackageSummary } from './index-summary';
import { FEATURE_FLAGS, FEATURE_FLAG_NAMES, TERMINAL_MODES, fieldAt, withByte, type FeatureFlag } from './layout';
import { hashRegistryUrl, normalizeRegistryUrl } from './registry-url';

export type Command =
  | { name: 'get' }
  | { name: 'set'; offset: number; value: number }
  | { name: 'toggle'; flag: FeatureFlag }
  | { name: 'url'; url: string }
  | { name: 'env' }
  | { name: 'packages'; filter?: string }
  | { name: 'help' }
  | { name: 'watch' }
  | { name: 'repair' }
  | { name: 'rebuild-index' };

export type CommandName = Command['name'];

export const COMMANDS: readonly { name: CommandName; usage: string; summary: string; scope: 'shared' | 'cli'; /** changes the config: refused to read-only users and tokens */ writes?: true }[] = [
  { name: 'get', usage: 'get', summary: 'show the 13 config bytes and what they mean', scope: 'shared' },
  { name: 'set', usage: 'set <offset> <value>', summary: 'set one byte (offset 4..15, value 0..255; decimal or 0x hex)', scope: 'shared', writes: true },
  { name: 'toggle', usage: 'toggle <FLAG>', summary: `flip a feature flag (${FEATURE_FLAG_NAMES.join(', ')})`, scope: 'shared', writes: true },
  { name: 'url', usage: 'url <url>', summary: 'set the registry URL (.env.local) and its hash', scope: 'shared', writes: true },
  { name: 'env', usage: 'env', summary: 'print the BUN_* environment lines for this config', scope: 'shared' },
  { name: 'packages', usage: 'packages [filter]', summary: 'list local packages (name contains filter)', scope: 'shared' },
  { name: 'help', usage: 'help', summary: 'this list', scope: 'shared' },
  { name: 'watch', usage: 'watch', summary: 'print every change to the config until Ctrl-C', scope: 'cli' },
  { name: 'repair', usage: 'repair', summary: 'fix a bad magic, invalid fields or a wrong check byte', scope: 'cli' },
  { name: 'rebuild-index', usage: 'rebuild-index', summary: 'rebuild the package index from the storage folder', scope: 'cli' },
];

/** The commands that change the config (`set`, `toggle`, `url`): the one list the socket, the terminal and the cooked mode check. */
export const WRITE_COMMANDS: ReadonlySet<string> = new Set(COMMANDS.filter((command) => command.writes === true).map((command) => command.name));

export function isWriteCommand(name: string): boolean {
  return WRITE_COMMANDS.has(name);
}

function syntax(message: string, field?: string): RegistryCoreError {
  return new RegistryCoreError('ERR_COMMAND_SYNTAX', message, { ...(field === undefined ? {} : { field }), hint: 'type `help` for the command list' });
}

/** Decimal or 0x hex, non-negative integers only. */
export function parseNumber(token: string, what: string): number {
  if (/^\d{1,12}$/.test(token)) return Number(token);
  if (/^0x[0-9a-f]{1,10}$/i.test(token)) return Number.parseInt(token.slice(2), 16);
  throw syntax(`${what} must be a decimal or 0x-hex number, got ${JSON.stringify(token)}`, what);
}

export function parseFlag(token: string): FeatureFlag {
  const name = token.toUpperCase().replace(/-/g, '_');
  if (Object.hasOwn(FEATURE_FLAGS, name)) return name as FeatureFlag;
  throw syntax(`unknown flag ${JSON.stringify(token)}; flags are ${FEATURE_FLAG_NAMES.join(', ')}`, 'flag');
}

function arity(name: string, args: string[], min: number, max: number, usage: string): void {
  if (args.length < min || args.length > max) {
    throw syntax(`${name} takes ${min === max ? min : `${min} to ${max}`} argument${max === 1 ? '' : 's'} (usage: ${usage}), got ${args.length}`);
  }
}

export function parseCommand(line: string): Command {
  if (typeof line !== 'string') throw syntax('a command must be a string');
  const [word, ...args] = line.trim().split(/\s+/).filter((t) => t !== '');
  if (word === undefined) throw syntax('empty command');
  const name = word.toLowerCase();
  const spec = COMMANDS.find((entry) => entry.name === name);
  if (!spec) throw syntax(`unknown command ${JSON.stringify(word)}; commands are ${COMMANDS.map((c) => c.name).join(', ')}`);
  switch (spec.name) {
    case 'set':
      arity(name, args, 2, 2, spec.usage);
      return { name: 'set', offset: parseNumber(args[0], 'offset'), value: parseNumber(args[1], 'value') };
    case 'toggle':
      arity(name, args, 1, 1, spec.usage);
      return { name: 'toggle', flag: parseFlag(args[0]) };
    case 'url':
      arity(name, args, 1, 1, spec.usage);
      return { name: 'url', url: normalizeRegistryUrl(args[0]) };
    case 'packages':
      arity(name, args, 0, 1, spec.usage);
      return args.length === 1 ? { name: 'packages', filter: args[0] } : { name: 'packages' };
    default:
      arity(name, args, 0, 0, spec.usage);
      return { name: spec.name } as Command;
  }
}

export function helpText(scope: 'shared' | 'cli'): string {
  const shown = COMMANDS.filter((c) => scope === 'cli' || c.scope === 'shared');
  const width = Math.max(...shown.map((c) => c.usage.length));
  return shown.map((c) => `  ${c.usage.padEnd(width)}  ${c.summary}`).join('\n');
}

export interface CommandContext {
  config: Pick<ConfigFile, 'getConfig' | 'update' | 'toggleFeature'>;
  registryUrl(): string;
  setRegistryUrl(url: string): Promise<void>;
  listPackages(): Promise<PackageSummary[]>;
}

export interface CommandResult {
  ok: boolean;
  text: string;
  view?: ConfigView;
}

/** The documented rule for a URL change (docs/command-language.md): `.env.local` first, then the hash (watchers react to the hash, then read the file). */
export async function changeRegistryUrl(config: Pick<ConfigFile, 'update'>, envFile: string, url: string): Promise<ConfigSnapshot> {
  const normalized = normalizeRegistryUrl(url);
  setEnvFileValue(envFile, 'BUN_REGISTRY_URL', normalized);
  return config.update((fields) => ({ ...fields, registryHash: hashRegistryUrl(normalized) }));
}

function formatPackages(packages: PackageSummary[], filter: string | undefined): string {
  const needle = filter?.toLowerCase();
  const shown = needle === undefined ? packages : packages.filter((p) => p.name.toLowerCase().includes(needle));
  if (shown.length === 0) return filter === undefined ? 'no packages' : `no packages matching ${JSON.stringify(filter)}`;
  return shown
    .map((p) => {
      const tags = Object.entries(p.distTags).map(([tag, version]) => `${tag}=${version}`).join(' ');
      return `${p.name}  ${p.versions.join(', ') || '(no versions)'}${tags ? `  [${tags}]` : ''}  ${p.time}`;
    })
    .join('\n');
}

const hex2 = (n: number): string => `0x${n.toString(16).padStart(2, '0')}`;

export async function executeCommand(command: Command, context: CommandContext): Promise<CommandResult> {
  try {
    switch (command.name) {
      case 'get': {
        const { view } = context.config.getConfig();
        return { ok: true, text: formatConfig(view, context.registryUrl()), view };
      }
      case 'set': {
        const { offset, value } = command;
        const { view } = await context.config.update((fields) => withByte(fields, offset, value));
        const field = fieldAt(offset);
        const shown = field === 'terminalMode' ? `${TERMINAL_MODES[value]} (${value})` : String(view.fields[field as keyof ConfigView['fields']]);
        return { ok: true, text: `byte ${offset} (${field}) = ${hex2(value)} → ${field} ${shown}; check 0x${view.check}`, view };
      }
      case 'toggle': {
        const { view } = await context.config.toggleFeature(command.flag);
        return { ok: true, text: `${command.flag} ${view.flags[command.flag] ? 'on' : 'off'} (featureFlags ${view.fields.featureFlags}); check 0x${view.check}`, view };
      }
      case 'url': {
        await context.setRegistryUrl(command.url);
        const { view } = context.config.getConfig();
        return { ok: true, text: `registry URL ${context.registryUrl()} (registryHash ${view.fields.registryHash}); check 0x${view.check}`, view };
      }
      case 'env': {
        const { fields, view } = context.config.getConfig();
        return { ok: true, text: exportEnv(fields, context.registryUrl()).trimEnd(), view };
      }
      case 'packages':
        return { ok: true, text: formatPackages(await context.listPackages(), command.filter) };
      case 'help':
        return { ok: true, text: helpText('shared') };
      case 'watch':
      case 'repair':
      case 'rebuild-index':
        return { ok: false, text: `\`${command.name}\` is only available in the config CLI: npm run config -- ${command.name}` };
    }
  } catch (error) {
    if (error instanceof RegistryCoreError) return { ok: false, text: formatError(error) };
    throw error;
  }
}
