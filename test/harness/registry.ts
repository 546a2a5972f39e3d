/**
 * Integration-test harness: a REAL registry (our start script + Verdaccio, from the project's
 * config.yaml) in a temp folder on 127.0.0.1 port 0, and REAL npm and bun clients with isolated
 * config and cache folders. Nothing here fakes a part; it only wires them together.
 */
import { nerfDart } from '../../plugins/registry-core/npmrc';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dump, load } from 'js-yaml';
import { NODE_BIN, PROJECT_ROOT, cleanEnv } from '../../scripts/lib/child-env';

export { NODE_BIN, PROJECT_ROOT, cleanEnv };

export const BUN_BIN = join(PROJECT_ROOT, 'node_modules', '.bin', 'bun');
const START_SCRIPT = join(PROJECT_ROOT, 'build', 'scripts', 'start.js');

export interface StartOptions {
  /** Reuse a folder (restart tests); a fresh temp folder otherwise. */
  dir?: string;
  /** Extra environment for the registry process (e.g. BUN_FEATURE_DEBUG=1). REGISTRY_UPSTREAM_URL is `off` unless given here or config.yaml names `uplinks`. */
  env?: Record<string, string>;
  /** Edit the parsed config.yaml before it is written (plugin options, packages rules…). */
  editConfig?: (config: Record<string, unknown>) => void;
  /** How long to wait for the registry to answer /-/ping. */
  timeoutMs?: number;
  /** Which runtime runs the server: the pinned Node (default) or node_modules/.bin/bun; default from REGISTRY_TEST_RUNTIME. */
  runtime?: TestRuntime;
}

export type TestRuntime = 'node' | 'bun';

/** REGISTRY_TEST_RUNTIME=bun runs every harness-started server on Bun; unset or `node`: the pinned Node. */
export function defaultTestRuntime(env: NodeJS.ProcessEnv = process.env): TestRuntime {
  const value = env.REGISTRY_TEST_RUNTIME;
  if (value === undefined || value === '' || value === 'node') return 'node';
  if (value === 'bun') return 'bun';
  throw new Error(`REGISTRY_TEST_RUNTIME must be \`node\` or \`bun\` (got ${JSON.stringify(value)})`);
}

/** The binary that runs the server for a runtime. */
export function runtimeBinary(runtime: TestRuntime): string {
  return runtime === 'bun' ? BUN_BIN : NODE_BIN;
}

export interface RunningRegistry {
  url: string;
  port: number;
  dir: string;
  runtime: TestRuntime;
  configPath: string;
  lockbPath: string;
  storageDir: string;
  envFile: string;
  process: ChildProcess;
  logs(): string;
  stop(signal?: NodeJS.Signals): Promise<void>;
  restart(options?: Omit<StartOptions, 'dir'>): Promise<RunningRegistry>;
}


function writeConfig(dir: string, edit?: (config: Record<string, unknown>) => void): void {
  const base = load(readFileSync(join(PROJECT_ROOT, 'config.yaml'), 'utf8')) as Record<string, unknown>;
  base.storage = './storage';
  base.plugins = join(PROJECT_ROOT, 'plugins');
  base.registry_lockb = './registry.lockb';
  base.listen = '127.0.0.1:0';
  base.log = { type: 'stdout', format: 'pretty', level: 'warn' };
  edit?.(base);
  writeFileSync(join(dir, 'config.yaml'), dump(base));
}

export async function startRegistry(options: StartOptions = {}): Promise<RunningRegistry> {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'registry-test-'));
  mkdirSync(dir, { recursive: true });
  const configPath = join(dir, 'config.yaml');
  if (options.editConfig || !existsSync(configPath)) writeConfig(dir, options.editConfig);
  const written = load(readFileSync(configPath, 'utf8')) as { uplinks?: unknown } | null;
  const asksUpstream = typeof written?.uplinks === 'object' && written.uplinks !== null && Object.keys(written.uplinks).length > 0;
  const runtime = options.runtime ?? defaultTestRuntime();
  const child = spawn(runtimeBinary(runtime), [START_SCRIPT, '-c', configPath, '--listen', '127.0.0.1:0'], {
    cwd: dir,
    // hermetic: never proxy the user's real npm registry unless the test names an upstream
    env: cleanEnv({ ...(asksUpstream ? {} : { REGISTRY_UPSTREAM_URL: 'off' }), ...options.env }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));

  // a server that did not come up must not outlive the test (its pipes would keep the runner alive)
  const port = await new Promise<number>((resolvePort, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`registry did not start within ${options.timeoutMs ?? 30000} ms:\n${output}`)),
      options.timeoutMs ?? 30000,
    );
    const onData = (): void => {
      const match = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        child.stdout.off('data', onData);
        resolvePort(Number(match[1]));
      }
    };
    child.stdout.on('data', onData);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`registry exited (code ${code}, signal ${signal}) before listening:\n${output}`));
    });
  }).catch(async (error: unknown) => {
    await stopProcess(child, 'SIGKILL');
    throw error;
  });
  const url = `http://127.0.0.1:${port}`;
  await waitForPing(url, child, () => output).catch(async (error: unknown) => {
    await stopProcess(child, 'SIGKILL');
    throw error;
  });

  const registry: RunningRegistry = {
    url,
    port,
    dir,
    runtime,
    configPath,
    lockbPath: join(dir, 'registry.lockb'),
    storageDir: join(dir, 'storage'),
    envFile: join(dir, '.env.local'),
    process: child,
    logs: () => output,
    stop: (signal: NodeJS.Signals = 'SIGTERM') => stopProcess(child, signal),
    restart: async (restartOptions = {}) => {
      await stopProcess(child, 'SIGTERM');
      return startRegistry({ runtime, ...restartOptions, dir });
    },
  };
  return registry;
}

async function waitForPing(url: string, child: ChildProcess, logs: () => string): Promise<void> {
  const deadline = Date.now() + 15000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`registry exited before answering /-/ping:\n${logs()}`);
    try {
      const response = await fetch(`${url}/-/ping`);
      if (response.ok) return;
    } catch {
      // not accepting connections yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`registry never answered /-/ping:\n${logs()}`);
}

function stopProcess(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolveStop) => {
    const force = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(force);
      resolveStop();
    });
    child.kill(signal);
  });
}

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(
  command: string,
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {},
): Promise<CommandResult> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, env: options.env ?? cleanEnv(), stdio: 'pipe' });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${command} ${args.join(' ')} timed out after ${options.timeoutMs ?? 120000} ms\n${stdout}\n${stderr}`));
    }, options.timeoutMs ?? 120000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolveRun({ code: code ?? -1, stdout, stderr });
    });
    // A child that never reads its input may close stdin before we end it: EPIPE there is not a
    // failure of the command (its exit code says how it went), anything else is.
    child.stdin.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE') reject(error);
    });
    if (options.input === undefined) child.stdin.end();
    else child.stdin.end(options.input);
  });
}

export interface ClientDir {
  dir: string;
  npmrc: string;
  cache: string;
  /** Real npm 11 with this folder's .npmrc and cache only. */
  npm(args: string[], options?: { cwd?: string; input?: string }): Promise<CommandResult>;
  /** Real bun with this folder's bunfig.toml, .npmrc and cache only. */
  bun(args: string[], options?: { cwd?: string }): Promise<CommandResult>;
  setToken(token: string | undefined): void;
}

/** `//host:port/path/` — the key npm files a registry's token under (the core's one rule). */
export { nerfDart };

export function createClientDir(registry: { url: string }, options: { token?: string } = {}): ClientDir {
  const dir = mkdtempSync(join(tmpdir(), 'registry-client-'));
  const npmrc = join(dir, '.npmrc');
  const cache = join(dir, 'npm-cache');
  const bunCache = join(dir, 'bun-cache');
  const bunfig = join(dir, 'bunfig.toml');
  const registryUrl = `${registry.url}/`;
  let token = options.token;

  const writeClientConfig = (): void => {
    writeFileSync(npmrc, `registry=${registryUrl}\n${token ? `${nerfDart(registryUrl)}:_authToken=${token}\n` : ''}`);
    const tokenLine = token ? `, token = "${token}"` : '';
    writeFileSync(bunfig, `[install]\nregistry = { url = "${registryUrl}"${tokenLine} }\n[install.cache]\ndir = "${bunCache}"\n`);
  };
  writeClientConfig();

  const npmEnv = (): NodeJS.ProcessEnv =>
    cleanEnv({
      npm_config_userconfig: npmrc,
      npm_config_cache: cache,
      npm_config_registry: registryUrl,
      npm_config_update_notifier: 'false',
      npm_config_fund: 'false',
      npm_config_audit: 'false',
      HOME: dir,
    });

  return {
    dir,
    npmrc,
    cache,
    npm: (args, runOptions = {}) =>
      run('npm', args, { cwd: runOptions.cwd ?? dir, env: npmEnv(), input: runOptions.input }),
    bun: (args, runOptions = {}) =>
      run(BUN_BIN, [`--config=${bunfig}`, ...args], {
        cwd: runOptions.cwd ?? dir,
        env: cleanEnv({
          BUN_INSTALL_CACHE_DIR: bunCache,
          NPM_CONFIG_REGISTRY: registryUrl,
          ...(token ? { NPM_CONFIG_TOKEN: token } : {}),
          HOME: dir,
        }),
      }),
    setToken: (next) => {
      token = next;
      writeClientConfig();
    },
  };
}

export interface PackageSpec {
  name: string;
  version: string;
  files?: Record<string, string>;
  extra?: Record<string, unknown>;
}

/** Writes a publishable package folder and returns its path. */
export function writePackage(parentDir: string, spec: PackageSpec): string {
  const dir = mkdtempSync(join(parentDir, 'pkg-'));
  const manifest = { name: spec.name, version: spec.version, main: 'index.js', license: 'MIT', ...spec.extra };
  writeFileSync(join(dir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  const files = spec.files ?? { 'index.js': `module.exports = ${JSON.stringify(`${spec.name}@${spec.version}`)};\n` };
  for (const [file, content] of Object.entries(files)) writeFileSync(join(dir, file), content);
  return dir;
}

/** Creates (or logs in) a user through npm's couch route and returns the token the registry issued. */
export async function addUser(registry: { url: string }, name: string, password: string): Promise<string> {
  const response = await fetch(`${registry.url}/-/user/org.couchdb.user:${encodeURIComponent(name)}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ _id: `org.couchdb.user:${name}`, name, password, type: 'user', roles: [], date: new Date().toISOString() }),
  });
  const body = (await response.json()) as { token?: string; error?: string };
  if (!response.ok || !body.token) throw new Error(`adduser ${name} failed: ${response.status} ${JSON.stringify(body)}`);
  return body.token;
}
