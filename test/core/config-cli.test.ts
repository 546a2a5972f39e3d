/** The config CLI as users run it: a real child process on real files (one case through `npm run config --`). */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { PROJECT_ROOT, cleanEnv } from '../harness/registry';
import { createConfigFile, defaultFields, encodeRecord } from '../../plugins/registry-core/index';

const CLI = join(PROJECT_ROOT, 'build', 'scripts', 'config-cli.js');
const root = mkdtempSync(join(tmpdir(), 'core-cli-'));
after(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;

function project(): { dir: string; config: string; lockb: string } {
  const dir = join(root, `p${++counter}`);
  mkdirSync(join(dir, 'data'), { recursive: true });
  const config = join(dir, 'config.yaml');
  writeFileSync(config, 'storage: ./store\nregistry_lockb: ./data/registry.lockb\nplugins: ./plugins\n');
  return { dir, config, lockb: join(dir, 'data', 'registry.lockb') };
}

function cli(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: cleanEnv(), timeout: 30_000 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

const record = encodeRecord({ kind: 'publish', name: 'kept', version: '1.0.0', sha512: '', time: 1_700_000_000_000, detail: '' });

test('`npm run config -- toggle DEBUG` changes byte 9 and the check byte and nothing else', () => {
  const { lockb } = project();
  createConfigFile(lockb, defaultFields());
  appendFileSync(lockb, record);
  const before = readFileSync(lockb);
  const result = spawnSync('npm', ['run', '--silent', 'config', '--', '--file', lockb, 'toggle', 'DEBUG'], {
    cwd: PROJECT_ROOT,
    encoding: 'utf8',
    env: cleanEnv(),
    timeout: 60_000,
  });
  assert.equal(result.status, 0, result.stderr);
  assert.match(result.stdout, /DEBUG on \(featureFlags 7\)/);
  const after = readFileSync(lockb);
  assert.equal(after.length, before.length);
  const changed = [...after.keys()].filter((i) => after[i] !== before[i]);
  assert.deepEqual(changed, [9, 16]);
  assert.equal(after[9], 0x07);
  assert.equal(after.subarray(0, 17).toString('hex'), '42524547010a96b6ce0700000002185043');
});

test('12.6 OFFLINE: `toggle OFFLINE` sets bit 3 of byte 9 (and the check byte) and back', () => {
  const { lockb } = project();
  createConfigFile(lockb, defaultFields());
  const on = cli(['--file', lockb, 'toggle', 'OFFLINE']);
  assert.equal(on.code, 0, on.stderr);
  assert.match(on.stdout, /OFFLINE on \(featureFlags 11\)/);
  assert.equal(readFileSync(lockb)[9], 0x0b);
  const off = cli(['--file', lockb, 'toggle', 'offline']);
  assert.equal(off.code, 0, off.stderr);
  assert.equal(readFileSync(lockb)[9], 0x03);
});

test('`set 13 7` is refused naming terminalMode; the file is unchanged', () => {
  const { config, lockb } = project();
  createConfigFile(lockb, defaultFields());
  const before = readFileSync(lockb);
  const result = cli(['--config', config, 'set', '13', '7']);
  assert.equal(result.code, 1);
  assert.match(result.stderr, /terminalMode must be 0 \(disabled\), 1 \(cooked\) or 2 \(raw\), got 7/);
  assert.deepEqual(readFileSync(lockb), before);
  const ok = cli(['--config', config, 'set', '0xd', '0x1']);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(readFileSync(lockb)[13], 1);
});

test('missing file: get says so and how it is created; usage errors exit 2', () => {
  const { config, lockb } = project();
  const missing = cli(['--config', config, 'get']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, new RegExp(`no registry\\.lockb at ${lockb.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  assert.match(missing.stderr, /npm start/);
  assert.equal(cli(['--config', config]).code, 2);
  const unknown = cli(['--config', config, 'frob']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown command "frob"/);
  assert.equal(cli(['--nope', 'get']).code, 2);
  const help = cli(['help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /rebuild-index/);
});

test('get, url and env act on the lockb and .env.local of --config', () => {
  const { dir, config, lockb } = project();
  createConfigFile(lockb, defaultFields());
  const get = cli(['--config', config, 'get']);
  assert.equal(get.code, 0, get.stderr);
  assert.match(get.stdout, /bytes {3}01 0a 96 b6 ce 03 00 00 00 02 18 50 36/);
  const url = cli(['--config', config, 'url', 'https://registry.mycompany.com/']);
  assert.equal(url.code, 0, url.stderr);
  assert.equal(readFileSync(join(dir, '.env.local'), 'utf8'), 'BUN_REGISTRY_URL=https://registry.mycompany.com\n');
  assert.equal(readFileSync(lockb).subarray(5, 9).readUInt32LE(0), 0x4469efac);
  const env = cli(['--config', config, 'env']);
  assert.equal(env.stdout.split('\n')[1], 'BUN_REGISTRY_URL=https://registry.mycompany.com');
});

test('repair fixes a bad magic and keeps the records; rebuild-index and packages use storage: of --config', () => {
  const { dir, config, lockb } = project();
  createConfigFile(lockb, defaultFields());
  appendFileSync(lockb, record);
  const damaged = readFileSync(lockb);
  damaged.write('XX', 0, 'latin1');
  writeFileSync(lockb, damaged);
  const refused = cli(['--config', config, 'get']);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /bad magic: expected "BREG".*found 58 58 45 47[\s\S]*npm run config -- repair/);
  const repaired = cli(['--config', config, 'repair']);
  assert.equal(repaired.code, 0, repaired.stderr);
  assert.match(repaired.stdout, /magic: 58 58 45 47 → 42 52 45 47/);
  assert.match(repaired.stdout, /package index: 1 records verify/);
  assert.match(cli(['--config', config, 'packages']).stdout, /^kept {2}1\.0\.0/);

  mkdirSync(join(dir, 'store', '@team', 'lib'), { recursive: true });
  writeFileSync(
    join(dir, 'store', '@team', 'lib', 'package.json'),
    JSON.stringify({ name: '@team/lib', versions: { '2.0.0': {} }, time: { '2.0.0': '2024-02-02T00:00:00.000Z' }, 'dist-tags': { latest: '2.0.0' } }),
  );
  const rebuilt = cli(['--config', config, 'rebuild-index']);
  assert.equal(rebuilt.code, 0, rebuilt.stderr);
  assert.match(rebuilt.stdout, /2 records for 1 packages/);
  const packages = cli(['--config', config, 'packages']);
  assert.match(packages.stdout, /^@team\/lib {2}2\.0\.0 {2}\[latest=2\.0\.0\]/);
  assert.doesNotMatch(packages.stdout, /kept/);
});

test('watch prints a change made by another CLI process, and stops on SIGINT', async () => {
  const { config, lockb } = project();
  createConfigFile(lockb, defaultFields());
  const watcher = spawn(process.execPath, [CLI, '--config', config, 'watch'], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  const lines = createInterface({ input: watcher.stdout });
  const seen: string[] = [];
  const changeSeen = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no change line within 10 s; saw:\n${seen.join('\n')}`)), 10_000);
    lines.on('line', (line) => {
      seen.push(line);
      if (line.startsWith('watching')) {
        const toggled = cli(['--config', config, 'toggle', 'DEBUG']);
        assert.equal(toggled.code, 0, toggled.stderr);
      }
      if (/featureFlags 0x3 → 0x7/.test(line)) {
        clearTimeout(timer);
        resolve(line);
      }
    });
  });
  try {
    assert.match(await changeSeen, /featureFlags 0x3 → 0x7 \(DEBUG on\) {2}\[010a96b6ce07000000021850 43\]/);
  } finally {
    watcher.kill('SIGINT');
  }
  const code = await new Promise<number | null>((resolve) => watcher.on('exit', resolve));
  assert.equal(code, 0);
});
