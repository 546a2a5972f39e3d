/**
 * `npm run self-publish` (= build, then this): publish this package to the running registry and
 * record the self-reference in its registry.lockb. See scripts/lib/self-publish.ts for the flow.
 *
 *   node build/scripts/self-publish.js [--config <config.yaml>] [--registry <url>] [--cwd <package dir>]
 *
 * Registry: --registry, else BUN_REGISTRY_URL, else `.env.local` next to config.yaml, else
 * http://localhost:4873. Token: NPM_TOKEN, else `_authToken` for that registry in .npmrc.
 * Exit 0: published, or already published with the same content. Exit 1: anything else.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { RegistryCoreError, loadRegistrySettings, normalizeRegistryUrl } from '../plugins/registry-core/index';
import { OWN_PACKAGE_DIR, SelfPublishError, findToken, selfPublish } from './lib/self-publish';
import { readVerdaccioConfig } from './lib/verdaccio-config';

const USAGE = `Usage: npm run self-publish -- [--config <config.yaml>] [--registry <url>] [--cwd <package dir>]

Packs the package (npm pack), publishes it to the registry (libnpmpublish) and records the
self-reference in the registry's registry.lockb.
  --config    the running registry's config.yaml (default ./config.yaml): where registry.lockb is
  --registry  registry URL (default BUN_REGISTRY_URL, then .env.local next to config.yaml, then http://localhost:4873)
  --cwd       the package folder to pack (default: this package, ${OWN_PACKAGE_DIR})
Token: NPM_TOKEN, else the _authToken for the registry in <package>/.npmrc, then ~/.npmrc.
`;

function say(line: string): void {
  process.stdout.write(`self-publish: ${line}\n`);
}

function fail(message: string, hint?: string): never {
  process.stderr.write(`self-publish: error: ${message}\n${hint ? `  ${hint}\n` : ''}`);
  process.exit(1);
}

async function main(): Promise<void> {
  let values: { config?: string; registry?: string; cwd?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: process.argv.slice(2),
      options: {
        config: { type: 'string', short: 'c' },
        registry: { type: 'string' },
        cwd: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    fail((error as Error).message, USAGE);
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }

  const configPath = resolve(values.config ?? 'config.yaml');
  if (!existsSync(configPath)) fail(`no config file at ${configPath}`, 'pass the running registry\'s config with --config <config.yaml>');
  const packageDir = resolve(values.cwd ?? OWN_PACKAGE_DIR);
  const verdaccioConfig = readVerdaccioConfig(configPath);
  const settings = loadRegistrySettings({ configPath, lockbPath: verdaccioConfig.lockbPath, env: process.env });
  const registryUrl = normalizeRegistryUrl(values.registry ?? settings.registryUrl);
  if (!existsSync(settings.lockbPath)) {
    fail(`${settings.lockbPath} does not exist`, 'start the registry first (npm start), or pass its config.yaml with --config');
  }

  const token = findToken({ registryUrl, packageDir });
  if (!token) {
    fail(`no token for ${registryUrl}`, `set NPM_TOKEN, or log in: npm login --registry ${registryUrl}`);
  }
  say(`registry ${registryUrl} (token from ${token.source}), index ${settings.lockbPath}`);

  const result = await selfPublish({ packageDir, lockbPath: settings.lockbPath, registryUrl, token: token.token, log: say });
  say(
    result.outcome === 'published'
      ? `done: ${result.name}@${result.version} published`
      : `done: ${result.name}@${result.version} is already published (same content), nothing to do`,
  );
}

/** The command itself: `registry self-publish …` (bin/registry.js) and `node self-publish.js …` both land here. */
export function runCli(): void {
  main().catch((error: unknown) => {
    if (error instanceof SelfPublishError || error instanceof RegistryCoreError) fail(error.message, error.hint);
    fail(error instanceof Error ? (error.stack ?? error.message) : String(error));
  });
}

if (require.main === module) runCli();
