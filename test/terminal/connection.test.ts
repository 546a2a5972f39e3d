import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { terminalSocketUrl } from '../../terminal/api';
import { LiveConnection, backoffDelay, type ConnectionStatus } from '../../terminal/connection';
import { isTerminalError } from '../../terminal/errors';

test('backoff: 250 ms doubling, capped at 2 s', () => {
  assert.deepEqual([1, 2, 3, 4, 5, 10].map(backoffDelay), [250, 500, 1000, 2000, 2000, 2000]);
});

test('socket URL: ws(s) + /_dashboard/terminal, path prefix kept, never a token', () => {
  assert.equal(terminalSocketUrl('http://127.0.0.1:4873'), 'ws://127.0.0.1:4873/_dashboard/terminal');
  assert.equal(terminalSocketUrl('https://r.example.com/npm'), 'wss://r.example.com/npm/_dashboard/terminal');
});

test('nobody listening: statuses go connecting → disconnected with a reason and a retry; commands are refused, not queued', async () => {
  // A port that was just free: connections are refused (a real socket error, no fake).
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as { port: number }).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));

  const statuses: ConnectionStatus[] = [];
  let sawRetry: () => void = () => undefined;
  const retried = new Promise<void>((resolve) => (sawRetry = resolve));
  const connection = new LiveConnection(`ws://127.0.0.1:${port}/_dashboard/terminal`, undefined, {
    onConfig: () => undefined,
    onEvent: () => undefined,
    onHistory: () => undefined,
    onAuth: () => undefined,
    onNotice: () => undefined,
    onStatus: (status) => {
      statuses.push(status);
      if (status.state === 'connecting' && status.attempt === 2) sawRetry();
    },
  });
  connection.start();
  await Promise.race([retried, new Promise((_, reject) => setTimeout(() => reject(new Error(JSON.stringify(statuses))), 5000))]);
  await assert.rejects(connection.command('get'), (error: unknown) => isTerminalError(error, 'ERR_NOT_CONNECTED'));
  connection.stop();
  const disconnected = statuses.find((s) => s.state === 'disconnected');
  assert.ok(disconnected && disconnected.state === 'disconnected');
  assert.match(disconnected.reason, /ECONNREFUSED/);
  assert.equal(disconnected.retryInMs, 250);
  assert.equal(statuses.at(-1)?.state, 'closed');
});
