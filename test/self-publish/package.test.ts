/**
 * The pieces of self-publish that need no registry: npm pack reproducibility (what idempotence
 * rests on), the completeness check, token lookup, and bin/registry.js in an empty folder.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { describe, test } from 'node:test';
import { load } from 'js-yaml';
import { PROJECT_ROOT } from '../harness/registry';
import { findPackageProblems, findToken, packPackage, readManifest } from '../../scripts/lib/self-publish';
import { readSelfPublishSettings } from '../../scripts/lib/self-publish-on-start';
import { startBin } from './bin-process';

function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

function writeFiles(root: string, files: Record<string, string>): void {
  for (const [file, content] of Object.entries(files)) {
    mkdirSync(join(root, file, '..'), { recursive: true });
    writeFileSync(join(root, file), content);
  }
}

describe('packing the project', () => {
  test('two npm packs of the same tree give the same sha512, and the package is complete', async () => {
    const first = await packPackage(PROJECT_ROOT);
    const second = await packPackage(PROJECT_ROOT);
    assert.equal(first.integrity, second.integrity);
    assert.match(first.integrity, /^sha512-/);
    assert.match(first.sha512Hex, /^[0-9a-f]{128}$/);
    assert.equal(Buffer.from(first.integrity.slice('sha512-'.length), 'base64').toString('hex'), first.sha512Hex);

    assert.ok(first.files.includes('bin/registry.js'));
    assert.ok(first.files.includes('build/scripts/start.js'));
    assert.ok(first.files.includes('build/scripts/self-publish.js'));
    assert.ok(first.files.includes('templates/config.yaml'));
    assert.ok(!first.files.some((file) => file.startsWith('build/test/')), 'tests are not shipped');
    assert.ok(!first.files.some((file) => file.endsWith('.map')), 'source maps are not shipped');
    assert.ok(!first.files.some((file) => file.endsWith('.ts')), 'TypeScript sources are not shipped');

    const problems = findPackageProblems(PROJECT_ROOT, readManifest(PROJECT_ROOT), first.files);
    assert.deepEqual(problems, [], problems.join('\n'));
  });

  test('the completeness check names each missing part and undeclared dependency', async () => {
    const dir = tempDir('self-publish-incomplete-');
    writeFiles(dir, {
      'package.json': JSON.stringify({
        name: '@mycompany/incomplete',
        version: '1.0.0',
        bin: { incomplete: 'bin/run.js' },
        dependencies: { jose: '6.2.18' },
      }),
      'README.md': '# incomplete\n',
      'config.yaml': 'storage: ./storage\nplugins: ./plugins\nauth:\n  registry-fake: {}\n  htpasswd: { file: ./htpasswd }\n',
      'plugins/verdaccio-registry-fake/package.json': JSON.stringify({ main: '../../build/plugins/verdaccio-registry-fake/index.js' }),
      'build/scripts/start.js': 'require("node:fs"); require("./lib/x"); require("jose"); require("left-pad/sub"); require("@scope/thing");\n',
      'build/test/a.test.js': '\n',
    });
    const packed = await packPackage(dir);
    const problems = findPackageProblems(dir, readManifest(dir), packed.files);
    const text = problems.join('\n');
    assert.match(text, /bin\/run\.js is not in the package/);
    assert.match(text, /templates\/config\.yaml is not in the package/);
    assert.match(text, /build\/plugins\/verdaccio-registry-fake\/index\.js is not in the package/);
    assert.match(text, /build\/test\/a\.test\.js: tests must not be shipped/);
    assert.match(text, /requires "left-pad"/);
    assert.match(text, /requires "@scope\/thing"/);
    assert.doesNotMatch(text, /"jose"|"node:fs"|lib\/x|htpasswd/);
    assert.equal(problems.length, 6, text);
  });
});

describe('token lookup', () => {
  test('NPM_TOKEN first, then the _authToken npm would use for that registry', () => {
    const packageDir = tempDir('self-publish-token-');
    const home = tempDir('self-publish-home-');
    const userconfig = join(home, '.npmrc');
    writeFileSync(join(packageDir, '.npmrc'), '# project\n//127.0.0.1:4999/:_authToken=${MY_TOKEN}\n');
    writeFileSync(userconfig, '//127.0.0.1:5001/:_authToken = "user-token"\n; comment\n');
    const base = { npm_config_userconfig: userconfig, MY_TOKEN: 'from-env-substitution' };

    assert.deepEqual(findToken({ registryUrl: 'http://127.0.0.1:4999', packageDir, env: { ...base, NPM_TOKEN: 'env-token' } }), {
      token: 'env-token',
      source: 'NPM_TOKEN',
    });
    assert.equal(findToken({ registryUrl: 'http://127.0.0.1:4999', packageDir, env: base })?.token, 'from-env-substitution');
    assert.equal(findToken({ registryUrl: 'http://127.0.0.1:5001/sub/path', packageDir, env: base })?.token, 'user-token');
    assert.equal(findToken({ registryUrl: 'http://127.0.0.1:5002', packageDir, env: base }), undefined);
  });
});

describe('self_publish settings in config.yaml', () => {
  test('absent → disabled; true needs a user and the password variable; anything else is refused', () => {
    const dir = tempDir('self-publish-settings-');
    const config = join(dir, 'config.yaml');
    writeFileSync(config, 'storage: ./storage\n');
    assert.equal(readSelfPublishSettings(config, {}), undefined);
    writeFileSync(config, 'self_publish: false\n');
    assert.equal(readSelfPublishSettings(config, {}), undefined);
    writeFileSync(config, 'self_publish: yes please\n');
    assert.throws(() => readSelfPublishSettings(config, {}), /must be true or false/);
    writeFileSync(config, 'self_publish: true\n');
    assert.throws(() => readSelfPublishSettings(config, {}), /self_publish_user/);
    writeFileSync(config, 'self_publish: true\nself_publish_user: releaser\n');
    assert.throws(() => readSelfPublishSettings(config, {}), /REGISTRY_SELF_PUBLISH_PASSWORD/);
    assert.deepEqual(readSelfPublishSettings(config, { REGISTRY_SELF_PUBLISH_PASSWORD: 'pw' }), { user: 'releaser', password: 'pw' });
  });
});

describe('bin/registry.js', () => {
  test('in an empty folder it writes the default config.yaml and starts a registry; an existing config.yaml is kept', async () => {
    const dir = tempDir('registry-bin-');
    const bin = join(PROJECT_ROOT, 'bin', 'registry.js');
    const first = await startBin(bin, dir);
    try {
      assert.match(first.logs(), /on Node v(2[2-9]|[3-9]\d)\./, 'runs on a supported Node');
      const text = readFileSync(join(dir, 'config.yaml'), 'utf8');
      const config = load(text) as Record<string, unknown>;
      assert.equal(config.plugins, join(PROJECT_ROOT, 'plugins'));
      assert.ok(isAbsolute(String(config.plugins)));
      const project = load(readFileSync(join(PROJECT_ROOT, 'config.yaml'), 'utf8')) as Record<string, unknown>;
      for (const key of ['auth', 'store', 'middlewares', 'packages', 'storage', 'registry_lockb']) {
        assert.deepEqual(config[key], project[key], `config.yaml ${key} is the project's`);
      }
      const ping = await fetch(`${first.url}/-/ping`);
      assert.equal(ping.status, 200);
    } finally {
      await first.stop();
    }
    writeFileSync(join(dir, 'config.yaml'), `${readFileSync(join(dir, 'config.yaml'), 'utf8')}\n# edited by the user\n`);
    const second = await startBin(bin, dir);
    try {
      assert.doesNotMatch(second.logs(), /wrote the default/);
      assert.match(readFileSync(join(dir, 'config.yaml'), 'utf8'), /# edited by the user/);
    } finally {
      await second.stop();
    }
  });
});
