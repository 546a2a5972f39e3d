/**
 * The dashboard page in real Chromium (Debian `chromium` driven by playwright-core) against a
 * real registry: no request leaves the registry origin, no console error, the grid shows the
 * file's bytes, admin edits reach the file, a CLI change in another process shows up live, a
 * package published with npm appears, env copy gives the documented lines. Screenshots are kept in
 * test-artifacts/browser/.
 *
 * Chromium missing → the test FAILS, unless SKIP_BROWSER_TESTS=1 (then it says why it skips).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { decodeHeader, exportEnv, readRegistryUrl } from '../../plugins/registry-core/index';
import { NODE_BIN, PROJECT_ROOT, cleanEnv, createClientDir, run, writePackage, type RunningRegistry } from '../harness/registry';
import { ADMIN, READER, configHexOnDisk, createUsers, lockbBytes, startDashboardRegistry } from '../dashboard/helpers';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARTIFACTS = join(PROJECT_ROOT, 'test-artifacts', 'browser');
const CONFIG_CLI = join(PROJECT_ROOT, 'build', 'scripts', 'config-cli.js');
const skipReason =
  process.env.SKIP_BROWSER_TESTS === '1'
    ? `SKIP_BROWSER_TESTS=1: dashboard browser tests skipped on request${existsSync(CHROMIUM) ? '' : ` (no Chromium at ${CHROMIUM})`}`
    : undefined;
if (skipReason) console.log(`# ${skipReason}`);

interface PageWatch {
  requests: string[];
  consoleErrors: string[];
}

function watchPage(page: Page): PageWatch {
  const watch: PageWatch = { requests: [], consoleErrors: [] };
  page.on('request', (request) => watch.requests.push(request.url()));
  page.on('websocket', (socket) => watch.requests.push(socket.url()));
  page.on('console', (message) => {
    if (message.type() === 'error') watch.consoleErrors.push(message.text());
  });
  page.on('pageerror', (error) => watch.consoleErrors.push(`pageerror: ${error.message}`));
  return watch;
}

function assertOnlyRegistry(watch: PageWatch, registry: RunningRegistry): void {
  const origin = new URL(registry.url);
  const outside = watch.requests.filter((url) => {
    const parsed = new URL(url);
    return parsed.host !== origin.host || !['http:', 'ws:'].includes(parsed.protocol);
  });
  assert.deepEqual(outside, [], `requests outside ${registry.url}`);
  assert.ok(watch.requests.length > 0, 'the page made requests');
}

async function gridHex(page: Page): Promise<string> {
  return page.$$eval('#grid .cell .value', (cells) => cells.map((cell) => cell.textContent ?? '').join(''));
}

async function waitForGrid(page: Page, hex: string, timeout = 5000): Promise<void> {
  await page.waitForFunction((expected) => document.getElementById('grid')?.dataset.hex === expected, hex, { timeout });
}

async function screenshot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(ARTIFACTS, name), fullPage: true });
}

describe('dashboard page in Chromium', { skip: skipReason }, () => {
  let registry: RunningRegistry;
  let admin: string;
  let browser: Browser;
  let context: BrowserContext;

  before(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(
        `Chromium is not installed at ${CHROMIUM} (apt-get install -y chromium, or set CHROMIUM_PATH). ` +
          'Set SKIP_BROWSER_TESTS=1 to skip the browser tests on purpose.',
      );
    }
    mkdirSync(ARTIFACTS, { recursive: true });
    registry = await startDashboardRegistry();
    ({ admin } = await createUsers(registry));
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
    context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: registry.url });
  });

  after(async () => {
    await context?.close();
    await browser?.close();
    await registry?.stop();
  });

  it('loads from the registry alone, shows the file bytes, and lets an admin change them', async () => {
    const page = await context.newPage();
    const watch = watchPage(page);
    await page.goto(`${registry.url}/_dashboard`);
    await waitForGrid(page, configHexOnDisk(registry));
    assert.equal(await gridHex(page), configHexOnDisk(registry), 'the 13 cells show bytes 4..16 of registry.lockb');
    await page.waitForSelector('#connection[data-state="live"]');
    assert.equal(await page.textContent('#issuer-alg'), 'EdDSA');
    assert.equal(await page.textContent('#registry-hash'), '0xceb6960a');
    assert.equal((await page.$$('.legend li')).length, 7, 'a legend entry per field');
    await screenshot(page, 'dashboard-1280x800-anonymous.png');

    // anonymous: write controls are disabled
    assert.equal(await page.isDisabled('button[data-flag="DEBUG"]'), true);
    assert.equal(await page.isDisabled('#upstream-offline-toggle'), true);

    // sign in with the form (POST /_auth/token); the token goes to sessionStorage
    await page.fill('#login-user', ADMIN.name);
    await page.fill('#login-password', ADMIN.password);
    await page.click('#login-form button[type="submit"]');
    await page.waitForSelector('#signed-in:not([hidden])');
    assert.equal(await page.textContent('#who'), ADMIN.name);
    assert.equal(await page.textContent('#role'), 'admin');
    const stored = await page.evaluate(() => sessionStorage.getItem('registry-dashboard.token'));
    assert.ok(stored && stored.split('.').length === 3, 'a JWT in sessionStorage');

    // toggle DEBUG as admin: the file and the grid change
    await page.click('button[data-flag="DEBUG"]');
    await page.waitForFunction(() => document.querySelector('li[data-flag="DEBUG"] .flag-state')?.textContent === 'on');
    assert.equal(lockbBytes(registry)[9], 0x07, 'featureFlags byte in the file');
    await waitForGrid(page, configHexOnDisk(registry));
    await page.waitForSelector('#event-log li[data-kind="config"]');

    // 12.6/12.8 the upstream card: its OFFLINE switch is the flag (file, flag list and card follow), and it
    // shows the upstream status — or says it is not available in a build without the upstream proxy
    assert.equal(await page.textContent('#upstream-mode'), 'online');
    await page.click('#upstream-offline-toggle');
    await page.waitForSelector('#upstream-mode[data-offline="true"]');
    assert.equal(await page.textContent('#upstream-mode'), 'OFFLINE');
    assert.equal(lockbBytes(registry)[9], 0x0f, 'OFFLINE is bit 3 of byte 9');
    await page.waitForFunction(() => document.querySelector('li[data-flag="OFFLINE"] .flag-state')?.textContent === 'on');
    const upstream = (await (await fetch(`${registry.url}/_dashboard/api/upstream`)).json()) as { available: boolean };
    if (upstream.available) await page.waitForSelector('#upstream-facts:not([hidden]) #upstream-cache:not(:empty)');
    else await page.waitForFunction(() => /not available/.test(document.getElementById('upstream-unavailable')?.textContent ?? ''));
    await screenshot(page, 'dashboard-upstream-offline.png');
    await page.click('button[data-flag="OFFLINE"]');
    await page.waitForSelector('#upstream-mode[data-offline="false"]');
    assert.equal(await page.textContent('#upstream-offline-toggle'), 'Go offline');
    assert.equal(lockbBytes(registry)[9], 0x07);
    await waitForGrid(page, configHexOnDisk(registry));

    // edit a byte from the keyboard: focus cell 14, Enter, type, Enter
    await page.focus('button.cell[data-offset="14"]');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#byte-editor:not([hidden])');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'byte-value');
    await page.keyboard.press('ControlOrMeta+A');
    await page.keyboard.type('0x20');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#byte-editor', { state: 'hidden' });
    assert.equal(lockbBytes(registry)[14], 0x20);
    await waitForGrid(page, configHexOnDisk(registry));

    // terminal controls
    await page.selectOption('#terminal-mode', '1');
    await page.click('#terminal-form button[type="submit"]');
    await page.waitForFunction(() => document.getElementById('grid')?.dataset.hex?.slice(18, 20) === '01');
    assert.equal(lockbBytes(registry)[13], 1);

    // a refused value: shown as a notice, file unchanged
    const beforeRefusal = lockbBytes(registry);
    await page.click('button.cell[data-offset="13"]');
    await page.fill('#byte-value', '7');
    await page.click('#byte-editor button[type="submit"]');
    await page.waitForSelector('#notice:not([hidden])');
    assert.match((await page.textContent('#notice-text')) ?? '', /terminalMode/);
    assert.deepEqual(lockbBytes(registry), beforeRefusal);
    await page.click('#byte-cancel');
    await page.click('#notice-close');

    await screenshot(page, 'dashboard-1280x800-admin.png');
    assertOnlyRegistry(watch, registry);
    // the refused write is a 400 the page handled; Chromium reports failed fetches as console errors
    const unexpected = watch.consoleErrors.filter((text) => !/status of 400/.test(text));
    assert.deepEqual(unexpected, [], 'no console errors');
    await page.close();
  });

  it('shows a change made with npm run config within 1 s, without reload', async () => {
    const page = await context.newPage();
    const watch = watchPage(page);
    await page.goto(`${registry.url}/_dashboard`);
    await waitForGrid(page, configHexOnDisk(registry));
    await page.waitForSelector('#connection[data-state="live"]');
    const navigations: string[] = [];
    page.on('framenavigated', (frame) => navigations.push(frame.url()));

    const cli = await run(NODE_BIN, [CONFIG_CLI, '--file', registry.lockbPath, 'set', '15', '100'], { env: cleanEnv() });
    assert.equal(cli.code, 0, `${cli.stdout}\n${cli.stderr}`);
    const written = Date.now();
    await waitForGrid(page, configHexOnDisk(registry), 1000);
    console.log(`# CLI change visible on the page ${Date.now() - written} ms after the CLI exited`);
    assert.equal(await page.inputValue('#terminal-cols'), '100');
    assert.deepEqual(navigations, [], 'no reload');
    assertOnlyRegistry(watch, registry);
    assert.deepEqual(watch.consoleErrors, []);
    await page.close();
  });

  it('lists a package published with npm, filterable, and logs the publish', async () => {
    const page = await context.newPage();
    const watch = watchPage(page);
    await page.goto(`${registry.url}/_dashboard`);
    await page.waitForSelector('#connection[data-state="live"]');

    const client = createClientDir(registry, { token: admin });
    for (const spec of [
      { name: 'browser-visible', version: '1.0.0' },
      { name: 'browser-visible', version: '1.2.0' },
      { name: 'another-package', version: '0.0.1' },
    ]) {
      const published = await client.npm(['publish'], { cwd: writePackage(client.dir, spec) });
      assert.equal(published.code, 0, published.stderr);
    }
    const row = await page.waitForSelector('tr[data-package="browser-visible"]', { timeout: 10_000 });
    await page.waitForFunction(() => document.querySelectorAll('tr[data-package="browser-visible"] .versions li').length === 2);
    assert.equal(await page.getAttribute('tr[data-package="browser-visible"]', 'data-source'), 'local', '12.8: published here, marked local');
    assert.equal(await page.textContent('tr[data-package="browser-visible"] .badge.source'), 'local');
    assert.match((await row.textContent()) ?? '', /1\.0\.0.*1\.2\.0.*latest: 1\.2\.0/s);
    await page.waitForSelector('#event-log li[data-kind="publish"]');

    await page.fill('#package-filter', 'another');
    // 15.7: the server searches (all pages); the rows say which query they answer
    await page.waitForFunction(() => document.getElementById('package-rows')?.dataset.query === 'another' && document.querySelectorAll('#package-rows tr').length === 1);
    assert.equal(await page.getAttribute('#package-rows tr', 'data-package'), 'another-package');
    await page.fill('#package-filter', '');
    await screenshot(page, 'dashboard-packages.png');
    assertOnlyRegistry(watch, registry);
    assert.deepEqual(watch.consoleErrors, []);
    await page.close();
  });

  it('15.7 opens the package view (readme inert, no outside request) and the activity chart, which moves after a publish', async () => {
    const client = createClientDir(registry, { token: admin });
    const readme = [
      '# Life in the browser',
      'A *package* with a [docs link](https://example.invalid/docs).',
      '<script>window.__pwned = "script"</script>',
      '<img src="http://127.0.0.2:9/pixel.png" onerror="window.__pwned = \'onerror\'">',
      '[click](javascript:window.__pwned=\'link\')',
      '![remote logo](http://127.0.0.2:9/logo.png)',
    ].join('\n\n');
    const spec = (version: string) => ({
      name: 'life-browser',
      version,
      files: { 'index.js': 'module.exports = 1;\n', 'README.md': `${readme}\n` },
      extra: { description: 'seen in Chromium', dependencies: { 'browser-visible': '^1.0.0' } },
    });
    const first = await client.npm(['publish'], { cwd: writePackage(client.dir, spec('1.0.0')) });
    assert.equal(first.code, 0, first.stderr);

    const page = await context.newPage();
    const watch = watchPage(page);
    await page.goto(`${registry.url}/_dashboard`);
    await page.waitForSelector('#connection[data-state="live"]');
    // the chart has the publish of this hour
    await page.waitForFunction(() => Number(document.getElementById('activity-chart')?.dataset.publishes) >= 1);
    const publishesBefore = Number(await page.getAttribute('#activity-chart', 'data-publishes'));
    await page.waitForFunction(() => /local/.test(document.getElementById('activity-storage')?.textContent ?? ''));

    // search the list (server side), open the package
    await page.fill('#package-filter', 'life-browser');
    await page.waitForFunction(() => document.getElementById('package-rows')?.dataset.query === 'life-browser' && document.querySelectorAll('#package-rows tr').length === 1);
    await page.click('button.package-link[data-name="life-browser"]');
    await page.waitForSelector('#package-view[data-state="ready"][data-package="life-browser"]');
    assert.equal(await page.textContent('#pv-publisher'), ADMIN.name);
    assert.equal(await page.textContent('#pv-maintainers'), ADMIN.name);
    assert.match((await page.textContent('#pv-integrity')) ?? '', /^sha512-[A-Za-z0-9+/]+=*$/);
    assert.match((await page.textContent('#pv-size')) ?? '', /B tarball/);
    assert.equal(await page.textContent('#pv-tags'), 'latest: 1.0.0');
    assert.match((await page.textContent('#pv-deps')) ?? '', /browser-visible \^1\.0\.0/);
    assert.equal(await page.$$eval('#pv-versions tr', (rows) => rows.length), 1);
    assert.equal(await page.textContent('#pv-readme h1'), 'Life in the browser');
    assert.equal(await page.getAttribute('#pv-readme a[href="https://example.invalid/docs"]', 'rel'), 'noopener noreferrer nofollow');
    assert.equal(await page.$$eval('#pv-readme script, #pv-readme img, #pv-readme [onerror]', (found) => found.length), 0, 'nothing executable or loading in the readme');
    assert.equal(await page.$$eval('#pv-readme a', (links) => links.filter((a) => !/^https?:/.test(a.getAttribute('href') ?? '')).length), 0);
    assert.match((await page.textContent('#pv-readme')) ?? '', /<script>window.__pwned/, 'the raw HTML shows as text');
    assert.equal(await page.evaluate(() => (window as unknown as { __pwned?: unknown }).__pwned), undefined, 'no readme script ran');
    // the view has an address: a reload opens it again
    assert.equal(new URL(page.url()).hash, '#package=life-browser');

    // a publish moves the chart (pushed over the socket), adds one line to the event log and a row to the view
    const second = await client.npm(['publish'], { cwd: writePackage(client.dir, spec('1.1.0')) });
    assert.equal(second.code, 0, second.stderr);
    await page.waitForFunction((before) => Number(document.getElementById('activity-chart')?.dataset.publishes) === before + 1, publishesBefore, { timeout: 10_000 });
    assert.ok((await page.$$('#activity-chart rect.bar.publishes')).length >= 1, 'a publish bar is drawn');
    await page.waitForFunction(() => document.querySelectorAll('#pv-versions tr').length === 2, undefined, { timeout: 10_000 });
    assert.equal(await page.textContent('#pv-tags'), 'latest: 1.1.0');
    await page.waitForSelector('#event-log li[data-kind="publish"]');
    const lines = await page.$$eval('#event-log li', (items) => items.map((li) => `${li.getAttribute('data-kind')} ${li.textContent ?? ''}`).filter((text) => text.includes('life-browser@1.1.0')));
    assert.equal(lines.length, 1, `one event line for the publish: ${JSON.stringify(lines)}`);
    assert.match(lines[0], /^publish .*latest/);

    const dir = mkdtempSync(join(tmpdir(), 'dashboard-life-'));
    const shot = join(dir, 'package-view-and-activity.png');
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`# 15.7 screenshot: ${shot}`);
    await screenshot(page, 'dashboard-package-view.png');
    assertOnlyRegistry(watch, registry);
    assert.deepEqual(watch.consoleErrors, []);
    await page.close();
  });

  it('copies the documented env lines for the current config', async () => {
    const page = await context.newPage();
    const watch = watchPage(page);
    await page.goto(`${registry.url}/_dashboard`);
    await waitForGrid(page, configHexOnDisk(registry));
    await page.click('#env-copy');
    await page.waitForFunction(() => document.getElementById('env-status')?.textContent === 'Copied.');
    const copied = await page.evaluate(() => navigator.clipboard.readText());
    const expected = exportEnv(decodeHeader(lockbBytes(registry).subarray(0, 17)), readRegistryUrl(registry.envFile));
    assert.equal(copied, expected);
    assert.deepEqual(
      copied.trimEnd().split('\n').map((line) => line.split('=')[0]),
      ['BUN_CONFIG_VERSION', 'BUN_REGISTRY_URL', 'BUN_FEATURE_PRIVATE_REGISTRY', 'BUN_FEATURE_PREMIUM_TYPES', 'BUN_FEATURE_DEBUG', 'BUN_FEATURE_OFFLINE', 'BUN_TERMINAL_MODE', 'BUN_TERMINAL_ROWS', 'BUN_TERMINAL_COLS'],
    );
    assertOnlyRegistry(watch, registry);
    assert.deepEqual(watch.consoleErrors, []);
    await page.close();
  });

  it('is usable on a phone (390×844): no horizontal scroll, controls reachable', async () => {
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    try {
      const page = await phone.newPage();
      const watch = watchPage(page);
      await page.goto(`${registry.url}/_dashboard`);
      await waitForGrid(page, configHexOnDisk(registry));
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `page is ${overflow}px wider than the phone screen`);
      for (const selector of ['button.cell[data-offset="4"]', 'button[data-flag="DEBUG"]', '#env-copy', '#package-filter', '#login-user']) {
        const box = await page.locator(selector).boundingBox();
        assert.ok(box && box.x >= 0 && box.x + box.width <= 390 + 1, `${selector} fits the screen (${JSON.stringify(box)})`);
      }
      await screenshot(page, 'dashboard-390x844-phone.png');
      assertOnlyRegistry(watch, registry);
      assert.deepEqual(watch.consoleErrors, []);
    } finally {
      await phone.close();
    }
  });

  it('asks before a URL change that invalidates tokens, and applies it only when confirmed', async () => {
    const page = await context.newPage();
    const watch = watchPage(page);
    await page.goto(`${registry.url}/_dashboard`);
    // sessionStorage is per tab: this tab signs in on its own
    await page.fill('#login-user', ADMIN.name);
    await page.fill('#login-password', ADMIN.password);
    await page.click('#login-form button[type="submit"]');
    await page.waitForSelector('#signed-in:not([hidden])');
    await page.waitForSelector('#connection[data-state="live"]');
    const dialogs: string[] = [];

    // decline: nothing changes
    page.once('dialog', (dialog) => {
      dialogs.push(dialog.message());
      void dialog.dismiss();
    });
    const before = lockbBytes(registry);
    await page.fill('#url-input', 'https://registry.mycompany.com');
    await page.click('#url-form button[type="submit"]');
    await page.evaluate(() => new Promise((resolve) => setTimeout(resolve, 100))); // let a (wrong) write start, if any
    assert.equal(dialogs.length, 1);
    assert.match(dialogs[0], /stops working/);
    assert.deepEqual(lockbBytes(registry), before);

    // accept: the URL and the hash change
    page.once('dialog', (dialog) => void dialog.accept());
    await page.click('#url-form button[type="submit"]');
    await page.waitForFunction(() => document.getElementById('registry-hash')?.textContent === '0x4469efac');
    assert.equal(lockbBytes(registry).readUInt32LE(5), 0x4469efac);
    assert.equal(await page.textContent('#registry-url'), 'https://registry.mycompany.com');
    // the new issuer invalidated this tab's token: it notices by itself and signs out
    await page.waitForSelector('#login-form:not([hidden])');
    await page.waitForSelector('#connection[data-state="live"]');
    await screenshot(page, 'dashboard-url-changed.png');
    assertOnlyRegistry(watch, registry);
    assert.deepEqual(watch.consoleErrors, []);
    await page.close();
  });

  it('keeps write controls disabled for a signed-in non-admin', async () => {
    const fresh = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    try {
      const page = await fresh.newPage();
      await page.goto(`${registry.url}/_dashboard`);
      await page.fill('#login-user', READER.name);
      await page.fill('#login-password', READER.password);
      await page.click('#login-form button[type="submit"]');
      await page.waitForSelector('#signed-in:not([hidden])');
      assert.equal(await page.textContent('#role'), 'read-only');
      assert.equal(await page.isDisabled('button[data-flag="DEBUG"]'), true);
      assert.equal(await page.isDisabled('#url-form button[type="submit"]'), true);
    } finally {
      await fresh.close();
    }
  });
});
