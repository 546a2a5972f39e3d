/**
 * Issue 11 items 4, 5 and the token-route part of 11, issue 19 item 4 — against a REAL registry
 * with real npm 11:
 *   11.4  password change behind the login limiter; a password change invalidates every earlier
 *         session and token of the user (durably); login sessions are listed and revocable;
 *   11.5  the default admin is the first user ever created, recorded durably — not the first
 *         line of htpasswd now;
 *   11.11 DELETE /-/npm/v1/tokens/token/%E0%A4%A is a 400, never a 500;
 *   19.4  `npm token list` shows a readable identity per token; `npm token revoke <whole token>`.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import bcrypt from 'bcryptjs';
import { decodeJwt } from 'jose';
import { createClientDir, startRegistry, type RunningRegistry } from '../harness/registry';
import { couchPut, hasScript, http, login, npmInPty, useAuthPlugin, whoami } from './helpers';

const PASSWORD = 'correct-horse-battery';
const NEW_PASSWORD = 'another-horse-battery';

/** bcrypt 4 rounds: these tests log in often; the password rules are the same. */
const fastAuth = (config: Record<string, unknown>): void => {
  useAuthPlugin({ bcrypt_rounds: 4 })(config);
  // X-Forwarded-For from the test (loopback) is honoured, so requests can come from several addresses
  config.server = { ...(config.server as Record<string, unknown> | undefined), trustProxy: 'loopback' };
};

function tokenIn(npmrc: string): string | undefined {
  return /:_authToken=(\S+)/.exec(readFileSync(npmrc, 'utf8'))?.[1];
}

async function changePassword(registry: RunningRegistry, token: string, old: string, next: string, from?: string) {
  const headers: Record<string, string> = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  if (from) headers['x-forwarded-for'] = from;
  // the body real npm 11 sends for `npm profile set password` (profile fields read back + password)
  const response = await fetch(`${registry.url}/-/npm/v1/user`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ email: '', fullname: '', password: { old, new: next } }),
  });
  return { status: response.status, text: await response.text() };
}

describe('sessions, passwords and admin (real registry, real npm)', () => {
  let registry: RunningRegistry;

  before(async () => {
    registry = await startRegistry({ editConfig: fastAuth });
    assert.equal((await couchPut(registry, 'alice', PASSWORD)).status, 201);
  });
  after(async () => {
    await registry?.stop();
  });

  test('11.4 password change (POST /-/npm/v1/user) is behind the failed-login limiter', async () => {
    const token = (await couchPut(registry, 'heidi', PASSWORD)).body.token as string;
    for (let i = 0; i < 5; i++) {
      const wrong = await changePassword(registry, token, `wrong-old-password-${i}`, NEW_PASSWORD, '10.9.0.1');
      assert.equal(wrong.status, 401, wrong.text);
    }
    const locked = await changePassword(registry, token, PASSWORD, NEW_PASSWORD, '10.9.0.1');
    assert.equal(locked.status, 429, `after 5 wrong old passwords even the right one is refused: ${locked.text}`);
    assert.match(locked.text, /"error":"too many failed logins/);
    assert.equal(await whoami(registry, await login(registry, 'heidi', PASSWORD)), 'heidi', 'the password did not change');
    // per address and user, like every login: heidi from elsewhere may still change it
    const elsewhere = await changePassword(registry, token, PASSWORD, NEW_PASSWORD, '10.9.0.2');
    assert.equal(elsewhere.status, 200, elsewhere.text);
  });

  test('11.4 changing the password invalidates every earlier session and token of the user, on every path and after a restart', async () => {
    const sessionCouch = (await couchPut(registry, 'ivan', PASSWORD)).body.token as string;
    const sessionApi = await login(registry, 'ivan', PASSWORD);
    const client = createClientDir(registry, { token: sessionCouch });
    const created = await client.npm(['token', 'create', `--password=${PASSWORD}`, '--json']);
    assert.equal(created.code, 0, created.stderr);
    const generated = (JSON.parse(created.stdout) as { token: string }).token;
    const bystander = await login(registry, 'alice', PASSWORD);
    for (const token of [sessionCouch, sessionApi, generated]) assert.equal(await whoami(registry, token), 'ivan');

    if (await hasScript()) {
      // real npm: `npm profile set password` prompts for both passwords, so it runs in a pty
      const changed = await npmInPty(client, registry, ['profile', 'set', 'password'], [
        { prompt: /Current password:/, answer: PASSWORD },
        { prompt: /New password:/, answer: NEW_PASSWORD },
        { prompt: /Again:/, answer: NEW_PASSWORD },
      ]);
      assert.equal(changed.code, 0, changed.output);
      assert.match(changed.output, /Set password/);
    } else {
      // no pty available: the same request npm sends, over raw HTTP
      const changed = await changePassword(registry, sessionCouch, PASSWORD, NEW_PASSWORD);
      assert.equal(changed.status, 200, changed.text);
    }

    for (const token of [sessionCouch, sessionApi, generated]) assert.equal(await whoami(registry, token), undefined, 'an earlier token is refused');
    const refused = await createClientDir(registry, { token: generated }).npm(['whoami']);
    assert.notEqual(refused.code, 0, 'npm whoami with the generated token fails');
    const rejected = await http(registry, 'GET', '/-/whoami', { token: sessionApi });
    assert.equal(rejected.status, 200);
    assert.equal(rejected.body.username, undefined);
    assert.equal(await whoami(registry, bystander), 'alice', "another user's tokens are untouched");
    assert.equal((await http(registry, 'POST', '/_auth/token', { body: { username: 'ivan', password: PASSWORD } })).status, 401);

    const fresh = await login(registry, 'ivan', NEW_PASSWORD);
    assert.equal(await whoami(registry, fresh), 'ivan');
    const listed = (await http(registry, 'GET', '/-/npm/v1/tokens', { token: fresh })).body.objects as { key: string }[];
    const keys = listed.map((entry) => entry.key);
    assert.ok(keys.includes(decodeJwt(fresh).jti as string), 'the new session is listed');
    for (const dead of [sessionCouch, sessionApi, generated]) assert.ok(!keys.includes(decodeJwt(dead).jti as string), 'dead tokens are not listed');

    registry = await registry.restart();
    for (const token of [sessionCouch, sessionApi, generated]) assert.equal(await whoami(registry, token), undefined, 'still refused after a restart');
    assert.equal(await whoami(registry, fresh), 'ivan', 'the new session survives the restart');
  });

  test('11.4 login sessions appear in npm token list and npm token revoke ends a stolen session', async (t) => {
    let session: string;
    const victim = createClientDir(registry);
    if (await hasScript()) {
      const loggedIn = await npmInPty(victim, registry, ['login', '--auth-type=legacy', `--registry=${registry.url}/`], [
        { prompt: /Username:/, answer: 'alice' },
        { prompt: /Password:/, answer: PASSWORD },
      ]);
      assert.equal(loggedIn.code, 0, loggedIn.output);
      session = tokenIn(victim.npmrc) ?? '';
    } else {
      t.diagnostic('util-linux `script` is not installed: the login is npm\'s couch PUT over HTTP');
      session = (await couchPut(registry, 'alice', PASSWORD)).body.token as string;
      victim.setToken(session);
    }
    const key = decodeJwt(session).jti as string;
    const thief = createClientDir(registry, { token: session });
    assert.equal((await thief.npm(['whoami'])).stdout.trim(), 'alice');

    const listed = await victim.npm(['token', 'list']);
    assert.equal(listed.code, 0, listed.stderr);
    const row = listed.stdout.split('\n').find((line) => line.includes(`with id ${key.slice(0, 6)}`));
    assert.ok(row, `the login session is listed:\n${listed.stdout}`);
    assert.match(row, /name npm login from 127\.0\.0\.1 \(login session, read-write, expires \d{4}-\d\d-\d\d, (?:never used|last used \d{4}-\d\d-\d\d \d\d:\d\d UTC)\) created \d{4}-\d\d-\d\d/);

    const revoked = await victim.npm(['token', 'revoke', key]);
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.match(revoked.stdout, /Removed 1 token/);
    assert.notEqual((await thief.npm(['whoami'])).code, 0, 'the stolen session no longer works');
  });

  test('11.4 login sessions are bounded: beyond 100 live sessions per user a login revokes the oldest', async () => {
    const first = (await couchPut(registry, 'judy', PASSWORD)).body.token as string;
    const tokens = [first];
    for (let i = 0; i < 100; i++) tokens.push(await login(registry, 'judy', PASSWORD));
    assert.equal(await whoami(registry, first), undefined, 'the oldest of 101 sessions was revoked');
    assert.equal(await whoami(registry, tokens[1]), 'judy', 'the next oldest lives');
    assert.equal(await whoami(registry, tokens[100]), 'judy');
    const listed = (await http(registry, 'GET', '/-/npm/v1/tokens', { token: tokens[100] })).body.objects as unknown[];
    assert.equal(listed.length, 100);
  });

  test('11.11 DELETE /-/npm/v1/tokens/token/%E0%A4%A is a 400 JSON error, never a 500 (read-only and read-write tokens)', async () => {
    const session = await login(registry, 'alice', PASSWORD);
    const created = await http(registry, 'POST', '/-/npm/v1/tokens', { token: session, body: { password: PASSWORD, readonly: true } });
    assert.equal(created.status, 201, created.text);
    for (const token of [created.body.token as string, session]) {
      for (const path of ['/-/npm/v1/tokens/token/%E0%A4%A', '/-/npm/v1/TOKENS/token/%E0%A4%A/', '/-/user/token/%E0%A4%A']) {
        const result = await http(registry, 'DELETE', path, { token });
        // a read-only token may not log out a token other than itself: 403 before the URL is read
        const expected = token !== session && path.startsWith('/-/user/') ? 403 : 400;
        assert.equal(result.status, expected, `${path}: ${result.text}`);
        assert.equal(typeof result.body.error, 'string', `${path}: JSON {"error"}: ${result.text}`);
      }
    }
    assert.equal(await whoami(registry, session), 'alice', 'nothing was revoked');
  });

  test('19.4 npm token list shows a readable identity for every token; npm token revoke <whole token> works', async () => {
    const session = await login(registry, 'alice', PASSWORD);
    const client = createClientDir(registry, { token: session });
    const deploy = await client.npm(['token', 'create', `--password=${PASSWORD}`, '--name=ci-deploy', '--json']);
    assert.equal(deploy.code, 0, deploy.stderr);
    const deployToken = (JSON.parse(deploy.stdout) as { token: string }).token;
    const reader = await client.npm(['token', 'create', `--password=${PASSWORD}`, '--packages-and-scopes-permission=read-only', '--json']);
    assert.equal(reader.code, 0, reader.stderr);
    const readToken = (JSON.parse(reader.stdout) as { token: string }).token;

    const listed = await client.npm(['token', 'list']);
    assert.equal(listed.code, 0, listed.stderr);
    const rows = listed.stdout.split('\n').filter((line) => line.startsWith('Token '));
    assert.ok(rows.length >= 3, listed.stdout);
    for (const row of rows) {
      assert.match(row, /^Token eyJhbG… with id [0-9a-f]{6,32} name \S.* created \d{4}-\d\d-\d\d$/, `a readable row: ${row}`);
      assert.ok(!row.includes('……') && !row.includes('name undefined'), row);
    }
    const rowOf = (token: string): string | undefined => rows.find((row) => row.includes(`with id ${(decodeJwt(token).jti as string).slice(0, 6)}`));
    assert.match(rowOf(deployToken) ?? '', /name ci-deploy \(token, read-write, expires \d{4}-\d\d-\d\d, never used\)/);
    assert.match(rowOf(readToken) ?? '', /name npm token create \(token, read-only, expires .*, never used\)/);
    // the session made every npm call above: its row says when it was last used
    assert.match(rowOf(session) ?? '', /name POST \/_auth\/token from 127\.0\.0\.1 \(login session, read-write.*, last used \d{4}-\d\d-\d\d \d\d:\d\d UTC\)/);
    assert.equal(await whoami(registry, deployToken), 'alice');
    const usedRow = (await client.npm(['token', 'list', '--json'])).stdout;
    const usedEntry = (JSON.parse(usedRow) as { key: string; last_used?: string }[]).find((entry) => entry.key === decodeJwt(deployToken).jti);
    assert.ok(usedEntry?.last_used && Math.abs(Date.parse(usedEntry.last_used) - Date.now()) < 120_000, `last_used after one request: ${usedRow}`);

    const revoked = await client.npm(['token', 'revoke', deployToken]);
    assert.equal(revoked.code, 0, `${revoked.stdout}\n${revoked.stderr}`);
    assert.match(revoked.stdout, /Removed 1 token/);
    assert.equal(await whoami(registry, deployToken), undefined, 'the revoked token is refused');
    assert.notEqual((await createClientDir(registry, { token: deployToken }).npm(['whoami'])).code, 0);
    assert.equal(await whoami(registry, readToken), 'alice', 'only that token');
    const after = await client.npm(['token', 'list', '--json']);
    assert.ok(!(JSON.parse(after.stdout) as { key: string }[]).some((entry) => entry.key === decodeJwt(deployToken).jti));

    // a read-only token may revoke itself by its whole token, as npm sends it
    const self = await createClientDir(registry, { token: readToken }).npm(['token', 'revoke', readToken]);
    assert.equal(self.code, 0, `${self.stdout}\n${self.stderr}`);
    assert.equal(await whoami(registry, readToken), undefined);
    // another user's whole token is not found for alice, and stays valid
    const bob = (await couchPut(registry, 'bob-19', PASSWORD)).body.token as string;
    const foreign = await http(registry, 'DELETE', `/-/npm/v1/tokens/token/${bob}`, { token: session });
    assert.equal(foreign.status, 404, foreign.text);
    assert.equal(await whoami(registry, bob), 'bob-19');
  });
});

describe('11.5 the default admin is the first user ever created, recorded durably', () => {
  const isAdmin = (token: string): boolean => ((decodeJwt(token).groups as string[] | undefined) ?? []).includes('registry-admin');
  const toggle = (registry: RunningRegistry, token: string) =>
    http(registry, 'POST', '/_dashboard/api/config', { token, body: { op: 'toggleFeature', flag: 'DEBUG' } });
  const dropLine = (registry: RunningRegistry, name: string): void => {
    const file = join(registry.dir, 'htpasswd');
    writeFileSync(file, readFileSync(file, 'utf8').split('\n').filter((line) => !line.startsWith(`${name}:`)).join('\n'));
  };

  test('11.5 deleting the first htpasswd line does not make the next user admin (auth group and dashboard), nor does re-registering the name', async () => {
    let registry = await startRegistry({ editConfig: fastAuth });
    try {
      const alice = (await couchPut(registry, 'alice', PASSWORD)).body.token as string;
      assert.equal((await couchPut(registry, 'bob', PASSWORD)).status, 201);
      assert.ok(isAdmin(alice), 'the first user is admin');
      assert.deepEqual(JSON.parse(readFileSync(join(registry.dir, 'htpasswd.first-user'), 'utf8')).user, 'alice');

      dropLine(registry, 'alice');
      const bob = await login(registry, 'bob', PASSWORD);
      assert.ok(!isAdmin(bob), 'bob is not admin because alice left the file');
      assert.equal((await toggle(registry, bob)).status, 403, 'the dashboard refuses bob');

      const impostor = (await couchPut(registry, 'alice', 'impostor-password')).body.token as string;
      assert.ok(impostor, 'the name is free again');
      assert.ok(!isAdmin(impostor), 'a re-registered first name is not admin');
      assert.equal((await toggle(registry, impostor)).status, 403);

      registry = await registry.restart();
      assert.ok(!isAdmin(await login(registry, 'bob', PASSWORD)), 'still not after a restart');
      assert.ok(!isAdmin(await login(registry, 'alice', 'impostor-password')));
    } finally {
      await registry.stop();
    }
  });

  test('11.5 an htpasswd from before the record existed: its first line is adopted at start, once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'registry-test-'));
    const hash = bcrypt.hashSync(PASSWORD, 4);
    writeFileSync(join(dir, 'htpasswd'), `carol:${hash}\ndave:${hash}\n`);
    let registry = await startRegistry({ dir, editConfig: fastAuth });
    try {
      assert.equal(JSON.parse(readFileSync(join(dir, 'htpasswd.first-user'), 'utf8')).user, 'carol');
      const carol = await login(registry, 'carol', PASSWORD);
      assert.ok(isAdmin(carol));
      assert.equal((await toggle(registry, carol)).status, 200, 'the dashboard lets the first user change the config');
      dropLine(registry, 'carol');
      registry = await registry.restart();
      const dave = await login(registry, 'dave', PASSWORD);
      assert.ok(!isAdmin(dave), 'dave is not adopted as admin on the next start');
      assert.equal((await toggle(registry, dave)).status, 403);
    } finally {
      await registry.stop();
    }
  });
});
