/**
 * The pure parts of trusted publishing (docs/trusted-publishing.md): the claim matcher against
 * trust rules, the workflow-ref parser, the trust-config body parser, the package-limited-token
 * rule and which package a request path addresses — unit cases plus fast-check properties.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import * as core from '../../plugins/registry-core/index';
import { TokenStore } from '../../plugins/registry-core/token-store';
import { loadKeyRing } from '../../plugins/verdaccio-registry-auth/keys';
import { trustedPackageProblem } from '../../plugins/verdaccio-registry-auth/oidc-exchange';
import { TokenIssuer } from '../../plugins/verdaccio-registry-auth/token-issuer';
import { isPublishRequest, packageOfRequest } from '../../plugins/registry-core/request-package';

/** the package a path addresses, or null (none, or a malformed escape) */
function packageOfPath(path: string): string | null {
  const addressed = packageOfRequest('GET', path);
  return addressed.kind === 'package' ? addressed.name : null;
}
import { parseTrustConfig, ruleMismatch, splitWorkflowRef, type TrustRule } from '../../plugins/verdaccio-registry-auth/trust-rules';

const segment = fc.stringMatching(/^[A-Za-z0-9_.-]{1,20}$/).filter((s) => s !== '.' && s !== '..');
const file = fc.stringMatching(/^[A-Za-z0-9_-]{1,16}$/).chain((base) => fc.constantFrom(`${base}.yml`, `${base}.yaml`));
const ref = fc.constantFrom('refs/heads/main', 'refs/tags/v1.0.0', 'refs/heads/feature/x');

function rule(partial: Partial<TrustRule> & Pick<TrustRule, 'type' | 'entity' | 'file'>): TrustRule {
  return { id: 'r1', environment: null, permissions: null, createdBy: 'alice', created: 0, ...partial };
}

function githubClaims(repo: string, workflow: string, at: string, environment?: string): Record<string, unknown> {
  return { repository: repo, workflow_ref: `${repo}/.github/workflows/${workflow}@${at}`, ...(environment === undefined ? {} : { environment }) };
}

test('matcher: claims made from the rule match; any other repository, file or environment does not', () => {
  fc.assert(
    fc.property(segment, segment, file, ref, fc.option(segment, { nil: undefined }), segment, file, (owner, repo, wf, at, env, otherRepo, otherFile) => {
      const entity = `${owner}/${repo}`;
      const r = rule({ type: 'github', entity, file: wf, environment: env ?? null });
      assert.equal(ruleMismatch(r, githubClaims(entity, wf, at, env)), null);
      // GitHub names are case-insensitive
      assert.equal(ruleMismatch(r, githubClaims(entity.toUpperCase(), wf, at, env)), null);
      const other = `${owner}/${otherRepo}`;
      if (other.toLowerCase() !== entity.toLowerCase()) assert.notEqual(ruleMismatch(r, githubClaims(other, wf, at, env)), null);
      if (otherFile !== wf) assert.notEqual(ruleMismatch(r, githubClaims(entity, otherFile, at, env)), null);
      if (env !== undefined) {
        assert.notEqual(ruleMismatch(r, githubClaims(entity, wf, at)), null, 'environment required');
        assert.notEqual(ruleMismatch(r, githubClaims(entity, wf, at, `${env}x`)), null);
      }
    }),
  );
});

test('matcher: repository claim and workflow_ref must name the same repository', () => {
  const r = rule({ type: 'github', entity: 'acme/widget', file: 'release.yml' });
  const claims = { repository: 'acme/widget', workflow_ref: 'evil/widget/.github/workflows/release.yml@refs/heads/main' };
  assert.match(String(ruleMismatch(r, claims)), /another repository/);
  assert.match(String(ruleMismatch(r, { repository: 'acme/widget' })), /workflow_ref is missing/);
  assert.match(String(ruleMismatch(r, { repository: 42, workflow_ref: 'x' })), /repository/);
  assert.match(String(ruleMismatch({ ...r, permissions: ['createStagedPackage'] }, githubClaims('acme/widget', 'release.yml', 'refs/heads/main'))), /does not allow publishing/);
  assert.equal(ruleMismatch({ ...r, permissions: ['createPackage'] }, githubClaims('acme/widget', 'release.yml', 'refs/heads/main')), null);
});

test('matcher: GitLab project_path and ci_config_ref_uri', () => {
  const r = rule({ type: 'gitlab', entity: 'group/sub/project', file: '.gitlab-ci.yml' });
  const uri = 'gitlab.example.com/group/sub/project//.gitlab-ci.yml@refs/heads/main';
  assert.equal(ruleMismatch(r, { project_path: 'group/sub/project', ci_config_ref_uri: uri }), null);
  assert.notEqual(ruleMismatch(r, { project_path: 'group/other', ci_config_ref_uri: uri }), null);
  assert.notEqual(ruleMismatch(r, { project_path: 'group/sub/project', ci_config_ref_uri: uri.replace('.gitlab-ci.yml', 'other.yml') }), null);
  assert.deepEqual(splitWorkflowRef('gitlab', 'gitlab.example.com/g/p//ci/release.yml@refs/tags/v1'), { repo: 'g/p', file: 'release.yml' });
});

test('splitWorkflowRef: never throws, and recovers what was put in', () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 300 }), (text) => {
      splitWorkflowRef('github', text);
      splitWorkflowRef('gitlab', text);
    }),
  );
  fc.assert(
    fc.property(segment, segment, file, ref, (owner, repo, wf, at) => {
      assert.deepEqual(splitWorkflowRef('github', `${owner}/${repo}/.github/workflows/${wf}@${at}`), { repo: `${owner}/${repo}`, file: wf });
    }),
  );
});

test('parseTrustConfig: what npm trust github|gitlab sends is accepted, anything else refused with 400', () => {
  assert.deepEqual(parseTrustConfig({ type: 'github', claims: { repository: 'a/b', workflow_ref: { file: 'r.yml' }, environment: 'prod' }, permissions: ['createPackage'] }), {
    type: 'github',
    entity: 'a/b',
    file: 'r.yml',
    environment: 'prod',
    permissions: ['createPackage'],
  });
  assert.equal(parseTrustConfig({ type: 'gitlab', claims: { project_path: 'g/p', ci_config_ref_uri: { file: '.gitlab-ci.yml' } } }).entity, 'g/p');
  fc.assert(
    fc.property(fc.anything(), (input) => {
      try {
        const parsed = parseTrustConfig(input);
        assert.ok(parsed.type === 'github' || parsed.type === 'gitlab');
      } catch (error) {
        assert.equal((error as { status?: number }).status, 400);
      }
    }),
  );
});

test('package-limited tokens: only requests that name exactly their package', () => {
  assert.equal(trustedPackageProblem(null, { peerAddress: '::1', intent: 'write' }), undefined, 'not limited');
  assert.equal(trustedPackageProblem('@a/b', { peerAddress: '::1', intent: 'write', package: '@a/b', publish: true }), undefined);
  assert.equal(trustedPackageProblem('@a/b', { peerAddress: '::1', intent: 'read', package: '@a/b' }), undefined);
  assert.equal(trustedPackageProblem('@a/b', { peerAddress: '::1', intent: 'write', package: '@a/b' })?.code, 'package', 'a write that is not a publish');
  assert.equal(trustedPackageProblem('@a/b', { peerAddress: '::1', intent: 'write', package: '@a/c' })?.code, 'package');
  assert.equal(trustedPackageProblem('@a/b', { peerAddress: '::1', intent: 'read', })?.code, 'package');
  assert.equal(trustedPackageProblem('@a/b', { peerAddress: '::1', intent: 'read' })?.code, 'package', 'a channel that cannot say');
});

test('packageOfPath: the package of every package route, null for the rest', () => {
  const name = fc.oneof(segment.filter((s) => !s.startsWith('-') && !s.startsWith('.') && !s.startsWith('_')), fc.tuple(segment, segment).map(([s, n]) => `@${s}/${n}`));
  fc.assert(
    fc.property(name, (pkg) => {
      const escaped = pkg.replace('/', '%2f');
      for (const path of [`/${escaped}`, `/${pkg}`, `/${escaped}/-/x-1.0.0.tgz`, `/${pkg}/-rev/3-abc`, `/${escaped}/1.0.0?write=true`, `/-/package/${escaped}/dist-tags/latest`]) {
        assert.equal(packageOfPath(path), pkg, path);
      }
    }),
  );
  for (const path of ['/', '/-/npm/v1/tokens', '/-/whoami', '/_dashboard/api', '/-/v1/search?text=x', '/%E0%A4%A']) assert.equal(packageOfPath(path), null, path);
  fc.assert(fc.property(fc.string({ maxLength: 200 }), (text) => void packageOfPath(`/${text}`)));
});

test('isPublishRequest: PUT /<package> only (not -rev changes, dist-tags, other methods)', () => {
  for (const path of ['/@a%2fb', '/@a/b', '/%40a%2Fb', '/plain', '/plain/', '/@a%2Fb?x=1']) assert.equal(isPublishRequest('PUT', path), true, path);
  for (const path of ['/plain/-rev/1-a', '/plain/latest', '/@a/b/latest', '/@a%2fb/latest', '/-/package/plain/dist-tags/latest', '/-/npm/v1/tokens', '/']) {
    assert.equal(isPublishRequest('PUT', path), false, path);
  }
  assert.equal(isPublishRequest('DELETE', '/plain'), false);
  assert.equal(isPublishRequest('POST', '/plain'), false);
});

test('the pkg claim through TokenIssuer.check (the seam every channel uses): the WebSocket, which names no package, refuses it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'trust-seam-'));
  const lockb = join(dir, 'registry.lockb');
  core.createConfigFile(lockb, core.defaultFields());
  const config = core.ConfigFile.open(lockb);
  const envFile = join(dir, '.env.local');
  core.setEnvFileValue(envFile, 'BUN_REGISTRY_URL', 'http://localhost:4873');
  const store = TokenStore.open(join(dir, 'storage', '.registry-tokens.json'));
  try {
    const issuer = new TokenIssuer(loadKeyRing(join(dir, 'keys')), { fields: () => config.getConfig().fields, registryUrl: () => core.readRegistryUrl(envFile) }, store, { defaultTtlSeconds: 3600 });
    const { token } = await issuer.issue('alice', ['alice'], { ttlSeconds: 900, trustedPackage: '@a/b' });
    assert.equal((await issuer.verify(token)).trustedPackage, '@a/b');
    await assert.rejects(issuer.check(token, { peerAddress: '127.0.0.1', intent: 'read' }), (error: { code?: string }) => error.code === 'package');
    await assert.rejects(issuer.check(token, { peerAddress: '127.0.0.1', intent: 'write', package: '@a/b' }), (error: { code?: string }) => error.code === 'package');
    assert.equal((await issuer.check(token, { peerAddress: '127.0.0.1', intent: 'write', package: '@a/b', publish: true })).user, 'alice');
    const plain = await issuer.issue('alice', ['alice']);
    assert.equal((await issuer.verify(plain.token)).trustedPackage, null, 'ordinary tokens are not package-limited');
  } finally {
    config.close();
    store.close();
  }
});
