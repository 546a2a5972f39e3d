/**
 * The registry publishes itself: pack the package folder with the real `npm pack`, check that
 * the tarball is a complete, runnable registry, publish it with libnpmpublish (npm's own publish
 * code) and record the self-reference in `registry.lockb`.
 *
 * Idempotence rests on `npm pack` being reproducible (it normalises mtimes, owners and order;
 * checked by test/self-publish): same tree → same sha512, so comparing the packed integrity with
 * the published `dist.integrity` tells "already published" from "same version, other content".
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { homedir, tmpdir } from 'node:os';
import { join, normalize, posix, resolve } from 'node:path';
import ssri from 'ssri';
import { PackageIndex } from '../../plugins/registry-core/index';
import { npmrcToken } from '../../plugins/registry-core/npmrc';
import { getJson, isRegistryHttpError, publishTarball } from './npm-clients';
import { readVerdaccioConfig } from './verdaccio-config';

export type SelfPublishErrorCode =
  | 'ERR_PACKAGE_JSON'
  | 'ERR_PACK'
  | 'ERR_PACKAGE_INCOMPLETE'
  | 'ERR_NO_TOKEN'
  | 'ERR_REGISTRY'
  | 'ERR_SELF_PUBLISH_CONFLICT';

export class SelfPublishError extends Error {
  readonly code: SelfPublishErrorCode;
  readonly hint?: string;
  constructor(code: SelfPublishErrorCode, message: string, hint?: string) {
    super(message);
    this.name = 'SelfPublishError';
    this.code = code;
    this.hint = hint;
  }
}

export interface PackageManifest extends Record<string, unknown> {
  name: string;
  version: string;
}

export function readManifest(packageDir: string): PackageManifest {
  const file = join(packageDir, 'package.json');
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new SelfPublishError('ERR_PACKAGE_JSON', `cannot read ${file}: ${(error as Error).message}`);
  }
  const manifest = parsed as Partial<PackageManifest> | null;
  if (!manifest || typeof manifest.name !== 'string' || typeof manifest.version !== 'string') {
    throw new SelfPublishError('ERR_PACKAGE_JSON', `${file} has no "name" and "version"`);
  }
  return manifest as PackageManifest;
}

// ---------------------------------------------------------------------------------------------
// pack

export interface PackedPackage {
  name: string;
  version: string;
  /** The .tgz bytes exactly as npm pack wrote them. */
  tarball: Buffer;
  /** `sha512-<base64>`, as npm and the registry write it in `dist.integrity`. */
  integrity: string;
  /** The same digest as 128 lowercase hex digits (the package-index record format). */
  sha512Hex: string;
  files: string[];
  unpackedSize: number;
}

interface NpmPackEntry {
  name: string;
  version: string;
  filename: string;
  integrity: string;
  unpackedSize: number;
  files: { path: string }[];
}

interface ProcessResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** npm as the current npm invocation runs it (npm_execpath), else the `npm` on PATH. */
function npmCommand(): { command: string; prefix: string[] } {
  const execPath = process.env.npm_execpath;
  if (execPath && /npm-cli\.js$/.test(execPath) && existsSync(execPath)) {
    return { command: process.execPath, prefix: [execPath] };
  }
  return { command: 'npm', prefix: [] };
}

function runNpm(args: string[], cwd: string, timeoutMs: number): Promise<ProcessResult> {
  const { command, prefix } = npmCommand();
  return new Promise((resolveRun, reject) => {
    const child = spawn(command, [...prefix, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(new SelfPublishError('ERR_PACK', `cannot run npm (${command}): ${error.message}`, 'npm must be on PATH'));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolveRun({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
  });
}

/** `npm pack --json` into a temp folder; lifecycle scripts are not run (the build happened before). */
export async function packPackage(packageDir: string, options: { timeoutMs?: number } = {}): Promise<PackedPackage> {
  const destination = mkdtempSync(join(tmpdir(), 'self-publish-pack-'));
  try {
    const result = await runNpm(
      ['pack', '--json', '--ignore-scripts', '--pack-destination', destination],
      packageDir,
      options.timeoutMs ?? 120_000,
    );
    if (result.code !== 0) {
      throw new SelfPublishError('ERR_PACK', `npm pack failed in ${packageDir} (exit ${result.code}):\n${result.stderr.trim()}`);
    }
    let entries: NpmPackEntry[];
    try {
      entries = JSON.parse(result.stdout) as NpmPackEntry[];
    } catch {
      throw new SelfPublishError('ERR_PACK', `npm pack printed no JSON:\n${result.stdout}\n${result.stderr}`);
    }
    const entry = entries[0];
    if (!entry) throw new SelfPublishError('ERR_PACK', 'npm pack reported no package');
    const tarball = readFileSync(join(destination, entry.filename));
    const integrity = ssri.fromData(tarball, { algorithms: ['sha512'] });
    const sha512 = integrity.sha512?.[0];
    if (!sha512 || sha512.toString() !== entry.integrity) {
      throw new SelfPublishError('ERR_PACK', `the tarball npm pack wrote does not match the integrity it reported (${entry.integrity})`);
    }
    return {
      name: entry.name,
      version: entry.version,
      tarball,
      integrity: sha512.toString(),
      sha512Hex: Buffer.from(sha512.digest, 'base64').toString('hex'),
      files: entry.files.map((file) => file.path).sort(),
      unpackedSize: entry.unpackedSize,
    };
  } finally {
    rmSync(destination, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// completeness: the tarball must run outside this repository

const BARE_SPECIFIER = /\b(?:require|require\.resolve|import)\(\s*["']([^"'./][^"']*)["']\s*\)/g;

function packageNameOf(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] ?? specifier);
}

/** Plugin folders config.yaml names that this package provides itself (`plugins/verdaccio-<id>`). */
function ownPluginFolders(packageDir: string): string[] {
  const configPath = join(packageDir, 'config.yaml');
  if (!existsSync(configPath)) return [];
  const config = readVerdaccioConfig(configPath);
  return [...config.authPlugins, ...config.storePlugins, ...config.middlewarePlugins]
    .map((id) => posix.join('plugins', `verdaccio-${id}`))
    .filter((folder) => existsSync(join(packageDir, folder)));
}

function pluginEntryFile(packageDir: string, folder: string): string {
  const manifestPath = join(packageDir, folder, 'package.json');
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as { main?: unknown };
  const main = typeof manifest.main === 'string' ? manifest.main : 'index.js';
  const entry = posix.normalize(posix.join(folder, main));
  return entry.endsWith('.js') ? entry : `${entry}.js`;
}

/**
 * Everything an installed copy needs: the start script and bin, the default config, every plugin
 * config.yaml names (manifest + compiled entry), no tests, and every package the shipped code
 * requires declared in `dependencies` (a devDependency is not installed for a consumer).
 */
export function findPackageProblems(packageDir: string, manifest: PackageManifest, files: string[]): string[] {
  const shipped = new Set(files);
  const problems: string[] = [];
  const required = ['package.json', 'README.md', 'config.yaml', 'templates/config.yaml', 'build/scripts/start.js'];
  const bin = manifest.bin;
  if (bin && typeof bin === 'object') {
    for (const target of Object.values(bin as Record<string, string>)) required.push(posix.normalize(target));
  } else {
    problems.push('package.json has no "bin": `npx @mycompany/registry` could not start it');
  }
  for (const folder of ownPluginFolders(packageDir)) {
    required.push(`${folder}/package.json`);
    try {
      required.push(pluginEntryFile(packageDir, folder));
    } catch (error) {
      problems.push(`${folder}/package.json is unreadable: ${(error as Error).message}`);
    }
  }
  for (const file of required) {
    if (!shipped.has(file)) {
      problems.push(
        file.startsWith('build/')
          ? `${file} is not in the package (not built yet? run \`npm run build\`; or missing from "files")`
          : `${file} is not in the package (missing, or not covered by "files" in package.json)`,
      );
    }
  }
  for (const file of files) {
    if (file.startsWith('build/test/') || file.startsWith('test/')) problems.push(`${file}: tests must not be shipped`);
  }

  const declared = new Set(
    ['dependencies', 'optionalDependencies', 'peerDependencies'].flatMap((field) => {
      const deps = manifest[field];
      return deps && typeof deps === 'object' ? Object.keys(deps) : [];
    }),
  );
  const undeclared = new Map<string, string>();
  for (const file of files) {
    if (!file.endsWith('.js')) continue;
    const source = readFileSync(join(packageDir, file), 'utf8');
    for (const match of source.matchAll(BARE_SPECIFIER)) {
      const specifier = match[1] ?? '';
      if (isBuiltin(specifier)) continue;
      const name = packageNameOf(specifier);
      if (name !== manifest.name && !declared.has(name) && !undeclared.has(name)) undeclared.set(name, file);
    }
  }
  for (const [name, file] of undeclared) {
    problems.push(`${file} requires "${name}", which is not in "dependencies" (an installed copy would not have it)`);
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// registry, token

export interface TokenSource {
  token: string;
  source: string;
}

/**
 * The token npm itself would send: `NPM_TOKEN`, else `_authToken` for this registry (or a parent
 * path of it, as npm-registry-fetch matches) in the project's .npmrc, then the user's.
 */
export function findToken(options: {
  registryUrl: string;
  packageDir: string;
  env?: Record<string, string | undefined>;
}): TokenSource | undefined {
  const env = options.env ?? process.env;
  if (env.NPM_TOKEN) return { token: env.NPM_TOKEN, source: 'NPM_TOKEN' };
  const userconfig = env.npm_config_userconfig ?? env.NPM_CONFIG_USERCONFIG ?? join(homedir(), '.npmrc');
  // the project's one .npmrc reader (core npmrc.ts)
  return npmrcToken(options.registryUrl, [join(options.packageDir, '.npmrc'), userconfig], env);
}

export type PublishedState = { published: false } | { published: true; integrity: string | undefined };

/** What the registry holds for name@version, straight from its packument (no cache). */
export async function readPublished(
  registryUrl: string,
  token: string | undefined,
  name: string,
  version: string,
): Promise<PublishedState> {
  const registry = `${registryUrl.replace(/\/+$/, '')}/`;
  let packument: unknown;
  try {
    packument = await getJson(`/${name.replace('/', '%2f')}`, { registry, token });
  } catch (error) {
    if (isRegistryHttpError(error) && error.statusCode === 404) return { published: false };
    throw new SelfPublishError('ERR_REGISTRY', `cannot read ${name} from ${registryUrl}: ${(error as Error).message}`);
  }
  const versions = (packument as { versions?: Record<string, { dist?: { integrity?: string } }> }).versions ?? {};
  const entry = versions[version];
  if (!entry) return { published: false };
  return { published: true, integrity: entry.dist?.integrity };
}

// ---------------------------------------------------------------------------------------------
// the whole flow

export interface SelfPublishOptions {
  /** The package folder to pack (the repository, or an installed copy). */
  packageDir: string;
  /** `registry.lockb` of the registry published to. */
  lockbPath: string;
  registryUrl: string;
  token: string;
  /** One line per step, for the user. */
  log?: (line: string) => void;
}

export interface SelfPublishResult {
  outcome: 'published' | 'already-published';
  /** False when the index already held this self-reference. */
  recorded: boolean;
  name: string;
  version: string;
  integrity: string;
  sha512Hex: string;
  files: number;
}

function shortIntegrity(integrity: string | undefined): string {
  return integrity ? `${integrity.slice(0, 23)}…` : '(none)';
}

function conflict(name: string, version: string, registryUrl: string, published: string | undefined, local: string): SelfPublishError {
  return new SelfPublishError(
    'ERR_SELF_PUBLISH_CONFLICT',
    `${name}@${version} is already published at ${registryUrl} with DIFFERENT content ` +
      `(published ${shortIntegrity(published)}, this build ${shortIntegrity(local)}). A published version is immutable.`,
    'bump "version" in package.json (e.g. `npm version patch`) and run self-publish again',
  );
}

export async function selfPublish(options: SelfPublishOptions): Promise<SelfPublishResult> {
  const log = options.log ?? (() => undefined);
  const packageDir = resolve(options.packageDir);
  const manifest = readManifest(packageDir);
  // Open the index first: a missing or corrupt registry.lockb must stop us before anything is published.
  const index = PackageIndex.open(options.lockbPath);
  try {
    log(`packing ${packageDir} with npm pack`);
    const packed = await packPackage(packageDir);
    if (packed.name !== manifest.name || packed.version !== manifest.version) {
      throw new SelfPublishError('ERR_PACK', `npm pack produced ${packed.name}@${packed.version}, package.json says ${manifest.name}@${manifest.version}`);
    }
    log(`packed ${packed.name}@${packed.version}: ${packed.files.length} files, ${(packed.tarball.length / 1024).toFixed(1)} kB, ${packed.integrity}`);
    const problems = findPackageProblems(packageDir, manifest, packed.files);
    if (problems.length > 0) {
      throw new SelfPublishError(
        'ERR_PACKAGE_INCOMPLETE',
        `the package would not run once installed:\n  - ${problems.join('\n  - ')}`,
        'fix the build or the "files" field in package.json',
      );
    }

    let outcome: SelfPublishResult['outcome'];
    const before = await readPublished(options.registryUrl, options.token, packed.name, packed.version);
    if (before.published) {
      if (before.integrity !== packed.integrity) throw conflict(packed.name, packed.version, options.registryUrl, before.integrity, packed.integrity);
      log(`${packed.name}@${packed.version} is already published at ${options.registryUrl} with the same content — nothing to publish`);
      outcome = 'already-published';
    } else {
      log(`publishing ${packed.name}@${packed.version} to ${options.registryUrl}`);
      try {
        await publishTarball(manifest, packed.tarball, { registry: `${options.registryUrl}/`, token: options.token });
      } catch (error) {
        // Another publisher may have won the race for this version: judge by what is there now.
        const now = await readPublished(options.registryUrl, options.token, packed.name, packed.version).catch(() => before);
        if (now.published && now.integrity !== packed.integrity) throw conflict(packed.name, packed.version, options.registryUrl, now.integrity, packed.integrity);
        if (!now.published) {
          const status = isRegistryHttpError(error) ? ` (HTTP ${error.statusCode})` : '';
          throw new SelfPublishError('ERR_REGISTRY', `publishing to ${options.registryUrl} failed${status}: ${(error as Error).message}`,
            isRegistryHttpError(error) && (error.statusCode === 401 || error.statusCode === 403)
              ? 'the token must belong to a user allowed to publish @mycompany/* (npm login / npm token create)'
              : undefined);
        }
      }
      const after = await readPublished(options.registryUrl, options.token, packed.name, packed.version);
      if (!after.published || after.integrity !== packed.integrity) {
        throw new SelfPublishError('ERR_REGISTRY', `after publishing, ${options.registryUrl} reports ${after.published ? shortIntegrity(after.integrity) : 'no such version'} instead of ${packed.integrity}`);
      }
      log(`published ${packed.name}@${packed.version} (${packed.integrity})`);
      outcome = 'published';
    }

    const existing = index
      .readAll()
      .some((record) => record.kind === 'self-reference' && record.name === packed.name && record.version === packed.version && record.sha512 === packed.sha512Hex);
    if (!existing) {
      index.append({ kind: 'self-reference', name: packed.name, version: packed.version, sha512: packed.sha512Hex, time: Date.now(), detail: options.registryUrl });
      log(`recorded the self-reference ${packed.name}@${packed.version} in ${options.lockbPath}`);
    } else {
      log(`${options.lockbPath} already holds the self-reference ${packed.name}@${packed.version}`);
    }
    return {
      outcome,
      recorded: !existing,
      name: packed.name,
      version: packed.version,
      integrity: packed.integrity,
      sha512Hex: packed.sha512Hex,
      files: packed.files.length,
    };
  } finally {
    index.close();
  }
}

/** Where the package this code runs from lives (build/scripts/lib → package root). */
export const OWN_PACKAGE_DIR = normalize(join(__dirname, '..', '..', '..'));
