import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DISABLED_MESSAGE, renderSnapshot, snapshotJson, wrap } from '../../terminal/snapshot';
import { configWith, serverConfig } from './fixtures';

const packages = [
  { name: 'left-pad', versions: ['1.0.0', '1.1.0'], distTags: { latest: '1.1.0' }, time: '2025-01-02T03:04:05.000Z' },
];

test('the snapshot is plain text: the 13 bytes with offsets, fields, flags, packages; no escape codes', () => {
  const text = renderSnapshot({ registry: 'http://127.0.0.1:4873', config: serverConfig(), packages, now: new Date(0) });
  assert.doesNotMatch(text, /\x1b/);
  assert.match(text, /^offset  4  5  6  7  8  9 10 11 12 13 14 15 16$/m);
  assert.match(text, /^bytes  01 0a 96 b6 ce 03 00 00 00 02 18 50 36$/m);
  assert.match(text, /^hex 010a96b6ce03000000021850 check 36$/m);
  assert.match(text, /^featureFlags  3 = PREMIUM_TYPES \| PRIVATE_REGISTRY$/m);
  assert.match(text, /^terminalMode  2 \(raw\)$/m);
  assert.match(text, /^  \[ \] DEBUG$/m);
  assert.match(text, /^  \[ \] OFFLINE$/m);
  assert.match(text, /^  left-pad  1\.0\.0, 1\.1\.0  \[latest=1\.1\.0\]  2025-01-02T03:04:05\.000Z$/m);
  assert.ok(text.endsWith('\n'));
  assert.doesNotMatch(text, /disabled/);
});

test('disabled mode is noted with the way out; a failed package list is said, not hidden', () => {
  const text = renderSnapshot({ registry: 'r', config: configWith(13, 0), packages: { error: 'HTTP 500' } });
  assert.ok(text.includes(`note: ${DISABLED_MESSAGE}`));
  assert.match(text, /packages: not available \(HTTP 500\)/);
});

test('long package lines wrap to the config cols instead of being cut', () => {
  const many = [{ name: 'big', versions: Array.from({ length: 40 }, (_, i) => `1.0.${i}`), distTags: {}, time: 't' }];
  const text = renderSnapshot({ registry: 'r', config: configWith(15, 60), packages: many });
  const lines = text.split('\n').filter((l) => l.includes('1.0.'));
  assert.ok(lines.length > 1);
  assert.ok(lines.every((l) => l.length <= 60), lines.join('\n'));
  assert.equal((text.match(/1\.0\.\d+/g) ?? []).length, 40, 'every version is still there');
  assert.deepEqual(wrap('aaaa bbbb cccc', 9), ['aaaa bbbb', '    cccc']);
  assert.deepEqual(wrap('abcdefghij', 6), ['abcdef', '    gh', '    ij'], 'a word longer than the line is split');
});

test('--json snapshot is the config view and package list', () => {
  const parsed = JSON.parse(snapshotJson({ registry: 'r', config: serverConfig(), packages })) as { config: { hex: string }; packages: unknown[] };
  assert.equal(parsed.config.hex, '010a96b6ce03000000021850');
  assert.equal(parsed.packages.length, 1);
});
