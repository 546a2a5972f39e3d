/**
 * The dashboard's pure pieces: encoding negotiation, request validation messages, change
 * descriptions, packument summaries, the admin rule, plugin options — and the page script
 * type-checks (`// @ts-check` is only worth something if something checks it).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { defaultFields, withByte } from '../../plugins/registry-core/index';
import { requireAdmin, sessionOf } from '../../plugins/verdaccio-registry-dashboard/access';
import { chooseEncoding, loadAssets } from '../../plugins/verdaccio-registry-dashboard/assets';
import { describeConfigChange as describeChange } from '../../plugins/registry-core/describe';
import { buildDashboardConfig } from '../../plugins/verdaccio-registry-dashboard/config-view';
import { DashboardHttpError } from '../../plugins/verdaccio-registry-dashboard/http-errors';
import { parseDashboardOptions, PUBLIC_DIR } from '../../plugins/verdaccio-registry-dashboard/index';
import { matchesFilter, summarizePackument } from '../../plugins/verdaccio-registry-dashboard/packages';
import { ClientMessage, ConfigOperation, describeIssues } from '../../plugins/verdaccio-registry-dashboard/requests';
import { PROJECT_ROOT } from '../harness/registry';

function problem(body: unknown): string {
  const result = ConfigOperation.safeParse(body);
  assert.equal(result.success, false, `${JSON.stringify(body)} should be refused`);
  return describeIssues(result.error!);
}

describe('dashboard units', () => {
  it('chooses br > gzip > identity and honours q=0', () => {
    assert.equal(chooseEncoding(undefined), 'identity');
    assert.equal(chooseEncoding('gzip, deflate, br, zstd'), 'br');
    assert.equal(chooseEncoding('gzip'), 'gzip');
    assert.equal(chooseEncoding('br;q=0, gzip;q=0.5'), 'gzip');
    assert.equal(chooseEncoding('*'), 'br');
    assert.equal(chooseEncoding('*;q=0'), 'identity');
    assert.equal(chooseEncoding('identity'), 'identity');
    assert.equal(chooseEncoding('BR'), 'br');
  });

  it('names the problem of a refused operation', () => {
    assert.match(problem({ op: 'setByte', offset: 3, value: 1 }), /^offset must be an integer 4\.\.15.*, got 3$/);
    assert.match(problem({ op: 'setByte', offset: 4, value: 'x' }), /^value must be an integer 0\.\.255.*, got "x"$/);
    assert.match(problem({ op: 'setByte', offset: 4 }), /^value is required/);
    assert.equal(problem({ op: 'toggleFeature', flag: 'DEBUG', x: 1 }), 'unknown key "x"');
    assert.equal(problem({ op: 'toggleFeature', flag: 'X' }), 'flag must be one of PREMIUM_TYPES, PRIVATE_REGISTRY, DEBUG, OFFLINE');
    assert.equal(problem({ op: 'nope' }), 'op must be one of setByte, toggleFeature, setRegistryUrl');
    assert.equal(problem('text'), 'body must be a JSON object');
    assert.equal(problem(null), 'body must be a JSON object');
    assert.deepEqual(ConfigOperation.parse({ op: 'setByte', offset: 15, value: 255 }), { op: 'setByte', offset: 15, value: 255 });
    assert.equal(ClientMessage.safeParse({ type: 'command', line: 'get', id: 'x'.repeat(65) }).success, false);
  });

  it('describes a change field by field', () => {
    const base = defaultFields();
    assert.equal(describeChange(base, { ...base, featureFlags: 7 }), 'featureFlags 0x3 → 0x7 (DEBUG on)');
    assert.equal(describeChange(base, { ...base, featureFlags: 4 }), 'featureFlags 0x3 → 0x4 (PREMIUM_TYPES off, PRIVATE_REGISTRY off, DEBUG on)');
    assert.equal(describeChange(base, withByte(base, 13, 1)), 'terminalMode raw → cooked');
    assert.equal(describeChange(base, { ...base, rows: 30, cols: 100 }), 'rows 24 → 30, cols 80 → 100');
    assert.equal(describeChange(base, { ...base, registryHash: 0x4469efac }), 'registryHash 0xceb6960a → 0x4469efac');
    assert.equal(describeChange(base, base), 'rewritten with the same values');
  });

  it('builds the docs/http-api.md document from fields and URL', () => {
    const document = buildDashboardConfig({ ...defaultFields(), featureFlags: 0 }, 'https://registry.mycompany.com');
    assert.equal(document.hex, '010a96b6ce00000000021850');
    assert.equal(document.check, '50');
    assert.deepEqual(document.issuer, { url: 'http://localhost:4873/_auth', alg: 'RS256', kind: 'local' });
    assert.equal(document.urlMatchesHash, false, 'the hash is still the one of localhost');
  });

  it('summarizes a packument in publish order with the last change as time', () => {
    const summary = summarizePackument({
      name: 'p',
      versions: { '1.10.0': {}, '1.2.0': {}, '1.9.0': {} },
      'dist-tags': { latest: '1.10.0', beta: '1.9.0' },
      time: { created: '2026-01-01T00:00:00.000Z', '1.2.0': '2026-01-01T00:00:00.000Z', '1.9.0': '2026-01-02T00:00:00.000Z', '1.10.0': '2026-01-03T00:00:00.000Z', modified: '2026-01-04T00:00:00.000Z' },
    });
    assert.deepEqual(summary, {
      name: 'p',
      versions: ['1.2.0', '1.9.0', '1.10.0'],
      distTags: { latest: '1.10.0', beta: '1.9.0' },
      time: '2026-01-04T00:00:00.000Z',
    });
    assert.equal(matchesFilter('@scope/Thing', 'thing'), true);
    assert.equal(matchesFilter('other', 'thing'), false);
    assert.equal(matchesFilter('x', undefined), true);
  });

  it('admins: the registry-admin group or the plugin list; 401 anonymous, 403 others', () => {
    const admins = new Set(['carol']);
    const user = (name: string | undefined, groups: string[] = []) => ({ name, groups: [...groups, '$all'], real_groups: groups });
    assert.equal(sessionOf(user('alice', ['registry-admin']), admins).admin, true);
    assert.equal(sessionOf(user('carol'), admins).admin, true);
    assert.equal(sessionOf(user('bob'), admins).admin, false);
    assert.throws(() => requireAdmin(user(undefined), admins), (e: unknown) => e instanceof DashboardHttpError && e.status === 401);
    assert.throws(() => requireAdmin({ ...user(undefined), error: 'jwt expired' }, admins), /token rejected \(jwt expired\)/);
    assert.throws(() => requireAdmin(user('bob'), admins), (e: unknown) => e instanceof DashboardHttpError && e.status === 403);
    assert.deepEqual(parseDashboardOptions({ admins: ['a'] }).admins, new Set(['a']));
    assert.deepEqual(parseDashboardOptions({}).admins, new Set());
    assert.throws(() => parseDashboardOptions({ admins: 'alice' }), /admins/);
  });

  it('loads the page with versioned asset URLs and refuses a reference to a missing asset', () => {
    const assets = loadAssets(PUBLIC_DIR, '/_dashboard');
    const page = assets.get('/')!.representations.identity.body.toString('utf8');
    for (const file of ['app.js', 'style.css', 'favicon.svg']) {
      const asset = assets.get(`/assets/${file}`);
      assert.ok(asset, file);
      assert.ok(page.includes(`/_dashboard/assets/${file}?v=${asset.version}`), `${file} referenced with its version`);
      assert.ok(asset.representations.br.body.length < asset.representations.identity.body.length || file === 'favicon.svg');
    }
    const login = assets.get('/login')!.representations.identity.body.toString('utf8');
    for (const file of ['login.js', 'login.css']) assert.ok(login.includes(`/_dashboard/assets/${file}?v=${assets.get(`/assets/${file}`)!.version}`), `login page references ${file}`);
    assert.equal(assets.get('/assets/login.html'), undefined, 'the login page is served as a page, not as an asset');
    const broken = mkdtempSync(join(tmpdir(), 'dashboard-assets-'));
    writeFileSync(join(broken, 'index.html'), '<script src="{{asset:gone.js}}"></script>');
    assert.throws(() => loadAssets(broken, '/_dashboard'), /missing asset gone\.js/);
  });

  it('the page scripts type-check (// @ts-check, strict, DOM): the dashboard and the web login page', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dashboard-tscheck-'));
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { allowJs: true, checkJs: true, noEmit: true, strict: true, target: 'ES2022', lib: ['ES2022', 'DOM', 'DOM.Iterable'], types: [] },
        files: [join(PUBLIC_DIR, 'app.js'), join(PUBLIC_DIR, 'login.js')],
      }),
    );
    const tsc = join(PROJECT_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    try {
      execFileSync(process.execPath, [tsc, '-p', join(dir, 'tsconfig.json')], { encoding: 'utf8' });
    } catch (error) {
      const output = (error as { stdout?: string }).stdout ?? String(error);
      assert.fail(`public/app.js or public/login.js does not type-check:\n${output}`);
    }
  });
});
