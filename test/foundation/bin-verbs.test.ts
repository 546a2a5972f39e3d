/**
 * `registry <verb>` (bin/registry.js) as users run it: real child processes on real files. The bin
 * must run the built JavaScript directly — a call never compiles anything (issue: `npm run config`
 * used to rebuild the whole tree first and took seconds).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROJECT_ROOT, cleanEnv } from '../harness/registry';
import { createConfigFile, defaultFields } from '../../plugins/registry-core/index';

const BIN = join(PROJECT_ROOT, 'bin', 'registry.js');
const root = mkdtempSync(join(tmpdir(), 'bin-verbs-'));
after(() => rmSync(root, { recursive: true, force: true }));

function registry(args: string[], cwd = root): { code: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [BIN, ...args], { cwd, encoding: 'utf8', env: cleanEnv(), timeout: 30_000 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

test('`registry config get` decodes the file and compiles nothing', () => {
  const lockb = join(root, 'a.lockb');
  createConfigFile(lockb, defaultFields());
  const buildInfo = join(PROJECT_ROOT, 'build', '.tsbuildinfo');
  const before = statSync(buildInfo).mtimeMs;
  const result = registry(['config', '--file', lockb, 'get']);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /bytes\s+01 0a 96 b6 ce 03 00 00 00 02 18 50 36/);
  assert.equal(statSync(buildInfo).mtimeMs, before, 'the call must not run the compiler');
});

test('`registry config` in a folder with its own config.yaml acts on that folder', () => {
  const dir = mkdtempSync(join(root, 'own-'));
  writeFileSync(join(dir, 'config.yaml'), 'storage: ./storage\nregistry_lockb: ./here.lockb\nplugins: ./plugins\n');
  createConfigFile(join(dir, 'here.lockb'), defaultFields());
  const before = readFileSync(join(dir, 'here.lockb'));
  const result = registry(['config', 'toggle', 'DEBUG'], dir);
  assert.equal(result.code, 0, result.stderr);
  const after = readFileSync(join(dir, 'here.lockb'));
  assert.equal(after[9], before[9] ^ 0x04, 'DEBUG (bit 2 of byte 9) flipped in ./here.lockb');
});

test('12.6 OFFLINE: `registry config toggle OFFLINE` flips bit 3 of byte 9', () => {
  const dir = mkdtempSync(join(root, 'offline-'));
  writeFileSync(join(dir, 'config.yaml'), 'storage: ./storage\nregistry_lockb: ./here.lockb\nplugins: ./plugins\n');
  createConfigFile(join(dir, 'here.lockb'), defaultFields());
  const before = readFileSync(join(dir, 'here.lockb'));
  const result = registry(['config', 'toggle', 'OFFLINE'], dir);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(readFileSync(join(dir, 'here.lockb'))[9], before[9] ^ 0x08, 'OFFLINE (bit 3 of byte 9) flipped');
});

test('`registry` with an unknown verb exits 1 with the usage; --help prints every verb', () => {
  const unknown = registry(['frobnicate']);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /unknown command `frobnicate`/);
  const help = registry(['--help']);
  assert.equal(help.code, 0);
  for (const verb of ['start', 'config', 'term', 'self-publish']) assert.match(help.stdout, new RegExp(`registry ${verb}|^${verb}`, 'm'));
});

test('`registry term --help` reaches the terminal client', () => {
  const result = registry(['term', '--help']);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout + result.stderr, /--registry/);
});
