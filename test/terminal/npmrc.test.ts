import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isTerminalError } from '../../terminal/errors';
import { defaultNpmrcFiles, findAuthToken, nerfDart, nerfDartCandidates, parseNpmrc } from '../../terminal/npmrc';

test('nerf dart keys are npm\'s: host with port, path with a trailing slash, walking up to the host', () => {
  assert.equal(nerfDart('http://localhost:4873'), '//localhost:4873/');
  assert.equal(nerfDart('https://registry.example.com/npm/private'), '//registry.example.com/npm/private/');
  assert.equal(nerfDart('https://registry.example.com:443/'), '//registry.example.com/');
  assert.deepEqual(nerfDartCandidates('https://r.example.com/a/b'), ['//r.example.com/a/b/', '//r.example.com/a/', '//r.example.com/']);
});

test('parseNpmrc: comments, quotes, ${VAR} expansion and escaped \\${VAR}', () => {
  const entries = parseNpmrc(
    [
      '; comment',
      '# comment',
      'registry=http://localhost:4873/',
      '//localhost:4873/:_authToken="${MY_TOKEN}"',
      "//other:1/:_authToken = 'quoted'",
      'literal=\\${NOT_EXPANDED}',
      'garbage line',
    ].join('\n'),
    { MY_TOKEN: 'tok-123' },
  );
  assert.equal(entries.get('//localhost:4873/:_authToken'), 'tok-123');
  assert.equal(entries.get('//other:1/:_authToken'), 'quoted');
  assert.equal(entries.get('literal'), '${NOT_EXPANDED}');
  assert.equal(entries.get('registry'), 'http://localhost:4873/');
  assert.equal(entries.has('garbage line'), false);
});

test('findAuthToken: ./.npmrc first, then $NPM_CONFIG_USERCONFIG, then ~/.npmrc; the most specific path wins inside a file', () => {
  const root = mkdtempSync(join(tmpdir(), 'term-npmrc-'));
  const cwd = join(root, 'project');
  const home = join(root, 'home');
  const userconfig = join(root, 'userconfig');
  for (const dir of [cwd, home]) mkdirSync(dir, { recursive: true });
  writeFileSync(join(home, '.npmrc'), '//localhost:4873/:_authToken=from-home\n//127.0.0.1:9/:_authToken=home-only\n');
  writeFileSync(userconfig, '//localhost:4873/:_authToken=from-userconfig\n');
  const env = { NPM_CONFIG_USERCONFIG: userconfig };
  const files = defaultNpmrcFiles(cwd, env, home);
  assert.deepEqual(files, [join(cwd, '.npmrc'), userconfig, join(home, '.npmrc')]);

  assert.equal(findAuthToken('http://localhost:4873', files, env)?.token, 'from-userconfig');
  assert.equal(findAuthToken('http://127.0.0.1:9', files, env)?.token, 'home-only');
  assert.equal(findAuthToken('http://127.0.0.1:10', files, env), undefined);

  writeFileSync(join(cwd, '.npmrc'), '//localhost:4873/:_authToken=root-of-host\n//localhost:4873/sub/:_authToken=from-project-sub\n');
  const found = findAuthToken('http://localhost:4873/sub', files, env);
  assert.equal(found?.token, 'from-project-sub');
  assert.match(found?.source ?? '', /project\/\.npmrc \(\/\/localhost:4873\/sub\/:_authToken\)/);
  assert.equal(findAuthToken('http://localhost:4873/other', files, env)?.token, 'root-of-host');
});

test('findAuthToken: an explicit --npmrc that does not exist is an error, not "no token"', () => {
  assert.throws(
    () => findAuthToken('http://localhost:4873', ['/nonexistent/.npmrc'], {}, { required: true }),
    (error: unknown) => isTerminalError(error, 'ERR_NPMRC') && /does not exist/.test(error.message),
  );
  assert.equal(findAuthToken('http://localhost:4873', ['/nonexistent/.npmrc'], {}), undefined);
});
