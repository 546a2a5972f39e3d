/**
 * Issue 13 item 6 — the audit trail: every mutation records who (the authenticated user, never
 * what the body claims), when, from which address and with which token (jti). Real registry, real
 * npm, real files: `audit.log` beside registry.lockb survives a restart and a torn last line is
 * dropped on open. Plus the file format's own guarantees (units, fast-check).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { AUDIT_CHECKPOINT_FILE, AuditLog, encodeAuditLine, type AuditRecord } from '../../plugins/registry-core/index';
import { addUser, cleanEnv, createClientDir, NODE_BIN, PROJECT_ROOT, writePackage, startRegistry, type RunningRegistry } from '../harness/registry';
import { publishBody, putPackage } from '../storage/lib/packages';
import { SocketClient, socketUrl } from './helpers';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const PASSWORD = 'correct-horse-battery';

function jtiOf(token: string): string {
  return (JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8')) as { jti: string }).jti;
}

async function audit(registry: RunningRegistry, token: string | null, query = ''): Promise<{ status: number; body: Json }> {
  const response = await fetch(`${registry.url}/_dashboard/api/audit${query}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  return { status: response.status, body: (await response.json()) as Json };
}

async function records(registry: RunningRegistry, token: string, query = ''): Promise<AuditRecord[]> {
  const { status, body } = await audit(registry, token, query);
  assert.equal(status, 200, JSON.stringify(body));
  return body.records as AuditRecord[];
}

function withSecretPackage(config: Record<string, unknown>): void {
  const packages = config.packages as Record<string, unknown>;
  config.packages = { 'audit-secret': { access: 'audit-admin', publish: 'audit-admin', unpublish: 'audit-admin' }, ...packages };
}

describe('13.6 audit trail (GET /_dashboard/api/audit)', () => {
  let registry: RunningRegistry;
  let admin: string;
  let bob: string;

  before(async () => {
    registry = await startRegistry({ editConfig: withSecretPackage });
    admin = await addUser(registry, 'audit-admin', PASSWORD); // the first user: an admin
    bob = await addUser(registry, 'audit-bob', PASSWORD);
  });
  after(async () => {
    await registry?.stop();
  });

  test('13.6 the audit API names the real publisher, address and token when the publish body claims another', async () => {
    const { body } = publishBody(registry.url, 'audit-pkg', '1.0.0');
    const forged = JSON.parse(body) as Json;
    forged.versions['1.0.0']._npmUser = { name: 'mallory', email: 'm@example.invalid' };
    forged.versions['1.0.0'].maintainers = [{ name: 'mallory' }];
    forged.maintainers = [{ name: 'mallory' }];
    const put = await putPackage(registry.url, bob, 'audit-pkg', JSON.stringify(forged));
    assert.equal(put.status, 201, put.text);

    const publish = (await records(registry, admin, '?package=audit-pkg')).find((record) => record.kind === 'publish');
    assert.ok(publish, 'a publish record');
    assert.equal(publish.name, 'audit-pkg');
    assert.equal(publish.version, '1.0.0');
    assert.equal(publish.actor, 'audit-bob', 'the authenticated user, not the body');
    assert.equal(publish.user, 'audit-bob');
    assert.equal(publish.address, '127.0.0.1');
    assert.equal(publish.tokenId, jtiOf(bob));
    assert.ok(Math.abs(Date.parse(publish.time) - Date.now()) < 60_000);
    const doc = (await (await fetch(`${registry.url}/audit-pkg`)).json()) as Json;
    assert.deepEqual(doc.versions['1.0.0']._npmUser, { name: 'audit-bob' }, '_npmUser is the authenticated user too');
  });

  test('13.6 every mutation is recorded with its actor: dist-tag, deprecate, owner change, token create/revoke, config, login, unpublish', async () => {
    const client = createClientDir(registry, { token: bob });
    const published = await client.npm(['publish'], { cwd: writePackage(client.dir, { name: 'audit-pkg', version: '1.1.0' }) });
    assert.equal(published.code, 0, published.stderr);
    for (const args of [
      ['dist-tag', 'add', 'audit-pkg@1.0.0', 'stable'],
      ['deprecate', 'audit-pkg@1.0.0', 'use 1.1'],
      ['owner', 'add', 'audit-admin', 'audit-pkg'],
      ['unpublish', 'audit-pkg@1.1.0'],
    ]) {
      const result = await client.npm(args);
      assert.equal(result.code, 0, `${args.join(' ')}: ${result.stderr}`);
    }
    const created = await fetch(`${registry.url}/-/npm/v1/tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${bob}`, 'content-type': 'application/json' },
      body: JSON.stringify({ password: PASSWORD, readonly: true, cidr_whitelist: [] }),
    });
    assert.ok(created.ok, `${created.status} ${await created.clone().text()}`);
    const newToken = (await created.json()) as { key: string; token: string };
    const revoked = await fetch(`${registry.url}/-/npm/v1/tokens/token/${newToken.key}`, { method: 'DELETE', headers: { authorization: `Bearer ${bob}` } });
    assert.equal(revoked.status < 300, true, String(revoked.status));
    const config = await fetch(`${registry.url}/_dashboard/api/config`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
      body: JSON.stringify({ op: 'toggleFeature', flag: 'DEBUG' }),
    });
    assert.equal(config.status, 200, await config.text());
    await addUser(registry, 'audit-bob', PASSWORD); // a login

    const all = await records(registry, admin, '?limit=1000');
    const find = (kind: string, match: (record: AuditRecord) => boolean = () => true): AuditRecord => {
      const found = all.find((record) => record.kind === kind && match(record));
      assert.ok(found, `a ${kind} record in ${JSON.stringify(all, null, 1)}`);
      return found;
    };
    const bobsJti = jtiOf(bob);
    for (const record of [
      find('publish', (r) => r.version === '1.1.0'),
      find('dist-tag', (r) => r.detail === 'stable'),
      find('deprecate'),
      find('owner'),
      find('unpublish', (r) => r.version === '1.1.0'),
      find('token', (r) => r.detail === `created ${newToken.key}`),
      find('token', (r) => r.detail === `revoked ${newToken.key}`),
    ]) {
      assert.equal(record.actor, 'audit-bob', JSON.stringify(record));
      assert.equal(record.tokenId, bobsJti, JSON.stringify(record));
      assert.equal(record.address, '127.0.0.1');
    }
    const toggle = find('config');
    assert.equal(toggle.actor, 'audit-admin');
    assert.equal(toggle.tokenId, jtiOf(admin));
    assert.match(toggle.detail ?? '', /DEBUG/);
    const login = find('login', (r) => r.user === 'audit-bob');
    assert.equal(login.actor, 'audit-bob');
    assert.equal(login.address, '127.0.0.1');
    // newest first, sequence numbers strictly decreasing
    for (let i = 1; i < all.length; i++) assert.ok(all[i - 1].seq > all[i].seq);
  });

  test('13.6 admins see everything; a user sees their own records and packages they may access; anonymous gets 401', async () => {
    const secret = await putPackage(registry.url, admin, 'audit-secret', publishBody(registry.url, 'audit-secret', '1.0.0').body);
    assert.equal(secret.status, 201, secret.text);
    const adminView = await records(registry, admin, '?limit=1000');
    assert.ok(adminView.some((r) => r.name === 'audit-secret'));
    assert.ok(adminView.some((r) => r.kind === 'login' && r.user === 'audit-admin'));

    const bobView = await records(registry, bob, '?limit=1000');
    assert.ok(!bobView.some((r) => r.name === 'audit-secret'), 'no record of a package bob may not access');
    assert.ok(!bobView.some((r) => r.kind === 'login' && r.user === 'audit-admin'), "not the admin's logins");
    assert.ok(!bobView.some((r) => r.kind === 'config'), 'config changes are for admins');
    assert.ok(bobView.some((r) => r.kind === 'token' && r.actor === 'audit-bob'), 'his own token records');
    assert.ok(bobView.some((r) => r.name === 'audit-pkg'));

    const byUser = await records(registry, admin, '?user=audit-admin');
    assert.ok(byUser.length > 0 && byUser.every((r) => r.actor === 'audit-admin' || r.user === 'audit-admin'));
    assert.equal((await records(registry, admin, '?limit=2')).length, 2);

    assert.equal((await audit(registry, null)).status, 401);
    for (const query of ['?limit=0', '?limit=1001', '?limit=x', '?package=a&package=b', `?user=${'u'.repeat(101)}`]) {
      const { status, body } = await audit(registry, admin, query);
      assert.equal(status, 400, query);
      assert.equal(typeof body.error, 'string');
    }
  });

  test('13.6 the WebSocket event names the actor but carries no address or token id (those stay in the audit API); socket config changes are audited', async () => {
    const socket = await SocketClient.open(socketUrl(registry));
    try {
      socket.send({ type: 'auth', token: admin });
      const put = await putPackage(registry.url, bob, 'audit-socket', publishBody(registry.url, 'audit-socket', '1.0.0').body);
      assert.equal(put.status, 201, put.text);
      const event = await socket.next((m) => m.type === 'event' && m.kind === 'publish' && m.name === 'audit-socket', 10_000, 'the publish event');
      assert.equal(event.actor, 'audit-bob');
      assert.equal(event.address, undefined);
      assert.equal(event.tokenId, undefined);
      // a config change made on the socket is audited with the socket's user, address and token
      assert.ok(socket.messages.some((m) => m.type === 'auth' && m.ok === true), 'signed in on the socket');
      socket.send({ type: 'command', line: 'toggle DEBUG' });
      const output = await socket.next((m) => m.type === 'output', 10_000, 'the command output');
      assert.equal(output.ok, true, JSON.stringify(output));
    } finally {
      await socket.close();
    }
    const [record] = (await records(registry, admin, '?package=audit-socket')).filter((r) => r.kind === 'publish');
    assert.equal(record.address, '127.0.0.1');
    assert.equal(record.tokenId, jtiOf(bob));
    const [toggle] = (await records(registry, admin, '?user=audit-admin')).filter((r) => r.kind === 'config');
    assert.equal(toggle.actor, 'audit-admin');
    assert.equal(toggle.address, '127.0.0.1');
    assert.equal(toggle.tokenId, jtiOf(admin));
  });

  test('13.6 a config change by another process (the CLI on the file) is recorded without an actor, never as the last API user', async () => {
    // the last HTTP/socket change came from audit-admin; the CLI must not be attributed to them
    const cli = spawnSync(NODE_BIN, [join(PROJECT_ROOT, 'build', 'scripts', 'config-cli.js'), '--file', registry.lockbPath, 'toggle', 'PREMIUM_TYPES'], { encoding: 'utf8', env: cleanEnv(), timeout: 30_000 });
    assert.equal(cli.status, 0, cli.stderr);
    let record: AuditRecord | undefined;
    for (let i = 0; i < 100 && record === undefined; i++) {
      record = (await records(registry, admin, '?limit=20')).find((r) => r.kind === 'config' && /PREMIUM_TYPES/.test(r.detail ?? ''));
      if (record === undefined) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.ok(record, 'the watcher saw the change');
    assert.equal(record.actor, null);
    assert.equal(record.address, null);
    assert.equal(record.tokenId, null);
    assert.match(record.detail ?? '', /by another process/);
    const back = spawnSync(NODE_BIN, [join(PROJECT_ROOT, 'build', 'scripts', 'config-cli.js'), '--file', registry.lockbPath, 'toggle', 'PREMIUM_TYPES'], { encoding: 'utf8', env: cleanEnv(), timeout: 30_000 });
    assert.equal(back.status, 0, back.stderr);
  });

  test('13.6 property: any query string gets 200 or a 400 JSON error, never a 5xx', async () => {
    const part = fc.oneof(fc.constantFrom('package', 'user', 'limit', 'x', 'limit[]', 'package[a]'), fc.string({ maxLength: 12 }));
    const value = fc.oneof(fc.string({ maxLength: 300 }), fc.integer({ min: -5, max: 5000 }).map(String), fc.constantFrom('', '1e3', '0x10', ' 5', '%', '%zz'));
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(part, value), { maxLength: 4 }), async (pairs) => {
        const query = pairs.map(([key, raw]) => `${encodeURIComponent(key)}=${raw === '%' || raw === '%zz' ? raw : encodeURIComponent(raw)}`).join('&');
        const response = await fetch(`${registry.url}/_dashboard/api/audit?${query}`, { headers: { authorization: `Bearer ${admin}` } });
        assert.ok(response.status === 200 || response.status === 400, `${query}: ${response.status}`);
        const body = (await response.json()) as Json;
        if (response.status === 400) assert.equal(typeof body.error, 'string');
        else assert.ok(Array.isArray(body.records));
      }),
      { numRuns: 150 },
    );
  });

  test('13.6 records survive a restart and the hash chain continues', async () => {
    const beforeRestart = await records(registry, admin, '?limit=1000');
    registry = await registry.restart();
    const afterRestart = await records(registry, admin, '?limit=1000');
    assert.deepEqual(afterRestart.slice(-beforeRestart.length), beforeRestart);
    const put = await putPackage(registry.url, admin, 'audit-after', publishBody(registry.url, 'audit-after', '1.0.0').body);
    assert.equal(put.status, 201, put.text);
    const added = (await records(registry, admin, '?package=audit-after')).reverse();
    assert.equal(added[0].kind, 'publish');
    assert.equal(added[0].seq, beforeRestart[0].seq + 1, 'the sequence goes on where it stopped');
  });

  test('13.6 a torn last line is dropped on open, and recording goes on after it', async () => {
    const path = join(registry.dir, 'audit.log');
    const kept = await records(registry, admin, '?limit=1000');
    await registry.stop();
    const sizeBefore = readFileSync(path).length;
    appendFileSync(path, '{"seq":999,"time":"2026-'); // a write cut short by a crash
    registry = await registry.restart();
    assert.match(registry.logs(), /audit\.log: dropped a torn last line/);
    assert.deepEqual((await records(registry, admin, '?limit=1000')).slice(-kept.length), kept);
    const put = await putPackage(registry.url, admin, 'audit-torn', publishBody(registry.url, 'audit-torn', '1.0.0').body);
    assert.equal(put.status, 201, put.text);
    await registry.stop();
    const bytes = readFileSync(path);
    assert.ok(bytes.length > sizeBefore && bytes.at(-1) === 0x0a);
    const reopened = AuditLog.open(path);
    assert.equal(reopened.recovered, null, 'the file verifies end to end');
    assert.equal(reopened.query({ limit: 1 })[0].name, 'audit-torn');
    reopened.close();
    registry = await registry.restart();
  });
});

describe('13.6 audit.log format (units)', () => {
  const entry = (i: number): Omit<AuditRecord, 'seq'> => ({ time: new Date(1_700_000_000_000 + i).toISOString(), kind: 'publish', actor: `u${i}`, address: '127.0.0.1', tokenId: null, name: `p${i}` });

  function logWith(count: number): string {
    const path = join(mkdtempSync(join(tmpdir(), 'audit-')), 'audit.log');
    const log = AuditLog.open(path);
    for (let i = 0; i < count; i++) log.append(entry(i));
    log.close();
    return path;
  }

  test('13.6 damage before the last line refuses to open (not a torn write)', () => {
    const path = logWith(3);
    const lines = readFileSync(path, 'utf8').split('\n');
    lines[0] = lines[0].replace('"u0"', '"uX"');
    writeFileSync(path, lines.join('\n'));
    assert.throws(() => AuditLog.open(path), /line 1 is damaged \(hash mismatch\)/);
  });

  test('13.6 a complete last line with a bad hash (or a reordered chain) is dropped like a torn one', () => {
    const path = logWith(3);
    const text = readFileSync(path, 'utf8');
    const lines = text.trimEnd().split('\n');
    writeFileSync(path, `${lines[0]}\n${lines[1]}\n${lines[2].replace('"u2"', '"uY"')}\n`);
    const log = AuditLog.open(path);
    assert.equal(log.size, 2);
    assert.match(log.recovered?.reason ?? '', /hash mismatch/);
    log.close();
    // a line from elsewhere in the chain does not fit: the chain is order-checked
    const other = logWith(3);
    const otherLines = readFileSync(other, 'utf8').trimEnd().split('\n');
    writeFileSync(other, `${otherLines[0]}\n${otherLines[2]}\n${otherLines[1]}\n`);
    assert.throws(() => AuditLog.open(other), /hash chain broken/);
  });

  test('13.6 property: cut at any byte, open keeps exactly the whole lines before the cut and never throws', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.nat(), (count, cutSeed) => {
        const path = logWith(count);
        const full = readFileSync(path);
        const cut = cutSeed % (full.length + 1);
        truncateSync(path, cut);
        const wholeLines = full.subarray(0, cut).toString('utf8').split('\n').length - 1;
        const log = AuditLog.open(path);
        try {
          assert.equal(log.size, wholeLines);
          assert.equal(readFileSync(path).length, full.subarray(0, cut).lastIndexOf(0x0a) + 1);
          const next = log.append(entry(100));
          assert.equal(next.seq, wholeLines + 1);
        } finally {
          log.close();
        }
        const again = AuditLog.open(path);
        assert.equal(again.recovered, null);
        assert.equal(again.size, wholeLines + 1);
        again.close();
      }),
      { numRuns: 60 },
    );
  });

  test('13.6 checkpoint: a start verifies only the lines after it, a changed byte before it is still found', () => {
    const path = logWith(5);
    const checkpoint = join(dirname(path), AUDIT_CHECKPOINT_FILE);
    const first = AuditLog.open(path);
    assert.equal(first.checkpointedLines, 0, 'no checkpoint yet: every line verified');
    assert.equal(first.writeCheckpoint(), true);
    assert.equal(first.writeCheckpoint(), false, 'nothing new to record');
    first.close();
    const second = AuditLog.open(path);
    assert.equal(second.checkpointedLines, 5);
    assert.equal(second.size, 5);
    assert.deepEqual(second.query({ limit: 10 }).map((r) => r.seq), [5, 4, 3, 2, 1], 'the prefix is still served, parsed on first query');
    assert.equal(second.append(entry(6)).seq, 6);
    second.close();
    // an append by no one this log knows of: the checkpoint would vouch for unchecked bytes, so none
    const third = AuditLog.open(path);
    assert.equal(third.checkpointedLines, 5);
    assert.equal(third.size, 6, 'the line after the checkpoint verified one by one');
    appendFileSync(path, readFileSync(path, 'utf8').split('\n')[0] + '\n');
    assert.equal(third.writeCheckpoint(), false);
    third.close();
    truncateSync(path, readFileSync(path).lastIndexOf(0x0a, readFileSync(path).length - 2) + 1);
    // an edit inside the checkpointed prefix (same length, chain not recomputed): found and named, as without a checkpoint
    const text = readFileSync(path, 'utf8');
    writeFileSync(path, text.replace('"u1"', '"uZ"'));
    assert.throws(() => AuditLog.open(path), /line 2 is damaged \(hash mismatch\)/);
    writeFileSync(path, text);
    // a damaged checkpoint is ignored: every line is verified again
    writeFileSync(checkpoint, readFileSync(checkpoint, 'utf8').replace(/ 5 /, ' 4 '));
    const fourth = AuditLog.open(path);
    assert.equal(fourth.checkpointedLines, 0);
    assert.equal(fourth.size, 6);
    fourth.close();
  });

  test('13.6 checkpoint: a torn line after it is dropped, a shorter file is verified whole', () => {
    const path = logWith(3);
    const log = AuditLog.open(path);
    assert.equal(log.writeCheckpoint(), true);
    log.close();
    appendFileSync(path, '{"seq":4,"time":"2026-');
    const torn = AuditLog.open(path);
    assert.equal(torn.checkpointedLines, 3);
    assert.match(torn.recovered?.reason ?? '', /torn/);
    torn.close();
    // the log moved aside and a new one started: the old checkpoint no longer matches
    writeFileSync(path, '');
    const fresh = AuditLog.open(path);
    assert.equal(fresh.checkpointedLines, 0);
    assert.equal(fresh.size, 0);
    assert.equal(fresh.append(entry(1)).seq, 1);
    fresh.close();
  });

  test('13.6 encodeAuditLine: the hash covers prev and every field', () => {
    const record: AuditRecord = { seq: 1, ...entry(1) };
    const a = encodeAuditLine(record, '0'.repeat(64));
    const b = encodeAuditLine({ ...record, actor: 'other' }, '0'.repeat(64));
    const c = encodeAuditLine(record, '1'.repeat(64));
    assert.notEqual(a.hash, b.hash);
    assert.notEqual(a.hash, c.hash);
    assert.ok(a.line.endsWith(`"hash":"${a.hash}"}\n`));
  });
});
