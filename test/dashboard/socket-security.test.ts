/**
 * Token restrictions on `/_dashboard/terminal` against a real registry (our auth plugin, real npm
 * for the revocations): the socket checks tokens through the same check as HTTP, with the real
 * peer address (Express's trust-proxy rule included), so no restriction can be walked around by
 * taking the WebSocket instead of `POST /_dashboard/api/config`.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SignJWT, decodeJwt, decodeProtectedHeader, importJWK, type JWK } from 'jose';
import { createClientDir, writePackage, type RunningRegistry } from '../harness/registry';
import { http } from '../auth/helpers';
import { ADMIN, READER, SocketClient, configHexOnDisk, createUsers, lockbBytes, postConfig, request, socketUrl, startDashboardRegistry } from './helpers';

function upgradeRequest(path: string, options: { origin?: string } = {}): string {
  return (
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: ${Buffer.from('0123456789abcdef').toString('base64')}\r\nSec-WebSocket-Version: 13\r\n` +
    `${options.origin ? `Origin: ${options.origin}\r\n` : ''}\r\n`
  );
}

/** Sends an upgrade request as written (Node's clients refuse paths like `//[`) and collects the answer. */
async function rawUpgrade(port: number, path: string): Promise<{ socket: Socket; received: () => Buffer }> {
  const socket = connect({ host: '127.0.0.1', port });
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.on('error', () => undefined);
  await once(socket, 'connect');
  socket.write(upgradeRequest(path));
  return { socket, received: () => Buffer.concat(chunks) };
}

/** A proxy-supplied client address outside every range used below (TEST-NET-3). */
const REMOTE_ADDRESS = '203.0.113.7';

describe('dashboard WebSocket: token restrictions as on HTTP', { timeout: 180_000 }, () => {
  let registry: RunningRegistry;
  let admin: string;

  before(async () => {
    // `loopback`: requests from 127.0.0.1 may say who the client is (X-Forwarded-For), as behind a local reverse proxy
    registry = await startDashboardRegistry({
      editConfig: (config) => {
        config.server = { ...((config.server as object | undefined) ?? {}), trustProxy: 'loopback' };
      },
    });
    ({ admin } = await createUsers(registry));
  });
  after(async () => {
    await registry?.stop();
  });

  const createToken = async (options: Record<string, unknown>): Promise<{ token: string; key: string }> => {
    const created = await http(registry, 'POST', '/-/npm/v1/tokens', { token: admin, body: { password: ADMIN.password, ...options } });
    assert.equal(created.status, 201, created.text);
    return { token: created.body.token as string, key: created.body.key as string };
  };

  /** Connects, authenticates, and returns the client with the answer to `auth`. */
  const socketWith = async (token: string, headers?: Record<string, string>) => {
    const client = await SocketClient.open(socketUrl(registry), headers ? { headers } : {});
    await client.next((m) => m.type === 'history');
    client.send({ type: 'auth', token });
    const auth = await client.next((m) => m.type === 'auth', 5000, 'auth answer');
    return { client, auth };
  };

  const command = async (client: SocketClient, line: string) => {
    const id = randomUUID();
    client.send({ type: 'command', line, id });
    return client.next((m) => m.type === 'output' && m.id === id, 5000, `answer to ${line}`);
  };

  test('11.2 WebSocket bypass: a read-only token and a CIDR-restricted token from another address get no admin writes on the socket', async () => {
    const before = lockbBytes(registry);
    const readonly = await createToken({ packages_and_scopes_permission: 'read-only' });
    const elsewhere = await createToken({ cidr_whitelist: ['10.0.0.0/8'] });

    // HTTP refuses both (the rule the socket must follow)
    assert.equal((await postConfig(registry, { op: 'toggleFeature', flag: 'DEBUG' }, readonly.token)).status, 403);
    assert.equal((await postConfig(registry, { op: 'toggleFeature', flag: 'DEBUG' }, elsewhere.token)).status, 403);

    // read-only: reads are fine (it is alice's, an admin), every write command is refused as read-only
    const ro = await socketWith(readonly.token);
    assert.deepEqual(ro.auth, { type: 'auth', ok: true, user: 'alice', admin: true });
    for (const line of ['toggle DEBUG', 'set 13 1', 'url http://attacker.example']) {
      const answer = await command(ro.client, line);
      assert.equal(answer.ok, false, `${line}: ${String(answer.text)}`);
      assert.equal(answer.code, 'read-only', line);
      assert.match(String(answer.text), /read-only/);
    }
    assert.equal((await command(ro.client, 'get')).ok, true, 'reads still work');
    await ro.client.close();

    // CIDR 10.0.0.0/8 used from 127.0.0.1: refused at auth, so writes are refused too
    const cidr = await socketWith(elsewhere.token);
    assert.equal(cidr.auth.ok, false);
    assert.equal(cidr.auth.code, 'cidr');
    assert.match(String(cidr.auth.error), /may not be used from 127\.0\.0\.1/);
    for (const line of ['toggle DEBUG', 'set 13 1', 'url http://attacker.example']) {
      assert.equal((await command(cidr.client, line)).ok, false, line);
    }
    await cidr.client.close();

    // a token bound to loopback, used by a client a trusted proxy says is elsewhere: the socket sees the same address HTTP does
    const loopbackOnly = await createToken({ cidr_whitelist: ['127.0.0.0/8'] });
    const forwarded = { 'x-forwarded-for': REMOTE_ADDRESS };
    assert.equal((await request(registry, '/-/whoami', { token: loopbackOnly.token, headers: forwarded })).status, 403);
    const proxied = await socketWith(loopbackOnly.token, forwarded);
    assert.equal(proxied.auth.ok, false);
    assert.equal(proxied.auth.code, 'cidr');
    assert.equal((await command(proxied.client, 'toggle DEBUG')).ok, false);
    await proxied.client.close();

    assert.deepEqual(lockbBytes(registry), before, 'registry.lockb unchanged');
  });

  test('a revoked token stops reading package events on an open socket (the socket is told, as an auth answer)', async () => {
    const reader = await http(registry, 'POST', '/_auth/token', { body: { username: READER.name, password: READER.password } });
    const token = reader.body.token as string;
    const { client, auth } = await socketWith(token);
    assert.equal(auth.ok, true);
    const publisher = createClientDir(registry, { token: admin });
    const publish = async (name: string): Promise<void> => {
      const out = await publisher.npm(['publish'], { cwd: writePackage(publisher.dir, { name, version: '1.0.0' }) });
      assert.equal(out.code, 0, out.stderr);
    };
    await publish('secret-before-revoke');
    await client.next((m) => m.type === 'event' && m.name === 'secret-before-revoke', 10_000, 'event while the token holds');

    assert.equal((await http(registry, 'DELETE', `/-/user/token/${token}`, { token })).status, 200, 'npm logout');
    await publish('secret-after-revoke');
    await publish('open-after-revoke');
    const told = await client.next((m) => m.type === 'auth', 10_000, 'auth answer after the revocation');
    assert.deepEqual({ ok: told.ok, code: told.code }, { ok: false, code: 'revoked' });
    await client.next((m) => m.type === 'event' && m.name === 'open-after-revoke', 10_000, 'public events still arrive');
    assert.ok(!client.messages.some((m) => m.name === 'secret-after-revoke'), 'no event about a package only signed-in users may read');
    await client.close();
  });

  test('13.3 a package-limited token hears only about its packages on the socket, as HTTP lets it read only those', async () => {
    const limited = await createToken({ packages: ['secret-granted'] });
    const { client, auth } = await socketWith(limited.token);
    assert.deepEqual(auth, { type: 'auth', ok: true, user: 'alice', admin: true });
    const publisher = createClientDir(registry, { token: admin });
    for (const name of ['secret-other', 'secret-granted']) {
      const out = await publisher.npm(['publish'], { cwd: writePackage(publisher.dir, { name, version: '1.0.0' }) });
      assert.equal(out.code, 0, out.stderr);
    }
    await client.next((m) => m.type === 'event' && m.name === 'secret-granted', 10_000, 'the granted package');
    assert.ok(!client.messages.some((m) => m.name === 'secret-other'), 'no event about another package');
    assert.ok(!client.messages.some((m) => m.type === 'auth' && m.ok === false), 'still signed in');
    // the same on HTTP
    assert.equal((await request(registry, '/secret-granted', { token: limited.token })).status, 200);
    assert.equal((await request(registry, '/secret-other', { token: limited.token })).status, 403);
    const write = await command(client, 'toggle DEBUG');
    assert.deepEqual({ ok: write.ok, code: write.code }, { ok: false, code: 'package' });
    await client.close();
  });

  test('11 staying up: an upgrade request whose path is not a URL (GET //[ …) is answered, the process keeps running', async () => {
    const { socket, received } = await rawUpgrade(registry.port, '//[');
    await once(socket, 'close');
    assert.match(received().toString('latin1'), /^HTTP\/1\.1 404 /);
    assert.equal(registry.process.exitCode, null, 'the registry process is running');
    assert.equal((await fetch(`${registry.url}/-/ping`)).status, 200);
  });

  test('11 staying up: clients resetting the connection while an upgrade is refused or accepted do not end the process', async () => {
    const requests = [
      '/_dashboard/terminal?token=x', // refused: token in the URL
      '/no-such-endpoint', // refused: not ours
      '/_dashboard/terminal', // refused: foreign Origin
    ];
    for (let i = 0; i < 60; i++) {
      const socket = connect({ host: '127.0.0.1', port: registry.port });
      socket.on('error', () => undefined);
      await once(socket, 'connect');
      socket.write(upgradeRequest(requests[i % requests.length], { origin: 'http://evil.example' }));
      // RST right after the request: the server answers into a connection that is gone
      await new Promise((resolve) => setImmediate(resolve));
      socket.resetAndDestroy();
    }
    const accepted = await SocketClient.open(socketUrl(registry));
    accepted.ws.terminate();
    assert.equal(registry.process.exitCode, null, 'the registry process is running');
    assert.equal((await fetch(`${registry.url}/-/ping`)).status, 200);
    const client = await SocketClient.open(socketUrl(registry));
    client.send({ type: 'ping', id: 1 });
    assert.deepEqual(await client.next((m) => m.type === 'pong'), { type: 'pong', id: 1 });
    await client.close();
  });

  test('issue 11 acceptance: every token restriction holds identically on HTTP and on the WebSocket (one table, both channels)', async () => {
    const npm = createClientDir(registry, { token: admin });

    /** A token of this registry issued two hours ago (signed with its own key from keys/): no waiting for an expiry. */
    const expiredToken = async (): Promise<string> => {
      const header = decodeProtectedHeader(admin);
      const claims = decodeJwt(admin);
      const file = header.alg === 'EdDSA' ? 'ed25519.private.jwk.json' : 'rsa-2048.private.jwk.json';
      const jwk = JSON.parse(readFileSync(join(registry.dir, 'keys', file), 'utf8')) as JWK;
      const key = await importJWK(jwk, header.alg as string);
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({ groups: claims.groups })
        .setProtectedHeader({ alg: header.alg as string, kid: header.kid as string, typ: 'JWT' })
        .setSubject(claims.sub as string)
        .setIssuer(claims.iss as string)
        .setAudience(claims.aud as string)
        .setIssuedAt(now - 7200)
        .setExpirationTime(now - 3600)
        .setJti(randomUUID().replaceAll('-', ''))
        .sign(key);
    };

    interface Row {
      name: string;
      token: () => Promise<string>;
      /** what the client's connection looks like to the registry */
      headers?: Record<string, string>;
      read: boolean;
      write: boolean;
      /** the socket's code when refused (auth for reads, the command for writes) */
      code?: string;
    }
    const table: Row[] = [
      { name: 'a valid admin token (control)', token: async () => admin, read: true, write: true },
      {
        name: 'revoked by npm logout',
        token: async () => {
          const session = await http(registry, 'POST', '/_auth/token', { body: { username: ADMIN.name, password: ADMIN.password } });
          const token = session.body.token as string;
          const client = createClientDir(registry, { token });
          const out = await client.npm(['logout']);
          assert.equal(out.code, 0, out.stderr);
          return token;
        },
        read: false,
        write: false,
        code: 'revoked',
      },
      {
        name: 'revoked by npm token revoke',
        token: async () => {
          const { token, key } = await createToken({});
          const out = await npm.npm(['token', 'revoke', key]);
          assert.equal(out.code, 0, out.stderr);
          return token;
        },
        read: false,
        write: false,
        code: 'revoked',
      },
      { name: 'expired', token: expiredToken, read: false, write: false, code: 'expired' },
      { name: 'read-only', token: async () => (await createToken({ packages_and_scopes_permission: 'read-only' })).token, read: true, write: false, code: 'read-only' },
      { name: 'CIDR 10.0.0.0/8, used from 127.0.0.1', token: async () => (await createToken({ cidr_whitelist: ['10.0.0.0/8'] })).token, read: false, write: false, code: 'cidr' },
      {
        name: `CIDR 127.0.0.0/8, used from ${REMOTE_ADDRESS} behind a trusted proxy`,
        token: async () => (await createToken({ cidr_whitelist: ['127.0.0.0/8'] })).token,
        headers: { 'x-forwarded-for': REMOTE_ADDRESS },
        read: false,
        write: false,
        code: 'cidr',
      },
      // granular tokens (issue 13): the config API is about no package, so a package-limited token may not write it — on either channel
      { name: 'limited to package granted-pkg (npm token create --packages)', token: async () => (await createToken({ packages: ['granted-pkg'] })).token, read: true, write: false, code: 'package' },
      { name: 'limited to scope @team (npm token create --scopes)', token: async () => (await createToken({ scopes: ['@team'] })).token, read: true, write: false, code: 'package' },
      {
        name: 'limited to a package and read-only',
        token: async () => (await createToken({ packages: ['granted-pkg'], packages_and_scopes_permission: 'read-only' })).token,
        read: true,
        write: false,
        code: 'package',
      },
    ];

    const baseline = configHexOnDisk(registry);
    for (const row of table) {
      const token = await row.token();

      // HTTP: a read (whoami) and an admin write (the config API)
      const who = await request(registry, '/-/whoami', { token, headers: row.headers });
      const httpRead = who.status === 200 && (who.body as { username?: string }).username === ADMIN.name;
      const post = await request(registry, '/_dashboard/api/config', {
        method: 'POST',
        token,
        headers: row.headers,
        body: JSON.stringify({ op: 'toggleFeature', flag: 'DEBUG' }),
      });
      const httpWrite = post.status === 200;
      if (httpWrite) assert.equal((await postConfig(registry, { op: 'toggleFeature', flag: 'DEBUG' }, admin)).status, 200, 'undo');
      else assert.ok(post.status === 401 || post.status === 403, `${row.name}: HTTP write answered ${post.status} ${post.text}`);
      assert.equal(configHexOnDisk(registry), baseline, `${row.name}: config after HTTP`);

      // WebSocket: `auth` (a read) and a write command
      const { client, auth } = await socketWith(token, row.headers);
      const wsRead = auth.ok === true && auth.user === ADMIN.name;
      const toggled = await command(client, 'toggle DEBUG');
      const wsWrite = toggled.ok === true;
      if (wsWrite) assert.equal((await command(client, 'toggle DEBUG')).ok, true, 'undo');
      assert.equal(configHexOnDisk(registry), baseline, `${row.name}: config after the socket`);
      if (!wsRead) assert.equal(auth.code, row.code, `${row.name}: auth code (${String(auth.error)})`);
      else if (!wsWrite) assert.equal(toggled.code, row.code, `${row.name}: command code (${String(toggled.text)})`);
      await client.close();

      assert.deepEqual({ read: httpRead, write: httpWrite }, { read: row.read, write: row.write }, `${row.name} over HTTP`);
      assert.deepEqual({ read: wsRead, write: wsWrite }, { read: row.read, write: row.write }, `${row.name} over the WebSocket`);
    }
  });
});
