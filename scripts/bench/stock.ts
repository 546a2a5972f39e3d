/**
 * Launchers and real clients for the benchmark: stock Verdaccio 6.10.4 (its own CLI, htpasswd +
 * local storage, optionally JWT mode) and ours (the project's start script), both as child
 * processes on the same Node, plus npm/bun client folders and a fast raw-HTTP publisher for seeding.
 *
 * Deliberately no import from test/: scripts must run from a fresh clone without the test tree.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, createServer, request, type IncomingMessage, type Server } from 'node:http';
import { freePort } from '../lib/ports';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { dump, load } from 'js-yaml';
import { nerfDart } from '../../plugins/registry-core/npmrc';
import { PROJECT_ROOT, cleanEnv } from '../lib/child-env';

export { PROJECT_ROOT, cleanEnv };

export const NODE_BIN = process.execPath;
export const BUN_BIN = join(PROJECT_ROOT, 'node_modules', '.bin', 'bun');
const START_SCRIPT = join(PROJECT_ROOT, 'build', 'scripts', 'start.js');
const STOCK_BIN = join(PROJECT_ROOT, 'node_modules', 'verdaccio', 'bin', 'verdaccio');

/** `ceiling`: a bare node:http server replaying recorded bytes from memory (ceiling-server.ts). */
export type ServerKind = 'stock' | 'stock-jwt' | 'ours' | 'ceiling';

export interface BenchServer {
  kind: ServerKind;
  url: string;
  port: number;
  dir: string;
  child: ChildProcess;
  logs(): string;
  stop(): Promise<void>;
}

export interface LaunchOptions {
  /** Fixed port (cold-start measurement uses the same picked-port + ping polling for both sides). */
  port?: number;
  /** Write a V8 CPU profile of the server into this folder (`node --cpu-prof`); written on graceful exit. */
  cpuProfDir?: string;
  /** Ours only: the config.yaml to derive the server's config from (default: the project's). */
  baseConfig?: string;
  /**
   * Node's compile cache folder (`NODE_COMPILE_CACHE`) for this server. Default: `<dir>/.compile-cache`,
   * so a fresh folder starts with an empty cache and a restart of the same folder finds the cache
   * that side's previous start left — the same treatment for stock and ours.
   */
  compileCacheDir?: string;
  /** Extra environment for the server child (e.g. ours' `REGISTRY_UPSTREAM_URL`, docs/upstream.md). */
  env?: Record<string, string>;
  /** Stock only: proxy every package from this registry URL (Verdaccio's own `uplinks` + `proxy:`). */
  uplink?: string;
  timeoutMs?: number;
}

/** The compile cache a server started in `dir` uses unless told otherwise. */
export function compileCacheDirOf(dir: string): string {
  return join(dir, '.compile-cache');
}


export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `registry-bench-${prefix}-`));
}

/** (scripts/lib/ports.ts: binds port 0, reads the port the kernel chose and releases it) */
export { freePort };

export const PROJECT_CONFIG = join(PROJECT_ROOT, 'config.yaml');

function readConfig(path: string): Record<string, unknown> {
  return load(readFileSync(path, 'utf8')) as Record<string, unknown>;
}

/** Same keys as the project config (packages, server, body limit…), with only Verdaccio's own parts. */
export function writeStockConfig(dir: string, options: { jwt?: boolean; uplink?: string } = {}): string {
  const config = readConfig(PROJECT_CONFIG);
  delete config.plugins;
  delete config.store;
  delete config.registry_lockb;
  config.storage = './storage';
  config.auth = { htpasswd: { file: './htpasswd', max_users: 1000 } };
  config.middlewares = { audit: { enabled: true } };
  config.uplinks = {};
  if (options.uplink) {
    // Stock's documented way to proxy: one uplink, `proxy:` on every package rule.
    config.uplinks = { upstream: { url: options.uplink } };
    const packages = (config.packages ?? {}) as Record<string, Record<string, unknown>>;
    for (const rule of Object.values(packages)) rule.proxy = 'upstream';
    config.packages = packages;
  }
  config.listen = '127.0.0.1:0';
  config.log = { type: 'stdout', format: 'pretty', level: 'warn' };
  if (options.jwt) config.security = { api: { jwt: { sign: { expiresIn: '7d' } } } };
  const configPath = join(dir, 'config.yaml');
  writeFileSync(configPath, dump(config));
  return configPath;
}

/**
 * The project's config.yaml (or `baseConfig`, to compare a config change) as the harness uses it:
 * state inside `dir`, plugins from the checkout.
 */
export function writeOursConfig(dir: string, baseConfig = PROJECT_CONFIG): string {
  const config = readConfig(baseConfig);
  config.storage = './storage';
  config.plugins = resolve(dirname(baseConfig), typeof config.plugins === 'string' ? config.plugins : './plugins');
  config.registry_lockb = './registry.lockb';
  config.listen = '127.0.0.1:0';
  config.log = { type: 'stdout', format: 'pretty', level: 'warn' };
  const configPath = join(dir, 'config.yaml');
  writeFileSync(configPath, dump(config));
  return configPath;
}

/** Spawns a server without waiting for it; the caller decides how readiness is detected. */
export function spawnServer(
  kind: Exclude<ServerKind, 'ceiling'>,
  dir: string,
  port: number,
  options: LaunchOptions = {},
): { child: ChildProcess; logs: () => string } {
  mkdirSync(dir, { recursive: true });
  const configPath = join(dir, 'config.yaml');
  const nodeArgs = options.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${options.cpuProfDir}`] : [];
  const script = kind === 'ours' ? START_SCRIPT : STOCK_BIN;
  const env = cleanEnv({
    // Graceful SIGTERM lets stock exit through process.exit(0), which is when --cpu-prof writes its
    // file and Node writes the compile cache.
    VERDACCIO_HANDLE_KILL_SIGNALS: 'true',
    // The same V8 compile cache for both sides, each in its own folder: ours' start script would
    // otherwise enable one (in the OS temp dir, warm from earlier runs) and stock's CLI none.
    NODE_COMPILE_CACHE: options.compileCacheDir ?? compileCacheDirOf(dir),
    // Like with like: stock has no uplinks here, so ours has no upstream either (it would otherwise
    // resolve npm's configured registry at start-up, docs/upstream.md); the upstream group sets one.
    ...(kind === 'ours' ? { REGISTRY_UPSTREAM_URL: 'off' } : {}),
    ...options.env,
  });
  delete env.NODE_DISABLE_COMPILE_CACHE;
  const child = spawn(NODE_BIN, [...nodeArgs, script, '-c', configPath, '--listen', `127.0.0.1:${port}`], {
    cwd: dir,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  return { child, logs: () => output };
}

/** One GET on a fresh connection; resolves with the status, or 0 when nothing listens yet. */
export function probe(url: string, timeoutMs = 2000): Promise<number> {
  return new Promise((resolveStatus) => {
    const req = request(url, { agent: false, timeout: timeoutMs }, (res) => {
      res.resume();
      res.on('end', () => resolveStatus(res.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolveStatus(0));
    req.end();
  });
}

export async function waitForPing(url: string, child: ChildProcess, logs: () => string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`server exited (code ${child.exitCode}, signal ${child.signalCode}) before /-/ping answered:\n${logs()}`);
    }
    if ((await probe(`${url}/-/ping`)) === 200) return;
    await sleep(5);
  }
  throw new Error(`server did not answer /-/ping within ${timeoutMs} ms:\n${logs()}`);
}

function waitForListenLine(child: ChildProcess, logs: () => string, timeoutMs: number): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const timer = setTimeout(() => done(new Error(`no "listening on" line within ${timeoutMs} ms:\n${logs()}`)), timeoutMs);
    const onData = (): void => {
      const match = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(logs());
      if (match) done(null, Number(match[1]));
    };
    const onExit = (code: number | null, signal: string | null): void =>
      done(new Error(`server exited (code ${code}, signal ${signal}) before listening:\n${logs()}`));
    function done(error: Error | null, port = 0): void {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.off('exit', onExit);
      if (error) reject(error);
      else resolvePort(port);
    }
    child.stdout?.on('data', onData);
    child.once('exit', onExit);
    onData();
  });
}

export function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolveStop) => {
    const force = setTimeout(() => child.kill('SIGKILL'), 8000);
    child.once('exit', () => {
      clearTimeout(force);
      resolveStop();
    });
    child.kill('SIGTERM');
  });
}

function server(kind: ServerKind, dir: string, port: number, child: ChildProcess, logs: () => string): BenchServer {
  return { kind, url: `http://127.0.0.1:${port}`, port, dir, child, logs, stop: () => stopChild(child) };
}

/** Ours: the lead's start script on a config derived from the project's config.yaml; port 0 unless given. */
export async function startOurs(dir: string, options: LaunchOptions = {}): Promise<BenchServer> {
  mkdirSync(dir, { recursive: true });
  writeOursConfig(dir, options.baseConfig);
  const timeoutMs = options.timeoutMs ?? 30000;
  const { child, logs } = spawnServer('ours', dir, options.port ?? 0, options);
  try {
    const port = options.port ?? (await waitForListenLine(child, logs, timeoutMs));
    const url = `http://127.0.0.1:${port}`;
    await waitForPing(url, child, logs, timeoutMs);
    return server('ours', dir, port, child, logs);
  } catch (error) {
    await stopChild(child);
    throw error;
  }
}

/** Stock: `node_modules/verdaccio/bin/verdaccio` itself, htpasswd + local storage, on a port picked here. */
export async function startStock(dir: string, options: LaunchOptions & { jwt?: boolean } = {}): Promise<BenchServer> {
  mkdirSync(dir, { recursive: true });
  writeStockConfig(dir, { jwt: options.jwt, uplink: options.uplink });
  const port = options.port ?? (await freePort());
  const { child, logs } = spawnServer(options.jwt ? 'stock-jwt' : 'stock', dir, port, options);
  try {
    await waitForPing(`http://127.0.0.1:${port}`, child, logs, options.timeoutMs ?? 30000);
    return server(options.jwt ? 'stock-jwt' : 'stock', dir, port, child, logs);
  } catch (error) {
    await stopChild(child);
    throw error;
  }
}

export function startServer(kind: Exclude<ServerKind, 'ceiling'>, dir: string, options: LaunchOptions = {}): Promise<BenchServer> {
  return kind === 'ours' ? startOurs(dir, options) : startStock(dir, { ...options, jwt: kind === 'stock-jwt' });
}

// ---------------------------------------------------------------------------------------------
// The ceiling: a bare node:http server replaying recorded responses from memory

/** One response as a server sent it: status, headers (raw order and case kept) and body bytes. */
export interface RecordedResponse {
  status: number;
  /** [name, value] pairs as received (`res.rawHeaders`) */
  headers: [string, string][];
  body: Buffer;
}

/**
 * One GET with exactly the headers given and nothing else (autocannon sends only Host), on a fresh
 * connection, so the recorded bytes are the ones a load run receives — fetch() would add
 * `accept-encoding` and could get a compressed body.
 */
export function rawGet(url: string, headers: Record<string, string> = {}, timeoutMs = 10000): Promise<RecordedResponse> {
  return new Promise((resolveGet, reject) => {
    const req = request(url, { agent: false, headers, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const pairs: [string, string][] = [];
        for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) pairs.push([res.rawHeaders[i], res.rawHeaders[i + 1]]);
        resolveGet({ status: res.statusCode ?? 0, headers: pairs, body: Buffer.concat(chunks) });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** Headers the ceiling must not replay verbatim: node:http sets them per response (framing, date, connection). */
const PER_RESPONSE_HEADERS = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'date']);

const CEILING_SCRIPT = join(PROJECT_ROOT, 'build', 'scripts', 'bench', 'ceiling-server.js');

/**
 * Starts `ceiling-server.js` (a child on the same Node as the servers) answering `GET <path>` with
 * the recorded status, headers and bytes; every other path is a 404. With `origin` (the origin the
 * recorded bodies name, e.g. the relay ours was recorded through), the child replaces it in every
 * body by its own origin once, at load (decoding and re-encoding a gzip/deflate/br body), so the
 * tarball URLs of a replayed packument lead a client back to the ceiling.
 */
export async function startCeiling(
  dir: string,
  routes: Record<string, RecordedResponse>,
  timeoutMs = 15000,
  origin?: string,
): Promise<BenchServer> {
  mkdirSync(dir, { recursive: true });
  const manifest = Object.entries(routes).map(([path, response], i) => {
    const bodyFile = join(dir, `body-${i}.bin`);
    writeFileSync(bodyFile, response.body);
    const headers = response.headers.filter(([name]) => !PER_RESPONSE_HEADERS.has(name.toLowerCase()));
    return { path, status: response.status, headers, bodyFile };
  });
  const manifestFile = join(dir, 'routes.json');
  writeFileSync(manifestFile, JSON.stringify(manifest));
  const child = spawn(NODE_BIN, [CEILING_SCRIPT, manifestFile, ...(origin ? [origin] : [])], { cwd: dir, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const logs = (): string => output;
  try {
    const port = await waitForListenLine(child, logs, timeoutMs);
    return server('ceiling', dir, port, child, logs);
  } catch (error) {
    await stopChild(child);
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------
// A counting (optionally recording) relay

/** One GET that went through a recording relay: what the client asked and what the server answered. */
export interface RelayedGet {
  path: string;
  /** the client's request headers (lower-case names, as node:http gives them) */
  requestHeaders: Record<string, string | string[] | undefined>;
  response: RecordedResponse;
}

/**
 * A relay in front of a server: every request is counted, then forwarded with its own Host header,
 * so a registry behind it writes tarball URLs that point at the relay (downloads pass it too).
 * One relay per side: the counts never mix. With `record`, every GET's request headers and the
 * full answer (status, raw headers, body bytes as sent: a compressed body stays compressed) are
 * kept, for the ceiling to replay exactly what that client got.
 */
export interface CountingRelay {
  url: string;
  count(): number;
  /** the GETs relayed since the start (empty unless started with `record`), in arrival order */
  recorded(): readonly RelayedGet[];
  close(): Promise<void>;
}

export async function startRelay(upstreamUrl: string, options: { record?: boolean } = {}): Promise<CountingRelay> {
  const target = new URL(upstreamUrl);
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  let count = 0;
  const recorded: RelayedGet[] = [];
  const server: Server = createServer((req: IncomingMessage, res) => {
    count += 1;
    const forward = request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers, agent },
      (upstreamRes) => {
        res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers);
        if (options.record && req.method === 'GET') {
          const chunks: Buffer[] = [];
          upstreamRes.on('data', (chunk: Buffer) => chunks.push(chunk));
          upstreamRes.on('end', () => {
            const headers: [string, string][] = [];
            for (let i = 0; i + 1 < upstreamRes.rawHeaders.length; i += 2) headers.push([upstreamRes.rawHeaders[i], upstreamRes.rawHeaders[i + 1]]);
            recorded.push({ path: req.url ?? '', requestHeaders: { ...req.headers }, response: { status: upstreamRes.statusCode ?? 0, headers, body: Buffer.concat(chunks) } });
          });
        }
        upstreamRes.pipe(res);
      },
    );
    forward.on('error', (error) => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: `relay: ${error.message}` }));
    });
    req.pipe(forward);
  });
  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolveListen());
  });
  const address = server.address();
  const port = address && typeof address === 'object' ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    count: () => count,
    recorded: () => recorded,
    close: () =>
      new Promise((resolveClose) => {
        agent.destroy();
        server.closeAllConnections();
        server.close(() => resolveClose());
      }),
  };
}

/** VmRSS of a live process in MiB (Linux /proc); null when it cannot be read. */
export function rssMiB(pid: number | undefined): number | null {
  if (!pid) return null;
  try {
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : null;
  } catch {
    return null;
  }
}

/** A `/proc/<pid>/status` field in MiB (VmRSS now, VmHWM = the peak since the process started); null without /proc. */
export function statusMiB(pid: number | undefined, field: 'VmRSS' | 'VmHWM'): number | null {
  if (!pid) return null;
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : null;
  } catch {
    return null;
  }
}

/** CPU (user + system, all threads) a live process has used so far, in ms; null without /proc. */
export function processCpuMs(pid: number | undefined): number | null {
  if (!pid) return null;
  const snapshot = cpuSnapshot([pid]);
  return snapshot ? snapshot.ownTicks * (1000 / CLOCK_TICKS_PER_SECOND) : null;
}

/** First line (what failed) and the last lines of the server log (why), on one line for the table notes. */
export function errorSummary(error: unknown, tailLines = 6): string {
  const lines = (error instanceof Error ? error.message : String(error)).split('\n').filter((line) => line.trim() !== '');
  const kept = lines.length <= tailLines + 1 ? lines : [lines[0], '…', ...lines.slice(-tailLines)];
  return kept.join(' | ');
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

// ---------------------------------------------------------------------------------------------
// Users and raw publishing

export async function addUser(url: string, name: string, password: string): Promise<string> {
  const response = await fetch(`${url}/-/user/org.couchdb.user:${encodeURIComponent(name)}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ _id: `org.couchdb.user:${name}`, name, password, type: 'user', roles: [], date: new Date().toISOString() }),
  });
  const text = await response.text();
  let token: unknown;
  try {
    token = (JSON.parse(text) as { token?: unknown }).token;
  } catch {
    token = undefined;
  }
  if (!response.ok || typeof token !== 'string') throw new Error(`adduser ${name} at ${url} failed: ${response.status} ${text}`);
  return token;
}

/** A gzipped ustar archive with every file under `package/`, like `npm pack` makes. */
export function makeTarball(files: Record<string, string>): Buffer {
  const blocks: Buffer[] = [];
  for (const [name, content] of Object.entries(files)) {
    const body = Buffer.from(content, 'utf8');
    const header = Buffer.alloc(512);
    const put = (text: string, offset: number, length: number): void => {
      header.write(text.slice(0, length), offset, length, 'ascii');
    };
    put(`package/${name}`, 0, 100);
    put('0000644\0', 100, 8);
    put('0000000\0', 108, 8);
    put('0000000\0', 116, 8);
    put(`${body.length.toString(8).padStart(11, '0')}\0`, 124, 12);
    put(`${Math.floor(Date.UTC(1985, 9, 26) / 1000).toString(8).padStart(11, '0')}\0`, 136, 12);
    put('        ', 148, 8);
    put('0', 156, 1);
    put('ustar\0', 257, 6);
    put('00', 263, 2);
    let sum = 0;
    for (const byte of header) sum += byte;
    put(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8);
    blocks.push(header, body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return gzipSync(Buffer.concat(blocks), { level: 9 });
}

/** Package files of realistic small-library size (a few KB), identical for both servers. */
export function packageFiles(name: string, version: string, dependencies?: Record<string, string>): Record<string, string> {
  const manifest = { name, version, description: `benchmark fixture ${name}`, main: 'index.js', license: 'MIT', ...(dependencies ? { dependencies } : {}) };
  // Hash lines compress like real code does (about 2:1), so the tarball is a few KB, not a few hundred bytes.
  const lines = Array.from({ length: 100 }, (_, i) => createHash('sha256').update(`${name}@${version}#${i}`).digest('hex'));
  const readme = `# ${name}\n\nA small library used by the registry benchmark.\n\n${lines.map((line) => `    ${line}`).join('\n')}\n`;
  const index = `'use strict';\n${Array.from({ length: 40 }, (_, i) => `exports.f${i} = (x) => x * ${i} + ${JSON.stringify(name)}.length;`).join('\n')}\n`;
  return { 'package.json': `${JSON.stringify(manifest, null, 2)}\n`, 'README.md': readme, 'index.js': index };
}

/**
 * The JSON body of `PUT /<name>`: the packument with one version + the base64 tarball, the same
 * document npm publish sends. `tarball` defaults to the fixture of `packageFiles(name, version)`;
 * the scale rows pass a prebuilt one so the bench's own gzip is never inside a timed request.
 */
export function publishBody(
  url: string,
  name: string,
  version: string,
  tarball?: Buffer,
  dependencies?: Record<string, string>,
): { body: string; tarballPath: string } {
  const files = packageFiles(name, version, dependencies);
  const bytes = tarball ?? makeTarball(files);
  const integrity = `sha512-${createHash('sha512').update(bytes).digest('base64')}`;
  const shasum = createHash('sha1').update(bytes).digest('hex');
  const basename = name.includes('/') ? name.split('/')[1] : name;
  const tarballPath = `/${name}/-/${basename}-${version}.tgz`;
  const manifest = JSON.parse(files['package.json']) as Record<string, unknown>;
  const body = {
    _id: name,
    name,
    description: manifest.description,
    'dist-tags': { latest: version },
    versions: {
      [version]: { ...manifest, _id: `${name}@${version}`, readme: files['README.md'], dist: { integrity, shasum, tarball: `${url}${tarballPath}` } },
    },
    access: null,
    _attachments: { [`${name}-${version}.tgz`]: { content_type: 'application/octet-stream', data: bytes.toString('base64'), length: bytes.length } },
  };
  return { body: JSON.stringify(body), tarballPath };
}

/** The path a package is published to and read from (`@scope%2fname`, as npm sends it). */
export function packagePath(name: string): string {
  return `/${name.replace('/', '%2f')}`;
}

/** `PUT /<name>` with the packument + base64 tarball, the same document npm publish sends. */
export async function publishRaw(
  url: string,
  token: string,
  name: string,
  version: string,
  dependencies?: Record<string, string>,
): Promise<{ tarballPath: string }> {
  const { body, tarballPath } = publishBody(url, name, version, undefined, dependencies);
  const response = await fetch(`${url}${packagePath(name)}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, 'npm-command': 'publish' },
    body,
  });
  if (!response.ok) throw new Error(`publish ${name}@${version} to ${url} failed: ${response.status} ${await response.text()}`);
  await response.arrayBuffer();
  return { tarballPath };
}

export interface TimedResponse {
  status: number;
  body: Buffer;
  /** request start → last byte of the answer */
  ms: number;
}

/**
 * One request on a given (keep-alive) agent, timed from the call to the last byte of the answer.
 * Raw `node:http` rather than fetch: the scale rows measure the server, so the client must add as
 * little as possible and reuse its connections the same way for both sides.
 */
export function timedRequest(
  url: string,
  options: { method: string; agent: Agent; headers?: Record<string, string>; body?: string | Buffer; timeoutMs?: number },
): Promise<TimedResponse> {
  return new Promise((resolveRequest, reject) => {
    const started = performance.now();
    const headers: Record<string, string | number> = { ...options.headers };
    if (options.body !== undefined) headers['content-length'] = Buffer.byteLength(options.body);
    const req = request(url, { method: options.method, agent: options.agent, headers, timeout: options.timeoutMs ?? 60000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolveRequest({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), ms: performance.now() - started }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${options.method} ${url} timed out`)));
    req.on('error', reject);
    req.end(options.body);
  });
}

/** A raw publish on a kept-alive connection; a non-201 answer is an error, never a sample. */
export async function putPublish(url: string, agent: Agent, token: string, name: string, body: string | Buffer): Promise<number> {
  const response = await timedRequest(`${url}${packagePath(name)}`, {
    method: 'PUT',
    agent,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, 'npm-command': 'publish' },
    body,
  });
  if (response.status !== 201 && response.status !== 200) {
    throw new Error(`publish ${name} to ${url}: ${response.status} ${response.body.toString('utf8').slice(0, 300)}`);
  }
  return response.ms;
}

// ---------------------------------------------------------------------------------------------
// Real npm / bun clients with isolated config and cache

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

export function run(command: string, args: string[], options: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<RunResult> {
  return new Promise((resolveRun, reject) => {
    const started = performance.now();
    const child = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timeoutMs = options.timeoutMs ?? 120000;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${command} ${args.join(' ')} timed out after ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolveRun({ code: code ?? -1, stdout, stderr, ms: performance.now() - started });
    });
  });
}

/** `//host:port/path/` — the key npm files a registry's token under (the core's one rule). */
export { nerfDart };

export interface ClientDir {
  dir: string;
  npm(args: string[], cwd?: string): Promise<RunResult>;
  bun(args: string[], cwd: string): Promise<RunResult>;
  remove(): void;
}

/** A throw-away client folder: its own .npmrc, npm cache, bun cache and HOME. */
export function createClient(serverUrl: string, token?: string): ClientDir {
  const dir = tempDir('client');
  const registry = `${serverUrl}/`;
  const npmrc = join(dir, '.npmrc');
  writeFileSync(npmrc, `registry=${registry}\n${token ? `${nerfDart(registry)}:_authToken=${token}\n` : ''}`);
  const npmEnv = cleanEnv({
    HOME: dir,
    npm_config_userconfig: npmrc,
    npm_config_cache: join(dir, 'npm-cache'),
    npm_config_registry: registry,
    npm_config_update_notifier: 'false',
    npm_config_fund: 'false',
    npm_config_audit: 'false',
    npm_config_loglevel: 'warn',
  });
  const bunEnv = cleanEnv({ HOME: dir, BUN_INSTALL_CACHE_DIR: join(dir, 'bun-cache'), NPM_CONFIG_REGISTRY: registry, NO_COLOR: '1' });
  return {
    dir,
    npm: (args, cwd = dir) => run('npm', args, { cwd, env: npmEnv }),
    bun: (args, cwd) => {
      // bun reads ./bunfig.toml from the project folder: registry (and token) live there.
      writeFileSync(join(cwd, 'bunfig.toml'), `[install]\nregistry = { url = "${registry}"${token ? `, token = "${token}"` : ''} }\n`);
      return run(BUN_BIN, args, { cwd, env: bunEnv });
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

// ---------------------------------------------------------------------------------------------
// Rounds: interleaved, bounded in count and time

export type Side = 'stock' | 'ours';

/** A wall-clock allowance shared by the whole run, so `--quick` and full mode stay bounded. */
export class Budget {
  private readonly started = Date.now();
  constructor(readonly totalMs: number) {}
  elapsedMs(): number {
    return Date.now() - this.started;
  }
  leftMs(): number {
    return this.totalMs - this.elapsedMs();
  }
}

export interface Interleaved<T> {
  stock: T[];
  ours: T[];
  /** Rounds skipped because the budget ran low (reported in the notes, never silently). */
  skippedRounds: number;
}

/**
 * stock, ours, then ours, stock, … — the order flips every round so neither side always runs
 * first (warmer disk cache, quieter machine). Round 0 always runs; later rounds only while the
 * budget still covers one more round at the rate observed so far.
 */
export async function interleave<T>(rounds: number, budget: Budget, measure: (side: Side, round: number) => Promise<T>): Promise<Interleaved<T>> {
  const result = await interleaveSides(['stock', 'ours'] as const, rounds, budget, measure);
  return { stock: result.runs.stock, ours: result.runs.ours, skippedRounds: result.skippedRounds };
}

/** The same for any set of sides (e.g. stock, ours, ceiling): the order reverses every round. */
export async function interleaveSides<S extends string, T>(
  sides: readonly S[],
  rounds: number,
  budget: Budget,
  measure: (side: S, round: number) => Promise<T>,
): Promise<{ runs: Record<S, T[]>; skippedRounds: number }> {
  const runs = Object.fromEntries(sides.map((side) => [side, [] as T[]])) as Record<S, T[]>;
  let skippedRounds = 0;
  const started = Date.now();
  for (let round = 0; round < rounds; round += 1) {
    if (round > 0) {
      const perRound = (Date.now() - started) / round;
      if (budget.leftMs() <= perRound * 1.2) {
        skippedRounds = rounds - round;
        break;
      }
    }
    const order = round % 2 === 0 ? sides : [...sides].reverse();
    for (const side of order) runs[side].push(await measure(side, round));
  }
  return { runs, skippedRounds };
}

export type Log = (line: string) => void;

// ---------------------------------------------------------------------------------------------
// Noise: CPU used by anything but the server under test and the bench itself (Linux /proc)

/** USER_HZ of /proc/<pid>/stat: 100 on every Linux architecture Node supports. */
export const CLOCK_TICKS_PER_SECOND = 100;

export interface CpuSnapshot {
  busyTicks: number;
  totalTicks: number;
  ownTicks: number;
}

function processTicks(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return 0;
  }
}

/**
 * CPU in ms of this process's children that have exited and been waited for (`cutime + cstime`,
 * fields 16 and 17 of `/proc/self/stat`): around one client run (`run()` waits for it, and the
 * client waits for its own children), the difference is that client's CPU. null without /proc.
 */
export function reapedChildrenCpuMs(): number | null {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[13]) + Number(fields[14])) * (1000 / CLOCK_TICKS_PER_SECOND);
  } catch {
    return null;
  }
}

/** null where /proc is not available: the noise column is then simply absent. */
export function cpuSnapshot(pids: readonly number[]): CpuSnapshot | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
    const values = line.trim().split(/\s+/).slice(1).map(Number);
    const [user, nice, system, idle, iowait, irq, softirq, steal] = values;
    const busyTicks = user + nice + system + irq + softirq + (steal ?? 0);
    return { busyTicks, totalTicks: busyTicks + idle + (iowait ?? 0), ownTicks: pids.reduce((sum, pid) => sum + processTicks(pid), 0) };
  } catch {
    return null;
  }
}

/** Foreign CPU between two snapshots, in % of one core (100 = a whole core busy with other work). */
export function foreignCpuPercent(before: CpuSnapshot | null, after: CpuSnapshot | null, cores: number): number | null {
  if (!before || !after) return null;
  const elapsedPerCore = (after.totalTicks - before.totalTicks) / cores;
  if (elapsedPerCore <= 0) return null;
  const foreign = after.busyTicks - before.busyTicks - (after.ownTicks - before.ownTicks);
  return Math.max(0, (foreign / elapsedPerCore) * 100);
}
