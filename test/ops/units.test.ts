/**
 * Pure parts of the ops work: the bounded route label, URL redaction for DEBUG lines, the core
 * metrics table, the metrics access rule (docs/operations.md).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, rmSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { MAX_SERIES, createConfigFile, defaultFields, encodeRecord, formatDebugLine, redactUrl, registryMetrics, registerReadyCheck, runReadyChecks } from '../../plugins/registry-core/index';
import { IndexSizeReader } from '../../plugins/verdaccio-registry-ops/index-size';
import { metricsRefusal, parseOpsOptions } from '../../plugins/verdaccio-registry-ops/options';
import { promClientLoaded, renderMetrics } from '../../plugins/verdaccio-registry-ops/render';
import { ROUTE_LABELS, methodLabel, routeLabel } from '../../plugins/verdaccio-registry-ops/route-label';
import { NODE_BIN, PROJECT_ROOT } from '../harness/registry';

describe('route label', () => {
  test('15.4 route label: known routes map to their pattern', () => {
    const cases: [string, string][] = [
      ['/-/ping', '/-/ping'],
      ['/-/PING/', '/-/ping'],
      ['/-/metrics', '/-/metrics'],
      ['/lodash', '/:package'],
      ['/@acme/lib', '/:package'],
      ['/@acme%2flib', '/:package'],
      ['/@acme%2Flib?write=true', '/:package'],
      ['/lodash/1.2.3', '/:package/:version'],
      ['/@acme/lib/latest', '/:package/:version'],
      ['/lodash/-/lodash-1.0.0.tgz', '/:package/-/:filename'],
      ['/@acme/lib/-/lib-1.0.0.tgz', '/:package/-/:filename'],
      ['/@acme/lib/-/lib-1.0.0.tgz/-rev/3-abc', '/:package/-/:filename/-rev/:revision'],
      ['/@acme/lib/-rev/3-abc', '/:package/-rev/:revision'],
      ['/-/user/token/eyJabc.def.ghi', '/-/user/token/:token'],
      ['/-/user/org.couchdb.user:alice', '/-/user/:user'],
      ['/-/npm/v1/tokens/token/abc', '/-/npm/v1/tokens/token/:key'],
      ['/-/package/@acme/lib/dist-tags', '/-/package/:package/dist-tags'],
      ['/-/package/lib/dist-tags/beta', '/-/package/:package/dist-tags/:tag'],
      ['/-/package/%40acme%2flib/dist-tags/beta', '/-/package/:package/dist-tags/:tag'],
      ['/-/package/lib/collaborators', '/-/package/:package/*'],
      ['/-/v1/search?text=x', '/-/v1/search'],
      ['/-/whatever', '/-/*'],
      ['/_dashboard', '/_dashboard'],
      ['/_dashboard/api/config', '/_dashboard/api/*'],
      ['/_dashboard/app.js', '/_dashboard/*'],
      ['/_auth/.well-known/jwks.json', '/_auth/.well-known/jwks.json'],
      ['/_auth/other', '/_auth/*'],
      ['/a/b/c/d', '/:package/*'],
      ['*', 'other'],
      ['/..', 'other'],
    ];
    for (const [path, label] of cases) assert.equal(routeLabel(path), label, path);
  });

  test('15.4 route label: any request target gives one of the fixed labels (bounded cardinality)', () => {
    const segment = fc.oneof(fc.constantFrom('-', '-rev', '@acme', '@x%2fy', 'dist-tags', '_dashboard', 'api', '', '..', 'lodash', '1.0.0'), fc.string({ maxLength: 12 }));
    const target = fc.oneof(
      fc.string({ maxLength: 80 }),
      fc.array(segment, { maxLength: 7 }).map((parts) => `/${parts.join('/')}`),
      fc.tuple(fc.array(segment, { maxLength: 5 }), fc.string({ maxLength: 20 })).map(([parts, query]) => `/${parts.join('/')}?${query}`),
    );
    fc.assert(
      fc.property(target, (path) => {
        assert.ok(ROUTE_LABELS.includes(routeLabel(path)), `${JSON.stringify(path)} → ${routeLabel(path)}`);
      }),
      { numRuns: 2000 },
    );
    assert.equal(methodLabel('get'), 'GET');
    assert.equal(methodLabel('BREW'), 'OTHER');
    assert.equal(methodLabel(undefined), 'OTHER');
  });
});

describe('DEBUG line redaction', () => {
  const jwt = fc
    .tuple(fc.stringMatching(/^[A-Za-z0-9_-]{10,40}$/), fc.stringMatching(/^[A-Za-z0-9_-]{10,80}$/), fc.stringMatching(/^[A-Za-z0-9_-]{10,60}$/))
    .map((parts) => parts.join('.'));

  test('15.2 redaction: a token in a logout path, anywhere in a path, or in the query never reaches a DEBUG line', () => {
    fc.assert(
      fc.property(jwt, fc.stringMatching(/^[a-z]{1,10}$/), (token, key) => {
        for (const url of [`/-/user/token/${token}`, `/-/USER/TOKEN/${encodeURIComponent(token)}?x=1`, `/-/v1/done/${token}`, `/x?${key}=${token}`, `/x?token=${token}&${key}=1`]) {
          const line = formatDebugLine('http', `DELETE ${redactUrl(url)} 200 1.0 ms`);
          assert.ok(!line.includes(token), `${url} → ${line}`);
        }
      }),
      { numRuns: 300 },
    );
    assert.equal(redactUrl('/-/user/token/abc'), '/-/user/token/[redacted]');
    assert.equal(redactUrl('/-/v1/search?text=secret&size=20'), '/-/v1/search?text=…&size=…');
    assert.equal(redactUrl('/@acme/lib/-/lib-1.0.0.tgz'), '/@acme/lib/-/lib-1.0.0.tgz');
    assert.equal(redactUrl(`/-/v1/login/${'ab'.repeat(20)}`), '/-/v1/login/[redacted]');
  });

  test('15.2 debug line: one line, fields quoted when they contain spaces', () => {
    assert.equal(formatDebugLine('lock', 'waited\nfor x', { ms: 1.5, key: 'a b', none: undefined }), 'registry debug lock: waited for x ms=1.5 key="a b"\n');
  });
});

describe('core metrics table', () => {
  let n = 0;
  const fresh = (): ReturnType<typeof registryMetrics> => registryMetrics(`/tmp/ops-unit-${process.pid}-${n++}/registry.lockb`);

  test('15.4 metrics: counters, gauges and cumulative histogram buckets in prom-client JSON shape', () => {
    const metrics = fresh();
    metrics.inc('registry_publishes_total');
    metrics.inc('registry_publishes_total', {}, 2);
    metrics.inc('registry_packument_cache_requests_total', { outcome: 'hit' });
    metrics.observe('registry_lock_wait_seconds', 0.003, { lock: 'package' });
    metrics.observe('registry_lock_wait_seconds', 20, { lock: 'package' });
    metrics.add('registry_websocket_clients', 2);
    metrics.add('registry_websocket_clients', -1);
    const byName = new Map(metrics.snapshot().map((metric) => [metric.name, metric]));
    assert.deepEqual(byName.get('registry_publishes_total')?.values, [{ value: 3, labels: {} }]);
    assert.deepEqual(byName.get('registry_packument_cache_requests_total')?.values, [{ value: 1, labels: { outcome: 'hit' } }]);
    assert.deepEqual(byName.get('registry_websocket_clients')?.values, [{ value: 1, labels: {} }]);
    const hist = byName.get('registry_lock_wait_seconds')?.values ?? [];
    const bucket = (le: number | string): number | undefined => hist.find((v) => v.metricName === 'registry_lock_wait_seconds_bucket' && v.labels.le === le)?.value;
    assert.equal(bucket(0.001), 0);
    assert.equal(bucket(0.005), 1);
    assert.equal(bucket(10), 1);
    assert.equal(bucket('+Inf'), 2);
    assert.equal(hist.find((v) => v.metricName === 'registry_lock_wait_seconds_count')?.value, 2);
    assert.equal(hist.find((v) => v.metricName === 'registry_lock_wait_seconds_sum')?.value, 20.003);
  });

  test('15.4 metrics: unknown labels and decreasing counters are refused; label sets are capped', () => {
    const metrics = fresh();
    assert.throws(() => metrics.inc('registry_packument_cache_requests_total', { path: '/x' }), /has no label "path"/);
    assert.throws(() => metrics.inc('registry_publishes_total', {}, -1), /cannot decrease/);
    assert.throws(() => metrics.inc('registry_nope' as never), /unknown metric/);
    for (let i = 0; i < MAX_SERIES + 50; i++) metrics.inc('registry_http_requests_total', { method: 'GET', route: `r${i}`, status: '200' });
    const values = metrics.snapshot().find((metric) => metric.name === 'registry_http_requests_total')?.values ?? [];
    assert.equal(values.length, MAX_SERIES + 1);
    assert.deepEqual(values.at(-1), { value: 50, labels: { method: 'overflow', route: 'overflow', status: 'overflow' } });
  });

  test('17.x bound series (counter()/histogram()) count exactly what inc()/observe() count, refuse what they refuse, and overflow the same way', () => {
    const bound = fresh();
    const plain = fresh();
    const hit = bound.counter('registry_packument_cache_requests_total', { outcome: 'hit' });
    const duration = bound.histogram('registry_http_request_duration_seconds', { method: 'GET', route: '/:package' });
    for (const seconds of [0.0005, 0.002, 3]) {
      hit.inc();
      duration.observe(seconds);
      plain.inc('registry_packument_cache_requests_total', { outcome: 'hit' });
      plain.observe('registry_http_request_duration_seconds', seconds, { method: 'GET', route: '/:package' });
    }
    hit.inc(2);
    plain.inc('registry_packument_cache_requests_total', { outcome: 'hit' }, 2);
    const of = (metrics: ReturnType<typeof registryMetrics>, name: string): unknown => metrics.snapshot().find((metric) => metric.name === name)?.values;
    for (const name of ['registry_packument_cache_requests_total', 'registry_http_request_duration_seconds']) assert.deepEqual(of(bound, name), of(plain, name), name);
    assert.throws(() => bound.counter('registry_packument_cache_requests_total', { path: '/x' }), /has no label "path"/);
    assert.throws(() => hit.inc(-1), /cannot decrease/);
    assert.throws(() => duration.observe(Number.NaN), /finite/);
    // bound before the metric filled up, first counted after: overflow, like inc()
    const capped = fresh();
    const late = capped.counter('registry_http_requests_total', { method: 'GET', route: 'late', status: '200' });
    for (let i = 0; i < MAX_SERIES; i++) capped.inc('registry_http_requests_total', { method: 'GET', route: `r${i}`, status: '200' });
    late.inc();
    const values = (of(capped, 'registry_http_requests_total') ?? []) as { value: number; labels: Record<string, string> }[];
    assert.equal(values.length, MAX_SERIES + 1);
    assert.deepEqual(values.at(-1), { value: 1, labels: { method: 'overflow', route: 'overflow', status: 'overflow' } });
  });

  test('15.4 metrics: a gauge source is read at snapshot time; a throwing source shows no value', () => {
    const metrics = fresh();
    let clients = 4;
    metrics.gaugeSource('registry_websocket_clients', () => clients);
    clients = 5;
    assert.deepEqual(metrics.snapshot().find((m) => m.name === 'registry_websocket_clients')?.values, [{ value: 5, labels: {} }]);
    metrics.gaugeSource('registry_index_records', () => {
      throw new Error('gone');
    });
    assert.deepEqual(metrics.snapshot().find((m) => m.name === 'registry_index_records')?.values, []);
  });

  test('15.4 ready checks: a throwing or failing check makes the registry not ready, named', async () => {
    const path = `/tmp/ops-unit-ready-${process.pid}/registry.lockb`;
    registerReadyCheck(path, 'storage', () => ({ ok: true, state: 'writable' }));
    const unregister = registerReadyCheck(path, 'upstream', () => {
      throw new Error('upstream unreachable');
    });
    const failing = await runReadyChecks(path);
    assert.equal(failing.ready, false);
    assert.deepEqual(failing.checks.upstream, { ok: false, state: 'upstream unreachable' });
    unregister();
    assert.deepEqual(await runReadyChecks(path), { ready: true, checks: { storage: { ok: true, state: 'writable' } } });
    assert.throws(() => registerReadyCheck(path, 'Bad Name', () => ({ ok: true, state: '' })), /lowercase/);
  });
});

describe('metrics access', () => {
  test('15.4 metrics access: loopback by default (not through a proxy), a token when configured, public on request', () => {
    const loopback = parseOpsOptions({}, {}).metrics;
    assert.equal(metricsRefusal(loopback, { peerAddress: '127.0.0.1', headers: {} }), null);
    assert.equal(metricsRefusal(loopback, { peerAddress: '::ffff:127.0.0.1', headers: {} }), null);
    assert.equal(metricsRefusal(loopback, { peerAddress: '::1', headers: {} }), null);
    assert.equal(metricsRefusal(loopback, { peerAddress: '10.0.0.5', headers: {} })?.status, 403);
    assert.equal(metricsRefusal(loopback, { peerAddress: '127.0.0.1', headers: { 'x-forwarded-for': '203.0.113.9' } })?.status, 403);
    const token = parseOpsOptions({ metrics_token: 'a-long-enough-secret' }, {}).metrics;
    assert.equal(metricsRefusal(token, { peerAddress: '127.0.0.1', headers: {} })?.status, 401);
    assert.equal(metricsRefusal(token, { peerAddress: '10.0.0.5', headers: { authorization: 'Bearer wrong-wrong-wrong-wrong' } })?.status, 403);
    assert.equal(metricsRefusal(token, { peerAddress: '10.0.0.5', headers: { authorization: 'Bearer a-long-enough-secret' } }), null);
    const fromEnv = parseOpsOptions({ metrics_token: 'a-long-enough-secret' }, { REGISTRY_METRICS_TOKEN: 'the-environment-wins' }).metrics;
    assert.equal(metricsRefusal(fromEnv, { peerAddress: '10.0.0.5', headers: { authorization: 'Bearer the-environment-wins' } }), null);
    assert.equal(metricsRefusal(parseOpsOptions({ metrics_public: true }, {}).metrics, { peerAddress: '10.0.0.5', headers: {} }), null);
    assert.throws(() => parseOpsOptions({ metrics_token: 'short' }, {}), /at least 16/);
    assert.throws(() => parseOpsOptions({ metrics_public: 'yes' }, {}), /true or false/);
    assert.throws(() => parseOpsOptions({ metrics_public: true, metrics_token: 'a-long-enough-secret' }, {}), /not both/);
  });
});

describe('cold start', () => {
  test('15.4 prom-client is not loaded with the ops part, only by the first render', async () => {
    const probe = spawnSync(
      NODE_BIN,
      ['-e', `require(${JSON.stringify(join(PROJECT_ROOT, 'build/plugins/verdaccio-registry-ops/index.js'))}); process.stdout.write(String(Object.keys(require.cache).some((k) => /[\\/]node_modules[\\/]prom-client[\\/]/.test(k))))`],
      { encoding: 'utf8' },
    );
    assert.equal(probe.status, 0, probe.stderr);
    assert.equal(probe.stdout, 'false');
    assert.equal(promClientLoaded(), false);
    const metrics = registryMetrics(`/tmp/ops-unit-render-${process.pid}/registry.lockb`);
    metrics.inc('registry_http_requests_total', { method: 'GET', route: '/:package', status: '200' });
    metrics.observe('registry_http_request_duration_seconds', 0.02, { method: 'GET', route: '/:package' });
    const { contentType, text } = await renderMetrics(metrics.snapshot());
    assert.equal(promClientLoaded(), true);
    assert.equal(contentType, 'text/plain; version=0.0.4; charset=utf-8');
    assert.match(text, /^registry_http_requests_total\{method="GET",route="\/:package",status="200"\} 1$/m);
    assert.match(text, /^registry_http_request_duration_seconds_bucket\{method="GET",route="\/:package",le="0\.025"\} 1$/m);
    assert.match(text, /^registry_http_request_duration_seconds_bucket\{method="GET",route="\/:package",le="0\.01"\} 0$/m);
    assert.match(text, /^process_cpu_seconds_total /m);
  });
});

describe('index size', () => {
  test('15.4 index size: counts appended records incrementally, a half-written record once complete, again after a shrink', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ops-index-size-'));
    try {
      const path = join(dir, 'registry.lockb');
      createConfigFile(path, defaultFields());
      const reader = new IndexSizeReader(path);
      assert.deepEqual(reader.read(), { records: 0, bytes: 0 });
      const record = (i: number): Buffer => encodeRecord({ kind: 'publish', name: `pkg-${i}`, version: '1.0.0', sha512: '', time: 1_700_000_000_000 + i, detail: '' });
      appendFileSync(path, Buffer.concat([record(1), record(2)]));
      assert.equal(reader.read().records, 2);
      const third = record(3);
      appendFileSync(path, third.subarray(0, 7)); // an append in flight
      assert.equal(reader.read().records, 2);
      appendFileSync(path, third.subarray(7));
      const size = reader.read();
      assert.equal(size.records, 3);
      assert.equal(size.bytes, record(1).length + record(2).length + third.length);
      truncateSync(path, 17 + record(1).length); // a rebuild made it smaller
      assert.equal(reader.read().records, 1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
