/**
 * Real lockfiles, written by the real clients (npm, bun, pnpm, Yarn classic, Yarn Berry) against a
 * running test registry: the formats the parsers read are the ones those clients write today.
 * Each client gets its own config, cache and HOME in a temp folder; nothing reads the user's.
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BUN_BIN, NODE_BIN, PROJECT_ROOT, addUser, cleanEnv, run, writePackage, type CommandResult } from '../harness/registry';

export const LOCKFILE_CLIENTS = ['npm', 'bun', 'pnpm', 'yarn-v1', 'yarn-berry'] as const;
export type LockfileClient = (typeof LOCKFILE_CLIENTS)[number];
export const LOCKFILE_OF: Record<LockfileClient, string> = {
  npm: 'package-lock.json',
  bun: 'bun.lock',
  pnpm: 'pnpm-lock.yaml',
  'yarn-v1': 'yarn.lock',
  'yarn-berry': 'yarn.lock',
};

const PNPM = join(PROJECT_ROOT, 'node_modules', 'pnpm', 'bin', 'pnpm.mjs');
const YARN_CLASSIC = join(PROJECT_ROOT, 'node_modules', 'yarn', 'bin', 'yarn.js');
const YARN_BERRY = join(PROJECT_ROOT, 'node_modules', '@yarnpkg', 'cli-dist', 'bin', 'yarn.js');

/** The packages the fixtures publish: a scoped one with dependencies, an alias target, a second version. */
export const FIXTURE_PACKAGES = [
  { name: 'warm-leaf', version: '2.0.0' },
  { name: 'warm-mid', version: '1.0.0', extra: { dependencies: { 'warm-leaf': '^2.0.0' } } },
  { name: 'warm-mid', version: '1.1.0', extra: { dependencies: { 'warm-leaf': '^2.0.0' } } },
  { name: '@mycompany/warm-top', version: '1.0.0', extra: { dependencies: { 'warm-mid': '^1.1.0' } } },
] as const;

/** What every fixture lockfile must name (the alias `old-mid` resolves to warm-mid@1.0.0). */
export const FIXTURE_EXPECTED = ['@mycompany/warm-top@1.0.0', 'warm-leaf@2.0.0', 'warm-mid@1.0.0', 'warm-mid@1.1.0'];

export const FIXTURE_DEPENDENCIES = { '@mycompany/warm-top': '^1.0.0', 'old-mid': 'npm:warm-mid@1.0.0' };

export async function publishFixtures(registry: { url: string }, workDir: string): Promise<void> {
  const token = await addUser(registry, 'warm-publisher', 'warm-publisher-pass');
  const npmrc = join(workDir, 'publish.npmrc');
  const host = new URL(registry.url).host;
  writeFileSync(npmrc, `registry=${registry.url}/\n//${host}/:_authToken=${token}\n`);
  for (const spec of FIXTURE_PACKAGES) {
    const dir = writePackage(workDir, { name: spec.name, version: spec.version, ...('extra' in spec ? { extra: spec.extra } : {}) });
    const result = await run('npm', ['publish', '--registry', `${registry.url}/`], {
      cwd: dir,
      env: cleanEnv({ npm_config_userconfig: npmrc, npm_config_cache: join(workDir, 'npm-cache'), HOME: workDir }),
    });
    if (result.code !== 0) throw new Error(`publish ${spec.name}@${spec.version} failed:\n${result.stdout}\n${result.stderr}`);
  }
}

function check(client: string, result: CommandResult): void {
  if (result.code !== 0) throw new Error(`${client} failed (exit ${result.code}):\n${result.stdout}\n${result.stderr}`);
}

/** A fresh project folder with FIXTURE_DEPENDENCIES; the client writes its lockfile there. Returns its path. */
export async function generateLockfile(client: LockfileClient, registryUrl: string, parent: string): Promise<string> {
  const dir = mkdtempSync(join(parent, `${client}-`));
  const home = join(dir, '.home');
  mkdirSync(home);
  const registry = `${registryUrl}/`;
  writeFileSync(join(dir, 'package.json'), `${JSON.stringify({ name: 'warm-fixture', version: '1.0.0', private: true, dependencies: FIXTURE_DEPENDENCIES }, null, 2)}\n`);
  const base = { HOME: home, npm_config_registry: registry, npm_config_userconfig: join(home, '.npmrc'), npm_config_update_notifier: 'false' };
  writeFileSync(join(home, '.npmrc'), `registry=${registry}\n`);
  switch (client) {
    case 'npm':
      check(client, await run('npm', ['install', '--package-lock-only', '--ignore-scripts', '--no-audit', '--no-fund'], {
        cwd: dir,
        env: cleanEnv({ ...base, npm_config_cache: join(home, 'npm-cache') }),
      }));
      break;
    case 'bun':
      writeFileSync(join(dir, 'bunfig.toml'), `[install]\nregistry = "${registry}"\n[install.cache]\ndir = "${join(home, 'bun-cache')}"\n`);
      check(client, await run(BUN_BIN, ['install', '--lockfile-only', '--ignore-scripts'], {
        cwd: dir,
        env: cleanEnv({ ...base, BUN_INSTALL_CACHE_DIR: join(home, 'bun-cache'), NPM_CONFIG_REGISTRY: registry }),
      }));
      break;
    case 'pnpm':
      check(client, await run(NODE_BIN, [PNPM, 'install', '--lockfile-only', '--ignore-scripts', `--registry=${registry}`, `--store-dir=${join(home, 'pnpm-store')}`], {
        cwd: dir,
        env: cleanEnv({ ...base, npm_config_minimum_release_age: '0', XDG_DATA_HOME: home, XDG_CACHE_HOME: home, XDG_CONFIG_HOME: home }),
      }));
      break;
    case 'yarn-v1':
      check(client, await run(NODE_BIN, [YARN_CLASSIC, 'install', '--ignore-scripts', '--non-interactive', '--no-progress', `--registry=${registry}`, `--cache-folder=${join(home, 'yarn-cache')}`], {
        cwd: dir,
        env: cleanEnv({ ...base, YARN_IGNORE_PATH: '1' }),
      }));
      break;
    case 'yarn-berry':
      writeFileSync(join(dir, 'yarn.lock'), '');
      writeFileSync(
        join(dir, '.yarnrc.yml'),
        [
          `npmRegistryServer: "${registryUrl}"`,
          'unsafeHttpWhitelist: ["127.0.0.1"]',
          'nodeLinker: node-modules',
          'enableTelemetry: false',
          'enableGlobalCache: false',
          `cacheFolder: "${join(home, 'yarn-berry-cache')}"`,
          // fresh test versions are minutes old; Yarn 4 refuses versions younger than its gate by default
          'npmMinimalAgeGate: 0',
          '',
        ].join('\n'),
      );
      check(client, await run(NODE_BIN, [YARN_BERRY, 'install', '--mode=update-lockfile'], {
        cwd: dir,
        env: cleanEnv({ ...base, YARN_ENABLE_IMMUTABLE_INSTALLS: 'false', YARN_ENABLE_TELEMETRY: '0', YARN_IGNORE_PATH: '1' }),
      }));
      break;
  }
  const file = join(dir, LOCKFILE_OF[client]);
  readFileSync(file); // throws (naming the file) when the client wrote none
  return file;
}

export function scratchDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}
