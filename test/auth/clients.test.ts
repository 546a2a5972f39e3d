/**
 * Real npm 11 and real bun against a real registry running our auth plugin:
 * login (couch flow, through a pty), whoami, publish, install, logout, token create/list/revoke,
 * a read-only token refused on publish, bun publish with a token.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { decodeJwt } from 'jose';
import { createClientDir, startRegistry, writePackage, type RunningRegistry } from '../harness/registry';
import { couchPut, hasScript, login, npmInPty, useAuthPlugin, whoami } from './helpers';

const PASSWORD = 'correct-horse-battery';

function tokenIn(npmrc: string): string | undefined {
  return /:_authToken=(\S+)/.exec(readFileSync(npmrc, 'utf8'))?.[1];
}

describe('real npm and bun with our tokens', () => {
  let registry: RunningRegistry;
  before(async () => {
    registry = await startRegistry({ editConfig: useAuthPlugin() });
    assert.equal((await couchPut(registry, 'alice', PASSWORD)).status, 201);
  });
  after(async () => {
    await registry?.stop();
  });

  test('npm login (couch flow in a pty) → whoami → publish → install → logout revokes at once', async (t) => {
    if (!(await hasScript())) {
      t.skip('util-linux `script` is not installed, so npm login has no TTY; the couch flow is covered over HTTP in http.test.ts');
      return;
    }
    const client = createClientDir(registry);
    const loggedIn = await npmInPty(client, registry, ['login', '--auth-type=legacy', `--registry=${registry.url}/`], [
      { prompt: /Username:/, answer: 'alice' },
      { prompt: /Password:/, answer: PASSWORD },
    ]);
    assert.equal(loggedIn.code, 0, loggedIn.output);
    assert.match(loggedIn.output, /Logged in on/);
    const token = tokenIn(client.npmrc);
    assert.ok(token, 'npm wrote the token into .npmrc');
    assert.equal(decodeJwt(token).iss, 'http://localhost:4873/_auth', 'a token of our issuer');

    const who = await client.npm(['whoami']);
    assert.equal(who.code, 0, who.stderr);
    assert.equal(who.stdout.trim(), 'alice');

    const pkg = writePackage(client.dir, { name: '@mycompany/auth-npm', version: '1.0.0' });
    const published = await client.npm(['publish'], { cwd: pkg });
    assert.equal(published.code, 0, published.stderr);

    const consumer = createClientDir(registry);
    const app = writePackage(consumer.dir, { name: 'auth-consumer', version: '0.0.0' });
    const installed = await consumer.npm(['install', '@mycompany/auth-npm@1.0.0'], { cwd: app });
    assert.equal(installed.code, 0, installed.stderr);
    assert.match(readFileSync(join(app, 'node_modules', '@mycompany', 'auth-npm', 'index.js'), 'utf8'), /auth-npm@1\.0\.0/);

    const out = await client.npm(['logout']);
    assert.equal(out.code, 0, out.stderr);
    assert.equal(tokenIn(client.npmrc), undefined, 'npm removed the token');
    assert.equal(await whoami(registry, token), undefined, 'the token is revoked at once');
    const stale = createClientDir(registry, { token });
    const refused = await stale.npm(['whoami']);
    assert.notEqual(refused.code, 0, 'npm whoami with the logged-out token fails');
  });

  test("npm login with a wrong password goes through npm's 409 retry path and fails with 401; the next right login works", async (t) => {
    if (!(await hasScript())) {
      t.skip('util-linux `script` is not installed, so npm login has no TTY');
      return;
    }
    const client = createClientDir(registry);
    const wrong = await npmInPty(client, registry, ['login', '--auth-type=legacy', `--registry=${registry.url}/`, '--loglevel=http'], [
      { prompt: /Username:/, answer: 'alice' },
      { prompt: /Password:/, answer: 'not-alices-password' },
    ]);
    assert.notEqual(wrong.code, 0, wrong.output);
    assert.match(wrong.output, /PUT 409 .*org\.couchdb\.user:alice/, 'first PUT: 409 (user exists)');
    assert.match(wrong.output, /PUT 401 .*org\.couchdb\.user:alice\/-rev\//, 'npm retried on /-rev/ with Basic auth: 401');
    assert.equal(tokenIn(client.npmrc), undefined);
    const right = await npmInPty(client, registry, ['login', '--auth-type=legacy', `--registry=${registry.url}/`], [
      { prompt: /Username:/, answer: 'alice' },
      { prompt: /Password:/, answer: PASSWORD },
    ]);
    assert.equal(right.code, 0, right.output);
    assert.ok(tokenIn(client.npmrc));
  });

  test('npm adduser (couch flow in a pty) registers a new user and returns our token', async (t) => {
    if (!(await hasScript())) {
      t.skip('util-linux `script` is not installed, so npm adduser has no TTY');
      return;
    }
    const client = createClientDir(registry);
    const added = await npmInPty(client, registry, ['adduser', '--auth-type=legacy', `--registry=${registry.url}/`], [
      { prompt: /Username:/, answer: 'newcomer' },
      { prompt: /Password:/, answer: PASSWORD },
      { prompt: /Email/, answer: 'newcomer@example.com' },
    ]);
    assert.equal(added.code, 0, added.output);
    const token = tokenIn(client.npmrc);
    assert.ok(token);
    assert.equal(decodeJwt(token).sub, 'newcomer');
    assert.equal((await client.npm(['whoami'])).stdout.trim(), 'newcomer');
    assert.match(readFileSync(join(registry.dir, 'htpasswd'), 'utf8'), /^newcomer:\$2b\$/m);
  });

  test('npm token create / list / revoke; a read-only token is refused on publish', async () => {
    const owner = createClientDir(registry, { token: await login(registry, 'alice', PASSWORD) });
    const created = await owner.npm(['token', 'create', `--password=${PASSWORD}`, '--json']);
    assert.equal(created.code, 0, created.stderr);
    const writeToken = JSON.parse(created.stdout) as { token: string; readonly: boolean };
    assert.equal(writeToken.readonly, false);

    const createdRo = await owner.npm(['token', 'create', `--password=${PASSWORD}`, '--packages-and-scopes-permission=read-only', '--json']);
    assert.equal(createdRo.code, 0, createdRo.stderr);
    const readToken = JSON.parse(createdRo.stdout) as { token: string; readonly: boolean };
    assert.equal(readToken.readonly, true);

    const listed = await owner.npm(['token', 'list', '--json']);
    assert.equal(listed.code, 0, listed.stderr);
    const tokens = JSON.parse(listed.stdout) as { key: string; token: string; readonly: boolean }[];
    const keyOf = (token: string): string => decodeJwt(token).jti as string;
    assert.ok(tokens.some((entry) => entry.key === keyOf(writeToken.token) && !entry.readonly));
    assert.ok(tokens.some((entry) => entry.key === keyOf(readToken.token) && entry.readonly));
    assert.ok(!listed.stdout.includes(writeToken.token), 'the list shows masked tokens only');

    const reader = createClientDir(registry, { token: readToken.token });
    assert.equal((await reader.npm(['whoami'])).stdout.trim(), 'alice');
    const pkg = writePackage(reader.dir, { name: '@mycompany/auth-readonly', version: '1.0.0' });
    const refused = await reader.npm(['publish'], { cwd: pkg });
    assert.notEqual(refused.code, 0, 'publish with a read-only token must fail');
    assert.match(refused.stderr, /403|read-only/);

    const writer = createClientDir(registry, { token: writeToken.token });
    const pkg2 = writePackage(writer.dir, { name: '@mycompany/auth-generated', version: '1.0.0' });
    const accepted = await writer.npm(['publish'], { cwd: pkg2 });
    assert.equal(accepted.code, 0, accepted.stderr);

    const revoked = await owner.npm(['token', 'revoke', keyOf(writeToken.token)]);
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.match(revoked.stdout, /Removed 1 token/);
    assert.notEqual((await writer.npm(['whoami'])).code, 0, 'the revoked token no longer works');
    const after = JSON.parse((await owner.npm(['token', 'list', '--json'])).stdout) as { key: string }[];
    assert.ok(!after.some((entry) => entry.key === keyOf(writeToken.token)));
  });

  test('bun publish with a token of our issuer', async () => {
    const token = await login(registry, 'alice', PASSWORD);
    const client = createClientDir(registry, { token });
    const pkg = writePackage(client.dir, { name: '@mycompany/auth-bun', version: '3.0.0' });
    const published = await client.bun(['publish'], { cwd: pkg });
    assert.equal(published.code, 0, `${published.stdout}\n${published.stderr}`);
    const packument = await fetch(`${registry.url}/@mycompany%2fauth-bun`);
    assert.equal(packument.status, 200);
    assert.ok(((await packument.json()) as { versions: Record<string, unknown> }).versions['3.0.0']);

    const anonymous = createClientDir(registry);
    const pkg2 = writePackage(anonymous.dir, { name: '@mycompany/auth-bun-anon', version: '1.0.0' });
    const refused = await anonymous.bun(['publish'], { cwd: pkg2 });
    assert.notEqual(refused.code, 0, 'bun publish without a token is refused');
  });
});
