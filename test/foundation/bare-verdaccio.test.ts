/**
 * Issue 19.1: a bare `node_modules/.bin/verdaccio -c config.yaml` (no scripts/start.ts) on a
 * fresh folder gives the same registry `npm start` gives — or refuses to serve at all.
 * Real Verdaccio 6.10.4 on the pinned Node, real files, real HTTP; the plugins are the
 * worktree's build (config.yaml's `plugins:` points at them, or at a copied folder whose one
 * package.json names a missing build).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import { dump, load } from 'js-yaml';
import { NODE_BIN, PROJECT_ROOT, addUser, cleanEnv } from '../harness/registry';
import { freePort } from '../../scripts/bench/stock';

const VERDACCIO_BIN = join(PROJECT_ROOT, 'node_modules', 'verdaccio', 'bin', 'verdaccio');
const SPEC_DEFAULT = '42 52 45 47 01 0a 96 b6 ce 03 00 00 00 02 18 50 36';

function headerHex(path: string): string {
  return [...readFileSync(path).subarray(0, 17)].map((byte) => byte.toString(16).padStart(2, '0')).join(' ');
}

/** A fresh folder with a copy of the project's config.yaml whose `plugins:` points at `pluginsDir`. */
function bareFolder(pluginsDir = join(PROJECT_ROOT, 'plugins')): { dir: string; configPath: string } {
  const dir = mkdtempSync(join(tmpdir(), 'bare-verdaccio-'));
  const config = load(readFileSync(join(PROJECT_ROOT, 'config.yaml'), 'utf8')) as Record<string, unknown>;
  config.plugins = pluginsDir;
  config.log = { type: 'stdout', format: 'pretty', level: 'warn' };
  const configPath = join(dir, 'config.yaml');
  writeFileSync(configPath, dump(config));
  return { dir, configPath };
}

/**
 * A copy of the plugins folder: each package.json with `main` made absolute (into the worktree's
 * build), except `broken`, whose main names a file that does not exist — a removed build.
 */
function pluginsWithMissingBuild(parent: string, broken: string): string {
  const copy = join(parent, 'plugins');
  for (const name of readdirSync(join(PROJECT_ROOT, 'plugins'))) {
    // verdaccio-boundary is a shared module, not a plugin: only folders with a manifest are plugins
    if (!name.startsWith('verdaccio-') || !existsSync(join(PROJECT_ROOT, 'plugins', name, 'package.json'))) continue;
    const manifest = JSON.parse(readFileSync(join(PROJECT_ROOT, 'plugins', name, 'package.json'), 'utf8')) as { main: string };
    manifest.main = name === broken ? join(PROJECT_ROOT, 'build', 'plugins', name, 'removed-build.js') : join(PROJECT_ROOT, 'plugins', name, manifest.main);
    mkdirSync(join(copy, name), { recursive: true });
    writeFileSync(join(copy, name, 'package.json'), JSON.stringify(manifest));
  }
  return copy;
}

interface BareRun {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
}

function spawnBare(configPath: string, listen: string, env: Record<string, string> = {}): BareRun {
  const child = spawn(NODE_BIN, [VERDACCIO_BIN, '-c', configPath, '--listen', listen], {
    cwd: join(configPath, '..'),
    env: cleanEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

/** Verdaccio logs the port it was asked for (0); our boot timeline names the bound one. */
async function waitForListening(run: BareRun): Promise<string> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const match = /listening on (http:\/\/127\.0\.0\.1:\d+) — ready/.exec(run.output());
    if (match) return match[1];
    if (run.child.exitCode !== null) throw new Error(`verdaccio exited (${run.child.exitCode}) before listening:\n${run.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`verdaccio did not listen within 30 s:\n${run.output()}`);
}

async function stop(run: BareRun): Promise<void> {
  if (run.child.exitCode !== null || run.child.signalCode !== null) return;
  run.child.kill('SIGTERM');
  const timer = setTimeout(() => run.child.kill('SIGKILL'), 5000);
  await run.exited;
  clearTimeout(timer);
}

/** A port nothing listens on right now: bind port 0, read it, close. */

describe('19.1 bare `verdaccio -c config.yaml`', () => {
  const runs: BareRun[] = [];
  after(async () => {
    await Promise.all(runs.map(stop));
  });

  test('19.1 bare run on a fresh folder: registry.lockb with the defaults, boot timeline, dashboard, JWKS and our EdDSA tokens', async () => {
    const { dir, configPath } = bareFolder();
    const run = spawnBare(configPath, '127.0.0.1:0');
    runs.push(run);
    const url = await waitForListening(run);

    assert.equal(headerHex(join(dir, 'registry.lockb')), SPEC_DEFAULT);
    assert.match(readFileSync(join(dir, '.env.local'), 'utf8'), /^BUN_REGISTRY_URL=http:\/\/localhost:4873$/m);
    assert.match(run.output(), /\[boot\s+\+\s*[\d.]+ ms\] created .*registry\.lockb with defaults/);
    assert.match(run.output(), /\[boot\s+\+\s*[\d.]+ ms\] config loaded: .*valid \(check 0x36\)/);
    assert.match(run.output(), /\[boot\s+\+\s*[\d.]+ ms\] storage ready/);
    assert.match(run.output(), /\[boot\s+\+\s*[\d.]+ ms\] dashboard http:\/\/127\.0\.0\.1:\d+\/_dashboard/);

    const page = await fetch(`${url}/_dashboard`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<html/i);
    const jwksResponse = await fetch(`${url}/_auth/.well-known/jwks.json`);
    assert.equal(jwksResponse.status, 200);
    const jwks = (await jwksResponse.json()) as JSONWebKeySet;
    const eddsa = jwks.keys.find((key) => key.alg === 'EdDSA');
    assert.ok(eddsa?.kid, 'an EdDSA key with a kid');

    // our token format: the couch route `npm adduser` uses answers with a token of our issuer
    const token = await addUser({ url }, 'bare-user', 'bare-password-1');
    const header = decodeProtectedHeader(token);
    assert.equal(header.alg, 'EdDSA');
    assert.equal(header.kid, eddsa.kid);
    const { payload } = await jwtVerify(token, createLocalJWKSet(jwks), { audience: 'registry:ceb6960a' });
    assert.equal(payload.sub, 'bare-user');
    const whoami = await fetch(`${url}/-/whoami`, { headers: { authorization: `Bearer ${token}` } });
    assert.deepEqual(await whoami.json(), { username: 'bare-user' });
  });

  test('19.1 bare run honours BUN_REGISTRY_URL over a stale URL in .env.local (the environment wins, as with npm start)', async () => {
    const { dir, configPath } = bareFolder();
    writeFileSync(join(dir, '.env.local'), 'BUN_REGISTRY_URL=http://127.0.0.1:1\nBUN_TERMINAL_ROWS=40\n');
    const run = spawnBare(configPath, '127.0.0.1:0', { BUN_REGISTRY_URL: 'https://registry.mycompany.com/' });
    runs.push(run);
    const url = await waitForListening(run);
    const bytes = readFileSync(join(dir, 'registry.lockb'));
    assert.equal(bytes.readUInt32LE(5), 0x4469efac, 'registryHash of the environment URL');
    assert.equal(bytes[14], 40, '.env.local applied too');
    assert.match(readFileSync(join(dir, '.env.local'), 'utf8'), /^BUN_REGISTRY_URL=https:\/\/registry\.mycompany\.com$/m);
    const discovery = (await (await fetch(`${url}/_auth/.well-known/openid-configuration`)).json()) as { issuer: string; jwks_uri: string };
    assert.equal(discovery.issuer, 'https://registry.mycompany.com/_auth');
    assert.ok(discovery.jwks_uri.startsWith('https://registry.mycompany.com/'), discovery.jwks_uri);
    await stop(run);

    // a later bare run without the variable keeps what was written (no stale file URL comes back)
    const again = spawnBare(configPath, '127.0.0.1:0');
    runs.push(again);
    await waitForListening(again);
    assert.equal(readFileSync(join(dir, 'registry.lockb')).readUInt32LE(5), 0x4469efac);
  });

  test('19.1 bare run on a registry.lockb with a bad check byte refuses to serve and says how to repair', async () => {
    const { dir, configPath } = bareFolder();
    const bytes = Buffer.from(SPEC_DEFAULT.split(' ').map((hex) => Number.parseInt(hex, 16)));
    bytes[16] ^= 0xff;
    writeFileSync(join(dir, 'registry.lockb'), bytes);
    const run = spawnBare(configPath, `127.0.0.1:${await freePort()}`);
    runs.push(run);
    const code = await run.exited;
    assert.notEqual(code, 0, run.output());
    assert.match(run.output(), /registry start-up failed: plugin\(s\) for auth, storage, storage-http, dashboard.* did not load/);
    assert.match(run.output(), /check/i);
    assert.match(run.output(), /npm run config -- repair/);
    assert.doesNotMatch(run.output(), /listening on/);
  });

  // storage is the first of ours Verdaccio loads, auth next, the middlewares last: each position is covered
  for (const broken of ['verdaccio-registry-storage', 'verdaccio-registry-auth', 'verdaccio-registry-storage-http']) {
    test(`19.1 bare run with the build of ${broken} removed exits non-zero saying what to run, and never accepts a connection`, async () => {
      const { dir, configPath } = bareFolder();
      const config = load(readFileSync(configPath, 'utf8')) as Record<string, unknown>;
      config.plugins = pluginsWithMissingBuild(dir, broken);
      writeFileSync(configPath, dump(config));
      const port = await freePort();
      const run = spawnBare(configPath, `127.0.0.1:${port}`);
      runs.push(run);

      // poll /-/ping while it starts: the only acceptable outcome is "connection refused"
      const outcomes = new Set<string>();
      let polls = 0;
      while (run.child.exitCode === null && run.child.signalCode === null && polls < 2000) {
        polls++;
        try {
          const response = await fetch(`http://127.0.0.1:${port}/-/ping`, { signal: AbortSignal.timeout(2000) });
          outcomes.add(`answered ${response.status}`);
        } catch (error) {
          const code = (error as { cause?: { code?: string } }).cause?.code ?? String(error);
          outcomes.add(code);
        }
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      const code = await run.exited;
      assert.notEqual(code, 0, run.output());
      assert.notEqual(code, null, `exited by itself (polled ${polls} times)`);
      assert.deepEqual([...outcomes], ['ECONNREFUSED'], `polled ${polls} times:\n${run.output()}`);
      assert.match(run.output(), /registry start-up failed: plugin\(s\) for .* did not load/);
      assert.match(run.output(), /its build is missing .*run `npm run build`/);
      assert.match(run.output(), new RegExp(broken.replace('verdaccio-', '')));
      assert.doesNotMatch(run.output(), /listening on/);
    });
  }
});
