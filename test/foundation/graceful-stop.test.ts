/**
 * `npm start` stops through `process.exit` on SIGTERM / SIGINT (scripts/start.ts armGracefulStop,
 * docs/operations.md "Stopping"): Verdaccio closes the server (the dashboard ends its WebSockets),
 * the exit-time checkpoints are written, so the next start verifies only what changed. A real
 * registry, a real npm publish, a real WebSocket; exit codes and files are what is checked.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import WebSocket from 'ws';
import { AUDIT_CHECKPOINT_FILE } from '../../plugins/registry-core/index';
import { addUser, createClientDir, startRegistry, writePackage, type RunningRegistry } from '../harness/registry';

type Exit = { code: number | null; signal: NodeJS.Signals | null };

function exitOf(registry: RunningRegistry): Promise<Exit> {
  const child = registry.process;
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolveExit) => child.once('exit', (code, signal) => resolveExit({ code, signal })));
}

async function publishOne(registry: RunningRegistry, name: string): Promise<string> {
  const token = await addUser(registry, 'stopper', 'correct-horse-battery');
  const client = createClientDir(registry, { token });
  const published = await client.npm(['publish'], { cwd: writePackage(client.dir, { name, version: '1.0.0' }) });
  assert.equal(published.code, 0, published.stderr);
  return token;
}

const auditCheckpoint = (registry: RunningRegistry): string => join(registry.dir, AUDIT_CHECKPOINT_FILE);

describe('graceful stop of npm start', () => {
  it('SIGTERM closes the open WebSocket, exits 0 and writes the exit checkpoints', async () => {
    const registry = await startRegistry();
    try {
      await publishOne(registry, 'stop-pkg');
      assert.equal(existsSync(auditCheckpoint(registry)), false, 'no checkpoint while running');
      const socket = new WebSocket(`${registry.url.replace('http', 'ws')}/_dashboard/terminal`);
      await new Promise<void>((opened, failed) => socket.once('open', opened).once('error', failed));
      const closed = new Promise<number>((done) => socket.once('close', (code) => done(code)));
      const exited = exitOf(registry);
      registry.process.kill('SIGTERM');
      const exit = await exited;
      assert.deepEqual(exit, { code: 0, signal: null }, registry.logs());
      assert.doesNotMatch(registry.logs(), /still closing/, 'the close finished within the grace period');
      assert.ok((await closed) > 0, 'the WebSocket was closed by the server, not left to hold the close');
      const checkpoint = readFileSync(auditCheckpoint(registry), 'utf8');
      assert.match(checkpoint, /^#audit-checkpoint v1 sha256=/);

      // the next start takes the audit lines from the checkpoint instead of re-verifying each
      const again = await registry.restart();
      try {
        const ping = await fetch(`${again.url}/-/ping`);
        assert.equal(ping.status, 200);
        assert.equal((await fetch(`${again.url}/stop-pkg`)).status, 200, 'the package is still served');
      } finally {
        await again.stop();
      }
    } finally {
      await registry.stop('SIGKILL');
    }
  });

  it('a second signal while a request holds the close exits at once, still through the exit checkpoints', async () => {
    const registry = await startRegistry();
    try {
      const token = await publishOne(registry, 'held-pkg');
      // a publish whose body never finishes keeps the server from closing
      const url = new URL(`${registry.url}/held-upload`);
      const held = request({ host: url.hostname, port: url.port, path: url.pathname, method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': '100000' } });
      held.on('error', () => undefined);
      held.write('{"name":"held-upload"');
      await new Promise((done) => setTimeout(done, 200));
      const exited = exitOf(registry);
      registry.process.kill('SIGTERM');
      await new Promise((done) => setTimeout(done, 200));
      registry.process.kill('SIGINT');
      const exit = await exited;
      held.destroy();
      // 130 = 128 + SIGINT: only the second-signal path exits with it (Verdaccio's close exits 0)
      assert.deepEqual(exit, { code: 130, signal: null }, registry.logs());
      assert.ok(existsSync(auditCheckpoint(registry)), 'the exit checkpoint ran on the forced exit too');
    } finally {
      await registry.stop('SIGKILL');
    }
  });

  it('VERDACCIO_HANDLE_KILL_SIGNALS=false keeps the signals’ defaults (no checkpoint)', async () => {
    const registry = await startRegistry({ env: { VERDACCIO_HANDLE_KILL_SIGNALS: 'false' } });
    try {
      await publishOne(registry, 'default-pkg');
      const exited = exitOf(registry);
      registry.process.kill('SIGTERM');
      assert.deepEqual(await exited, { code: null, signal: 'SIGTERM' });
      assert.equal(existsSync(auditCheckpoint(registry)), false);
    } finally {
      await registry.stop('SIGKILL');
    }
  });
});
