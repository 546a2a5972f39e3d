/**
 * The core's one upstream resolution (upstream-config.ts) and the upstream status getter
 * (upstream-status.ts): pure logic, unit and property tests. npm itself is asked once, for real.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  DEFAULT_UPSTREAM_MAXAGE_MS,
  askNpmRegistry,
  configuredUpstream,
  explicitUpstreamError,
  isLocalScope,
  localScopesOf,
  npmRegistryFromFiles,
  npmrcRegistry,
  parseDuration,
  registryEvents,
  reportUpstreamStatus,
  resolveUpstream,
  selfReferenceProblem,
  upstreamStatus,
  type RegistryEvent,
} from '../../plugins/registry-core/index';
import { cleanEnv } from '../harness/registry';

const neverAsk = (): Promise<string> => Promise.reject(new Error('npm must not be asked here'));

test('12.1 order: REGISTRY_UPSTREAM_URL, else uplinks (`upstream`, else the first), else npm; `off` disables', async () => {
  const config = { uplinks: { a: { url: 'http://127.0.0.1:1/' }, upstream: { url: 'http://127.0.0.1:2/x/', maxage: '5m', timeout: '7s' } } };
  const fromUplinks = await resolveUpstream({ config, env: {}, self: {}, askNpm: neverAsk });
  assert.ok(fromUplinks.ok && fromUplinks.upstream);
  assert.deepEqual(
    { url: fromUplinks.upstream.url, source: fromUplinks.upstream.source, maxAgeMs: fromUplinks.upstream.maxAgeMs, timeoutMs: fromUplinks.upstream.timeoutMs },
    { url: 'http://127.0.0.1:2/x', source: 'uplinks', maxAgeMs: 300_000, timeoutMs: 7000 },
  );
  const fromEnv = await resolveUpstream({ config, env: { REGISTRY_UPSTREAM_URL: 'http://127.0.0.1:3' }, self: {}, askNpm: neverAsk });
  assert.ok(fromEnv.ok && fromEnv.upstream?.url === 'http://127.0.0.1:3' && fromEnv.upstream.source === 'env' && fromEnv.upstream.maxAgeMs === 300_000);
  const off = await resolveUpstream({ config, env: { REGISTRY_UPSTREAM_URL: 'OFF' }, self: {}, askNpm: neverAsk });
  assert.deepEqual(off, { ok: true, upstream: null, disabled: 'REGISTRY_UPSTREAM_URL=off' });
  const cwd = mkdtempSync(join(tmpdir(), 'upstream-npm-'));
  const fromNpm = await resolveUpstream({ config: { uplinks: {} }, env: { HOME: cwd }, cwd, self: {}, askNpm: async () => 'http://127.0.0.1:4/\n' });
  assert.ok(fromNpm.ok && fromNpm.upstream?.url === 'http://127.0.0.1:4' && fromNpm.upstream.source === 'npm' && fromNpm.upstream.maxAgeMs === DEFAULT_UPSTREAM_MAXAGE_MS);
  const npmFails = await resolveUpstream({ config: {}, env: { HOME: cwd }, cwd, self: {}, askNpm: neverAsk });
  assert.ok(npmFails.ok && npmFails.upstream === null && /npm must not be asked/.test(npmFails.disabled));
});

test("12.1 npm's own config sources are read before npm is asked: npm_config_registry, project .npmrc, user .npmrc", async () => {
  const home = mkdtempSync(join(tmpdir(), 'upstream-home-'));
  const project = mkdtempSync(join(tmpdir(), 'upstream-project-'));
  writeFileSync(join(home, '.npmrc'), 'color=false\nregistry=http://127.0.0.1:11/\n');
  assert.equal(npmRegistryFromFiles({ HOME: home }, project), 'http://127.0.0.1:11/');
  writeFileSync(join(project, '.npmrc'), '; comment\nregistry = "${REG}"\n');
  assert.equal(npmRegistryFromFiles({ HOME: home, REG: 'http://127.0.0.1:12/' }, project), 'http://127.0.0.1:12/');
  assert.equal(npmRegistryFromFiles({ HOME: home, NPM_CONFIG_REGISTRY: 'http://127.0.0.1:13/' }, project), 'http://127.0.0.1:13/');
  const resolved = await resolveUpstream({ config: {}, env: { HOME: home, REG: 'http://127.0.0.1:12/' }, cwd: project, self: {}, askNpm: neverAsk });
  assert.ok(resolved.ok && resolved.upstream?.url === 'http://127.0.0.1:12');
  assert.equal(npmrcRegistry('[section]\nregistry=http://x/\n', {}), undefined);
  assert.equal(npmrcRegistry('registry=\\${KEEP}\n', { KEEP: 'no' }), '${KEEP}');
});

test('12.1 npm itself answers `npm config get registry` with an http(s) URL (the built-in default is npm\'s, never written here)', async () => {
  const home = mkdtempSync(join(tmpdir(), 'upstream-ask-'));
  const env = cleanEnv({ HOME: home });
  const answer = await askNpmRegistry(env, home);
  assert.match(answer, /^https?:\/\/[^\s]+$/);
});

test('12.1 an upstream that is this registry is refused: same normalized URL, or the same loopback host:port as a listen address', async () => {
  assert.match(selfReferenceProblem('http://LOCALHOST:4873/', { registryUrl: 'http://localhost:4873' }) ?? '', /own URL/);
  assert.match(selfReferenceProblem('http://127.0.0.1:4873', { listen: ['localhost:4873'] }) ?? '', /own listen address/);
  assert.match(selfReferenceProblem('http://127.0.0.1:5000/', { listen: ['5000'] }) ?? '', /own listen address/);
  assert.match(selfReferenceProblem('http://[::1]:5000/', { listen: ['0.0.0.0:5000'] }) ?? '', /own listen address/);
  assert.equal(selfReferenceProblem('http://127.0.0.1:5001/', { registryUrl: 'http://localhost:4873', listen: ['127.0.0.1:5000', '127.0.0.1:0'] }), null);
  assert.equal(selfReferenceProblem('http://10.0.0.2:5000/', { listen: ['127.0.0.1:5000'] }), null);
  const explicit = await resolveUpstream({ config: {}, env: { REGISTRY_UPSTREAM_URL: 'http://localhost:4873' }, self: { registryUrl: 'http://localhost:4873' }, askNpm: neverAsk });
  assert.ok(!explicit.ok && /refusing the upstream/.test(explicit.error));
  assert.match(explicitUpstreamError({}, { REGISTRY_UPSTREAM_URL: 'http://localhost:4873/' }, 'http://localhost:4873') ?? '', /refusing the upstream/);
  assert.equal(explicitUpstreamError({}, { REGISTRY_UPSTREAM_URL: 'off' }, 'http://localhost:4873'), null);
  // npm pointing at this registry (a user who already uses it as their one registry): no upstream, no failed start
  const viaNpm = await resolveUpstream({ config: {}, env: { npm_config_registry: 'http://localhost:4873/' }, self: { registryUrl: 'http://localhost:4873' }, askNpm: neverAsk });
  assert.ok(viaNpm.ok && viaNpm.upstream === null && /is this registry/.test(viaNpm.disabled));
});

test('12.2 local scopes: default @mycompany, configurable, refused when malformed; matching is per scope', () => {
  assert.deepEqual(localScopesOf({}), ['@mycompany']);
  assert.deepEqual(localScopesOf({ local_scopes: ['@Team', '@other'] }), ['@team', '@other']);
  assert.ok(localScopesOf({ local_scopes: ['team'] }) instanceof Error);
  assert.ok(localScopesOf({ local_scopes: 3 }) instanceof Error);
  assert.ok(isLocalScope('@mycompany/x', ['@mycompany']));
  assert.ok(isLocalScope('@MyCompany/x', ['@mycompany']));
  assert.ok(!isLocalScope('@mycompany-evil/x', ['@mycompany']));
  assert.ok(!isLocalScope('mycompany', ['@mycompany']));
});

test('12.1 bad upstream entries name their problem; property: resolution never throws, a URL is always http(s) without a trailing slash', async () => {
  for (const [config, env, problem] of [
    [{ uplinks: { upstream: {} } }, {}, /has no url/],
    [{ uplinks: { upstream: { url: 'ftp://127.0.0.1' } } }, {}, /must be http/],
    [{ uplinks: { upstream: { url: 'http://127.0.0.1', maxage: 'soon' } } }, {}, /maxage/],
    [{}, { REGISTRY_UPSTREAM_URL: 'not a url' }, /REGISTRY_UPSTREAM_URL is not a URL/],
    [{ uplinks: 'x' }, {}, /mapping/],
  ] as const) {
    const outcome = configuredUpstream(config, env);
    assert.ok(outcome && !outcome.ok, JSON.stringify(config));
    assert.match(outcome.error, problem);
  }
  await fc.assert(
    fc.asyncProperty(fc.anything(), fc.option(fc.oneof(fc.webUrl(), fc.string()), { nil: undefined }), async (uplinks, url) => {
      const outcome = await resolveUpstream({ config: { uplinks }, env: url === undefined ? {} : { REGISTRY_UPSTREAM_URL: url }, self: {}, askNpm: async () => 'http://127.0.0.1:1/' });
      if (outcome.ok && outcome.upstream) assert.match(outcome.upstream.url, /^https?:\/\/[^/]+(\/.*[^/])?$/);
    }),
    { numRuns: 500 },
  );
  fc.assert(
    fc.property(fc.anything(), (value) => {
      const ms = parseDuration(value, 1);
      assert.ok(ms === undefined || (Number.isSafeInteger(ms) && ms >= 0));
    }),
  );
  fc.assert(fc.property(fc.string(), (text) => void npmrcRegistry(text, {})));
});

test('12.8 upstream status: a getter for the dashboard, and one `upstream` event per health transition', () => {
  const lockb = join(mkdtempSync(join(tmpdir(), 'upstream-status-')), 'registry.lockb');
  const events: RegistryEvent[] = [];
  const off = registryEvents(lockb).on((event) => events.push(event));
  try {
    assert.deepEqual(upstreamStatus(lockb), { url: null, offline: false, lastSuccess: null, lastFailure: null, latencyMs: null, cachedPackages: 0, cachedBytes: 0 });
    reportUpstreamStatus(lockb, { url: 'http://127.0.0.1:1', cachedPackages: 2, cachedBytes: 10 });
    assert.equal(events.length, 0);
    reportUpstreamStatus(lockb, { lastSuccess: 1000, latencyMs: 5 });
    reportUpstreamStatus(lockb, { lastSuccess: 2000, latencyMs: 6 });
    reportUpstreamStatus(lockb, { lastFailure: { time: 3000, error: 'the upstream is unreachable (ECONNREFUSED)' } });
    reportUpstreamStatus(lockb, { lastFailure: { time: 4000, error: 'again' } });
    reportUpstreamStatus(lockb, { lastSuccess: 5000, latencyMs: 7 });
    assert.deepEqual(
      events.map((event) => [event.kind, event.time, event.detail]),
      [
        ['upstream', 1000, 'up'],
        ['upstream', 3000, 'down: the upstream is unreachable (ECONNREFUSED)'],
        ['upstream', 5000, 'up'],
      ],
    );
    const status = upstreamStatus(lockb);
    assert.deepEqual(status, { url: 'http://127.0.0.1:1', offline: false, lastSuccess: 5000, lastFailure: { time: 4000, error: 'again' }, latencyMs: 7, cachedPackages: 2, cachedBytes: 10 });
    status.lastFailure!.error = 'mutated';
    assert.equal(upstreamStatus(lockb).lastFailure?.error, 'again', 'the getter hands out copies');
  } finally {
    off();
  }
});
