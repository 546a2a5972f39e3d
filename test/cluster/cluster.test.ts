/**
 * Issue 14 acceptance (docs/cluster.md): three REAL registry nodes (three processes, three
 * folders) on one REAL PostgreSQL (a private cluster in a temp folder), behind a REAL HAProxy from
 * templates/haproxy.cfg, driven by the REAL npm and by HTTP/WebSocket clients. One cluster for the
 * whole file (starting three nodes costs more than every check together); the tests run in order
 * and the destructive ones (PostgreSQL restart, kill -9 of a node) come last.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { tryStartPostgres, type PostgresCluster } from '../harness/postgres';
import { PROJECT_ROOT, cleanEnv, createClientDir, writePackage, type RunningRegistry } from '../harness/registry';
import { haproxyBinary, startBalancer, startNodes, type Balancer } from '../harness/cluster';
import { ADMIN, READER, SocketClient, createUsers, postConfig, socketUrl, withDashboard, type SocketMessage } from '../dashboard/helpers';
import { getBytes, getJson, publishRaw, tarballUrl } from '../storage/lib/packages';

const CONFIG_CLI = join(PROJECT_ROOT, 'build', 'scripts', 'config-cli.js');

let pg: PostgresCluster | null = null;
let skipReason: string | null = null;
let nodes: RunningRegistry[] = [];
let balancer: Balancer | null = null;
let admin = '';
let reader = '';

function configHex(node: RunningRegistry): string {
  return readFileSync(node.lockbPath).subarray(4, 17).toString('hex');
}

async function whoami(url: string, token: string): Promise<{ status: number; user: unknown }> {
  const response = await fetch(`${url}/-/whoami`, { headers: { authorization: `Bearer ${token}` } });
  const body = (await response.json().catch(() => ({}))) as { username?: unknown };
  return { status: response.status, user: body.username };
}

/** A refused token: whoami names nobody and a route that needs a user answers 401. */
async function refused(url: string, token: string): Promise<boolean> {
  const who = await whoami(url, token);
  const tokens = await fetch(`${url}/-/npm/v1/tokens`, { headers: { authorization: `Bearer ${token}` } });
  await tokens.arrayBuffer();
  return who.user === undefined && tokens.status === 401;
}

async function readyOf(url: string): Promise<{ status: number; body: { ready?: boolean; failing?: string[]; checks?: Record<string, string> } }> {
  const response = await fetch(`${url}/-/ready`);
  return { status: response.status, body: (await response.json().catch(() => ({}))) as { ready?: boolean; failing?: string[]; checks?: Record<string, string> } };
}

/** Polls `probe` every 100 ms until it returns true, at most `timeoutMs`. */
async function eventually(what: string, timeoutMs: number, probe: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolveWait) => setTimeout(resolveWait, 100));
  }
}

function versionsOf(json: Record<string, unknown>): string[] {
  return Object.keys((json.versions ?? {}) as Record<string, unknown>);
}

describe('14 several registry nodes on one PostgreSQL behind HAProxy', () => {
  before(async () => {
    if (haproxyBinary() === null) {
      skipReason = 'haproxy is not installed (bash scripts/setup.sh --with-test-tools)';
      return;
    }
    const started = await tryStartPostgres();
    if (!started.ok) {
      skipReason = started.reason;
      return;
    }
    pg = started.cluster;
    const url = await pg.createDatabase('cluster14');
    nodes = await startNodes(url, 3, { editConfig: withDashboard });
    balancer = await startBalancer(nodes);
    // users made through node A exist on every node
    ({ admin, reader } = await createUsers(nodes[0]));
  });

  after(async () => {
    await balancer?.stop();
    await Promise.all(nodes.map((node) => node.stop()));
    await pg?.destroy();
  });

  test('14.c0 every node verifies every other node\'s tokens and serves the same signing keys', async (t) => {
    if (skipReason) return t.skip(skipReason);
    for (const node of nodes) {
      assert.deepEqual(await whoami(node.url, admin), { status: 200, user: ADMIN.name }, node.url);
      assert.deepEqual(await whoami(node.url, reader), { status: 200, user: READER.name }, node.url);
    }
    const keys = await Promise.all(nodes.map(async (node) => (await getJson(`${node.url}/-/npm/v1/keys`)).json));
    assert.ok(((keys[0].keys ?? []) as unknown[]).length > 0);
    assert.deepEqual(keys[1], keys[0]);
    assert.deepEqual(keys[2], keys[0]);
    const jwks = await Promise.all(nodes.map(async (node) => (await getJson(`${node.url}/_auth/.well-known/jwks.json`)).json));
    assert.deepEqual(jwks[1], jwks[0]);
    assert.deepEqual(jwks[2], jwks[0]);
  });

  test('14.c1 npm publish through node A, npm install through node B right after: present and byte-identical', async (t) => {
    if (skipReason) return t.skip(skipReason);
    const [a, b] = nodes;
    const publisher = createClientDir(a, { token: admin });
    const dir = writePackage(publisher.dir, { name: '@mycompany/across-nodes', version: '1.0.0', files: { 'index.js': 'module.exports = "published on A";\n' } });
    const published = await publisher.npm(['publish'], { cwd: dir });
    assert.equal(published.code, 0, published.stderr);
    const installer = createClientDir(b, { token: reader });
    const installed = await installer.npm(['install', '@mycompany/across-nodes@1.0.0', '--no-package-lock']);
    assert.equal(installed.code, 0, installed.stderr);
    assert.equal(readFileSync(join(installer.dir, 'node_modules', '@mycompany', 'across-nodes', 'index.js'), 'utf8'), 'module.exports = "published on A";\n');
    const fromA = await getBytes(tarballUrl(a.url, '@mycompany/across-nodes', '1.0.0'));
    const fromB = await getBytes(tarballUrl(b.url, '@mycompany/across-nodes', '1.0.0'));
    assert.equal(fromA.status, 200);
    assert.equal(fromB.status, 200);
    assert.ok(fromA.bytes.equals(fromB.bytes), 'node B serves the bytes node A stored');
  });

  test('14.c2 30 concurrent publishes over the 3 nodes all land; one version on two nodes at once: one 201, one 409', async (t) => {
    if (skipReason) return t.skip(skipReason);
    const name = '@mycompany/concurrent-cluster';
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) => publishRaw(nodes[i % 3].url, admin, name, `1.0.${i}`)),
    );
    assert.deepEqual(results.map((result) => result.status), Array(30).fill(201), results.map((result) => result.text).join('\n'));
    for (const node of nodes) {
      const { status, json } = await getJson(`${node.url}/${encodeURIComponent(name)}`);
      assert.equal(status, 200);
      assert.equal(versionsOf(json).length, 30, `${node.url} sees all 30 versions`);
    }
    const race = await Promise.all([publishRaw(nodes[0].url, admin, name, '2.0.0'), publishRaw(nodes[1].url, admin, name, '2.0.0')]);
    assert.deepEqual(race.map((result) => result.status).sort(), [201, 409], race.map((result) => result.text).join('\n'));
    const through = await publishRaw(balancer!.url, admin, name, '2.0.1');
    assert.equal(through.status, 201, through.text);
  });

  test('14.c3 a config toggle via A\'s dashboard API, B\'s CLI on its own file and C\'s WebSocket reaches every node\'s WebSocket clients', async (t) => {
    if (skipReason) return t.skip(skipReason);
    const clients = await Promise.all(nodes.map((node) => SocketClient.open(socketUrl(node))));
    try {
      for (const client of clients) await client.next((m) => m.type === 'config');
      const debugIs = (value: boolean) => (m: SocketMessage) => m.type === 'config' && (m.flags as Record<string, boolean>).DEBUG === value;
      const start = (clients[0].messages[0].flags as Record<string, boolean>).DEBUG;

      const api = await postConfig(nodes[0], { op: 'toggleFeature', flag: 'DEBUG' }, admin);
      assert.equal(api.status, 200, api.text);
      for (const client of clients) await client.next(debugIs(!start), 10_000, 'the API toggle on every node');

      const cli = spawnSync(process.execPath, [CONFIG_CLI, '--file', nodes[1].lockbPath, 'toggle', 'DEBUG'], { encoding: 'utf8', env: cleanEnv(), timeout: 30_000 });
      assert.equal(cli.status, 0, cli.stderr);
      for (const client of clients) await client.next(debugIs(start), 10_000, 'the CLI toggle on every node');

      clients[2].send({ type: 'auth', token: admin });
      await clients[2].next((m) => m.type === 'auth' && m.ok === true);
      clients[2].send({ type: 'command', line: 'toggle DEBUG', id: 'ws' });
      for (const client of clients) await client.next(debugIs(!start), 10_000, 'the WebSocket toggle on every node');
      const output = await clients[2].next((m) => m.type === 'output' && m.id === 'ws');
      assert.equal(output.ok, true, String(output.text));

      // every node's registry.lockb mirror holds the same 13 bytes (the CLI and the terminal work on any node)
      await eventually('the same config bytes in every mirror', 5000, async () => new Set(nodes.map(configHex)).size === 1);
    } finally {
      await Promise.all(clients.map((client) => client.close()));
    }
  });

  test('14.c4 npm logout and npm token revoke on one node: the token is refused on every node at the next request', async (t) => {
    if (skipReason) return t.skip(skipReason);
    const [a, b, c] = nodes;
    // a login session made on C, logged out through A
    const login = await fetch(`${c.url}/-/user/org.couchdb.user:${READER.name}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ _id: `org.couchdb.user:${READER.name}`, name: READER.name, password: READER.password, type: 'user', roles: [], date: new Date().toISOString() }),
    });
    const loginText = await login.text();
    assert.equal(login.status, 201, `${loginText}\n${c.logs().slice(-2500)}`);
    const token = (JSON.parse(loginText) as { token: string }).token;
    assert.equal(typeof token, 'string');
    for (const node of nodes) assert.deepEqual(await whoami(node.url, token), { status: 200, user: READER.name });
    const onA = createClientDir(a, { token });
    // from another folder: npm logs out of the user config, not of a project .npmrc
    const logout = await onA.npm(['logout'], { cwd: mkdtempSync(join(tmpdir(), 'registry-logout-')) });
    assert.equal(logout.code, 0, logout.stderr);
    for (const node of [b, c, a]) assert.equal(await refused(node.url, token), true, `${node.url} refuses the logged-out token`);

    // a generated token created on B, revoked with npm token revoke on C
    const created = await fetch(`${b.url}/-/npm/v1/tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${reader}` },
      body: JSON.stringify({ password: READER.password, readonly: false, cidr_whitelist: [] }),
    });
    assert.equal(created.status, 201, await created.clone().text());
    const generated = (await created.json()) as { token: string; key: string };
    for (const node of nodes) assert.equal((await whoami(node.url, generated.token)).status, 200);
    const onC = createClientDir(c, { token: reader });
    const listed = await onC.npm(['token', 'list', '--json']);
    assert.equal(listed.code, 0, listed.stderr);
    assert.ok(listed.stdout.includes(generated.key), 'node C lists the token created on node B');
    const revoked = await onC.npm(['token', 'revoke', generated.key], { cwd: mkdtempSync(join(tmpdir(), 'registry-revoke-')) });
    assert.equal(revoked.code, 0, revoked.stderr);
    for (const node of [a, b, c]) assert.equal(await refused(node.url, generated.token), true, `${node.url} refuses the revoked token`);
    // the caller's own token still works everywhere
    for (const node of nodes) assert.equal((await whoami(node.url, reader)).status, 200);
  });

  test('14.c6 restart PostgreSQL: nodes report it on /-/ready, reconnect, nothing acknowledged lost', async (t) => {
    if (skipReason || pg === null) return t.skip(skipReason ?? 'no PostgreSQL');
    const name = '@mycompany/through-restart';
    const acknowledged: string[] = [];
    for (let i = 0; i < 5; i++) {
      const result = await publishRaw(balancer!.url, admin, name, `1.0.${i}`);
      assert.equal(result.status, 201, result.text);
      acknowledged.push(`1.0.${i}`);
    }
    await pg.stop();
    // a node that lost its database says so: the balancer drops it
    await eventually('node A not ready without its database', 10_000, async () => {
      const ready = await readyOf(nodes[0].url);
      // /-/ready names the failing checks (docs/operations.md): the database among them
      return ready.status === 503 && (ready.body.failing ?? []).includes('database');
    });
    await pg.restart();
    for (const node of nodes) {
      await eventually(`${node.url} ready again`, 20_000, async () => (await readyOf(node.url)).status === 200);
    }
    for (let i = 5; i < 10; i++) {
      const result = await publishRaw(balancer!.url, admin, name, `1.0.${i}`);
      assert.equal(result.status, 201, result.text);
      acknowledged.push(`1.0.${i}`);
    }
    for (const node of nodes) {
      const { json } = await getJson(`${node.url}/${encodeURIComponent(name)}`);
      assert.deepEqual(versionsOf(json).sort(), [...acknowledged].sort(), node.url);
    }
    // LISTEN re-established: a config change still reaches every node
    const clients = await Promise.all(nodes.map((node) => SocketClient.open(socketUrl(node))));
    try {
      const first = await clients[0].next((m) => m.type === 'config');
      for (const client of clients.slice(1)) await client.next((m) => m.type === 'config');
      const before = (first.flags as Record<string, boolean>).DEBUG;
      const api = await postConfig(nodes[1], { op: 'toggleFeature', flag: 'DEBUG' }, admin);
      assert.equal(api.status, 200, api.text);
      for (const client of clients) await client.next((m) => m.type === 'config' && (m.flags as Record<string, boolean>).DEBUG === !before, 10_000, 'a change after the restart');
    } finally {
      await Promise.all(clients.map((client) => client.close()));
    }
  });

  test('14.c5 kill -9 one node during a stream of publishes through the balancer: no acknowledged publish lost, the others keep serving', async (t) => {
    if (skipReason) return t.skip(skipReason);
    const name = '@mycompany/kill-stream';
    const acknowledged: string[] = [];
    let killed = false;
    const victim = nodes[2];
    const worker = async (lane: number): Promise<void> => {
      for (let i = 0; i < 12; i++) {
        const version = `${lane}.0.${i}`;
        const result = await publishRaw(balancer!.url, admin, name, version).catch(() => ({ status: 0, text: 'connection failed' }));
        if (result.status === 201) acknowledged.push(version);
        if (!killed && acknowledged.length >= 6) {
          killed = true;
          victim.process.kill('SIGKILL');
        }
      }
    };
    await Promise.all([worker(1), worker(2), worker(3)]);
    assert.ok(killed, 'the node was killed during the stream');
    assert.ok(acknowledged.length >= 24, `most publishes were acknowledged (${acknowledged.length} of 36)`);
    for (const node of nodes.slice(0, 2)) {
      const { status, json } = await getJson(`${node.url}/${encodeURIComponent(name)}`);
      assert.equal(status, 200);
      const present = new Set(versionsOf(json));
      for (const version of acknowledged) assert.ok(present.has(version), `${version} was acknowledged and is on ${node.url}`);
      const tarball = await getBytes(tarballUrl(node.url, name, acknowledged[acknowledged.length - 1]));
      assert.equal(tarball.status, 200);
    }
    // the balancer keeps serving without the dead node
    const after = await publishRaw(balancer!.url, admin, name, '9.9.9');
    assert.equal(after.status, 201, after.text);
    assert.equal((await getJson(`${balancer!.url}/${encodeURIComponent(name)}`)).status, 200);
  });
});
