/**
 * Trusted publishing end to end (docs/trusted-publishing.md): a REAL OIDC issuer (an HTTP server
 * of this test with its own ES256 key pair, JWKS and discovery document, minting id_tokens with
 * jose the way GitHub Actions' token endpoint does) configured as the registry's GitHub provider;
 * real npm 11 manages the trust rules (`npm trust github|list|revoke`) and publishes in
 * "GitHub Actions" mode (GITHUB_ACTIONS, ACTIONS_ID_TOKEN_REQUEST_URL/TOKEN) with no npm token.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { SignJWT, decodeJwt, exportJWK, generateKeyPair, type JWTPayload } from 'jose';
import { cleanEnv, createClientDir, run, startRegistry, writePackage, type ClientDir, type RunningRegistry } from '../harness/registry';
import { couchPut, http, useAuthPlugin } from './helpers';

const PASSWORD = 'correct-horse-battery';
const PKG = '@mycompany/tp-lib';
const OTHER = '@mycompany/tp-other';
const REQUEST_TOKEN = 'actions-request-token-for-this-test';

interface TestIssuer {
  url: string;
  server: Server;
  /** claims the token endpoint puts into the next id_tokens (besides iss/aud/iat/exp) */
  claims: JWTPayload;
  sign(payload: JWTPayload, options?: { audience?: string; expiresIn?: number; issuer?: string }): Promise<string>;
  minted: number;
}

function githubClaims(repository: string, workflow = 'release.yml', extra: JWTPayload = {}): JWTPayload {
  return {
    sub: `repo:${repository}:ref:refs/heads/main`,
    repository,
    repository_owner: repository.split('/')[0],
    workflow_ref: `${repository}/.github/workflows/${workflow}@refs/heads/main`,
    ref: 'refs/heads/main',
    repository_visibility: 'private',
    ...extra,
  };
}

async function startIssuer(): Promise<TestIssuer> {
  const { publicKey, privateKey } = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'test-key-1', alg: 'ES256', use: 'sig' };
  const issuer: TestIssuer = {
    url: '',
    server: createServer(),
    claims: {},
    minted: 0,
    sign: (payload, options = {}) => {
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT(payload)
        .setProtectedHeader({ alg: 'ES256', kid: jwk.kid, typ: 'JWT' })
        .setIssuer(options.issuer ?? issuer.url)
        .setAudience(options.audience ?? 'npm:127.0.0.1')
        .setIssuedAt(now - 5)
        .setExpirationTime(now + (options.expiresIn ?? 300))
        .setJti(`id-${Math.random().toString(16).slice(2)}`)
        .sign(privateKey);
    },
  };
  issuer.server.on('request', (req, res) => {
    const url = new URL(req.url ?? '/', issuer.url);
    const json = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (url.pathname === '/gitlab/.well-known/openid-configuration') {
      // a second provider on the same server (a GitLab instance's issuer is its URL)
      json(200, { issuer: `${issuer.url}/gitlab`, jwks_uri: `${issuer.url}/.well-known/jwks` });
    } else if (url.pathname === '/.well-known/openid-configuration') {
      json(200, { issuer: issuer.url, jwks_uri: `${issuer.url}/.well-known/jwks`, id_token_signing_alg_values_supported: ['ES256'] });
    } else if (url.pathname === '/.well-known/jwks') {
      json(200, { keys: [jwk] });
    } else if (url.pathname === '/token') {
      // GitHub's endpoint: Bearer ACTIONS_ID_TOKEN_REQUEST_TOKEN, ?audience=…, answers {value}
      if (req.headers.authorization !== `Bearer ${REQUEST_TOKEN}`) return json(401, { message: 'bad request token' });
      const audience = url.searchParams.get('audience') ?? '';
      issuer.minted += 1;
      issuer.sign(issuer.claims, { audience }).then((value) => json(200, { count: 1, value }), () => json(500, {}));
    } else {
      json(404, {});
    }
  });
  await new Promise<void>((resolve) => issuer.server.listen(0, '127.0.0.1', resolve));
  issuer.url = `http://127.0.0.1:${(issuer.server.address() as AddressInfo).port}`;
  return issuer;
}

/** npm in "GitHub Actions" mode: no npm token in its config, the id_token comes from our issuer. */
function ciNpm(client: ClientDir, issuer: TestIssuer, args: string[], cwd: string) {
  const env = cleanEnv({
    npm_config_userconfig: client.npmrc,
    npm_config_cache: client.cache,
    npm_config_update_notifier: 'false',
    npm_config_fund: 'false',
    npm_config_audit: 'false',
    HOME: client.dir,
    CI: 'true',
    GITHUB_ACTIONS: 'true',
    ACTIONS_ID_TOKEN_REQUEST_URL: `${issuer.url}/token`,
    ACTIONS_ID_TOKEN_REQUEST_TOKEN: REQUEST_TOKEN,
  });
  delete env.NPM_ID_TOKEN;
  delete env.GITLAB_CI;
  return run('npm', args, { cwd, env });
}

describe('trusted publishing with real npm 11 and a real OIDC issuer', () => {
  let registry: RunningRegistry;
  let issuer: TestIssuer;
  let alice: string;
  let bob: string;
  let aliceClient: ClientDir;

  before(async () => {
    issuer = await startIssuer();
    registry = await startRegistry({
      editConfig: useAuthPlugin({
        trusted_publishing: {
          token_ttl: '15m',
          audiences: ['npm:127.0.0.1'],
          providers: [
            { type: 'github', issuer: issuer.url },
            { type: 'gitlab', issuer: `${issuer.url}/gitlab` },
          ],
        },
      }),
    });
    alice = (await couchPut(registry, 'alice', PASSWORD)).body.token as string;
    bob = (await couchPut(registry, 'bob', PASSWORD)).body.token as string;
    aliceClient = createClientDir(registry, { token: alice });
    for (const name of [PKG, OTHER]) {
      const published = await aliceClient.npm(['publish'], { cwd: writePackage(aliceClient.dir, { name, version: '1.0.0' }) });
      assert.equal(published.code, 0, published.stderr);
    }
  });
  after(async () => {
    await registry?.stop();
    await new Promise((resolve) => issuer?.server.close(resolve));
  });

  test('npm trust github adds a rule (maintainer only), npm trust list shows it', async () => {
    const added = await aliceClient.npm(['trust', 'github', PKG, '--repository', 'acme/widget', '--file', 'release.yml', '--allow-publish', '--yes']);
    assert.equal(added.code, 0, added.stderr);
    assert.match(added.stdout, /Trust configuration created successfully/);
    assert.match(added.stdout, /repository: acme\/widget/);

    const listed = await aliceClient.npm(['trust', 'list', PKG]);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /type: github/);
    assert.match(listed.stdout, /file: release\.yml/);
    assert.match(listed.stdout, /repository: acme\/widget/);
    assert.match(listed.stdout, /permissions: publish/);

    const escaped = encodeURIComponent(PKG);
    const rule = { type: 'github', claims: { repository: 'bob/fork', workflow_ref: { file: 'x.yml' } } };
    assert.equal((await http(registry, 'POST', `/-/package/${escaped}/trust`, { token: bob, body: [rule] })).status, 403, 'bob is no maintainer');
    assert.equal((await http(registry, 'POST', `/-/package/${escaped}/trust`, { body: [rule] })).status, 401, 'anonymous');
    assert.equal((await http(registry, 'GET', `/-/package/${escaped}/trust`, { token: bob })).status, 403);
    assert.equal((await http(registry, 'GET', `/-/package/${encodeURIComponent('@mycompany/nope')}/trust`, { token: alice })).status, 404);
    for (const body of [[{ type: 'circleci', claims: {} }], [{ type: 'github', claims: { repository: 'no-slash', workflow_ref: { file: 'a.yml' } } }], [{ type: 'github', claims: { repository: 'a/b', workflow_ref: { file: '../a.yml' } } }], [], 'text']) {
      const answer = await http(registry, 'POST', `/-/package/${escaped}/trust`, { token: alice, body });
      assert.equal(answer.status, 400, JSON.stringify(body));
      assert.equal(typeof answer.body.error, 'string');
    }
    const rules = await http(registry, 'GET', `/-/package/${escaped}/trust`, { token: alice });
    assert.equal(rules.status, 200);
    assert.equal((rules.body as unknown as unknown[]).length, 1, 'refused bodies added nothing');
  });

  test('npm publish with no npm token succeeds from the trusted repository', async () => {
    issuer.claims = githubClaims('acme/widget');
    const ci = createClientDir(registry); // no token at all
    const before = issuer.minted;
    const published = await ciNpm(ci, issuer, ['publish', '--loglevel=verbose'], writePackage(ci.dir, { name: PKG, version: '1.1.0' }));
    assert.equal(published.code, 0, `${published.stdout}\n${published.stderr}`);
    assert.ok(issuer.minted > before, 'npm asked the CI issuer for an id_token');
    assert.match(published.stderr, /Successfully retrieved and set token/);
    const packument = await http(registry, 'GET', `/${encodeURIComponent(PKG)}`);
    const versions = packument.body.versions as Record<string, { _npmUser?: { name?: string } }>;
    assert.ok(versions['1.1.0'], 'the version was published');
    assert.equal(versions['1.1.0']._npmUser?.name, 'alice', 'published on behalf of the maintainer who trusted the repository');
  });

  test('another repository (or workflow) is refused: the exchange answers 403 and npm publish fails', async () => {
    issuer.claims = githubClaims('evil/widget');
    const ci = createClientDir(registry);
    const published = await ciNpm(ci, issuer, ['publish', '--loglevel=verbose'], writePackage(ci.dir, { name: PKG, version: '1.2.0' }));
    assert.notEqual(published.code, 0, published.stdout);
    assert.match(published.stderr, /Failed token exchange/);
    assert.match(published.stderr, /E401|ENEEDAUTH|E403/);

    const exchange = (idToken: string, name = PKG) =>
      http(registry, 'POST', `/-/npm/v1/oidc/token/exchange/package/${encodeURIComponent(name)}`, { token: idToken });
    const wrongRepo = await exchange(await issuer.sign(githubClaims('evil/widget')));
    assert.equal(wrongRepo.status, 403);
    assert.match(String(wrongRepo.body.error), /repository "evil\/widget" is not acme\/widget/);
    assert.equal((await exchange(await issuer.sign(githubClaims('acme/widget', 'other.yml')))).status, 403, 'another workflow file');
    assert.equal((await exchange(await issuer.sign(githubClaims('acme/widget')), OTHER)).status, 403, 'a package without rules');
    assert.equal((await exchange(await issuer.sign(githubClaims('acme/widget'), { audience: 'npm:elsewhere.example' }))).status, 401, 'wrong audience');
    assert.equal((await exchange(await issuer.sign(githubClaims('acme/widget'), { expiresIn: -120 }))).status, 401, 'expired id_token');
    assert.equal((await exchange(await issuer.sign(githubClaims('acme/widget'), { issuer: 'http://127.0.0.1:1' }))).status, 401, 'unknown issuer');
    assert.equal((await exchange(alice)).status, 401, 'a registry token is no id_token of a CI provider');
    assert.equal((await exchange('not-a-jwt')).status, 401);
    assert.equal((await http(registry, 'POST', `/-/npm/v1/oidc/token/exchange/package/${encodeURIComponent(PKG)}`)).status, 401, 'no Bearer');
    // a forged id_token: right claims, another key
    const { privateKey } = await generateKeyPair('ES256');
    const forged = await new SignJWT(githubClaims('acme/widget'))
      .setProtectedHeader({ alg: 'ES256', kid: 'test-key-1' })
      .setIssuer(issuer.url)
      .setAudience('npm:127.0.0.1')
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(privateKey);
    assert.equal((await exchange(forged)).status, 401, 'signature from another key');
  });

  test('the exchanged token is short-lived and limited to its package', async () => {
    const answer = await http(registry, 'POST', `/-/npm/v1/oidc/token/exchange/package/${encodeURIComponent(PKG)}`, {
      token: await issuer.sign(githubClaims('acme/widget')),
    });
    assert.equal(answer.status, 201, answer.text);
    const token = answer.body.token as string;
    const claims = decodeJwt(token);
    assert.equal(claims.pkg, PKG);
    assert.equal(claims.sub, 'alice');
    assert.ok((claims.exp as number) - (claims.iat as number) <= 15 * 60);
    assert.equal((await http(registry, 'GET', `/${encodeURIComponent(PKG)}`, { token })).status, 200, 'its own package');
    const other = await http(registry, 'GET', `/${encodeURIComponent(OTHER)}`, { token });
    assert.equal(other.status, 403, 'another package');
    assert.match(String(other.body.error), /only be used for package @mycompany\/tp-lib/);
    assert.equal((await http(registry, 'GET', '/-/npm/v1/tokens', { token })).status, 403, 'no other route');
    // it publishes; it does not move dist-tags, deprecate or unpublish
    const tag = await http(registry, 'PUT', `/-/package/${encodeURIComponent(PKG)}/dist-tags/next`, { token, body: '1.0.0' });
    assert.equal(tag.status, 403, tag.text);
    assert.match(String(tag.body.error), /may only publish new versions/);
    assert.equal((await http(registry, 'DELETE', `/${encodeURIComponent(PKG)}/-rev/1-x`, { token })).status, 403, 'no unpublish');
    assert.equal((await http(registry, 'GET', `/-/package/${encodeURIComponent(PKG)}/trust`, { token })).status, 403, 'cannot manage trust');
    const ci = createClientDir(registry, { token });
    const elsewhere = await ci.npm(['publish'], { cwd: writePackage(ci.dir, { name: OTHER, version: '2.0.0' }) });
    assert.notEqual(elsewhere.code, 0, 'cannot publish another package');
    assert.match(elsewhere.stderr, /403/);
  });

  test('npm trust revoke removes the rule: the trusted repository can no longer publish', async () => {
    const rules = await http(registry, 'GET', `/-/package/${encodeURIComponent(PKG)}/trust`, { token: alice });
    const id = (rules.body as unknown as { id: string }[])[0].id;
    const revoked = await aliceClient.npm(['trust', 'revoke', PKG, '--id', id]);
    assert.equal(revoked.code, 0, revoked.stderr);
    issuer.claims = githubClaims('acme/widget');
    const ci = createClientDir(registry);
    const published = await ciNpm(ci, issuer, ['publish'], writePackage(ci.dir, { name: PKG, version: '1.3.0' }));
    assert.notEqual(published.code, 0, published.stdout);
    assert.equal((await http(registry, 'DELETE', `/-/package/${encodeURIComponent(PKG)}/trust/${id}`, { token: alice })).status, 404, 'already gone');
  });

  test('GitLab mode: NPM_ID_TOKEN from a configured GitLab issuer, npm trust gitlab', async () => {
    const added = await aliceClient.npm(['trust', 'gitlab', OTHER, '--project', 'group/sub/project', '--file', '.gitlab-ci.yml', '--allow-publish', '--yes']);
    assert.equal(added.code, 0, added.stderr);
    const gitlabToken = (project: string) =>
      issuer.sign(
        { project_path: project, ci_config_ref_uri: `gitlab.example.com/${project}//.gitlab-ci.yml@refs/heads/main`, project_visibility: 'private' },
        { issuer: `${issuer.url}/gitlab` },
      );
    const gitlabNpm = async (project: string, version: string) => {
      const ci = createClientDir(registry);
      const env = cleanEnv({
        npm_config_userconfig: ci.npmrc,
        npm_config_cache: ci.cache,
        npm_config_update_notifier: 'false',
        HOME: ci.dir,
        CI: 'true',
        GITLAB_CI: 'true',
        NPM_ID_TOKEN: await gitlabToken(project),
      });
      for (const key of ['GITHUB_ACTIONS', 'ACTIONS_ID_TOKEN_REQUEST_URL', 'ACTIONS_ID_TOKEN_REQUEST_TOKEN', 'SIGSTORE_ID_TOKEN']) delete env[key];
      return run('npm', ['publish'], { cwd: writePackage(ci.dir, { name: OTHER, version }), env });
    };
    const ok = await gitlabNpm('group/sub/project', '1.1.0');
    assert.equal(ok.code, 0, `${ok.stdout}\n${ok.stderr}`);
    const refused = await gitlabNpm('group/other', '1.2.0');
    assert.notEqual(refused.code, 0, refused.stdout);
    // a GitHub id_token does not satisfy a GitLab rule, even with matching-looking claims
    const cross = await http(registry, 'POST', `/-/npm/v1/oidc/token/exchange/package/${encodeURIComponent(OTHER)}`, {
      token: await issuer.sign({ project_path: 'group/sub/project', ci_config_ref_uri: 'gitlab.example.com/group/sub/project//.gitlab-ci.yml@refs/heads/main' }),
    });
    assert.equal(cross.status, 403);
    const versions = (await http(registry, 'GET', `/${encodeURIComponent(OTHER)}`)).body.versions as Record<string, unknown>;
    assert.deepEqual(Object.keys(versions).sort(), ['1.0.0', '1.1.0']);
  });

  test('rules survive a restart (atomic file beside the storage)', async () => {
    const added = await http(registry, 'POST', `/-/package/${encodeURIComponent(PKG)}/trust`, {
      token: alice,
      body: [{ type: 'github', claims: { repository: 'acme/widget', workflow_ref: { file: 'release.yml' }, environment: 'prod' } }],
    });
    assert.equal(added.status, 201, added.text);
    registry = await registry.restart();
    const exchange = (claims: JWTPayload) =>
      issuer.sign(claims).then((idToken) => http(registry, 'POST', `/-/npm/v1/oidc/token/exchange/package/${encodeURIComponent(PKG)}`, { token: idToken }));
    assert.equal((await exchange(githubClaims('acme/widget'))).status, 403, 'environment required by the rule is missing');
    assert.equal((await exchange(githubClaims('acme/widget', 'release.yml', { environment: 'staging' }))).status, 403);
    assert.equal((await exchange(githubClaims('acme/widget', 'release.yml', { environment: 'prod' }))).status, 201);
  });
});
