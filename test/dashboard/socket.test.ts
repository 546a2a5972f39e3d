/**
 * `/_dashboard/terminal` against a real registry: the WebSocket works as the very first request
 * of a fresh server, carries every config change (API, socket command, CLI in another process)
 * and registry events, authenticates tokens like HTTP does, and survives malformed messages.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { dump, load } from 'js-yaml';
import WebSocket from 'ws';
import { NODE_BIN, PROJECT_ROOT, addUser, cleanEnv, createClientDir, run, writePackage, type RunningRegistry } from '../harness/registry';
import { ADMIN, SocketClient, configHexOnDisk, createUsers, postConfig, socketUrl, startDashboardRegistry, withDashboard } from './helpers';

const CONFIG_CLI = join(PROJECT_ROOT, 'build', 'scripts', 'config-cli.js');
const START = join(PROJECT_ROOT, 'build', 'scripts', 'start.js');

describe('dashboard WebSocket on a fresh server', () => {
  it('answers a WebSocket that is the first request the server receives', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dashboard-first-'));
    const config = load(readFileSync(join(PROJECT_ROOT, 'config.yaml'), 'utf8')) as Record<string, unknown>;
    Object.assign(config, { storage: './storage', plugins: join(PROJECT_ROOT, 'plugins'), registry_lockb: './registry.lockb' });
    withDashboard(config);
    writeFileSync(join(dir, 'config.yaml'), dump(config));
    const child = spawn(NODE_BIN, [START, '-c', join(dir, 'config.yaml'), '--listen', '127.0.0.1:0'], {
      cwd: dir,
      env: cleanEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    try {
      // No /-/ping, no HTTP at all: connect as soon as the socket endpoint is announced.
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no terminal endpoint line within 30 s:\n${output}`)), 30_000);
        child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
          output += chunk;
          const match = /terminal endpoint (ws:\/\/127\.0\.0\.1:\d+\/_dashboard\/terminal)/.exec(output);
          if (match) {
            clearTimeout(timer);
            resolve(match[1]);
          }
        });
        child.once('exit', (code) => reject(new Error(`registry exited with ${code}:\n${output}`)));
      });
      const client = await SocketClient.open(url);
      const first = await client.next((m) => m.type === 'config', 5000, 'config message');
      assert.equal(`${first.hex}${first.check}`, readFileSync(join(dir, 'registry.lockb')).subarray(4, 17).toString('hex'));
      assert.match(output, /\[boot \+\s*[\d.]+ ms\] dashboard http:\/\/127\.0\.0\.1:\d+\/_dashboard/);
      await client.close();
    } finally {
      child.kill('SIGTERM');
      await new Promise((resolve) => (child.exitCode !== null ? resolve(undefined) : child.once('exit', resolve)));
    }
  });
});

describe('dashboard WebSocket protocol', () => {
  let registry: RunningRegistry;
  let admin: string;
  let reader: string;

  before(async () => {
    registry = await startDashboardRegistry();
    ({ admin, reader } = await createUsers(registry));
  });
  after(async () => {
    await registry?.stop();
  });

  it('sends config and history on connect and answers ping', async () => {
    const client = await SocketClient.open(socketUrl(registry));
    const config = await client.next((m) => m.type === 'config');
    assert.equal(`${config.hex}${config.check}`, configHexOnDisk(registry));
    assert.ok(config.issuer && config.env && config.registryUrl, 'the full GET shape');
    const history = await client.next((m) => m.type === 'history');
    assert.ok(Array.isArray(history.events));
    client.send({ type: 'ping', id: 7 });
    assert.deepEqual(await client.next((m) => m.type === 'pong'), { type: 'pong', id: 7 });
    await client.close();
  });

  it('answers malformed messages with an error and keeps the connection', async () => {
    const client = await SocketClient.open(socketUrl(registry));
    await client.next((m) => m.type === 'config');
    const bad: [string | Buffer, RegExp][] = [
      ['not json', /not valid JSON/],
      ['{"type":"launch"}', /type must be one of auth, command, ping/],
      ['{"type":"command"}', /line/],
      ['{"type":"command","line":42}', /line/],
      ['{"type":"command","line":"get","extra":1}', /unknown key "extra"/],
      ['{"type":"auth","token":""}', /token must not be empty/],
      ['[1,2,3]', /JSON object/],
      [Buffer.from([1, 2, 3]), /binary messages are not supported/],
      [JSON.stringify({ type: 'command', line: 'x'.repeat(5000) }), /too large|line/],
    ];
    for (const [payload, error] of bad) {
      client.ws.send(payload, { binary: Buffer.isBuffer(payload) });
      const answer = await client.next((m) => m.type === 'error', 5000, `error for ${String(payload).slice(0, 40)}`);
      assert.match(String(answer.error), error);
    }
    client.send({ type: 'command', line: 'get' });
    const output = await client.next((m) => m.type === 'output');
    assert.equal(output.ok, true);
    assert.match(String(output.text), /registryHash 0xceb6960a/);
    await client.close();
  });

  it('refuses a token in the URL and a foreign Origin', async () => {
    await assert.rejects(SocketClient.open(`${socketUrl(registry)}?token=${admin}`), /upgrade refused: 400/);
    await assert.rejects(SocketClient.open(socketUrl(registry), { origin: 'https://evil.example' }), /upgrade refused: 403/);
    const sameOrigin = await SocketClient.open(socketUrl(registry), { origin: registry.url });
    await sameOrigin.next((m) => m.type === 'config');
    await sameOrigin.close();
  });

  it('reads for everyone, writes only after an admin auth', async () => {
    const client = await SocketClient.open(socketUrl(registry));
    await client.next((m) => m.type === 'config');
    const before = configHexOnDisk(registry);

    client.send({ type: 'command', line: 'toggle DEBUG', id: 'a' });
    const anonymous = await client.next((m) => m.type === 'output' && m.id === 'a');
    assert.equal(anonymous.ok, false);
    assert.match(String(anonymous.text), /needs an admin token/);

    client.send({ type: 'command', line: 'repair', id: 'b' });
    assert.match(String((await client.next((m) => m.type === 'output' && m.id === 'b')).text), /only in the CLI/);

    client.send({ type: 'command', line: 'set 13', id: 'c' });
    const syntax = await client.next((m) => m.type === 'output' && m.id === 'c');
    assert.equal(syntax.ok, false);

    client.send({ type: 'auth', token: 'forged.token.value' });
    const forged = await client.next((m) => m.type === 'auth');
    assert.equal(forged.ok, false);

    client.send({ type: 'auth', token: reader });
    assert.deepEqual(await client.next((m) => m.type === 'auth'), { type: 'auth', ok: true, user: 'bob', admin: false });
    client.send({ type: 'command', line: 'toggle DEBUG', id: 'd' });
    const notAdmin = await client.next((m) => m.type === 'output' && m.id === 'd');
    assert.equal(notAdmin.ok, false);
    assert.match(String(notAdmin.text), /bob is not one/);
    assert.equal(configHexOnDisk(registry), before);

    client.send({ type: 'auth', token: admin });
    assert.deepEqual(await client.next((m) => m.type === 'auth'), { type: 'auth', ok: true, user: 'alice', admin: true });
    client.send({ type: 'command', line: 'toggle DEBUG', id: 'e' });
    const config = await client.next((m) => m.type === 'config', 5000, 'config after toggle');
    assert.equal((config.flags as Record<string, boolean>).DEBUG, true);
    const event = await client.next((m) => m.type === 'event' && m.kind === 'config', 5000, 'config event');
    assert.equal(event.user, 'alice');
    assert.match(String(event.detail), /featureFlags 0x3 → 0x7 \(DEBUG on\)/);
    const output = await client.next((m) => m.type === 'output' && m.id === 'e');
    assert.equal(output.ok, true, String(output.text));
    assert.equal(configHexOnDisk(registry).slice(10, 12), '07');

    client.send({ type: 'command', line: 'toggle DEBUG', id: 'f' });
    assert.equal((await client.next((m) => m.type === 'output' && m.id === 'f')).ok, true);
    await client.close();
  });

  it('broadcasts changes made through the API and by the CLI in another process', async () => {
    const watcher = await SocketClient.open(socketUrl(registry));
    await watcher.next((m) => m.type === 'config');

    const viaApi = await postConfig(registry, { op: 'setByte', offset: 14, value: 30 }, admin);
    assert.equal(viaApi.status, 200);
    const apiConfig = await watcher.next((m) => m.type === 'config', 5000, 'config after API write');
    assert.equal((apiConfig.fields as { rows: number }).rows, 30);

    const cli = await run(NODE_BIN, [CONFIG_CLI, '--file', registry.lockbPath, 'set', '14', '24'], { env: cleanEnv() });
    assert.equal(cli.code, 0, `${cli.stdout}\n${cli.stderr}`);
    const cliConfig = await watcher.next((m) => m.type === 'config' && (m.fields as { rows: number }).rows === 24, 5000, 'config after CLI write');
    assert.equal(`${cliConfig.hex}${cliConfig.check}`, configHexOnDisk(registry));
    const cliEvent = await watcher.next((m) => m.type === 'event' && m.kind === 'config', 5000, 'config event after CLI write');
    assert.equal(cliEvent.user, undefined, 'a change from another process is not attributed to anyone here');
    assert.match(String(cliEvent.detail), /rows 30 → 24/);
    await watcher.close();
  });

  it('forwards publish events only to sockets allowed to read the package', async () => {
    const anonymous = await SocketClient.open(socketUrl(registry));
    await anonymous.next((m) => m.type === 'config');
    const signedIn = await SocketClient.open(socketUrl(registry));
    await signedIn.next((m) => m.type === 'config');
    signedIn.send({ type: 'auth', token: reader });
    await signedIn.next((m) => m.type === 'auth');

    const client = createClientDir(registry, { token: admin });
    for (const spec of [
      { name: 'secret-socket', version: '1.0.0' },
      { name: 'open-socket', version: '1.0.0' },
    ]) {
      const published = await client.npm(['publish'], { cwd: writePackage(client.dir, spec) });
      assert.equal(published.code, 0, published.stderr);
    }
    const secret = await signedIn.next((m) => m.type === 'event' && m.kind === 'publish' && m.name === 'secret-socket', 10_000, 'secret publish event');
    assert.equal(secret.version, '1.0.0');
    await signedIn.next((m) => m.type === 'event' && m.kind === 'publish' && m.name === 'open-socket', 10_000, 'open publish event');
    const open = await anonymous.next((m) => m.type === 'event' && m.kind === 'publish', 10_000, 'publish event for anonymous');
    assert.equal(open.name, 'open-socket', 'the first publish event an anonymous socket sees is the public package');
    assert.ok(!anonymous.messages.some((m) => m.name === 'secret-socket'), 'no event about a package it may not read');

    const unpublished = await client.npm(['unpublish', 'open-socket@1.0.0', '--force']);
    assert.equal(unpublished.code, 0, unpublished.stderr);
    const gone = await anonymous.next((m) => m.type === 'event' && m.kind === 'unpublish', 10_000, 'unpublish event');
    assert.equal(gone.name, 'open-socket');

    // a socket opened now gets both in its history only when allowed
    const late = await SocketClient.open(socketUrl(registry));
    const history = await late.next((m) => m.type === 'history');
    const names = (history.events as { name?: string }[]).map((e) => e.name);
    assert.ok(names.includes('open-socket'));
    assert.ok(!names.includes('secret-socket'));
    await Promise.all([anonymous.close(), signedIn.close(), late.close()]);
  });

  it('re-checks its token before a write: a URL change (new issuer) ends the admin rights of an open socket', async () => {
    const client = await SocketClient.open(socketUrl(registry));
    await client.next((m) => m.type === 'config');
    client.send({ type: 'auth', token: admin });
    assert.equal((await client.next((m) => m.type === 'auth')).admin, true);

    const moved = await postConfig(registry, { op: 'setRegistryUrl', url: 'https://registry.mycompany.com' }, admin);
    assert.equal(moved.status, 200, moved.text);
    const before = configHexOnDisk(registry);
    client.send({ type: 'command', line: 'toggle DEBUG', id: 'stale' });
    const refused = await client.next((m) => m.type === 'output' && m.id === 'stale');
    assert.equal(refused.ok, false);
    assert.match(String(refused.text), /no longer valid/);
    assert.equal(configHexOnDisk(registry), before);

    // undo with a token of the new issuer, then log in again for the tests that follow
    const fresh = await addUser(registry, ADMIN.name, ADMIN.password);
    assert.equal((await postConfig(registry, { op: 'setRegistryUrl', url: 'http://localhost:4873' }, fresh)).status, 200);
    ({ admin, reader } = await createUsers(registry));
    await client.close();
  });

  it('keeps answering after a client vanishes mid-conversation', async () => {
    const rude = new WebSocket(socketUrl(registry));
    await new Promise((resolve) => rude.once('open', resolve));
    rude.send(JSON.stringify({ type: 'command', line: 'packages' }));
    rude.terminate();
    const client = await SocketClient.open(socketUrl(registry));
    client.send({ type: 'command', line: 'env', id: 1 });
    const env = await client.next((m) => m.type === 'output' && m.id === 1);
    assert.match(String(env.text), /^BUN_CONFIG_VERSION=1$/m);
    await client.close();
  });
});
