/**
 * Issue 19.3: `npm audit` never ends in a 500. Without an upstream (uplinks empty) our registry
 * answers a clear JSON error that npm 11 prints; with one (the uplink in config.yaml) the bulk
 * advisory request is relayed and the answer passed back. The upstream here is a second real
 * registry of ours on 127.0.0.1:0 — it has no upstream itself, so its own clear error (naming
 * its host:port) coming back through the first registry proves the relay. If the registry the
 * user's npm is configured with answers audits, it is used as a real upstream too (skipped
 * with the reason otherwise; its host is never written anywhere).
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { chooseUpstream, parseTimeout } from '../../plugins/verdaccio-registry-audit/upstream';
import { NODE_BIN, PROJECT_ROOT, cleanEnv, createClientDir, run, startRegistry, type RunningRegistry } from '../harness/registry';
import { freePort } from '../../scripts/bench/stock';

const BULK = '/-/npm/v1/security/advisories/bulk';
const QUICK = '/-/npm/v1/security/audits/quick';
const LODASH_4_17_20_INTEGRITY = 'sha512-PlhdFcillOINfeV7Ni6oF1TAEayyZBoZ8bcshTHqOYJYlrqzRK5hagpagky5o4HfCzzd1TRkXPMFq6cKk9rGmA==';

/** A project npm can audit without installing: package.json + a lockfile naming lodash@4.17.20. */
function auditableProject(parent: string, registryUrl: string): string {
  const dir = join(parent, 'project');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'audited-project', version: '1.0.0', dependencies: { lodash: '4.17.20' } }));
  writeFileSync(
    join(dir, 'package-lock.json'),
    JSON.stringify({
      name: 'audited-project',
      version: '1.0.0',
      lockfileVersion: 3,
      requires: true,
      packages: {
        '': { name: 'audited-project', version: '1.0.0', dependencies: { lodash: '4.17.20' } },
        'node_modules/lodash': { version: '4.17.20', resolved: `${registryUrl}/lodash/-/lodash-4.17.20.tgz`, integrity: LODASH_4_17_20_INTEGRITY },
      },
    }),
  );
  return dir;
}


describe('19.3 npm audit', () => {
  const running: RunningRegistry[] = [];
  let lone: RunningRegistry; // no uplinks
  let relaying: RunningRegistry; // uplinks: { upstream: lone }
  before(async () => {
    lone = await startRegistry();
    running.push(lone);
    relaying = await startRegistry({ editConfig: (config) => (config.uplinks = { upstream: { url: lone.url, timeout: '10s' } }) });
    running.push(relaying);
  });
  after(async () => {
    await Promise.all(running.map((registry) => registry.stop()));
  });

  test('19.3 npm audit ended in a 500 (invalid json response body): without an upstream npm prints our clear message', async () => {
    const client = createClientDir(lone);
    const audited = await client.npm(['audit'], { cwd: auditableProject(client.dir, lone.url) });
    assert.notEqual(audited.code, 0);
    assert.match(audited.stdout, /npm audit needs an upstream registry: 127\.0\.0\.1:\d+ has no `uplinks`/);
    assert.match(audited.stderr, /501 Not Implemented/);
    assert.doesNotMatch(`${audited.stdout}${audited.stderr}`, /invalid json|500 Internal/i);

    for (const path of [BULK, QUICK]) {
      const response = await fetch(`${lone.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"lodash":["4.17.20"]}' });
      assert.equal(response.status, 501, path);
      assert.match(((await response.json()) as { error: string }).error, /needs an upstream registry/);
    }
  });

  test('19.3 with an upstream the bulk request is relayed and its answer passed back (npm prints the upstream\'s own message)', async () => {
    const client = createClientDir(relaying);
    const audited = await client.npm(['audit'], { cwd: auditableProject(client.dir, relaying.url) });
    assert.notEqual(audited.code, 0);
    // the message names the UPSTREAM's host:port: it was answered there and relayed
    assert.match(audited.stdout, new RegExp(`npm audit needs an upstream registry: ${new URL(lone.url).host.replace(/\./g, '\\.')} has no`));
    assert.match(audited.stderr, new RegExp(`501 Not Implemented - POST ${relaying.url.replace(/\./g, '\\.')}/-/npm/v1/security/advisories/bulk`));

    // a gzip-encoded request (as npm sends it) and the quick route are relayed too
    for (const path of [BULK, QUICK]) {
      const response = await fetch(`${relaying.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
        body: gzipSync('{"lodash":["4.17.20"]}'),
      });
      assert.equal(response.status, 501, path);
      assert.equal(response.headers.get('x-registry-audit-upstream'), 'upstream');
      assert.match(((await response.json()) as { error: string }).error, new RegExp(new URL(lone.url).host.replace(/\./g, '\\.')));
    }
  });

  test('19.3 OFFLINE set: npm audit prints a clear error and the upstream is never contacted; cleared, the relay works again', async () => {
    const cli = (flag: string) => run(NODE_BIN, [join(PROJECT_ROOT, 'build', 'scripts', 'config-cli.js'), '--file', relaying.lockbPath, 'toggle', flag], { env: cleanEnv() });
    assert.equal((await cli('OFFLINE')).code, 0);
    try {
      const marker = lone.logs().length;
      // the running registry sees another process's change within 100 ms (docs/config-format.md)
      let answer: Response | undefined;
      for (let i = 0; i < 20; i++) {
        answer = await fetch(`${relaying.url}${BULK}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"lodash":["4.17.20"]}' });
        if (answer.status === 503) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      assert.equal(answer?.status, 503);
      assert.match(((await answer!.json()) as { error: string }).error, /is OFFLINE/);
      const client = createClientDir(relaying);
      const audited = await client.npm(['audit'], { cwd: auditableProject(client.dir, relaying.url) });
      assert.notEqual(audited.code, 0);
      assert.match(audited.stdout, /npm audit needs the upstream registry, and 127\.0\.0\.1:\d+ is OFFLINE/);
      assert.doesNotMatch(lone.logs().slice(marker), /security\/advisories/, 'the upstream saw no audit request');
    } finally {
      assert.equal((await cli('OFFLINE')).code, 0);
    }
  });

  test('19.3 an unreachable upstream, a non-object body and a relay loop get JSON errors, never a 500', async () => {
    const port = await freePort();
    const dead = await startRegistry({ editConfig: (config) => (config.uplinks = { upstream: { url: `http://127.0.0.1:${port}` } }) });
    running.push(dead);
    const client = createClientDir(dead);
    const audited = await client.npm(['audit'], { cwd: auditableProject(client.dir, dead.url) });
    assert.notEqual(audited.code, 0);
    assert.match(audited.stdout, new RegExp(`could not reach the upstream registry upstream \\(http://127\\.0\\.0\\.1:${port}\\): ECONNREFUSED`));
    assert.match(audited.stderr, /502 Bad Gateway/);

    const notObject = await fetch(`${relaying.url}${BULK}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '["lodash"]' });
    assert.equal(notObject.status, 400);
    assert.match(((await notObject.json()) as { error: string }).error, /must be a JSON object/);
    const looped = await fetch(`${relaying.url}${BULK}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-registry-audit-hops': '3' }, body: '{}' });
    assert.equal(looped.status, 508);
    assert.match(((await looped.json()) as { error: string }).error, /loops back/);
  });

  test('19.3 200 random audit bodies through the relay: each a JSON answer (relayed 501, or 400), never a 500', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.json(), fc.string({ maxLength: 100 })), async (body) => {
        const response = await fetch(`${relaying.url}${BULK}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
        assert.ok([400, 413, 501].includes(response.status), `${response.status} for ${body}`);
        const answer = (await response.json()) as { error?: unknown };
        assert.equal(typeof answer.error, 'string');
      }),
      { numRuns: 200 },
    );
  });

  test('19.3 with the npm-configured registry as upstream, npm audit prints a real report', async (t) => {
    const configured = await run('npm', ['config', 'get', 'registry'], { env: cleanEnv() });
    const upstreamUrl = configured.stdout.trim();
    let reason: string | undefined;
    if (configured.code !== 0 || !/^https?:\/\//.test(upstreamUrl)) reason = 'npm has no registry configured';
    else {
      try {
        const probe = await fetch(`${upstreamUrl.replace(/\/+$/, '')}${BULK}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: '{"lodash":["4.17.20"]}',
          signal: AbortSignal.timeout(10_000),
        });
        const body = await probe.text();
        if (probe.status !== 200 || !body.includes('"lodash"')) reason = `the npm-configured registry answered ${probe.status} to the bulk advisory request (no audit service there)`;
      } catch (error) {
        reason = `the npm-configured registry is not reachable (${(error as { cause?: { code?: string } }).cause?.code ?? (error as Error).name})`;
      }
    }
    if (reason !== undefined) {
      t.diagnostic(`skipped: ${reason}`);
      t.skip(reason);
      return;
    }
    const real = await startRegistry({ editConfig: (config) => (config.uplinks = { upstream: { url: upstreamUrl } }) });
    running.push(real);
    const client = createClientDir(real);
    const audited = await client.npm(['audit'], { cwd: auditableProject(client.dir, real.url) });
    assert.match(audited.stdout, /# npm audit report/);
    assert.match(audited.stdout, /lodash/);
    assert.match(audited.stdout, /vulnerabilit/);
  });
});

describe('19.3 the upstream choice (config.yaml uplinks)', () => {
  test('`upstream` wins, else the first uplink; empty means none; a bad entry names its problem', () => {
    assert.deepEqual(chooseUpstream({}), { ok: true, upstream: null });
    assert.deepEqual(chooseUpstream(undefined), { ok: true, upstream: null });
    const first = chooseUpstream({ a: { url: 'http://127.0.0.1:1/' }, b: { url: 'http://127.0.0.1:2' } });
    assert.ok(first.ok && first.upstream?.name === 'a' && first.upstream.url === 'http://127.0.0.1:1');
    const named = chooseUpstream({ a: { url: 'http://127.0.0.1:1' }, upstream: { url: 'https://127.0.0.1:3/path/', timeout: '5s' } });
    assert.ok(named.ok && named.upstream?.name === 'upstream' && named.upstream.url === 'https://127.0.0.1:3/path' && named.upstream.timeoutMs === 5000);
    const token = chooseUpstream({ upstream: { url: 'http://127.0.0.1:1', auth: { type: 'bearer', token_env: 'AUDIT_TOKEN' } } }, { AUDIT_TOKEN: 't0k' });
    assert.ok(token.ok && token.upstream?.authorization === 'Bearer t0k');
    for (const [uplinks, problem] of [
      [{ upstream: {} }, /has no url/],
      [{ upstream: { url: 'not a url' } }, /not a URL/],
      [{ upstream: { url: 'ftp://127.0.0.1' } }, /must be http/],
      [{ upstream: { url: 'http://127.0.0.1', timeout: 'soon' } }, /timeout/],
      [{ upstream: { url: 'http://127.0.0.1', auth: { type: 'bearer', token_env: 'UNSET_VARIABLE_X' } } }, /no token/],
      ['uplinks', /mapping/],
    ] as const) {
      const choice = chooseUpstream(uplinks, {});
      assert.ok(!choice.ok, JSON.stringify(uplinks));
      assert.match(choice.error, problem);
    }
    fc.assert(
      fc.property(fc.anything(), (uplinks) => {
        const choice = chooseUpstream(uplinks, {});
        if (choice.ok && choice.upstream) assert.ok(/^https?:\/\//.test(choice.upstream.url) && choice.upstream.timeoutMs > 0);
        const timeout = parseTimeout(uplinks);
        assert.ok(timeout === undefined || (Number.isSafeInteger(timeout) && timeout > 0));
      }),
      { numRuns: 2000 },
    );
    assert.equal(parseTimeout('2m'), 120_000);
    assert.equal(parseTimeout(250), 250);
    assert.equal(parseTimeout('0s'), undefined);
  });
});
