/**
 * Dashboard rows of `npm run bench` (docs/targets.md), measured against our registry as a child process
 * (the project's config.yaml, state in a temp folder):
 *
 * - GET /_dashboard p50: sequential requests on one keep-alive connection, `Accept-Encoding: br`
 *   like a browser; latency = request written → response fully read, in the bench process. The
 *   same loop on GET /-/ping is printed as the floor of the stack (Verdaccio's middlewares + the
 *   loopback round trip), for reading the first number.
 * - config change → WebSocket event via the API: POST toggleFeature as an admin, timed until the
 *   `config` message with the new state arrives on an already open /_dashboard/terminal socket.
 * - via the CLI: the real `config` CLI (`node build/scripts/config-cli.js --file <lockb> toggle
 *   DEBUG`) in its own process. Timed from the moment the file changed — the bench's own
 *   inotify watch on registry.lockb, or the CLI's exit if that comes first (no inotify) — to the
 *   socket message. Spawn → message (Node start-up of the CLI included) is printed alongside.
 */
import { spawn, spawnSync } from 'node:child_process';
import { watch } from 'node:fs';
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import WebSocket from 'ws';
import { makeRow, median } from './report';
import { NODE_BIN, PROJECT_ROOT, addUser, cleanEnv, removeDir, startOurs, tempDir, type BenchServer } from './stock';
import type { BenchRow } from './types';

const CONFIG_CLI = join(PROJECT_ROOT, 'build', 'scripts', 'config-cli.js');
const USER = 'dashboard-bench';
const PASSWORD = 'dashboard-bench-1';

const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6;

export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** Sequential GETs on one keep-alive socket; returns per-request latencies in ms. */
async function timeGets(url: string, count: number, headers: Record<string, string>): Promise<number[]> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const once = (): Promise<number> =>
    new Promise((resolve, reject) => {
      const started = nowMs();
      const req = request(url, { agent, headers }, (res) => {
        if (res.statusCode !== 200) reject(new Error(`GET ${url}: ${res.statusCode}`));
        res.on('data', () => undefined);
        res.on('end', () => resolve(nowMs() - started));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
  try {
    const latencies: number[] = [];
    for (let i = 0; i < count; i++) latencies.push(await once());
    return latencies;
  } finally {
    agent.destroy();
  }
}

type ConfigMessage = { type: string; flags?: { DEBUG?: boolean } };

/** An open terminal socket with a "resolve when the next config message says DEBUG is X" helper. */
export async function openSocket(server: BenchServer): Promise<{ nextDebug(expected: boolean, timeoutMs: number): Promise<number>; close(): void }> {
  const ws = new WebSocket(`${server.url.replace(/^http/, 'ws')}/_dashboard/terminal`);
  let waiter: { expected: boolean; resolve: (at: number) => void } | undefined;
  ws.on('message', (data) => {
    const at = nowMs();
    const message = JSON.parse(String(data)) as ConfigMessage;
    if (message.type === 'config' && waiter && message.flags?.DEBUG === waiter.expected) {
      const { resolve } = waiter;
      waiter = undefined;
      resolve(at);
    }
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return {
    nextDebug: (expected, timeoutMs) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no config message with DEBUG=${expected} within ${timeoutMs} ms`)), timeoutMs);
        waiter = {
          expected,
          resolve: (at) => {
            clearTimeout(timer);
            resolve(at);
          },
        };
      }),
    close: () => ws.close(),
  };
}

export async function currentDebug(server: BenchServer): Promise<boolean> {
  const response = await fetch(`${server.url}/_dashboard/api/config`);
  if (!response.ok) throw new Error(`GET /_dashboard/api/config: ${response.status}`);
  return ((await response.json()) as ConfigMessage).flags?.DEBUG === true;
}

export function runCli(args: string[]): { exited: Promise<{ code: number | null; at: number; output: string }>; spawnedAt: number } {
  const spawnedAt = nowMs();
  const child = spawn(NODE_BIN, [CONFIG_CLI, ...args], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const exited = new Promise<{ code: number | null; at: number; output: string }>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, at: nowMs(), output }));
  });
  return { exited, spawnedAt };
}

/**
 * The terminal client's first full frame (docs/targets.md: ≤ 1 s): `registry term` spawned on a
 * real pseudo terminal (util-linux `script`, 80×24) against the running registry, timed from spawn
 * to the first frame whose status line says the socket is live (config loaded, connected, painted).
 * null when `script` is missing (the row then says so).
 */
async function terminalFirstFrame(url: string, runs: number): Promise<number[] | null> {
  if (spawnSync('script', ['--version'], { stdio: 'ignore' }).status !== 0) return null;
  const bin = join(PROJECT_ROOT, 'bin', 'registry.js');
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const spawnedAt = nowMs();
    const child = spawn('script', ['-qfec', `stty cols 80 rows 24; exec '${NODE_BIN}' '${bin}' term --registry ${url}`, '/dev/null'], {
      env: { ...cleanEnv(), TERM: 'xterm-256color' },
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    const at = await new Promise<number>((resolveFrame, reject) => {
      let seen = '';
      const timer = setTimeout(() => reject(new Error(`registry term showed no live frame within 10 s: ${JSON.stringify(seen.slice(-200))}`)), 10_000);
      child.stdout.on('data', (chunk: Buffer) => {
        seen += chunk.toString('latin1');
        if (seen.includes('live')) {
          clearTimeout(timer);
          resolveFrame(nowMs());
        }
      });
    }).finally(() => child.kill('SIGKILL'));
    await new Promise((resolveExit) => (child.exitCode !== null || child.signalCode !== null ? resolveExit(null) : child.once('exit', resolveExit)));
    times.push(at - spawnedAt);
  }
  return times;
}

export async function runDashboardBench(options: { quick: boolean }): Promise<BenchRow[]> {
  const gets = options.quick ? 2_000 : 10_000;
  const apiChanges = options.quick ? 60 : 300;
  const cliChanges = options.quick ? 10 : 40;
  const dir = tempDir('dashboard');
  const server = await startOurs(dir);
  try {
    const token = await addUser(server.url, USER, PASSWORD);
    const log = (line: string): void => void process.stdout.write(`  dashboard: ${line}\n`);

    // --- GET /_dashboard
    const browserHeaders = { 'accept-encoding': 'gzip, deflate, br', accept: 'text/html' };
    await timeGets(`${server.url}/_dashboard`, 300, browserHeaders); // warm-up (JIT, caches)
    const page = await timeGets(`${server.url}/_dashboard`, gets, browserHeaders);
    const ping = await timeGets(`${server.url}/-/ping`, Math.min(gets, 2_000), {});
    log(`GET /_dashboard p50 ${median(page).toFixed(3)} ms, p90 ${percentile(page, 90).toFixed(3)} ms (${gets} requests); GET /-/ping p50 ${median(ping).toFixed(3)} ms`);

    // --- change → WebSocket event, via the API
    const socket = await openSocket(server);
    let debug = await currentDebug(server);
    const toggle = async (): Promise<Response> =>
      fetch(`${server.url}/_dashboard/api/config`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: '{"op":"toggleFeature","flag":"DEBUG"}',
      });
    const probe = await toggle();
    if (probe.status !== 200) {
      throw new Error(`POST /_dashboard/api/config as ${USER}: ${probe.status} ${await probe.text()} (is the first user an admin in this config?)`);
    }
    debug = !debug;
    const apiLatencies: number[] = [];
    for (let i = 0; i < apiChanges; i++) {
      const expected = !debug;
      const arrived = socket.nextDebug(expected, 5_000);
      const started = nowMs();
      const [at, response] = await Promise.all([arrived, toggle()]);
      if (response.status !== 200) throw new Error(`toggle ${i}: ${response.status} ${await response.text()}`);
      apiLatencies.push(at - started);
      debug = expected;
    }
    log(`API change → WS p50 ${median(apiLatencies).toFixed(2)} ms, p90 ${percentile(apiLatencies, 90).toFixed(2)} ms (${apiChanges} changes)`);

    // --- change → WebSocket event, via the CLI on the file
    const lockb = join(dir, 'registry.lockb');
    let changedAt: number | undefined;
    const watcher = watch(lockb, { persistent: false }, () => {
      changedAt ??= nowMs();
    });
    const cliLatencies: number[] = [];
    const cliEndToEnd: number[] = [];
    try {
      for (let i = 0; i < cliChanges; i++) {
        const expected = !debug;
        changedAt = undefined;
        const arrived = socket.nextDebug(expected, 10_000);
        const cli = runCli(['--file', lockb, 'toggle', 'DEBUG']);
        const [at, exit] = await Promise.all([arrived, cli.exited]);
        if (exit.code !== 0) throw new Error(`config CLI exited ${exit.code}: ${exit.output}`);
        const written = Math.min(changedAt ?? exit.at, exit.at);
        cliLatencies.push(Math.max(0, at - written));
        cliEndToEnd.push(at - cli.spawnedAt);
        debug = expected;
      }
    } finally {
      watcher.close();
      socket.close();
    }
    log(
      `CLI change → WS p50 ${median(cliLatencies).toFixed(1)} ms from the write (p90 ${percentile(cliLatencies, 90).toFixed(1)} ms), ` +
        `${median(cliEndToEnd).toFixed(0)} ms from spawning the CLI (${cliChanges} changes)`,
    );

    const frames = await terminalFirstFrame(server.url, options.quick ? 3 : 7);
    log(frames ? `registry term first live frame: median ${median(frames).toFixed(0)} ms over ${frames.length} spawns` : 'terminal first frame: skipped: util-linux `script` is missing');
    return [
      ...(frames ? [makeRow('terminal: first full frame (registry term spawned on a pty, 80x24, to the first live frame, median)', Number(median(frames).toFixed(0)), null, 'ms', '≤ 1000 ms')] : []),
      makeRow('GET /_dashboard p50 (keep-alive, br)', Number(median(page).toFixed(3)), null, 'ms', 'p50 ≤ 1 ms'),
      makeRow('GET /-/ping p50 (same server: stack floor)', Number(median(ping).toFixed(3)), null, 'ms', 'info'),
      makeRow('config change → WS event p50, via the API', Number(median(apiLatencies).toFixed(3)), null, 'ms', 'p50 ≤ 5 ms'),
      makeRow('config change → WS event p50, via the CLI on the file', Number(median(cliLatencies).toFixed(2)), null, 'ms', 'p50 ≤ 120 ms'),
      makeRow('config CLI spawn → WS event p50 (Node start-up included)', Number(median(cliEndToEnd).toFixed(1)), null, 'ms', 'info'),
    ];
  } finally {
    await server.stop();
    removeDir(dir);
  }
}
