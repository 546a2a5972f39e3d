/**
 * The fast `registry config get` entry (scripts/config-get.ts) against the full CLI it stands in
 * for: same bytes on stdout for the shapes it answers, nothing printed (so the full CLI runs) for
 * everything else. Real child processes on real files.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROJECT_ROOT, cleanEnv } from '../harness/registry';
import { createConfigFile, defaultFields } from '../../plugins/registry-core/index';
import { plainGetArgs } from '../../scripts/config-get';
import { parseArgs } from '../../scripts/config-cli';

const BIN = join(PROJECT_ROOT, 'bin', 'registry.js');
const CLI = join(PROJECT_ROOT, 'build', 'scripts', 'config-cli.js');
const FAST = join(PROJECT_ROOT, 'build', 'scripts', 'config-get.js');
const root = mkdtempSync(join(tmpdir(), 'config-get-'));
after(() => rmSync(root, { recursive: true, force: true }));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(args: string[]): Run {
  const result = spawnSync(process.execPath, args, { cwd: root, encoding: 'utf8', env: cleanEnv(), timeout: 30_000 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** runFastGet alone: exit 0 when it answered, 3 when it declined. */
const fast = (argv: string[]): Run => run(['-e', `process.exitCode = require(${JSON.stringify(FAST)}).runFastGet(process.argv.slice(1)) ? 0 : 3`, '--', ...argv]);
const full = (argv: string[]): Run => run([CLI, ...argv]);
const bin = (argv: string[]): Run => run([BIN, 'config', ...argv]);

test('plainGetArgs accepts only shapes on which the CLI parser agrees', () => {
  const accepted: string[][] = [
    ['--file', 'a.lockb', 'get'],
    ['get', '--file=a.lockb'],
    ['--config', 'c.yaml', '--file', 'get', 'get'],
    ['--file=a', '--config=c', 'get'],
  ];
  for (const argv of accepted) {
    const ours = plainGetArgs(argv);
    assert.ok(ours, `accepted: ${argv.join(' ')}`);
    const cli = parseArgs(argv);
    assert.deepEqual({ ...ours, words: ['get'] }, { ...cli }, argv.join(' '));
  }
  const declined: string[][] = [
    ['get'], // no --file is accepted by the parser but still declined by runFastGet (config.yaml decides)
    ['--file', 'a', 'GET'],
    ['--file', 'a', 'get', 'get'],
    ['--file', 'a', '--file', 'b', 'get'],
    ['--file=', 'get'],
    ['--file', '-x', 'get'],
    ['--file', 'a', '--', 'get'],
    ['-h'],
    ['--file', 'a', 'toggle', 'DEBUG'],
    ['--nope', 'get'],
  ];
  for (const argv of declined.slice(1)) assert.equal(plainGetArgs(argv), undefined, argv.join(' '));
  assert.deepEqual(plainGetArgs(declined[0]), {});
});

test('fast get prints exactly what the full CLI prints, .env.local URL included', () => {
  const lockb = join(root, 'a.lockb');
  createConfigFile(lockb, { ...defaultFields('https://npm.example.test/reg'), featureFlags: 0, rows: 30 });
  const config = join(root, 'config.yaml');
  writeFileSync(config, 'storage: ./storage\n');
  writeFileSync(join(root, '.env.local'), 'BUN_REGISTRY_URL=https://npm.example.test/reg/\n');
  for (const argv of [
    ['--file', lockb, 'get'],
    ['get', `--file=${lockb}`, '--config', config],
  ]) {
    const answer = fast(argv);
    assert.equal(answer.code, 0, `fast path must answer ${argv.join(' ')}: ${answer.stderr}`);
    const reference = full(argv);
    assert.equal(reference.code, 0, reference.stderr);
    assert.equal(answer.stdout, reference.stdout);
    assert.equal(answer.stderr, '');
    const viaBin = bin(argv);
    assert.deepEqual(viaBin, reference);
  }
  assert.match(fast(['--file', lockb, '--config', config, 'get']).stdout, /\(https:\/\/npm\.example\.test\/reg\)/);
});

test('fast get declines, printing nothing, where the full CLI reports an error; the bin then gives the CLI answer', () => {
  const good = join(root, 'good.lockb');
  createConfigFile(good, defaultFields());
  const badCheck = join(root, 'bad.lockb');
  createConfigFile(badCheck, defaultFields());
  const bytes = readFileSync(badCheck);
  bytes[16] ^= 0xff;
  writeFileSync(badCheck, bytes);
  const badEnvDir = mkdtempSync(join(root, 'env-'));
  writeFileSync(join(badEnvDir, 'config.yaml'), 'storage: ./storage\n');
  writeFileSync(join(badEnvDir, '.env.local'), 'BUN_REGISTRY_URL=ftp://nope\n');
  const cases: string[][] = [
    ['--file', join(root, 'missing.lockb'), 'get'],
    ['--file', badCheck, 'get'],
    ['--file', root, 'get'], // a directory
    ['--file', good, '--config', join(root, 'no-such.yaml'), 'get'],
    ['--file', good, '--config', join(badEnvDir, 'config.yaml'), 'get'],
  ];
  for (const argv of cases) {
    const answer = fast(argv);
    assert.deepEqual({ code: answer.code, stdout: answer.stdout, stderr: answer.stderr }, { code: 3, stdout: '', stderr: '' }, argv.join(' '));
    const reference = full(argv);
    assert.notEqual(reference.code, 0, `the CLI must refuse ${argv.join(' ')}`);
    // a stack trace (the directory case) names the callers, which differ: compare its first line
    const firstLine = (r: Run): [number | null, string, string] => [r.code, r.stdout, r.stderr.split('\n')[0]];
    assert.deepEqual(firstLine(bin(argv)), firstLine(reference), argv.join(' '));
  }
});

test('fast get reads a lockb it may not write (get changes nothing)', { skip: process.getuid?.() === 0 ? 'root may write anything' : false }, () => {
  const lockb = join(root, 'ro.lockb');
  createConfigFile(lockb, defaultFields());
  chmodSync(lockb, 0o444);
  assert.equal(fast(['--file', lockb, 'get']).code, 0);
});
