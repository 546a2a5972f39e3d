/**
 * `npm start` = `verdaccio -c config.yaml`, plus what must hold before Verdaccio may serve:
 * registry.lockb exists and is valid, `.env.local` and the environment are applied to it,
 * and every plugin configured in config.yaml really loaded (Verdaccio itself only logs a
 * plugin that failed and serves anyway — for auth it silently falls back to htpasswd).
 *
 * Verdaccio runs in this same process (its CLI module), so arguments after `--` reach it
 * unchanged and start-up costs one Node boot, not two.
 */
import './lib/compile-cache';
import diagnosticsChannel from 'node:diagnostics_channel';
import { existsSync } from 'node:fs';
import type { Server } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { armSelfPublishOnStart } from './lib/self-publish-on-start';
import { readVerdaccioConfig, requiredParts } from './lib/verdaccio-config';
import {
  ConfigFile,
  RegistryCoreError,
  applyEnv,
  bootMark,
  createConfigFile,
  defaultFields,
  describeConfig,
  loadRegistrySettings,
  normalizeRegistryUrl,
  parseEnvText,
  registryUrlMatches,
  setEnvFileValue,
} from '../plugins/registry-core/index';
import { onPluginLoaded, type RegistryPart } from '../plugins/registry-core/plugin-presence';
import { readFileSync } from 'node:fs';

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

/** `.env.local` then the process environment: later sources win. */
function environmentOverrides(envFile: string): Record<string, string | undefined> {
  const fromFile = existsSync(envFile) ? parseEnvText(readFileSync(envFile, 'utf8')) : {};
  const merged: Record<string, string | undefined> = { ...fromFile };
  for (const [key, value] of Object.entries(process.env)) {
    if (key.startsWith('BUN_') && value !== undefined) merged[key] = value;
  }
  return merged;
}

async function prepareLockfile(configPath: string, lockbFromConfig: string | undefined): Promise<string> {
  const settings = loadRegistrySettings({ configPath, lockbPath: lockbFromConfig, env: process.env });
  const overrides = environmentOverrides(settings.envFile);
  const registryUrl = normalizeRegistryUrl(settings.registryUrl);

  if (!existsSync(settings.lockbPath)) {
    createConfigFile(settings.lockbPath, defaultFields(registryUrl));
    bootMark(`created ${settings.lockbPath} with defaults for ${registryUrl}`);
  }
  let config: ConfigFile;
  try {
    config = ConfigFile.open(settings.lockbPath);
  } catch (error) {
    if (error instanceof RegistryCoreError) {
      fail(`${settings.lockbPath}: ${error.message}${error.hint ? `\n  ${error.hint}` : ''}`);
    }
    throw error;
  }

  const { fields, applied } = applyEnv(config.getConfig().fields, { ...overrides, BUN_REGISTRY_URL: registryUrl });
  const before = describeConfig(config.getConfig().fields).hex;
  if (describeConfig(fields).hex !== before) await config.update(() => fields);
  // Inside the server `.env.local` is the one source of truth for the URL (the 13 bytes hold only its hash).
  setEnvFileValue(settings.envFile, 'BUN_REGISTRY_URL', registryUrl);
  delete process.env.BUN_REGISTRY_URL;

  const view = config.getConfig().view;
  bootMark(
    `config loaded: ${settings.lockbPath} valid (check 0x${view.check}), bytes ${view.hex}` +
      (applied.length > 0 ? `, applied ${applied.join(', ')}` : ''),
  );
  if (!registryUrlMatches(config.getConfig().fields, registryUrl)) {
    bootMark(`WARNING: registryHash ${view.fields.registryHash} does not match ${registryUrl}`);
  }
  return settings.lockbPath;
}

/** Refuses to serve unless every configured part of ours announced itself before the server listens. */
function guardPluginPresence(expected: RegistryPart[]): void {
  const loaded = new Set<RegistryPart>();
  onPluginLoaded(({ part }) => loaded.add(part));
  diagnosticsChannel.subscribe('tracing:net.server.listen:asyncEnd', (message) => {
    const { server } = message as { server: Server };
    const missing = expected.filter((part) => !loaded.has(part));
    if (missing.length > 0) {
      fail(
        `plugin(s) for ${missing.join(', ')} did not load — see the Verdaccio log above. ` +
          'Refusing to serve without them (Verdaccio would silently fall back to its defaults).',
      );
    }
    const address = server.address();
    if (address && typeof address === 'object') {
      const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      bootMark(`listening on http://${host}:${address.port} — ready`);
    }
  });
}

async function main(): Promise<void> {
  const { configPath, verdaccioArgs } = splitConfigArgument(process.argv.slice(2));
  if (!existsSync(configPath)) fail(`no config file at ${configPath}`);
  const verdaccioConfig = readVerdaccioConfig(configPath);
  await prepareLockfile(configPath, verdaccioConfig.lockbPath);
  guardPluginPresence(requiredParts(verdaccioConfig));
  armSelfPublishOnStart(configPath);

  const verdaccioBin = join(dirname(require.resolve('verdaccio/package.json')), 'bin', 'verdaccio');
  process.argv = [process.execPath, verdaccioBin, ...verdaccioArgs];
  require(verdaccioBin);
}

main().catch((error: unknown) => {
  if (error instanceof RegistryCoreError) fail(`${error.message}${error.hint ? `\n  ${error.hint}` : ''}`);
  fail(error instanceof Error ? (error.stack ?? error.message) : String(error));
});
