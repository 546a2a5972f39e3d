import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  CHECK_OFFSET,
  FIELD_OFFSETS,
  HEADER_SIZE,
  RegistryCoreError,
  crc8,
  crc8Bitwise,
  decodeHeader,
  defaultFields,
  describeConfig,
  encodeHeader,
  fieldAt,
  hasFeature,
  hashRegistryUrl,
  normalizeRegistryUrl,
  validateFields,
  withByte,
  type ConfigFields,
} from '../../plugins/registry-core/index';

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex').replace(/(..)(?!$)/g, '$1 ');

function assertCoreError(fn: () => unknown, code: string, pattern: RegExp, field?: string): RegistryCoreError {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof RegistryCoreError, `expected RegistryCoreError ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code);
  assert.match(caught.message, pattern);
  if (field !== undefined) assert.equal(caught.field, field);
  return caught;
}

test('documented test vectors (docs/config-format.md): murmur3 and CRC-8/SMBUS', () => {
  assert.equal(hashRegistryUrl('http://localhost:4873'), 0xceb6960a);
  assert.equal(hashRegistryUrl('https://registry.mycompany.com'), 0x4469efac);
  assert.equal(crc8(new TextEncoder().encode('123456789')), 0xf4);
});

test('15.1 crc8 (written-out table) equals the bitwise CRC-8/SMBUS definition: every single byte, and any bytes and range (property)', () => {
  for (let byte = 0; byte < 256; byte++) assert.equal(crc8(Uint8Array.of(byte)), crc8Bitwise(Uint8Array.of(byte)), `byte 0x${byte.toString(16)}`);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), fc.nat(), fc.nat(), (bytes, a, b) => {
      const start = bytes.length === 0 ? 0 : a % (bytes.length + 1);
      const end = start + (bytes.length - start === 0 ? 0 : b % (bytes.length - start + 1));
      return crc8(bytes, start, end) === crc8Bitwise(bytes, start, end);
    }),
  );
  assert.equal(crc8Bitwise(new TextEncoder().encode('123456789')), 0xf4, 'the reference itself meets the check value');
});

test('URL normalization: default ports, trailing slash and host case do not change the hash', () => {
  assert.equal(normalizeRegistryUrl('http://LOCALHOST:4873/'), 'http://localhost:4873');
  assert.equal(normalizeRegistryUrl('https://registry.mycompany.com:443/'), 'https://registry.mycompany.com');
  assert.equal(normalizeRegistryUrl('https://example.com/npm/'), 'https://example.com/npm');
  assert.equal(hashRegistryUrl('https://registry.mycompany.com:443/'), 0x4469efac);
  for (const bad of ['', 'localhost:4873', 'ftp://x', 'http://u:p@x', 'http://x/?a=1', 'not a url']) {
    assertCoreError(() => normalizeRegistryUrl(bad), 'ERR_REGISTRY_URL', /registry URL/);
  }
});

test('fresh default header bytes match docs/config-format.md', () => {
  const fields = defaultFields('http://localhost:4873');
  assert.equal(hex(encodeHeader(fields)), '42 52 45 47 01 0a 96 b6 ce 03 00 00 00 02 18 50 36');
  assert.equal(hex(encodeHeader({ ...fields, featureFlags: 0 })), '42 52 45 47 01 0a 96 b6 ce 00 00 00 00 02 18 50 50');
  assert.deepEqual(decodeHeader(encodeHeader(fields)), fields);
});

test('describeConfig gives the docs/http-api.md shape', () => {
  assert.deepEqual(describeConfig(defaultFields()), {
    hex: '010a96b6ce03000000021850',
    check: '36',
    fields: { version: 1, registryHash: '0xceb6960a', featureFlags: 3, terminalMode: 'raw', rows: 24, cols: 80 },
    flags: { PREMIUM_TYPES: true, PRIVATE_REGISTRY: true, DEBUG: false, OFFLINE: false },
  });
  assert.equal(hasFeature(defaultFields(), 'DEBUG'), false);
  assert.equal(hasFeature(defaultFields(), 'PRIVATE_REGISTRY'), true);
});

test('validation names the field for every invalid value', () => {
  const base = defaultFields();
  const cases: [Partial<ConfigFields>, string, RegExp][] = [
    [{ featureFlags: 16 }, 'featureFlags', /featureFlags has unknown bit\(s\) 0x10 set \(known: PREMIUM_TYPES=1, PRIVATE_REGISTRY=2, DEBUG=4, OFFLINE=8\)/],
    [{ terminalMode: 7 }, 'terminalMode', /^terminalMode must be 0 \(disabled\), 1 \(cooked\) or 2 \(raw\), got 7$/],
    [{ version: 2 }, 'version', /version must be 0 \(legacy\) or 1 \(modern\), got 2/],
    [{ rows: 0 }, 'rows', /rows must be 1\.\.255, got 0/],
    [{ cols: 0 }, 'cols', /cols must be 1\.\.255, got 0/],
    [{ cols: 256 }, 'cols', /cols must be 1\.\.255, got 256/],
    [{ registryHash: -1 }, 'registryHash', /registryHash/],
  ];
  for (const [patch, field, pattern] of cases) {
    assertCoreError(() => validateFields({ ...base, ...patch }), 'ERR_CONFIG_FIELD', pattern, field);
    assertCoreError(() => encodeHeader({ ...base, ...patch }), 'ERR_CONFIG_FIELD', pattern, field);
  }
});

test('withByte edits one byte, validates, and names the field or the bad offset/value', () => {
  const base = defaultFields();
  assert.equal(withByte(base, 13, 1).terminalMode, 1);
  assert.equal(withByte(base, 9, 7).featureFlags, 7);
  assert.equal(withByte(base, 5, 0).registryHash, 0xceb69600);
  assertCoreError(() => withByte(base, 13, 7), 'ERR_CONFIG_FIELD', /^terminalMode must be .* got 7$/, 'terminalMode');
  assertCoreError(() => withByte(base, 10, 1), 'ERR_CONFIG_FIELD', /featureFlags/, 'featureFlags');
  assertCoreError(() => withByte(base, 4, 2), 'ERR_CONFIG_FIELD', /version/, 'version');
  assertCoreError(() => withByte(base, 14, 0), 'ERR_CONFIG_FIELD', /rows/, 'rows');
  for (const offset of [-1, 0, 3, 16, 17, 4.5, Number.NaN]) {
    assertCoreError(() => withByte(base, offset, 1), 'ERR_CONFIG_FIELD', /offset must be 4\.\.15/, 'offset');
  }
  for (const value of [-1, 256, 1.5]) {
    assertCoreError(() => withByte(base, 15, value), 'ERR_CONFIG_FIELD', /value must be 0\.\.255/, 'value');
  }
  assert.deepEqual(base, defaultFields(), 'input is not mutated');
});

test('fieldAt maps every header offset', () => {
  const names = Array.from({ length: HEADER_SIZE }, (_, i) => fieldAt(i));
  assert.deepEqual(names.slice(0, 4), ['magic', 'magic', 'magic', 'magic']);
  for (const [name, offset] of Object.entries(FIELD_OFFSETS)) assert.equal(fieldAt(offset), name);
  assert.equal(fieldAt(12), 'featureFlags');
  assertCoreError(() => fieldAt(17), 'ERR_CONFIG_FIELD', /offset/, 'offset');
});

test('decodeHeader says what is wrong: truncated, magic, check, field', () => {
  const good = encodeHeader(defaultFields());
  assertCoreError(() => decodeHeader(good.subarray(0, 16)), 'ERR_LOCKB_TRUNCATED', /expected 17 bytes, found 16/);
  const badMagic = good.slice();
  badMagic[1] = 0x00;
  const magicError = assertCoreError(() => decodeHeader(badMagic), 'ERR_LOCKB_MAGIC', /expected "BREG" \(42 52 45 47\).*found 42 00 45 47/);
  assert.match(magicError.hint ?? '', /npm run config -- repair/);
  const badCheck = good.slice();
  badCheck[CHECK_OFFSET] = 0x37;
  const checkError = assertCoreError(() => decodeHeader(badCheck), 'ERR_LOCKB_CHECK', /holds 0x37 but the CRC-8 .* is 0x36/);
  assert.match(checkError.hint ?? '', /npm run config -- repair/);
  const badField = good.slice();
  badField[13] = 7;
  badField[16] = crc8(badField, 4, 16);
  assertCoreError(() => decodeHeader(badField), 'ERR_CONFIG_FIELD', /terminalMode/, 'terminalMode');
});

const validFields = fc.record({
  version: fc.integer({ min: 0, max: 1 }),
  registryHash: fc.integer({ min: 0, max: 0xffffffff }),
  featureFlags: fc.integer({ min: 0, max: 15 }),
  terminalMode: fc.integer({ min: 0, max: 2 }),
  rows: fc.integer({ min: 1, max: 255 }),
  cols: fc.integer({ min: 1, max: 255 }),
});

test('property: encode/decode round trip for every valid config', () => {
  fc.assert(
    fc.property(validFields, (fields) => {
      const bytes = encodeHeader(fields);
      assert.equal(bytes.length, HEADER_SIZE);
      assert.deepEqual(decodeHeader(bytes), { ...fields });
      assert.equal(describeConfig(fields).hex, Buffer.from(bytes.subarray(4, 16)).toString('hex'));
    }),
    { numRuns: 2000 },
  );
});

test('property: every other value of the check byte is rejected', () => {
  fc.assert(
    fc.property(validFields, fc.integer({ min: 1, max: 255 }), (fields, delta) => {
      const bytes = encodeHeader(fields);
      bytes[CHECK_OFFSET] = (bytes[CHECK_OFFSET] + delta) & 0xff;
      assert.throws(() => decodeHeader(bytes), (error: unknown) => error instanceof RegistryCoreError && error.code === 'ERR_LOCKB_CHECK');
    }),
    { numRuns: 2000 },
  );
});

test('property: any single-byte corruption of bytes 4..15 is caught by the check byte', () => {
  // CRC-8 detects every single-byte error, so a changed config byte can never pass as valid.
  fc.assert(
    fc.property(validFields, fc.integer({ min: 4, max: 15 }), fc.integer({ min: 1, max: 255 }), (fields, offset, delta) => {
      const bytes = encodeHeader(fields);
      bytes[offset] = (bytes[offset] + delta) & 0xff;
      assert.throws(() => decodeHeader(bytes), (error: unknown) => error instanceof RegistryCoreError && error.code === 'ERR_LOCKB_CHECK');
    }),
    { numRuns: 2000 },
  );
});
