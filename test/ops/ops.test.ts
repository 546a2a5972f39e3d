/**
 * The ops part through a real registry (docs/operations.md): DEBUG switched live from the
 * dashboard, `GET /-/metrics` parsed by real parsers with counters moving with real npm traffic,
 * `GET /-/ready`, metrics access, and a legacy (version 0) registry.lockb migrated on start.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { CACHE_HEADER, DEBUG_REQUEST_HEADER, HEADER_SIZE, encodeHeader, decodeHeader, PackageIndex } from '../../plugins/registry-core/index';
import { ROUTE_LABELS } from '../../plugins/verdaccio-registry-ops/route-label';
import { addUser, createClientDir, startRegistry, writePackage, type ClientDir, type RunningRegistry } from '../harness/registry';
import { SocketClient, socketUrl } from '../dashboard/helpers';

interface ParsedSample {
  value?: string;
  labels?: Record<string, string>;
  buckets?: Record<string, string>;
  count?: string;
  sum?: string;
}
interface ParsedFamily {
  name: string;
  type: string;
  metrics: ParsedSample[];
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const parsePrometheusTextFormat = require('parse-prometheus-text-format') as (text: string) => ParsedFamily[];

const PROMTOOL = ['/usr/bin/promtool', '/usr/local/bin/promtool'].find((path) => existsSync(path));

async function scrape(registry: RunningRegistry, headers: Record<string, string> = {}): Promise<{ status: number; type: string | null; text: string }> {
  const response = await fetch(`${registry.url}/-/metrics`, { headers });
  return { status: response.status, type: response.headers.get('content-type'), text: await response.text() };
}

async function families(registry: RunningRegistry): Promise<Map<string, ParsedFamily>> {
  const { status, text } = await scrape(registry);
  assert.equal(status, 200, text);
  return new Map(parsePrometheusTextFormat(text).map((family) => [family.name, family]));
}

function sum(family: ParsedFamily | undefined, match: Record<string, string> = {}): number {
  return (family?.metrics ?? [])
    .filter((sample) => Object.entries(match).every(([key, value]) => sample.labels?.[key] === value))
    .reduce((total, sample) => total + Number(sample.value ?? sample.count ?? 0), 0);
}

/** Waits (bounded) until the registry's output matches. */
async function waitForLog(registry: RunningRegistry, pattern: RegExp, what: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (pattern.test(registry.logs())) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.fail(`no ${what} in the registry output within 5 s:\n${registry.logs().slice(-3000)}`);
}

async function toggleDebug(registry: RunningRegistry, token: string): Promise<boolean> {
  const response = await fetch(`${registry.url}/_dashboard/api/config`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ op: 'toggleFeature', flag: 'DEBUG' }),
  });
  assert.equal(response.status, 200, await response.text());
  // the DEBUG bit (featureFlags bit 2, byte 9) as written before the answer
  return (readFileSync(registry.lockbPath)[9] & 4) !== 0;
}

describe('ops: DEBUG, metrics, ready', () => {
  let registry: RunningRegistry;
  let admin: string;
  let client: ClientDir;

  before(async () => {
    registry = await startRegistry();
    admin = await addUser(registry, 'alice', 'alice-secret-1');
    client = createClientDir(registry, { token: admin });
  });
  after(async () => {
    await registry?.stop();
  });

  test('15.2 DEBUG toggled from the dashboard: request lines on within one request, off likewise, never a token', async () => {
    assert.match(registry.logs(), /ops: GET \/-\/metrics \(loopback only\), GET \/-\/ready; DEBUG request lines off/);
    await fetch(`${registry.url}/ops-probe-before`);
    assert.equal(await toggleDebug(registry, admin), true);
    // the very next request is logged: method, redacted path, status, duration, user
    await fetch(`${registry.url}/ops-probe-on?secret=hunter2`, { headers: { authorization: `Bearer ${admin}` } });
    await waitForLog(registry, /registry debug http: GET \/ops-probe-on\?secret=… 404 [\d.]+ ms user=alice route=\/:package/, 'request line for /ops-probe-on');
    assert.doesNotMatch(registry.logs(), /ops-probe-before/);
    assert.doesNotMatch(registry.logs(), /hunter2/);

    // npm logout puts the token in the URL: the line shows it redacted
    const session = await addUser(registry, 'alice', 'alice-secret-1');
    const logout = await fetch(`${registry.url}/-/user/token/${encodeURIComponent(session)}`, { method: 'DELETE', headers: { authorization: `Bearer ${session}` } });
    assert.equal(logout.status, 200);
    await waitForLog(registry, /registry debug http: DELETE \/-\/user\/token\/\[redacted\] 200 /, 'logout line');
    assert.ok(!registry.logs().includes(session), 'a token reached the log');
    assert.ok(!registry.logs().includes(admin), 'a token reached the log');

    // off within one request: a request after the toggle is not logged (proved by a later marker that is)
    assert.equal(await toggleDebug(registry, admin), false);
    await fetch(`${registry.url}/ops-probe-off`);
    assert.equal(await toggleDebug(registry, admin), true);
    await fetch(`${registry.url}/ops-probe-marker`);
    await waitForLog(registry, /GET \/ops-probe-marker 404/, 'marker line');
    assert.doesNotMatch(registry.logs(), /ops-probe-off/);
    assert.equal(await toggleDebug(registry, admin), false);
  });

  test('15.2 DEBUG lock line and lock-wait metrics: a publish that waits for a lock left by a dead process', async () => {
    const before = sum((await families(registry)).get('registry_lock_waits_total'), { lock: 'package' });
    // the storage's cross-process lock of @acme/locked, held by a process that no longer exists
    const target = join(registry.storageDir, '.locks', encodeURIComponent('@acme/locked'));
    mkdirSync(`${target}.lock`, { recursive: true });
    writeFileSync(`${target}.owner`, `${hostname()}\n${spawnSync(process.execPath, ['-e', '0']).pid}\n`);
    assert.equal(await toggleDebug(registry, admin), true);
    try {
      const published = await client.npm(['publish'], { cwd: writePackage(client.dir, { name: '@acme/locked', version: '1.0.0' }) });
      assert.equal(published.code, 0, published.stderr);
      await waitForLog(registry, /registry debug lock: waited for @acme\/locked ms=[\d.]+/, 'lock wait line');
    } finally {
      assert.equal(await toggleDebug(registry, admin), false);
    }
    const after = await families(registry);
    assert.equal(sum(after.get('registry_lock_waits_total'), { lock: 'package' }), before + 1);
    const text = (await scrape(registry)).text;
    assert.ok(Number(/^registry_lock_wait_seconds_count\{lock="package"\} (\d+)$/m.exec(text)?.[1]) >= 1, 'the wait is in the histogram');
  });

  test('15.4 /-/metrics: Prometheus text that real parsers accept; counters move with publish, packument GETs and sockets', async (t: TestContext) => {
    const first = await scrape(registry);
    assert.equal(first.status, 200);
    assert.match(first.type ?? '', /^text\/plain; version=0\.0\.4/);
    const before = await families(registry);
    assert.equal(before.get('registry_publishes_total')?.type, 'COUNTER');
    assert.equal(before.get('registry_http_request_duration_seconds')?.type, 'HISTOGRAM');
    const publishesBefore = sum(before.get('registry_publishes_total'));
    const recordsBefore = sum(before.get('registry_index_records'));

    const pkg = writePackage(client.dir, { name: '@acme/metered', version: '1.0.0' });
    const published = await client.npm(['publish'], { cwd: pkg });
    assert.equal(published.code, 0, published.stderr);

    const afterPublish = await families(registry);
    assert.equal(sum(afterPublish.get('registry_publishes_total')), publishesBefore + 1);
    assert.ok(sum(afterPublish.get('registry_index_records')) >= recordsBefore + 2, 'publish + dist-tag records');
    assert.ok(sum(afterPublish.get('registry_index_bytes')) > 0);
    assert.ok(sum(afterPublish.get('registry_http_requests_total'), { method: 'PUT', route: '/:package', status: '201' }) >= 1);

    const hitsBefore = sum(afterPublish.get('registry_packument_cache_requests_total'), { outcome: 'hit' });
    const packumentsBefore = sum(afterPublish.get('registry_http_requests_total'), { method: 'GET', route: '/:package', status: '200' });
    // right after a write the store's revision is in its racy window (cache bypassed): GET until two answers came from it
    let gets = 0;
    let hits = 0;
    while (hits < 2 && gets < 60) {
      const response = await fetch(`${registry.url}/@acme%2fmetered`, { headers: { [DEBUG_REQUEST_HEADER]: 'cache' } });
      assert.equal(response.status, 200);
      await response.arrayBuffer();
      gets++;
      if (response.headers.get(CACHE_HEADER) === 'hit') hits++;
      else await new Promise((resolve) => setTimeout(resolve, 30));
    }
    assert.equal(hits, 2, `no cache hits in ${gets} GETs`);
    const sockets = await SocketClient.open(socketUrl(registry));
    try {
      const afterReads = await families(registry);
      assert.equal(sum(afterReads.get('registry_packument_cache_requests_total'), { outcome: 'hit' }), hitsBefore + hits, 'one hit counted per answer from the cache');
      assert.equal(sum(afterReads.get('registry_http_requests_total'), { method: 'GET', route: '/:package', status: '200' }), packumentsBefore + gets);
      // parse-prometheus-text-format folds labelled histograms into one sample: read those lines directly (promtool checks them below)
      const text = (await scrape(registry)).text;
      const count = Number(/^registry_http_request_duration_seconds_count\{method="GET",route="\/:package"\} (\d+)$/m.exec(text)?.[1]);
      const inf = Number(/^registry_http_request_duration_seconds_bucket\{method="GET",route="\/:package",le="\+Inf"\} (\d+)$/m.exec(text)?.[1]);
      assert.ok(count >= gets, text);
      assert.equal(inf, count);
      assert.equal(sum(afterReads.get('registry_websocket_clients')), 1);
      // the route label is always a pattern, never a raw path
      for (const sample of afterReads.get('registry_http_requests_total')?.metrics ?? []) {
        assert.ok((ROUTE_LABELS as readonly string[]).includes(sample.labels?.route ?? ''), `route label ${sample.labels?.route}`);
      }
    } finally {
      await sockets.close();
    }

    const text = (await scrape(registry)).text;
    if (!PROMTOOL) {
      t.diagnostic('promtool not installed (Debian: apt-get install prometheus): checked with parse-prometheus-text-format only');
      return;
    }
    const checked = spawnSync(PROMTOOL, ['check', 'metrics'], { input: text, encoding: 'utf8' });
    // exit 1 = unparsable; 3 = lint findings: those must only be prom-client's own default metrics' names
    assert.notEqual(checked.status, 1, `${checked.stdout}${checked.stderr}`);
    const findings = `${checked.stdout}${checked.stderr}`.split('\n').filter((line) => line.trim() !== '');
    const ours = findings.filter((line) => !/^nodejs_active_(handles|requests|resources)_total non-counter metrics should not have "_total" suffix$/.test(line));
    assert.deepEqual(ours, [], `promtool findings: ${findings.join('\n')}`);
  });

  test('15.4 cache hits answered in front of express: counted per method and status, DEBUG lines name the user (anonymous and token)', async () => {
    const pkg = writePackage(client.dir, { name: '@acme/fast-lines', version: '1.0.0' });
    const published = await client.npm(['publish'], { cwd: pkg });
    assert.equal(published.code, 0, published.stderr);
    const path = '/@acme%2ffast-lines';
    // node:http, not fetch: exactly these request headers (fetch adds its own Accept-Encoding, and conditional handling)
    const get = (init: { method?: string; headers?: Record<string, string> } = {}): Promise<{ status: number; headers: { get(name: string): string | null } }> =>
      new Promise((resolve, reject) => {
        const req = httpRequest(`${registry.url}${path}`, { method: init.method ?? 'GET', headers: { [DEBUG_REQUEST_HEADER]: 'cache', ...init.headers } }, (res) => {
          res.resume();
          res.on('end', () => {
            const header = (name: string): string | null => {
              const value = res.headers[name.toLowerCase()];
              return value === undefined ? null : String(value);
            };
            resolve({ status: res.statusCode ?? 0, headers: { get: header } });
          });
        });
        req.on('error', reject);
        req.end();
      });
    // past the racy window, until the cache answers
    let warm = await get();
    for (let i = 0; i < 60 && warm.headers.get(CACHE_HEADER) !== 'hit'; i++) {
      await new Promise((resolve) => setTimeout(resolve, 30));
      warm = await get();
    }
    assert.equal(warm.headers.get(CACHE_HEADER), 'hit', 'the packument never came from the cache');
    const etag = warm.headers.get('etag') ?? '';
    const before = (await families(registry)).get('registry_http_requests_total');
    const count = (family: ParsedFamily | undefined, method: string, status: string): number => sum(family, { method, route: '/:package', status });
    assert.equal(await toggleDebug(registry, admin), true);
    try {
      const answers = [
        await get(),
        await get({ headers: { authorization: `Bearer ${admin}` } }),
        await get({ method: 'HEAD' }),
        await get({ headers: { 'if-none-match': etag } }),
      ];
      assert.deepEqual(answers.map((answer) => answer.status), [200, 200, 200, 304]);
      for (const answer of answers) assert.equal(answer.headers.get(CACHE_HEADER), 'hit', 'answered by the fast path');
      await waitForLog(registry, /registry debug http: GET \/@acme%2ffast-lines 200 [\d.]+ ms user=- route=\/:package/, 'anonymous hit line');
      await waitForLog(registry, /registry debug http: GET \/@acme%2ffast-lines 200 [\d.]+ ms user=alice route=\/:package/, 'token hit line');
      await waitForLog(registry, /registry debug http: HEAD \/@acme%2ffast-lines 200 [\d.]+ ms user=- route=\/:package/, 'HEAD hit line');
      await waitForLog(registry, /registry debug http: GET \/@acme%2ffast-lines 304 [\d.]+ ms user=- route=\/:package/, '304 line');
    } finally {
      assert.equal(await toggleDebug(registry, admin), false);
    }
    const after = (await families(registry)).get('registry_http_requests_total');
    assert.equal(count(after, 'GET', '200'), count(before, 'GET', '200') + 2);
    assert.equal(count(after, 'HEAD', '200'), count(before, 'HEAD', '200') + 1);
    assert.equal(count(after, 'GET', '304'), count(before, 'GET', '304') + 1);
  });

  test('15.4 /-/metrics is loopback-only by default: a proxied request is refused with a JSON error', async () => {
    const proxied = await scrape(registry, { 'x-forwarded-for': '203.0.113.7' });
    assert.equal(proxied.status, 403);
    assert.match(JSON.parse(proxied.text).error as string, /loopback clients only; set `metrics_token`/);
  });

  test('15.4 /-/ready: 200 with every check, 503 naming storage when the storage folder is not writable', async () => {
    const ready = await fetch(`${registry.url}/-/ready`);
    assert.equal(ready.status, 200);
    assert.deepEqual(await ready.json(), { ready: true, checks: { storage: 'writable', keys: 'loaded', config: 'ok', upstream: 'not configured' } });

    const moved = `${registry.storageDir}.away`;
    renameSync(registry.storageDir, moved);
    writeFileSync(registry.storageDir, 'not a folder');
    try {
      let last: { status: number; body: { ready?: boolean; failing?: string[]; error?: string; checks?: Record<string, string> } } | undefined;
      // the storage probe is cached for 1 s: bounded polling until the next probe
      for (let i = 0; i < 60; i++) {
        const response = await fetch(`${registry.url}/-/ready`);
        last = { status: response.status, body: (await response.json()) as NonNullable<typeof last>['body'] };
        if (last.status === 503) break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.equal(last?.status, 503, JSON.stringify(last));
      assert.deepEqual(last?.body.failing, ['storage']);
      assert.match(last?.body.error ?? '', /^not ready: storage \(not writable/);
      assert.ok(!JSON.stringify(last?.body).includes(registry.dir), 'no server path in the answer');
    } finally {
      renameSync(registry.storageDir, `${registry.storageDir}.file`);
      renameSync(moved, registry.storageDir);
    }
  });

  test('15.2 version byte 0: a legacy registry.lockb is migrated on start (index from storage, version 1, boot line)', async () => {
    await registry.stop();
    // what the original config tool leaves: the 17 config bytes with version 0, nothing of ours after them
    const fields = decodeHeader(readFileSync(registry.lockbPath).subarray(0, HEADER_SIZE));
    writeFileSync(registry.lockbPath, Buffer.concat([encodeHeader({ ...fields, version: 0 }), Buffer.from('legacy tool bytes')]));
    registry = await registry.restart();
    assert.match(registry.logs(), /migrated .*registry\.lockb from format version 0 to 1: index regenerated from .*storage \(\d+ records for [1-9]\d* packages, replaced 17 bytes after the header\)/);
    const bytes = readFileSync(registry.lockbPath);
    assert.equal(bytes[4], 1);
    const index = PackageIndex.open(registry.lockbPath);
    try {
      assert.ok(index.readAll().some((record) => record.kind === 'publish' && record.name === '@acme/metered' && record.version === '1.0.0'));
    } finally {
      index.close();
    }
    const packument = await fetch(`${registry.url}/@acme%2fmetered`);
    assert.equal(packument.status, 200);
  });
});

describe('ops: metrics behind a token', () => {
  let registry: RunningRegistry;
  before(async () => {
    registry = await startRegistry({
      editConfig: (config) => {
        const middlewares = config.middlewares as Record<string, unknown>;
        middlewares['registry-ops'] = { metrics_token: 'scrape-secret-0123456789' };
      },
    });
  });
  after(async () => {
    await registry?.stop();
  });

  test('15.4 metrics_token: without it 401, a wrong one 403, the right one 200 (also through a proxy)', async () => {
    assert.match(registry.logs(), /ops: GET \/-\/metrics \(bearer token\)/);
    const none = await scrape(registry);
    assert.equal(none.status, 401);
    assert.match(JSON.parse(none.text).error as string, /Bearer <metrics_token>/);
    assert.equal((await scrape(registry, { authorization: 'Bearer scrape-secret-wrong-wrong' })).status, 403);
    const ok = await scrape(registry, { authorization: 'Bearer scrape-secret-0123456789', 'x-forwarded-for': '203.0.113.7' });
    assert.equal(ok.status, 200);
    assert.ok(parsePrometheusTextFormat(ok.text).some((family) => family.name === 'registry_http_requests_total'));
    // the ready probe needs no token (load balancers call it)
    assert.equal((await fetch(`${registry.url}/-/ready`)).status, 200);
  });
});
