/**
 * A REAL HAProxy from templates/haproxy.cfg in front of registry nodes (docs/cluster.md): shared by
 * test/harness/cluster.ts (which re-exports it) and scripts/bench/cluster-bench.ts.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROJECT_ROOT } from './child-env';
import { freePort } from './ports';

export const HAPROXY_TEMPLATE = join(PROJECT_ROOT, 'templates', 'haproxy.cfg');

export function haproxyBinary(): string | null {
  for (const candidate of ['/usr/sbin/haproxy', '/usr/bin/haproxy']) {
    const probe = spawnSync(candidate, ['-v'], { encoding: 'utf8' });
    if (probe.status === 0) return candidate;
  }
  return null;
}

/** templates/haproxy.cfg with its placeholders filled in. */
export function renderHaproxyConfig(bind: string, servers: ReadonlyArray<{ name: string; host: string; port: number }>): string {
  const lines = servers.map((server) => `    server ${server.name} ${server.host}:${server.port} check`).join('\n');
  return readFileSync(HAPROXY_TEMPLATE, 'utf8').replaceAll('{{BIND}}', bind).replaceAll('{{SERVERS}}', lines);
}

export interface Balancer {
  url: string;
  port: number;
  process: ChildProcess;
  logs(): string;
  stop(): Promise<void>;
}

/** HAProxy in the foreground (-db) on a free port, balancing `nodes`; resolves once it answers /-/ping. */
export async function startBalancer(nodes: ReadonlyArray<{ port: number }>): Promise<Balancer> {
  const binary = haproxyBinary();
  if (binary === null) throw new Error('haproxy is not installed (bash scripts/setup.sh --with-test-tools)');
  const dir = mkdtempSync(join(tmpdir(), 'registry-haproxy-'));
  const port = await freePort();
  const file = join(dir, 'haproxy.cfg');
  writeFileSync(file, renderHaproxyConfig(`127.0.0.1:${port}`, nodes.map((node, index) => ({ name: `node${index + 1}`, host: '127.0.0.1', port: node.port }))));
  const check = spawnSync(binary, ['-c', '-f', file], { encoding: 'utf8' });
  if (check.status !== 0) throw new Error(`haproxy -c refused the config:\n${check.stdout}${check.stderr}`);
  const child = spawn(binary, ['-db', '-f', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 15_000;
  let answered = 0;
  // every node must have passed its health checks: ask once per node in a row
  while (answered < nodes.length * 2) {
    if (Date.now() > deadline) throw new Error(`haproxy did not answer /-/ping through every node:\n${output}`);
    if (child.exitCode !== null) throw new Error(`haproxy exited:\n${output}`);
    try {
      const response = await fetch(`${url}/-/ping`);
      answered = response.ok ? answered + 1 : 0;
    } catch {
      answered = 0;
    }
    await new Promise((resolveWait) => setTimeout(resolveWait, 100));
  }
  return {
    url,
    port,
    process: child,
    logs: () => output,
    stop: () =>
      new Promise<void>((resolveStop) => {
        if (child.exitCode !== null || child.signalCode !== null) {
          rmSync(dir, { recursive: true, force: true });
          resolveStop();
          return;
        }
        child.once('exit', () => {
          rmSync(dir, { recursive: true, force: true });
          resolveStop();
        });
        child.kill('SIGTERM');
      }),
  };
}

