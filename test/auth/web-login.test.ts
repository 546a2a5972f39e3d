/**
 * npm's web login, over HTTP against a real registry (the browser and npm itself are in
 * test/browser/web-login.test.ts), and the session rules as a unit with a frozen clock:
 * unguessable ids, 202 + Retry-After until signed in, the token exactly once, expiry, the
 * per-address limit, and the login secret not being enough to collect the token.
 */
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { decodeJwt } from 'jose';
import { startRegistry, type RunningRegistry } from '../harness/registry';
import { SESSION_ID, WebLoginSessions } from '../../plugins/verdaccio-registry-auth/web-login';
import { isAuthError } from '../../plugins/verdaccio-registry-auth/errors';
import { couchPut, http, useAuthPlugin, whoami } from './helpers';

const PASSWORD = 'correct-horse-battery';

function ids(started: { loginUrl: unknown; doneUrl: unknown }): { loginId: string; doneId: string; loginPath: string; donePath: string } {
  const login = new URL(String(started.loginUrl));
  const done = new URL(String(started.doneUrl));
  const loginId = login.pathname.split('/').pop() ?? '';
  const doneId = done.pathname.split('/').pop() ?? '';
  return { loginId, doneId, loginPath: login.pathname, donePath: done.pathname };
}

describe('web login sessions (unit, frozen clock)', () => {
  test('ids are 256-bit random base64url, login and done ids differ, the token is handed out once', () => {
    let now = 1_000_000;
    const sessions = new WebLoginSessions({ now: () => now });
    const { started } = sessions.start('10.0.0.1', false);
    assert.match(started.loginId, SESSION_ID);
    assert.match(started.doneId, SESSION_ID);
    assert.notEqual(started.loginId, started.doneId);
    assert.equal(Buffer.from(started.loginId, 'base64url').length, 32);
    assert.deepEqual(sessions.poll(started.doneId), { state: 'pending', retryAfterSeconds: 1 });
    assert.equal(sessions.poll(started.loginId), undefined, 'the login id does not collect');
    assert.equal(sessions.view(started.doneId), undefined, 'the done id does not sign in');
    sessions.beginSignIn(started.loginId);
    assert.throws(() => sessions.beginSignIn(started.loginId), (e: unknown) => isAuthError(e, 'ERR_CONFLICT'), 'one attempt at a time');
    assert.equal(sessions.finishSignIn(started.loginId, 'tok', 'jti', now + 10_000), true);
    assert.equal(sessions.view(started.loginId), undefined, 'signed in: the page link is used up');
    now += 1000;
    assert.deepEqual(sessions.poll(started.doneId), { state: 'done', token: 'tok' });
    assert.equal(sessions.poll(started.doneId), undefined, 'single use');
    assert.equal(sessions.size, 0);
  });

  test('a session expires after its ttl; a token nobody collected is returned for revocation', () => {
    let now = 0;
    const sessions = new WebLoginSessions({ now: () => now, ttlMs: 300_000 });
    const a = sessions.start('10.0.0.1', false).started;
    const b = sessions.start('10.0.0.1', true).started;
    sessions.beginSignIn(b.loginId);
    sessions.finishSignIn(b.loginId, 'tok-b', 'jti-b', 999_999);
    now = 299_999;
    assert.ok(sessions.view(a.loginId));
    now = 300_000;
    assert.equal(sessions.view(a.loginId), undefined);
    assert.equal(sessions.poll(a.doneId), undefined);
    assert.equal(sessions.poll(b.doneId), undefined, 'expired even when signed in');
    assert.throws(() => sessions.beginSignIn(a.loginId), (e: unknown) => isAuthError(e, 'ERR_NOT_FOUND'));
    assert.deepEqual(sessions.sweep(), [{ jti: 'jti-b', expiresAt: 999_999 }]);
    assert.equal(sessions.size, 0);
  });

  test('starts are limited per address within the window, other addresses are not affected', () => {
    let now = 0;
    const sessions = new WebLoginSessions({ now: () => now, perAddress: 3, windowMs: 60_000 });
    for (let i = 0; i < 3; i++) sessions.start('10.0.0.1', false);
    assert.throws(
      () => sessions.start('10.0.0.1', false),
      (e: unknown) => isAuthError(e, 'ERR_RATE_LIMITED') && e.retryAfter === 60,
    );
    sessions.start('10.0.0.2', false);
    now = 60_000;
    sessions.start('10.0.0.1', false);
  });

  test('property: no string other than the issued ids reaches a session', () => {
    const sessions = new WebLoginSessions();
    const { started } = sessions.start('10.0.0.1', false);
    fc.assert(
      fc.property(fc.string({ maxLength: 60 }), (guess) => {
        fc.pre(guess !== started.loginId && guess !== started.doneId);
        return sessions.view(guess) === undefined && sessions.poll(guess) === undefined;
      }),
    );
  });
});

describe('web login over HTTP (real registry)', () => {
  let registry: RunningRegistry;

  before(async () => {
    registry = await startRegistry({ editConfig: useAuthPlugin() });
    assert.equal((await couchPut(registry, 'alice', PASSWORD)).status, 201);
  });
  after(async () => {
    await registry?.stop();
  });

  test('13.1 POST /-/v1/login → {loginUrl, doneUrl}; 202 + Retry-After until signed in, then the token once', async () => {
    const started = await http(registry, 'POST', '/-/v1/login', { body: {} });
    assert.equal(started.status, 200, started.text);
    assert.equal(started.headers.get('cache-control'), 'no-store');
    const { loginId, loginPath, donePath } = ids(started.body as { loginUrl: string; doneUrl: string });
    assert.equal(new URL(String(started.body.loginUrl)).origin, registry.url);
    assert.match(loginPath, /^\/_dashboard\/login\/[A-Za-z0-9_-]{43}$/);
    assert.match(donePath, /^\/-\/v1\/done\/[A-Za-z0-9_-]{43}$/);

    const pending = await http(registry, 'GET', donePath);
    assert.equal(pending.status, 202);
    assert.equal(pending.headers.get('retry-after'), '1');

    const view = await http(registry, 'GET', `/-/v1/login/${loginId}`);
    assert.equal(view.status, 200);
    assert.equal(view.body.create, false);
    assert.equal(view.body.requestedFrom, '127.0.0.1');

    // wrong password: 401, the session keeps waiting; registration is not offered by npm login
    assert.equal((await http(registry, 'POST', `/-/v1/login/${loginId}/complete`, { body: { username: 'alice', password: 'wrong-password' } })).status, 401);
    assert.equal((await http(registry, 'POST', `/-/v1/login/${loginId}/complete`, { body: { username: 'mallory', password: PASSWORD, create: true } })).status, 400);
    assert.equal((await http(registry, 'GET', donePath)).status, 202);
    // not JSON: refused (a cross-site form cannot sign anyone in)
    const form = await fetch(`${registry.url}/-/v1/login/${loginId}/complete`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'username=alice&password=x',
    });
    assert.equal(form.status, 415);
    const foreign = await fetch(`${registry.url}/-/v1/login/${loginId}/complete`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: 'http://evil.example' },
      body: JSON.stringify({ username: 'alice', password: PASSWORD }),
    });
    assert.equal(foreign.status, 403);

    const done = await http(registry, 'POST', `/-/v1/login/${loginId}/complete`, { body: { username: 'alice', password: PASSWORD } });
    assert.equal(done.status, 200, done.text);
    assert.equal((await http(registry, 'POST', `/-/v1/login/${loginId}/complete`, { body: { username: 'alice', password: PASSWORD } })).status, 409, 'used up');

    const collected = await http(registry, 'GET', donePath);
    assert.equal(collected.status, 200);
    const token = collected.body.token as string;
    assert.equal(await whoami(registry, token), 'alice');
    assert.equal((await http(registry, 'GET', donePath)).status, 404, 'the token is handed out exactly once');

    // recorded as a login session: npm token list shows it, npm token revoke ends it
    const list = await http(registry, 'GET', '/-/npm/v1/tokens', { token });
    const jti = decodeJwt(token).jti;
    const row = (list.body.objects as { key: string; kind: string; name: string }[]).find((item) => item.key === jti);
    assert.ok(row, list.text);
    assert.equal(row.kind, 'login session');
    assert.match(row.name, /^web login from 127\.0\.0\.1/);
  });

  test('13.1 adduser: {"create": true} offers registration; a new user is registered under the usual rules', async () => {
    const started = await http(registry, 'POST', '/-/v1/login', { body: { create: true } });
    const { loginId, donePath } = ids(started.body as { loginUrl: string; doneUrl: string });
    assert.equal((await http(registry, 'GET', `/-/v1/login/${loginId}`)).body.create, true);
    const short = await http(registry, 'POST', `/-/v1/login/${loginId}/complete`, { body: { username: 'carol', password: 'short', create: true } });
    assert.equal(short.status, 400, 'password policy');
    const created = await http(registry, 'POST', `/-/v1/login/${loginId}/complete`, { body: { username: 'carol', password: PASSWORD, create: true } });
    assert.equal(created.status, 200, created.text);
    const token = (await http(registry, 'GET', donePath)).body.token as string;
    assert.equal(await whoami(registry, token), 'carol');
  });

  test('13.1 npm login with a read-only or package-limited token still in .npmrc starts a web login (the token gives no authority there)', async () => {
    const session = await http(registry, 'POST', '/_auth/token', { body: { username: 'alice', password: PASSWORD } });
    for (const options of [{ packages_and_scopes_permission: 'read-only' }, { packages: ['only-this'] }]) {
      const created = await http(registry, 'POST', '/-/npm/v1/tokens', { token: session.body.token as string, body: { password: PASSWORD, ...options } });
      assert.equal(created.status, 201, created.text);
      const started = await http(registry, 'POST', '/-/v1/login', { token: created.body.token as string, body: {} });
      assert.equal(started.status, 200, `${JSON.stringify(options)}: ${started.text}`);
    }
  });

  test('13.1 bad input: a body that is not an object, a create that is not a boolean, unknown ids → 4xx JSON', async () => {
    assert.equal((await http(registry, 'POST', '/-/v1/login', { body: [] })).status, 400);
    assert.equal((await http(registry, 'POST', '/-/v1/login', { body: { create: 'yes' } })).status, 400);
    for (const path of ['/-/v1/done/nope', `/-/v1/done/${'A'.repeat(43)}`, `/-/v1/login/${'A'.repeat(43)}`, '/-/v1/login/x/complete']) {
      const answer = await http(registry, path.endsWith('complete') ? 'POST' : 'GET', path, path.endsWith('complete') ? { body: {} } : {});
      assert.equal(answer.status, 404, `${path}: ${answer.text}`);
      assert.equal(typeof answer.body.error, 'string');
    }
  });

  test('13.1 rate limit: starts per address are limited (429 + Retry-After), which npm treats as "no web login"', async () => {
    let limited: Awaited<ReturnType<typeof http>> | undefined;
    for (let i = 0; i < 12 && !limited; i++) {
      const answer = await http(registry, 'POST', '/-/v1/login', { body: {} });
      if (answer.status === 429) limited = answer;
      else assert.equal(answer.status, 200);
    }
    assert.ok(limited, 'limited within 12 starts');
    assert.ok(Number(limited.headers.get('retry-after')) > 0);
    assert.match(String(limited.body.error), /too many web logins/);
  });
});

describe('web login URLs behind a proxy', () => {
  let registry: RunningRegistry;

  before(async () => {
    registry = await startRegistry({
      editConfig: (config) => {
        useAuthPlugin()(config);
        config.url_prefix = '/registry/';
      },
    });
  });
  after(async () => {
    await registry?.stop();
  });

  test('13.1 loginUrl and doneUrl are built as Verdaccio builds tarball URLs: url_prefix, forwarded protocol', async () => {
    const started = await http(registry, 'POST', '/-/v1/login', { body: {} });
    assert.equal(started.status, 200, started.text);
    assert.match(String(started.body.loginUrl), new RegExp(`^${registry.url}/registry/_dashboard/login/[A-Za-z0-9_-]{43}$`));
    assert.match(String(started.body.doneUrl), new RegExp(`^${registry.url}/registry/-/v1/done/[A-Za-z0-9_-]{43}$`));
    const https = await fetch(`${registry.url}/-/v1/login`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-forwarded-proto': 'https' }, body: '{}' });
    const body = (await https.json()) as { loginUrl: string };
    assert.match(body.loginUrl, /^https:\/\//);
    // a Host Verdaccio's URL rule refuses (fetch cannot send one): 400, not a URL built from it
    const status = await new Promise<number>((resolve, reject) => {
      const request = httpRequest(`${registry.url}/-/v1/login`, { method: 'POST', headers: { 'content-type': 'application/json', host: 'bad_host' } }, (response) => {
        response.resume();
        resolve(response.statusCode ?? 0);
      });
      request.on('error', reject);
      request.end('{}');
    });
    assert.equal(status, 400);
  });
});
