/**
 * 15.3 Bun as a runtime: the registry's start script run by Bun (node_modules/.bin/bun, the
 * project's devDependency) serves what Node serves. One Bun-run server, the key integration
 * scenarios against it with the real clients: boot timeline + ready, adduser and login, npm
 * publish, npm install, bun install, npm whoami (token verify) and logout (revocation, the
 * logout-URL redaction hook), the dashboard page, its WebSocket with a config event from the CLI
 * in another process, the terminal client, /-/metrics counting that traffic, and the presence
 * guard refusing a start with a plugin missing. Skipped (saying why) when Bun is not installed.
 * docs/operations.md, section "Bun".
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { dump, load } from 'js-yaml';
import { BUN_BIN, NODE_BIN, PROJECT_ROOT, addUser, cleanEnv, createClientDir, run, startRegistry, writePackage, type RunningRegistry } from '../harness/registry';
import { ADMIN, SocketClient, configHexOnDisk, socketUrl, withDashboard } from '../dashboard/helpers';

interface ParsedFamily {
  name: string;
  metrics: { value?: string; labels?: Record<string, string> }[];
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const parsePrometheusTextFormat = require('parse-prometheus-text-format') as (text: string) => ParsedFamily[];

const REGISTRY_BIN = join(PROJECT_ROOT, 'bin', 'registry.js');
const bunMissing = existsSync(BUN_BIN) ? undefined : `Bun is not installed at ${BUN_BIN} (npm devDependency \`bun\`; run npm ci with its install script allowed)`;

async function whoami(registry: RunningRegistry, token: string): Promise<{ status: number; username?: string }> {
  const response = await fetch(`${registry.url}/-/whoami`, { headers: { authorization: `Bearer ${token}` } });
  const body = (await response.json()) as { username?: string };
  return { status: response.status, username: body.username };
}

describe('15.3 the server on Bun', { skip: bunMissing }, () => {
  let registry: RunningRegistry;
  let admin: string;

  before(async () => {
    registry = await startRegistry({ runtime: 'bun', editConfig: withDashboard, timeoutMs: 60_000 });
  });
  after(async () => {
    await registry?.stop();
  });

  it('15.3 boots on Bun and prints the whole timeline: ready, dashboard, terminal endpoint', () => {
    const logs = registry.logs();
    assert.match(logs, /\[boot \+\s*[\d.]+ ms\] runtime Bun \d+\.\d+\.\d+: Node's server diagnostics channels published/);
    assert.match(logs, /listening on http:\/\/127\.0\.0\.1:\d+ — ready/);
    assert.match(logs, new RegExp(`dashboard ${registry.url}/_dashboard`));
    assert.match(logs, new RegExp(`terminal endpoint ${registry.url.replace(/^http/, 'ws')}/_dashboard/terminal`));
    assert.equal(registry.runtime, 'bun');
  });

  it('15.3 adduser creates a user, a second adduser with the password logs in, a wrong one is refused', async () => {
    admin = await addUser(registry, ADMIN.name, ADMIN.password);
    assert.equal((await whoami(registry, admin)).username, ADMIN.name);
    const again = await addUser(registry, ADMIN.name, ADMIN.password);
    assert.notEqual(again, admin, 'a login issues a fresh token');
    assert.equal((await whoami(registry, again)).username, ADMIN.name);
    await assert.rejects(addUser(registry, ADMIN.name, 'not-the-password'), /adduser alice failed: (401|409)/);
  });

  it('15.3 npm publish, npm install and bun install against the Bun-run server', async () => {
    const publisher = createClientDir(registry, { token: admin });
    const pkg = writePackage(publisher.dir, { name: '@mycompany/on-bun', version: '1.0.0' });
    const published = await publisher.npm(['publish'], { cwd: pkg });
    assert.equal(published.code, 0, published.stderr);

    const npmConsumer = createClientDir(registry);
    const npmApp = writePackage(npmConsumer.dir, { name: 'npm-consumer', version: '0.0.0' });
    const npmInstalled = await npmConsumer.npm(['install', '@mycompany/on-bun@1.0.0'], { cwd: npmApp });
    assert.equal(npmInstalled.code, 0, npmInstalled.stderr);
    assert.match(readFileSync(join(npmApp, 'node_modules', '@mycompany', 'on-bun', 'index.js'), 'utf8'), /@mycompany\/on-bun@1\.0\.0/);

    const bunConsumer = createClientDir(registry);
    const bunApp = writePackage(bunConsumer.dir, { name: 'bun-consumer', version: '0.0.0' });
    const bunInstalled = await bunConsumer.bun(['add', '@mycompany/on-bun@1.0.0'], { cwd: bunApp });
    assert.equal(bunInstalled.code, 0, `${bunInstalled.stdout}\n${bunInstalled.stderr}`);
    assert.match(readFileSync(join(bunApp, 'node_modules', '@mycompany', 'on-bun', 'index.js'), 'utf8'), /@mycompany\/on-bun@1\.0\.0/);
  });

  it('15.3 npm whoami verifies the token; npm logout revokes it at once (the logout-URL hook runs on Bun too)', async () => {
    const token = await addUser(registry, ADMIN.name, ADMIN.password);
    const client = createClientDir(registry, { token });
    const who = await client.npm(['whoami']);
    assert.equal(who.code, 0, who.stderr);
    assert.equal(who.stdout.trim(), ADMIN.name);
    const loggedOut = await client.npm(['logout', `--registry=${registry.url}/`]);
    assert.equal(loggedOut.code, 0, loggedOut.stderr);
    assert.equal((await whoami(registry, token)).username, undefined, 'revoked');
    assert.doesNotMatch(registry.logs(), new RegExp(token.slice(-24).replace(/[.*+?^${}()|[\]\\-]/g, '\\$&')), 'the token never reaches a log line');
  });

  it('15.3 dashboard page, WebSocket config event from the CLI in another process, and the terminal client', async () => {
    const page = await fetch(`${registry.url}/_dashboard`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /text\/html/);

    const watcher = await SocketClient.open(socketUrl(registry));
    const first = await watcher.next((m) => m.type === 'config', 5000, 'config on connect');
    assert.equal(`${first.hex}${first.check}`, configHexOnDisk(registry));
    const cli = await run(NODE_BIN, [REGISTRY_BIN, 'config', '--file', registry.lockbPath, 'set', '14', '27'], { env: cleanEnv() });
    assert.equal(cli.code, 0, `${cli.stdout}\n${cli.stderr}`);
    const changed = await watcher.next((m) => m.type === 'config' && (m.fields as { rows: number }).rows === 27, 5000, 'config after CLI write');
    assert.equal(`${changed.hex}${changed.check}`, configHexOnDisk(registry));
    const event = await watcher.next((m) => m.type === 'event' && m.kind === 'config', 5000, 'config event after CLI write');
    assert.match(String(event.detail), /rows \d+ → 27/);
    await watcher.close();

    const term = await run(NODE_BIN, [REGISTRY_BIN, 'term', '--registry', registry.url, '--once', '--json'], { env: cleanEnv(), timeoutMs: 30_000 });
    assert.equal(term.code, 0, `${term.stdout}\n${term.stderr}`);
    const snapshot = JSON.parse(term.stdout) as Record<string, unknown>;
    assert.ok(JSON.stringify(snapshot).includes('27'), `the terminal sees the rows the CLI set: ${term.stdout.slice(0, 400)}`);
  });

  it('15.3 /-/metrics on Bun parses and counts the requests above (the request hook runs on Bun)', async () => {
    const response = await fetch(`${registry.url}/-/metrics`);
    assert.equal(response.status, 200);
    const text = await response.text();
    const byName = new Map(parsePrometheusTextFormat(text).map((family) => [family.name, family]));
    const requests = byName.get('registry_http_requests_total');
    assert.ok(requests, 'registry_http_requests_total present');
    const total = requests.metrics.reduce((sum, sample) => sum + Number(sample.value ?? 0), 0);
    assert.ok(total >= 10, `the traffic above was counted (${total})`);
    assert.ok(requests.metrics.some((sample) => sample.labels?.route === '/-/whoami'), 'by route pattern');
    assert.equal(Number(byName.get('registry_publishes_total')?.metrics[0]?.value), 1, 'the one publish');
    const ready = await fetch(`${registry.url}/-/ready`);
    assert.equal(ready.status, 200, await ready.text());
  });
});

describe('15.3 the presence guard on Bun', { skip: bunMissing }, () => {
  it('15.3 refuses to listen when a configured plugin cannot load (as on Node)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bun-guard-'));
    const config = load(readFileSync(join(PROJECT_ROOT, 'config.yaml'), 'utf8')) as Record<string, unknown>;
    Object.assign(config, { storage: './storage', plugins: join(PROJECT_ROOT, 'plugins'), registry_lockb: './registry.lockb', listen: '127.0.0.1:0' });
    (config.middlewares as Record<string, unknown>)['registry-ops'] = { metrics_public: true, metrics_token: 'x'.repeat(20) }; // both: the ops part refuses to load
    writeFileSync(join(dir, 'config.yaml'), dump(config));
    const child = spawn(BUN_BIN, [join(PROJECT_ROOT, 'build', 'scripts', 'start.js'), '-c', join(dir, 'config.yaml')], {
      cwd: dir,
      env: cleanEnv({ REGISTRY_UPSTREAM_URL: 'off' }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    // the exit, or (the defect) the server listening anyway: then it is stopped and the test fails
    const code = await new Promise<number | null | 'listened'>((resolve) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
      child.stdout.on('data', () => {
        if (/listening on http|http address/.test(output)) resolve('listened'); // ours, or Verdaccio's own line
      });
      child.once('exit', (exitCode) => {
        clearTimeout(timer);
        resolve(exitCode);
      });
    });
    if (code === 'listened') {
      child.kill('SIGKILL');
      await new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve(undefined) : child.once('exit', resolve)));
    }
    assert.equal(code, 1, output);
    assert.match(output, /registry start-up failed: plugin\(s\) for ops did not load/);
    assert.doesNotMatch(output, /— ready/);
  });
});
