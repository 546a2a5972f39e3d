/**
 * The per-socket limits of `/_dashboard/terminal` (issue 11.3) on the real TerminalSockets class,
 * in this process, so the server side can be looked at: a real http.Server on 127.0.0.1:0, a real
 * registry.lockb behind a real ConfigService, real WebSocket clients (and a raw TCP one that never
 * reads). The rate-limit clock is frozen, so nothing here depends on how fast the machine is.
 * The token check goes through the core's token seam, where no auth plugin registered a verifier
 * in this process: every token is refused (`unavailable`), never accepted by a fallback.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createAnonymousRemoteUser, createRemoteUser } from '@verdaccio/config';
import WebSocket from 'ws';
import { ConfigFile, createConfigFile, defaultFields } from '../../plugins/registry-core/index';
import { ConfigService } from '../../plugins/verdaccio-registry-dashboard/config-service';
import { DEFAULT_SOCKET_LIMITS, MessageAdmission, parseSocketLimits, TokenBucket } from '../../plugins/verdaccio-registry-dashboard/socket-limits';
import { TerminalSockets } from '../../plugins/verdaccio-registry-dashboard/terminal-socket';
import { createSocketTokenCheck } from '../../plugins/verdaccio-registry-dashboard/token-check';
import { anonymousUser, authenticatedUser } from '../../plugins/verdaccio-boundary/index';
import { SocketClient, maskedTextFrame, rawSocket, serverFrames } from './helpers';

const PATH = '/_dashboard/terminal';

describe('terminal socket limits (in process)', { timeout: 60_000 }, () => {
  let server: Server;
  let sockets: TerminalSockets;
  let config: ConfigFile;
  let url: string;
  let port: number;
  let lockbPath: string;
  let clock = 1_000_000;

  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'socket-limits-'));
    lockbPath = join(dir, 'registry.lockb');
    createConfigFile(lockbPath, defaultFields());
    config = ConfigFile.open(lockbPath);
    const logged: string[] = [];
    sockets = new TerminalSockets({
      path: PATH,
      service: new ConfigService(config, join(dir, '.env.local')),
      access: { canAccess: async () => false },
      listPackages: async () => [],
      verifyToken: createSocketTokenCheck(lockbPath, new Set(['alice'])),
      logger: { info: (m) => logged.push(m), warn: (m) => logged.push(m), error: (m) => logged.push(m) },
      now: () => clock,
    });
    server = createServer((_req, res) => res.end('ok'));
    server.on('upgrade', (req, socket, head) => {
      if (!sockets.handleUpgrade(req, socket, head)) socket.destroy();
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
    url = `ws://127.0.0.1:${port}${PATH}`;
  });

  after(async () => {
    sockets.close();
    await new Promise((resolve) => server.close(resolve));
    config.close();
  });

  const waitFor = async (probe: () => boolean, what: string): Promise<void> => {
    for (let i = 0; i < 200 && !probe(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.ok(probe(), `never happened: ${what}`);
  };

  const pingRoundTrip = async (): Promise<void> => {
    const client = await SocketClient.open(url);
    client.send({ type: 'ping', id: 'alive' });
    assert.deepEqual(await client.next((m) => m.type === 'pong'), { type: 'pong', id: 'alive' });
    await client.close();
  };

  test('11.3 backpressure: a client flooding thousands of messages without reading is cut off, its queue is dropped, the server still answers', async () => {
    const before = readFileSync(lockbPath);
    const { socket: flood } = await rawSocket('127.0.0.1', port, PATH, { read: false });
    await waitFor(() => sockets.clientCount === 1, 'the flooding socket is connected');
    const frames = Buffer.concat(
      Array.from({ length: 5000 }, (_, i) => maskedTextFrame(JSON.stringify(i % 2 ? { type: 'command', line: 'packages', id: i } : { type: 'ping', id: i }))),
    );
    flood.write(frames);
    // the server ends the connection (its queue bound or its rate limit) although we never read
    await waitFor(() => sockets.clientCount === 0, 'the server forgot the flooding socket');
    const closed = once(flood, 'close');
    flood.resume();
    await closed;
    assert.equal(sockets.pendingMessages, 0, 'no queued work survives the socket');
    await pingRoundTrip();
    assert.deepEqual(readFileSync(lockbPath), before, 'registry.lockb unchanged');
  });

  test('11.3 rate limit: over the token bucket each message is answered with an error, then the socket is closed with 1008', async () => {
    const client = await SocketClient.open(url);
    await client.next((m) => m.type === 'history');
    const limits = DEFAULT_SOCKET_LIMITS;
    let pongs = 0;
    let limited = 0;
    let sent = 0;
    const closed = new Promise<number>((resolve) => client.ws.once('close', (code) => resolve(code)));
    // one message at a time, each waiting for its answer: never more than one in the queue
    while (client.ws.readyState === WebSocket.OPEN && sent < limits.burst * 3) {
      const answers = client.messages.length;
      client.send({ type: 'ping', id: sent });
      sent += 1;
      const answer = await Promise.race([client.next(() => client.messages.length > answers, 5000, `answer to ${sent}`), closed.then(() => undefined)]);
      if (!answer) break;
      if (answer.type === 'pong') pongs += 1;
      else if (answer.type === 'error' && answer.code === 'rate-limited') limited += 1;
      else assert.fail(`unexpected answer ${JSON.stringify(answer)}`);
    }
    assert.equal(await closed, 1008, 'closed for a policy violation');
    // the clock is frozen: exactly one burst answered, one burst of warnings, then the close
    assert.equal(pongs, limits.burst);
    assert.equal(limited, limits.burst);
    assert.equal(sent, limits.burst * 2 + 1);
    await waitFor(() => sockets.clientCount === 0, 'the server forgot the socket');
    assert.equal(sockets.pendingMessages, 0);
    clock += 60_000;
    await pingRoundTrip();
  });

  test('11.3 bounded inbox: one message more than the bound closes the socket with 1008 (a reading client sees why)', async () => {
    clock += 60_000;
    const { socket, received } = await rawSocket('127.0.0.1', port, PATH, { read: true });
    await waitFor(() => sockets.clientCount === 1, 'connected');
    const count = DEFAULT_SOCKET_LIMITS.maxQueued + 1;
    socket.write(Buffer.concat(Array.from({ length: count }, (_, i) => maskedTextFrame(JSON.stringify({ type: 'auth', token: `not-a-token-${i}` })))));
    const closeFrame = (): { opcode: number; payload: Buffer } | undefined => serverFrames(received()).find((frame) => frame.opcode === 0x8);
    await waitFor(() => closeFrame() !== undefined, 'a close frame');
    const frame = closeFrame()!;
    assert.equal(frame.payload.readUInt16BE(0), 1008);
    assert.match(frame.payload.subarray(2).toString('utf8'), /too many messages waiting \(at most 32\)/);
    // the messages that were queued were dropped: at most the one being handled got an answer
    const answers = serverFrames(received()).filter((f) => f.opcode === 0x1).map((f) => JSON.parse(f.payload.toString('utf8')) as { type: string });
    assert.ok(answers.filter((a) => a.type === 'auth').length <= 1, JSON.stringify(answers));
    socket.destroy();
    await waitFor(() => sockets.clientCount === 0, 'the server forgot the socket');
    assert.equal(sockets.pendingMessages, 0);
  });

  test('11.2 without the auth plugin the socket refuses every token (no fallback)', async () => {
    clock += 60_000;
    const client = await SocketClient.open(url);
    client.send({ type: 'auth', token: 'eyJhbGciOiJFZERTQSJ9.e30.c2ln' });
    const answer = await client.next((m) => m.type === 'auth');
    assert.equal(answer.ok, false);
    assert.equal(answer.code, 'unavailable');
    client.send({ type: 'command', line: 'toggle DEBUG', id: 1 });
    const refused = await client.next((m) => m.type === 'output');
    assert.equal(refused.ok, false);
    assert.match(String(refused.text), /needs an admin token/);
    await client.close();
  });
});

describe('socket-limits units (frozen time)', () => {
  test('token bucket: capacity at once, then the rate; a clock going backwards adds nothing', () => {
    let now = 0;
    const bucket = new TokenBucket(3, 2, () => now);
    assert.deepEqual([bucket.take(), bucket.take(), bucket.take(), bucket.take()], [true, true, true, false]);
    now += 499;
    assert.equal(bucket.take(), false, 'not yet a whole token');
    now += 1;
    assert.equal(bucket.take(), true);
    now -= 10_000;
    assert.equal(bucket.take(), false);
    now += 1_000_000;
    assert.deepEqual([bucket.take(), bucket.take(), bucket.take(), bucket.take()], [true, true, true, false], 'never more than the capacity');
  });

  test('admission: burst accepted, burst rate-limited, then close', () => {
    const now = 5;
    const admission = new MessageAdmission({ messagesPerSecond: 1, burst: 2, maxQueued: 4 }, () => now);
    assert.deepEqual(Array.from({ length: 5 }, () => admission.admit()), ['accept', 'accept', 'rate-limited', 'rate-limited', 'close']);
  });

  test('socket_limits option: defaults, overrides, clear errors', () => {
    assert.deepEqual(parseSocketLimits(undefined), DEFAULT_SOCKET_LIMITS);
    assert.deepEqual(parseSocketLimits({ burst: 7 }), { ...DEFAULT_SOCKET_LIMITS, burst: 7 });
    assert.throws(() => parseSocketLimits({ burts: 7 }), /unknown key socket_limits\.burts/);
    assert.throws(() => parseSocketLimits({ burst: 0 }), /burst must be an integer/);
    assert.throws(() => parseSocketLimits([1]), /must be a mapping/);
  });

  test("the socket's remote users are Verdaccio's own shapes (access rules match them alike)", () => {
    assert.deepEqual(authenticatedUser('alice', ['alice', 'registry-admin']), createRemoteUser('alice', ['alice', 'registry-admin']));
    assert.deepEqual(anonymousUser(), createAnonymousRemoteUser());
  });
});
