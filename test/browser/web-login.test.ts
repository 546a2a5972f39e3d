/**
 * Issue 13 acceptance for the web login: real `npm login` / `npm adduser` with DEFAULT options
 * (npm 11: auth-type web) print the dashboard's sign-in URL; real Chromium (playwright-core)
 * opens it and signs in; npm completes on its own; the token works for `npm whoami` and
 * `npm publish`. npm's stdout is a pipe (no TTY), so npm only prints the URL (it offers to open a
 * browser only on a TTY) and polls the doneUrl.
 *
 * Chromium missing → the test FAILS, unless SKIP_BROWSER_TESTS=1 (then it says why it skips).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { PROJECT_ROOT, cleanEnv, nerfDart, run, writePackage, type CommandResult, type RunningRegistry } from '../harness/registry';
import { ADMIN, createUsers, startDashboardRegistry } from '../dashboard/helpers';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARTIFACTS = join(PROJECT_ROOT, 'test-artifacts', 'browser');
const skipReason =
  process.env.SKIP_BROWSER_TESTS === '1'
    ? `SKIP_BROWSER_TESTS=1: web login browser tests skipped on request${existsSync(CHROMIUM) ? '' : ` (no Chromium at ${CHROMIUM})`}`
    : undefined;
if (skipReason) console.log(`# ${skipReason}`);

/** An npm home of its own (no token), and npm started in it with stdout as a pipe. */
function npmHome(registry: RunningRegistry): { dir: string; npmrc: string; env: NodeJS.ProcessEnv } {
  const dir = mkdtempSync(join(tmpdir(), 'registry-weblogin-'));
  const npmrc = join(dir, '.npmrc');
  writeFileSync(npmrc, `registry=${registry.url}/\n`);
  const env = cleanEnv({
    npm_config_userconfig: npmrc,
    npm_config_cache: join(dir, 'npm-cache'),
    npm_config_update_notifier: 'false',
    npm_config_fund: 'false',
    npm_config_audit: 'false',
    HOME: dir,
  });
  return { dir, npmrc, env };
}

/**
 * Starts `npm <verb> --registry <url>` (default options otherwise) and resolves the URL npm
 * prints, plus the promise of npm's result. Bounded: 30 s for the URL, 60 s for npm.
 */
async function startNpmWebLogin(
  registry: RunningRegistry,
  home: { dir: string; env: NodeJS.ProcessEnv },
  verb: 'login' | 'adduser',
): Promise<{ url: string; result: Promise<CommandResult> }> {
  const child = spawn('npm', [verb, '--registry', `${registry.url}/`], { cwd: home.dir, env: home.env, stdio: ['pipe', 'pipe', 'pipe'] });
  child.stdin.end();
  let stdout = '';
  let stderr = '';
  const result = new Promise<CommandResult>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`npm ${verb} did not finish within 60 s\n${stdout}\n${stderr}`));
    }, 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`npm ${verb} printed no login URL within 30 s\n${stdout}\n${stderr}`)), 30_000);
    const look = (): void => {
      const match = /(?:Login at|Create your account at):\s*\n(\S+)/.exec(stdout);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    };
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      look();
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    result.then(
      () => reject(new Error(`npm ${verb} ended before printing a URL\n${stdout}\n${stderr}`)),
      reject,
    );
  });
  return { url, result };
}

function tokenIn(npmrc: string, registry: RunningRegistry): string | undefined {
  const key = `${nerfDart(`${registry.url}/`)}:_authToken=`;
  const line = readFileSync(npmrc, 'utf8').split('\n').find((entry) => entry.startsWith(key));
  return line?.slice(key.length);
}

describe('web login with real npm and Chromium', { skip: skipReason, timeout: 240_000 }, () => {
  let registry: RunningRegistry;
  let browser: Browser;

  before(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(
        `Chromium is not installed at ${CHROMIUM} (apt-get install -y chromium, or set CHROMIUM_PATH). ` +
          'Set SKIP_BROWSER_TESTS=1 to skip the browser tests on purpose.',
      );
    }
    mkdirSync(ARTIFACTS, { recursive: true });
    registry = await startDashboardRegistry();
    await createUsers(registry);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
  });

  after(async () => {
    await browser?.close();
    await registry?.stop();
  });

  const openPage = async (url: string): Promise<{ page: Page; requests: string[]; errors: string[] }> => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const requests: string[] = [];
    const errors: string[] = [];
    page.on('request', (request) => requests.push(request.url()));
    page.on('console', (message) => {
      if (message.type() === 'error') errors.push(message.text());
    });
    page.on('pageerror', (error) => errors.push(`pageerror: ${error.message}`));
    const response = await page.goto(url);
    assert.equal(response?.status(), 200);
    const csp = response?.headers()['content-security-policy'] ?? '';
    assert.match(csp, /default-src 'self'; script-src 'self'/, 'strict CSP');
    assert.equal(response?.headers()['cache-control'], 'no-store');
    return { page, requests, errors };
  };

  it('13.1 acceptance: npm login (default auth-type web) completes when Chromium signs in at the printed URL; the token works for whoami and publish', async () => {
    const home = npmHome(registry);
    const { url, result } = await startNpmWebLogin(registry, home, 'login');
    assert.match(url, new RegExp(`^${registry.url}/_dashboard/login/[A-Za-z0-9_-]{43}$`));

    const { page, requests, errors } = await openPage(url);
    await page.waitForSelector('#form:not([hidden])');
    assert.equal(await page.isVisible('#mode'), false, 'npm login offers no registration');
    assert.equal(await page.textContent('#requested-from'), '127.0.0.1');
    // a wrong password first: the page says so and the session keeps waiting
    await page.fill('#username', ADMIN.name);
    await page.fill('#password', 'not-the-password');
    await page.click('#submit');
    await page.waitForSelector('#message:not([hidden])');
    assert.match((await page.textContent('#message')) ?? '', /bad username or password/);
    await page.fill('#password', ADMIN.password);
    await page.click('#submit');
    await page.waitForSelector('#done:not([hidden])');
    await page.screenshot({ path: join(ARTIFACTS, 'web-login-done.png'), fullPage: true });
    assert.deepEqual(
      requests.filter((address) => new URL(address).origin !== registry.url),
      [],
      'the page loads nothing from elsewhere',
    );
    assert.deepEqual(errors.filter((text) => !/401/.test(text)), [], 'no console errors besides the refused password');

    const npm = await result;
    assert.equal(npm.code, 0, `${npm.stdout}\n${npm.stderr}`);
    assert.match(npm.stdout, /Logged in on/);
    const token = tokenIn(home.npmrc, registry);
    assert.ok(token, 'npm wrote the token to its .npmrc');

    const who = await run('npm', ['whoami'], { cwd: home.dir, env: home.env });
    assert.equal(who.code, 0, who.stderr);
    assert.equal(who.stdout.trim(), ADMIN.name);
    const publish = await run('npm', ['publish'], { cwd: writePackage(home.dir, { name: 'web-login-published', version: '1.0.0' }), env: home.env });
    assert.equal(publish.code, 0, publish.stderr);
    const list = await run('npm', ['token', 'list'], { cwd: home.dir, env: home.env });
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /web login from 127\.0\.0\.1 \(login session/);
    await page.context().close();
  });

  it('13.1 acceptance: npm adduser (default auth-type web) offers registration; the new user can publish', async () => {
    const home = npmHome(registry);
    const { url, result } = await startNpmWebLogin(registry, home, 'adduser');
    const { page } = await openPage(url);
    await page.waitForSelector('#mode:not([hidden])');
    await page.check('input[name=mode][value=create]');
    await page.fill('#username', 'dora');
    await page.fill('#password', 'dora-secret-1');
    await page.click('#submit');
    await page.waitForSelector('#done:not([hidden])');
    const npm = await result;
    assert.equal(npm.code, 0, `${npm.stdout}\n${npm.stderr}`);
    const who = await run('npm', ['whoami'], { cwd: home.dir, env: home.env });
    assert.equal(who.stdout.trim(), 'dora', who.stderr);
    const publish = await run('npm', ['publish'], { cwd: writePackage(home.dir, { name: 'web-adduser-published', version: '1.0.0' }), env: home.env });
    assert.equal(publish.code, 0, publish.stderr);
    await page.context().close();
  });

  it('13.1 in a terminal (pty): npm login with default options prints the URL and its "Press ENTER" prompt, and finishes without a key press once signed in', async (t) => {
    const hasScript = await new Promise<boolean>((resolve) => {
      const probe = spawn('script', ['--version'], { stdio: 'ignore' });
      probe.on('error', () => resolve(false));
      probe.on('close', (code) => resolve(code === 0));
    });
    if (!hasScript) {
      t.skip('util-linux `script` is not installed: no pty for npm (the pipe case above covers the flow)');
      return;
    }
    const home = npmHome(registry);
    const child = spawn('script', ['-qfec', `npm login --registry '${registry.url}/'`, '/dev/null'], { cwd: home.dir, env: home.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    const exited = new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`npm login in a pty did not finish within 60 s:\n${output}`));
      }, 60_000);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve(code ?? -1);
      });
    });
    let url: string | undefined;
    for (let i = 0; i < 300 && url === undefined; i++) {
      url = /Login at:\s*\r?\n(\S+)/.exec(output)?.[1];
      if (url === undefined) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.ok(url, `no URL printed:\n${output}`);
    const { page } = await openPage(url);
    await page.waitForSelector('#form:not([hidden])');
    await page.fill('#username', ADMIN.name);
    await page.fill('#password', ADMIN.password);
    await page.click('#submit');
    await page.waitForSelector('#done:not([hidden])');
    assert.equal(await exited, 0, output);
    assert.match(output, /Press ENTER to open in the browser/);
    assert.match(output, /Logged in on/);
    assert.ok(tokenIn(home.npmrc, registry));
    await page.context().close();
  });

  it('13.1 an unknown or used login link shows a clear message, not a form', async () => {
    const { page } = await openPage(`${registry.url}/_dashboard/login/${'A'.repeat(43)}`);
    await page.waitForFunction(() => document.getElementById('intro')?.textContent !== 'Loading the login request…');
    assert.match((await page.textContent('#intro')) ?? '', /unknown, expired or already used/);
    assert.equal(await page.isVisible('#form'), false);
    await page.context().close();
    // only session-shaped ids are pages; the page is GET/HEAD only
    const short = await fetch(`${registry.url}/_dashboard/login/short`);
    assert.equal(short.status, 404);
    assert.equal(typeof ((await short.json()) as { error?: unknown }).error, 'string');
    assert.equal((await fetch(`${registry.url}/_dashboard/login/${'A'.repeat(43)}`, { method: 'POST' })).status, 405);
  });
});
