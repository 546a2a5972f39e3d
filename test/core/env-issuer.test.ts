import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ENV_KEYS,
  RegistryCoreError,
  applyEnv,
  defaultFields,
  exportEnv,
  formatBootMark,
  getAudience,
  getIssuer,
  getTokenAlgorithm,
  loadRegistrySettings,
  parseEnvText,
  readRegistryUrl,
  registryEvents,
  registryUrlMatches,
  setEnvFileValue,
  type RegistryEvent,
} from '../../plugins/registry-core/index';

const root = mkdtempSync(join(tmpdir(), 'core-env-'));
after(() => rmSync(root, { recursive: true, force: true }));

function envError(variable: string, pattern?: RegExp) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof RegistryCoreError, String(error));
    assert.equal(error.code, 'ERR_ENV_VALUE');
    assert.match(error.message, new RegExp(variable));
    if (pattern) assert.match(error.message, pattern);
    return true;
  };
}

test('exportEnv prints exactly the 9 documented lines in order', () => {
  assert.equal(
    exportEnv(defaultFields(), 'http://localhost:4873/'),
    'BUN_CONFIG_VERSION=1\nBUN_REGISTRY_URL=http://localhost:4873\nBUN_FEATURE_PRIVATE_REGISTRY=1\nBUN_FEATURE_PREMIUM_TYPES=1\n' +
      'BUN_FEATURE_DEBUG=0\nBUN_FEATURE_OFFLINE=0\nBUN_TERMINAL_MODE=raw\nBUN_TERMINAL_ROWS=24\nBUN_TERMINAL_COLS=80\n',
  );
  const keys = exportEnv({ ...defaultFields(), terminalMode: 1, featureFlags: 4 }, 'http://localhost:4873').trimEnd().split('\n').map((l) => l.split('=')[0]);
  assert.deepEqual(keys, [...ENV_KEYS]);
});

test('exportEnv → parseEnvText → applyEnv round-trips', () => {
  const fields = { version: 0, registryHash: 0, featureFlags: 5, terminalMode: 1, rows: 40, cols: 132 };
  const { fields: back, registryUrl } = applyEnv(defaultFields(), parseEnvText(exportEnv(fields, 'https://registry.mycompany.com')));
  assert.deepEqual(back, { ...fields, registryHash: 0x4469efac });
  assert.equal(registryUrl, 'https://registry.mycompany.com');
});

test('parseEnvText: comments, export, quotes, inline comments; bad lines are named', () => {
  const parsed = parseEnvText(
    '# a comment\n\nexport BUN_FEATURE_DEBUG=true\nBUN_TERMINAL_MODE = "cooked"  # inline\nA=\'lit # not a comment\'\nB="x\\ny \\"q\\""\nC=plain value # comment\r\n',
  );
  assert.deepEqual(parsed, { BUN_FEATURE_DEBUG: 'true', BUN_TERMINAL_MODE: 'cooked', A: 'lit # not a comment', B: 'x\ny "q"', C: 'plain value' });
  assert.throws(() => parseEnvText('GOOD=1\nthis is not an assignment\n'), envError('line 2'));
  assert.throws(() => parseEnvText('A="unterminated\n'), envError('line 1'));
});

test('applyEnv accepts the documented spellings and names the variable on a bad value', () => {
  const base = { ...defaultFields(), featureFlags: 0 };
  const { fields, applied } = applyEnv(base, {
    BUN_FEATURE_DEBUG: '1',
    BUN_FEATURE_PREMIUM_TYPES: 'TRUE',
    BUN_FEATURE_PRIVATE_REGISTRY: 'false',
    BUN_TERMINAL_MODE: 'Cooked',
    BUN_TERMINAL_ROWS: '255',
    BUN_TERMINAL_COLS: '1',
    BUN_CONFIG_VERSION: '0',
    UNRELATED: 'x',
  });
  assert.deepEqual(fields, { ...base, featureFlags: 5, terminalMode: 1, rows: 255, cols: 1, version: 0 });
  assert.deepEqual(applied.sort(), ['BUN_CONFIG_VERSION', 'BUN_FEATURE_DEBUG', 'BUN_FEATURE_PREMIUM_TYPES', 'BUN_TERMINAL_COLS', 'BUN_TERMINAL_MODE', 'BUN_TERMINAL_ROWS']);
  assert.equal(applyEnv(base, { BUN_TERMINAL_MODE: '0' }).fields.terminalMode, 0);
  assert.deepEqual(applyEnv(base, { BUN_TERMINAL_ROWS: '' }).fields, base, 'empty counts as unset');
  const bad: [string, string][] = [
    ['BUN_TERMINAL_MODE', 'fancy'],
    ['BUN_TERMINAL_MODE', '3'],
    ['BUN_TERMINAL_ROWS', '0'],
    ['BUN_TERMINAL_COLS', '256'],
    ['BUN_TERMINAL_COLS', '8x'],
    ['BUN_FEATURE_DEBUG', 'yes'],
    ['BUN_CONFIG_VERSION', '2'],
    ['BUN_REGISTRY_URL', 'not a url'],
  ];
  for (const [key, value] of bad) assert.throws(() => applyEnv(base, { [key]: value }), envError(key), `${key}=${value}`);
});

test('loadRegistrySettings: env beats .env.local beats default; lockb next to config.yaml unless given', () => {
  const dir = mkdtempSync(join(root, 'settings-'));
  const configPath = join(dir, 'config.yaml');
  writeFileSync(configPath, 'storage: ./storage\n');
  let settings = loadRegistrySettings({ configPath });
  assert.deepEqual(settings, { configDir: dir, lockbPath: join(dir, 'registry.lockb'), envFile: join(dir, '.env.local'), registryUrl: 'http://localhost:4873' });
  writeFileSync(join(dir, '.env.local'), 'BUN_REGISTRY_URL=https://registry.mycompany.com/\n');
  settings = loadRegistrySettings({ configPath, lockbPath: 'data/x.lockb' });
  assert.equal(settings.registryUrl, 'https://registry.mycompany.com');
  assert.equal(settings.lockbPath, join(dir, 'data', 'x.lockb'));
  settings = loadRegistrySettings({ configPath, env: { BUN_REGISTRY_URL: 'http://other:8080' } });
  assert.equal(settings.registryUrl, 'http://other:8080');
  assert.throws(() => loadRegistrySettings({ configPath, env: { BUN_REGISTRY_URL: 'nope' } }), envError('BUN_REGISTRY_URL', /environment variable/));
});

test('setEnvFileValue rewrites one key atomically and keeps other lines; readRegistryUrl follows it', () => {
  const dir = mkdtempSync(join(root, 'envfile-'));
  const envFile = join(dir, '.env.local');
  assert.equal(readRegistryUrl(envFile), 'http://localhost:4873', 'no file: default');
  writeFileSync(envFile, '# keep me\nBUN_FEATURE_DEBUG=1\nBUN_REGISTRY_URL=http://a:1\nexport BUN_REGISTRY_URL=http://dup:2\n', { mode: 0o600 });
  assert.equal(readRegistryUrl(envFile), 'http://dup:2', 'later assignment wins, as in dotenv');
  setEnvFileValue(envFile, 'BUN_REGISTRY_URL', 'https://registry.mycompany.com');
  assert.equal(readFileSync(envFile, 'utf8'), '# keep me\nBUN_FEATURE_DEBUG=1\nBUN_REGISTRY_URL=https://registry.mycompany.com\n');
  assert.equal(statSync(envFile).mode & 0o777, 0o600, 'mode kept');
  assert.equal(readRegistryUrl(envFile), 'https://registry.mycompany.com');
  setEnvFileValue(envFile, 'NOTE', 'two words # and "quotes"');
  assert.equal(parseEnvText(readFileSync(envFile, 'utf8')).NOTE, 'two words # and "quotes"');
  // a change by another process (same size, same second) is still seen: the rename gives a new inode
  execFileSync(process.execPath, [
    '-e',
    `require(${JSON.stringify(join(__dirname, '..', '..', 'plugins', 'registry-core', 'index.js'))}).setEnvFileValue(process.argv[1], 'BUN_REGISTRY_URL', 'https://registry.mycompany.org')`,
    envFile,
  ]);
  assert.equal(readRegistryUrl(envFile), 'https://registry.mycompany.org');
  writeFileSync(envFile, 'BUN_REGISTRY_URL=ftp://nope\n');
  assert.throws(() => readRegistryUrl(envFile), envError('BUN_REGISTRY_URL'));
});

test('issuer decision (docs/identity.md)', () => {
  const local = defaultFields('http://localhost:4873');
  assert.equal(getTokenAlgorithm(local), 'EdDSA');
  assert.equal(getTokenAlgorithm({ ...local, featureFlags: 2 }), 'RS256');
  assert.deepEqual(getIssuer(local, 'http://localhost:4873/'), { url: 'http://localhost:4873/_auth', kind: 'private' });
  assert.deepEqual(getIssuer({ ...local, featureFlags: 0 }, 'http://127.0.0.1:9999'), { url: 'http://localhost:4873/_auth', kind: 'local' });
  const company = { ...defaultFields('https://registry.mycompany.com'), featureFlags: 1 };
  assert.deepEqual(getIssuer(company, 'https://registry.mycompany.com/'), { url: 'https://registry.mycompany.com', kind: 'public' });
  assert.deepEqual(getIssuer({ ...company, featureFlags: 3 }, 'https://registry.mycompany.com'), { url: 'https://registry.mycompany.com/_auth', kind: 'private' });
  assert.equal(getAudience(local), 'registry:ceb6960a');
  assert.equal(getAudience({ ...local, registryHash: 0x0a }), 'registry:0000000a');
  assert.equal(registryUrlMatches(local, 'http://LOCALHOST:4873/'), true);
  assert.equal(registryUrlMatches(local, 'https://registry.mycompany.com'), false);
  assert.equal(registryUrlMatches(local, 'garbage'), false);
});

test('registryEvents: one bus per lockb path; a throwing listener does not stop the others', async () => {
  const a = registryEvents(join(root, 'a.lockb'));
  const sameA = registryEvents(join(root, '.', 'a.lockb'));
  const b = registryEvents(join(root, 'b.lockb'));
  const got: RegistryEvent[] = [];
  const warnings: string[] = [];
  const onWarning = (w: Error): void => void warnings.push(w.message);
  process.on('warning', onWarning);
  const offBad = a.on(() => {
    throw new Error('listener bug');
  });
  const off = a.on((event) => got.push(event));
  sameA.emit({ kind: 'publish', time: 1, name: 'x', version: '1.0.0' });
  b.emit({ kind: 'login', time: 2, user: 'u' });
  off();
  offBad();
  a.emit({ kind: 'config', time: 3 });
  await new Promise((resolve) => setImmediate(resolve));
  process.off('warning', onWarning);
  assert.ok(warnings.some((w) => w.includes('listener bug')), 'the broken listener is reported, not swallowed');
  assert.deepEqual(got, [{ kind: 'publish', time: 1, name: 'x', version: '1.0.0' }]);
});

test('boot timeline format', () => {
  assert.equal(formatBootMark('storage ready', 123.44), '[boot +  123.4 ms] storage ready');
  assert.equal(formatBootMark('x', 12345.67), '[boot +12345.7 ms] x');
});

test('12.6 OFFLINE: BUN_FEATURE_OFFLINE sets bit 3 and round-trips through export', () => {
  const base = defaultFields();
  const { fields, applied } = applyEnv(base, { BUN_FEATURE_OFFLINE: '1' });
  assert.equal(fields.featureFlags, base.featureFlags | 8);
  assert.deepEqual(applied, ['BUN_FEATURE_OFFLINE']);
  assert.match(exportEnv(fields, 'http://localhost:4873'), /^BUN_FEATURE_DEBUG=0\nBUN_FEATURE_OFFLINE=1$/m);
  assert.equal(applyEnv(fields, { BUN_FEATURE_OFFLINE: 'false' }).fields.featureFlags, base.featureFlags);
  assert.throws(() => applyEnv(base, { BUN_FEATURE_OFFLINE: 'maybe' }), envError('BUN_FEATURE_OFFLINE'));
});
