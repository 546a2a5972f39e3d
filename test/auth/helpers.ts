/** Small helpers shared by the auth integration tests (HTTP only; the registry is real). */
import { spawn } from 'node:child_process';
import { cleanEnv, type ClientDir, type RunningRegistry } from '../harness/registry';

export const AUTH_SECTION = { 'registry-auth': { file: './htpasswd', max_users: 1000 } };

/** Makes sure the registry under test runs our auth plugin (whatever config.yaml currently says), with extra options. */
export function useAuthPlugin(options: Record<string, unknown> = {}) {
  return (config: Record<string, unknown>): void => {
    config.auth = { 'registry-auth': { ...AUTH_SECTION['registry-auth'], ...options } };
  };
}

export interface HttpResult {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
  text: string;
}

export async function http(
  registry: { url: string },
  method: string,
  path: string,
  options: { token?: string; basic?: [string, string]; body?: unknown } = {},
): Promise<HttpResult> {
  const headers: Record<string, string> = {};
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  if (options.basic) headers.authorization = `Basic ${Buffer.from(`${options.basic[0]}:${options.basic[1]}`).toString('base64')}`;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`${registry.url}${path}`, {
    method,
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  const text = await response.text();
  let body: Record<string, unknown> = {};
  try {
    body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    body = {};
  }
  return { status: response.status, headers: response.headers, body, text };
}

export function couchPut(registry: { url: string }, name: string, password: string, options: { rev?: string; basic?: [string, string] } = {}) {
  const path = `/-/user/org.couchdb.user:${encodeURIComponent(name)}${options.rev ? `/-rev/${options.rev}` : ''}`;
  return http(registry, 'PUT', path, {
    basic: options.basic,
    body: { _id: `org.couchdb.user:${name}`, name, password, type: 'user', roles: [], date: new Date().toISOString() },
  });
}

export async function login(registry: { url: string }, username: string, password: string): Promise<string> {
  const result = await http(registry, 'POST', '/_auth/token', { body: { username, password } });
  if (result.status !== 200 || typeof result.body.token !== 'string') throw new Error(`login ${username}: ${result.status} ${result.text}`);
  return result.body.token;
}

export async function whoami(registry: { url: string }, token: string): Promise<string | undefined> {
  const result = await http(registry, 'GET', '/-/whoami', { token });
  if (result.status !== 200) return undefined;
  return typeof result.body.username === 'string' ? result.body.username : undefined;
}

/** Polls `probe` until it returns true: bounded in count and time (for changes made by another process). */
export async function eventually(probe: () => Promise<boolean>, what: string, attempts = 60, delayMs = 50): Promise<void> {
  for (let i = 0; i < attempts; i++) {
    if (await probe()) return;
    await new Promise((resolve) => setTimeout(resolve, delayMs));
  }
  throw new Error(`never happened: ${what}`);
}

/**
 * Runs real `npm <args>` in a pseudo-terminal (util-linux `script`), answering its prompts:
 * `npm login`/`npm adduser` refuse to prompt without a TTY.
 */
export function npmInPty(
  client: ClientDir,
  registry: RunningRegistry,
  args: string[],
  answers: { prompt: RegExp; answer: string }[],
  timeoutMs = 60_000,
): Promise<{ code: number; output: string }> {
  const env = cleanEnv({
    npm_config_userconfig: client.npmrc,
    npm_config_cache: client.cache,
    npm_config_registry: `${registry.url}/`,
    npm_config_update_notifier: 'false',
    HOME: client.dir,
  });
  const command = ['npm', ...args].map((part) => `'${part.replace(/'/g, `'\\''`)}'`).join(' ');
  const child = spawn('script', ['-qfec', command, '/dev/null'], { env, cwd: client.dir, stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  let next = 0;
  const onData = (chunk: Buffer): void => {
    output += chunk.toString('utf8');
    while (next < answers.length && answers[next].prompt.test(output.slice(output.lastIndexOf('\n') + 1))) {
      child.stdin.write(`${answers[next].answer}\r`);
      next += 1;
      output += '\n';
    }
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`npm ${args.join(' ')} timed out in the pty; output so far:\n${output}`));
    }, timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, output });
    });
  });
}

/** true when util-linux `script` (our pty) is installed. */
export async function hasScript(): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn('script', ['--version'], { stdio: 'ignore' });
    child.on('error', () => resolve(false));
    child.on('close', (code) => resolve(code === 0));
  });
}
