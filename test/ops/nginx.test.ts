/**
 * Issue 15.6, staying up behind a reverse proxy: real nginx (Debian's, non-root-friendly: its own
 * prefix, config, pid, logs and temp folders in a temp folder, a free port) configured from
 * templates/nginx.conf, in front of a real registry configured as docs/operations.md says
 * (`url_prefix`, `server.trustProxy`). Real npm publishes and installs through it; the packument's
 * tarball URLs carry nginx's address and the prefix; the dashboard page and its assets load
 * through it; the client address comes from X-Forwarded-For.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium } from 'playwright-core';
import { PROJECT_ROOT, createClientDir, startRegistry, writePackage, type RunningRegistry } from '../harness/registry';
import { freePort } from '../../scripts/lib/ports';
import { renderTemplate } from '../harness/templates';
import { getJson } from '../storage/lib/packages';

const TEMPLATE = join(PROJECT_ROOT, 'templates', 'nginx.conf');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const PREFIX = '/registry';

function findNginx(): string | null {
  for (const candidate of ['/usr/sbin/nginx', '/usr/bin/nginx']) if (existsSync(candidate)) return candidate;
  const which = spawnSync('sh', ['-c', 'command -v nginx'], { encoding: 'utf8' });
  return which.status === 0 && which.stdout.trim() !== '' ? which.stdout.trim() : null;
}

const nginxBin = findNginx();
const skip = nginxBin === null ? 'nginx is not installed (scripts/setup.sh --with-test-tools installs Debian\'s nginx)' : false;
if (skip) process.stdout.write(`# skipping 15.6: ${skip}\n`);

describe('15.6 nginx reverse proxy under a path prefix', { skip }, () => {
  let registry: RunningRegistry;
  let nginx: ChildProcess | undefined;
  let nginxLog = '';
  let base = '';
  const dir = mkdtempSync(join(tmpdir(), 'registry-nginx-'));

  before(async () => {
    registry = await startRegistry({
      editConfig: (config) => {
        config.url_prefix = `${PREFIX}/`;
        config.server = { ...(config.server as Record<string, unknown>), trustProxy: 'loopback' };
      },
    });
    const port = await freePort();
    base = `http://127.0.0.1:${port}${PREFIX}`;
    for (const sub of ['logs', 'body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, sub));
    writeFileSync(join(dir, 'site.conf'), renderTemplate(TEMPLATE, { LISTEN: `127.0.0.1:${port}`, SERVER_NAME: 'localhost', PREFIX, REGISTRY: `127.0.0.1:${registry.port}` }));
    // the http block Debian's /etc/nginx/nginx.conf would wrap the site in, with every path in our folder
    writeFileSync(
      join(dir, 'nginx.conf'),
      [
        // as root, workers would switch to nobody, which may not write our temp folders
        ...(process.getuid?.() === 0 ? ['user root;'] : []),
        'worker_processes 1;',
        `pid ${join(dir, 'nginx.pid')};`,
        `error_log ${join(dir, 'logs', 'error.log')} warn;`,
        'events { worker_connections 128; }',
        'http {',
        `  access_log ${join(dir, 'logs', 'access.log')};`,
        `  client_body_temp_path ${join(dir, 'body')};`,
        `  proxy_temp_path ${join(dir, 'proxy')};`,
        `  fastcgi_temp_path ${join(dir, 'fastcgi')};`,
        `  uwsgi_temp_path ${join(dir, 'uwsgi')};`,
        `  scgi_temp_path ${join(dir, 'scgi')};`,
        `  include ${join(dir, 'site.conf')};`,
        '}',
        '',
      ].join('\n'),
    );
    const args = ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'logs', 'error.log')];
    const test = spawnSync(nginxBin as string, ['-t', ...args], { encoding: 'utf8' });
    assert.equal(test.status, 0, `nginx -t refuses the rendered template:\n${test.stderr}`);
    nginx = spawn(nginxBin as string, [...args, '-g', 'daemon off;'], { stdio: ['ignore', 'pipe', 'pipe'] });
    nginx.stdout?.on('data', (chunk: Buffer) => (nginxLog += chunk.toString()));
    nginx.stderr?.on('data', (chunk: Buffer) => (nginxLog += chunk.toString()));
    for (let i = 0; i < 200; i++) {
      if (nginx.exitCode !== null) break;
      try {
        if ((await fetch(`${base}/-/ping`)).ok) return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    assert.fail(`nginx did not answer ${base}/-/ping:\n${nginxLog}`);
  });

  after(async () => {
    if (nginx && nginx.exitCode === null) {
      const exited = new Promise((r) => nginx?.once('exit', r));
      nginx.kill('SIGQUIT');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (nginx.exitCode === null) nginx.kill('SIGKILL');
    }
    await registry?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('15.6 npm publish and install through nginx; tarball URLs carry the nginx address and the prefix; the client address comes from X-Forwarded-For', async () => {
    // a user created through nginx, from a client address nginx passes on
    const signup = await fetch(`${base}/-/user/org.couchdb.user:carol`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', 'x-forwarded-for': '203.0.113.7' },
      body: JSON.stringify({ _id: 'org.couchdb.user:carol', name: 'carol', password: 'correct-horse-battery', type: 'user', roles: [], date: new Date().toISOString() }),
    });
    const created = (await signup.json()) as { token?: string };
    assert.equal(signup.status, 201, JSON.stringify(created));
    assert.ok(created.token);
    const token = created.token;
    const client = createClientDir({ url: base }, { token });
    const whoami = await client.npm(['whoami']);
    assert.equal(whoami.stdout.trim(), 'carol', whoami.stderr);

    for (const name of ['@mycompany/behind-nginx', 'plain-behind-nginx']) {
      const pkg = writePackage(client.dir, { name, version: '1.2.3' });
      const published = await client.npm(['publish'], { cwd: pkg });
      assert.equal(published.code, 0, `${name}: ${published.stderr}`);
      const doc = await getJson(`${base}/${name.replace('/', '%2f')}`);
      assert.equal(doc.status, 200);
      const tarball = ((doc.json.versions as Record<string, { dist: { tarball: string } }>)['1.2.3']).dist.tarball;
      assert.ok(tarball.startsWith(`${base}/${name}/-/`), `${name}: tarball URL ${tarball} is under ${base}/`);
      // the same packument asked of the registry directly names the registry (no stale cache across Host)
      const direct = await getJson(`${registry.url}/${name.replace('/', '%2f')}`);
      const directTarball = ((direct.json.versions as Record<string, { dist: { tarball: string } }>)['1.2.3']).dist.tarball;
      assert.ok(directTarball.startsWith(`${registry.url}${PREFIX}/`), directTarball);
    }

    const installer = createClientDir({ url: base });
    const project = join(installer.dir, 'project');
    mkdirSync(project);
    writeFileSync(join(project, 'package.json'), '{"name":"consumer","version":"1.0.0","private":true}\n');
    const install = await installer.npm(['install', '@mycompany/behind-nginx@1.2.3', 'plain-behind-nginx'], { cwd: project });
    assert.equal(install.code, 0, install.stderr);
    const installed = JSON.parse(readFileSync(join(project, 'node_modules', '@mycompany', 'behind-nginx', 'package.json'), 'utf8')) as { version: string };
    assert.equal(installed.version, '1.2.3');
    const lock = readFileSync(join(project, 'package-lock.json'), 'utf8');
    assert.match(lock, new RegExp(`"resolved": "${base.replace(/[.]/g, '\\.')}/@mycompany/behind-nginx/-/behind-nginx-1\\.2\\.3\\.tgz"`));

    // trustProxy: the audit trail records the address the client had, not nginx's
    const audit = readFileSync(join(registry.dir, 'audit.log'), 'utf8');
    assert.match(audit, /203\.0\.113\.7/, 'X-Forwarded-For reached the registry as the client address');
    assert.ok(readFileSync(join(dir, 'logs', 'access.log'), 'utf8').includes(`PUT ${PREFIX}/@mycompany%2fbehind-nginx`), 'the publish went through nginx, path still encoded');
  });

  it('15.6 the dashboard page and everything it references load through nginx', async () => {
    const page = await fetch(`${base}/_dashboard`);
    assert.equal(page.status, 200);
    const html = await page.text();
    assert.match(html, /<html/i);
    const references = [...html.matchAll(/(?:src|href)="([^"#][^"]*)"/g)].map((match) => match[1]);
    assert.ok(references.length >= 2, `the page references its assets: ${references.join(', ')}`);
    for (const reference of references) {
      const url = new URL(reference, `${base}/_dashboard`);
      const response = await fetch(url);
      assert.equal(response.status, 200, `${url.href} through nginx`);
      await response.arrayBuffer();
    }
    // its API answers through nginx too
    const api = await fetch(new URL('/_dashboard/api/config', base));
    assert.ok(api.status === 200 || api.status === 401, `dashboard API through nginx: ${api.status}`);
  });

  it('15.6 in Chromium the dashboard runs through nginx: every request succeeds and its WebSocket goes live', { skip: existsSync(CHROMIUM) ? false : `Chromium is not installed at ${CHROMIUM}` }, async () => {
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
    try {
      const page = await browser.newPage();
      const failures: string[] = [];
      page.on('requestfailed', (request) => failures.push(`${request.url()} failed: ${request.failure()?.errorText}`));
      page.on('response', (response) => {
        if (response.status() >= 400) failures.push(`${response.url()} answered ${response.status()}`);
      });
      await page.goto(`${base}/_dashboard`);
      await page.waitForSelector('#connection[data-state="live"]', { timeout: 15_000 });
      assert.deepEqual(failures, [], 'every request of the page through nginx succeeded');
    } finally {
      await browser.close();
    }
  });
});
