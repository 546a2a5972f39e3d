/**
 * The 17-byte header of registry.lockb: magic, the 12 config bytes, the check byte.
 * All integers little-endian. Pure functions, no I/O.
 */
import { join, resolve } from 'node:path';
import { crc8 } from './crc8';
import { REPAIR_HINT, RegistryCoreError } from './errors';
import { LOCAL_REGISTRY_URL, hashRegistryUrl } from './registry-url';

/** The config file's name when config.yaml has no `registry_lockb:`. */
export const LOCKB_FILE_NAME = 'registry.lockb';

/**
 * The one rule for where a registry's files are, given the folder of its config.yaml:
 * `registry_lockb:` resolved against that folder, else registry.lockb next to config.yaml.
 * Every part (plugins, CLI, start script, self-publish) resolves the path through this.
 */
export function lockbPathFor(configDir: string, registryLockb: unknown): string {
  return typeof registryLockb === 'string' && registryLockb !== '' ? resolve(configDir, registryLockb) : join(configDir, LOCKB_FILE_NAME);
}

/** `storage:` resolved against the config.yaml folder (Verdaccio's default `./storage` when unset). */
export function storageDirFor(configDir: string, storage: unknown): string {
  return resolve(configDir, typeof storage === 'string' && storage !== '' ? storage : './storage');
}

export const HEADER_SIZE = 17;
export const CONFIG_START = 4;
export const CHECK_OFFSET = 16;
export const MAGIC = Uint8Array.of(0x42, 0x52, 0x45, 0x47); // "BREG"

export const FIELD_OFFSETS = { version: 4, registryHash: 5, featureFlags: 9, terminalMode: 13, rows: 14, cols: 15, check: 16 } as const;
export const FEATURE_FLAGS = { PREMIUM_TYPES: 1, PRIVATE_REGISTRY: 2, DEBUG: 4, OFFLINE: 8 } as const;
export type FeatureFlag = keyof typeof FEATURE_FLAGS;
export const FEATURE_FLAG_NAMES = Object.keys(FEATURE_FLAGS) as FeatureFlag[];
// Derived from the table so a new flag cannot be forgotten here or in the error text.
const KNOWN_FLAG_BITS = FEATURE_FLAG_NAMES.reduce((bits, name) => bits | FEATURE_FLAGS[name], 0);
const KNOWN_FLAGS_TEXT = FEATURE_FLAG_NAMES.map((name) => `${name}=${FEATURE_FLAGS[name]}`).join(', ');

export const TERMINAL_MODES = ['disabled', 'cooked', 'raw'] as const;
export type TerminalModeName = (typeof TERMINAL_MODES)[number];

export interface ConfigFields {
  version: number;
  registryHash: number;
  featureFlags: number;
  terminalMode: number;
  rows: number;
  cols: number;
}

function fieldError(field: string, message: string, hint?: string): RegistryCoreError {
  return new RegistryCoreError('ERR_CONFIG_FIELD', message, hint === undefined ? { field } : { field, hint });
}

function isInt(value: unknown, min: number, max: number): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max;
}

const shown = (value: unknown): string => (typeof value === 'number' ? String(value) : JSON.stringify(value));

/** The first problem, or undefined. Separate from validateFields so repair can test field by field. */
export function fieldProblem(field: keyof ConfigFields, value: unknown): string | undefined {
  switch (field) {
    case 'version':
      return isInt(value, 0, 1) ? undefined : `version must be 0 (legacy) or 1 (modern), got ${shown(value)}`;
    case 'registryHash':
      return isInt(value, 0, 0xffffffff) ? undefined : `registryHash must be an unsigned 32-bit integer, got ${shown(value)}`;
    case 'featureFlags':
      if (!isInt(value, 0, 0xffffffff)) return `featureFlags must be an unsigned 32-bit integer, got ${shown(value)}`;
      return (value & ~KNOWN_FLAG_BITS) === 0
        ? undefined
        : `featureFlags has unknown bit(s) 0x${((value & ~KNOWN_FLAG_BITS) >>> 0).toString(16)} set ` +
            `(known: ${KNOWN_FLAGS_TEXT}), got 0x${(value >>> 0).toString(16)}`;
    case 'terminalMode':
      return isInt(value, 0, 2) ? undefined : `terminalMode must be 0 (disabled), 1 (cooked) or 2 (raw), got ${shown(value)}`;
    case 'rows':
    case 'cols':
      return isInt(value, 1, 255) ? undefined : `${field} must be 1..255, got ${shown(value)}`;
  }
}

const FIELD_NAMES: readonly (keyof ConfigFields)[] = ['version', 'registryHash', 'featureFlags', 'terminalMode', 'rows', 'cols'];

export function validateFields(fields: ConfigFields, hint?: string): void {
  if (fields === null || typeof fields !== 'object') throw fieldError('fields', 'config fields must be an object');
  for (const field of FIELD_NAMES) {
    const problem = fieldProblem(field, fields[field]);
    if (problem !== undefined) throw fieldError(field, problem, hint);
  }
}

/** Writes the 12 config bytes (4..15) and the check byte (16) of `fields` into `target` at header positions. No validation. */
export function writeConfigBytes(fields: ConfigFields, target: Uint8Array): void {
  target[4] = fields.version;
  writeU32(target, 5, fields.registryHash);
  writeU32(target, 9, fields.featureFlags);
  target[13] = fields.terminalMode;
  target[14] = fields.rows;
  target[15] = fields.cols;
  target[16] = crc8(target, CONFIG_START, CHECK_OFFSET);
}

/** Reads fields from header positions 4..15 of `bytes`. No validation. */
export function readConfigBytes(bytes: Uint8Array): ConfigFields {
  return {
    version: bytes[4],
    registryHash: readU32(bytes, 5),
    featureFlags: readU32(bytes, 9),
    terminalMode: bytes[13],
    rows: bytes[14],
    cols: bytes[15],
  };
}

function writeU32(target: Uint8Array, at: number, value: number): void {
  target[at] = value & 0xff;
  target[at + 1] = (value >>> 8) & 0xff;
  target[at + 2] = (value >>> 16) & 0xff;
  target[at + 3] = (value >>> 24) & 0xff;
}

function readU32(bytes: Uint8Array, at: number): number {
  return (bytes[at] | (bytes[at + 1] << 8) | (bytes[at + 2] << 16) | (bytes[at + 3] << 24)) >>> 0;
}

export function encodeHeader(fields: ConfigFields): Uint8Array {
  validateFields(fields);
  const header = new Uint8Array(HEADER_SIZE);
  header.set(MAGIC, 0);
  writeConfigBytes(fields, header);
  return header;
}

function hex(bytes: Uint8Array, start: number, end: number): string {
  let out = '';
  for (let i = start; i < end; i++) out += (i > start ? ' ' : '') + bytes[i].toString(16).padStart(2, '0');
  return out;
}

/** Verifies length, magic, check byte and every field — in that order, so the message names the first real problem. */
export function decodeHeader(bytes: Uint8Array): ConfigFields {
  if (bytes.length < HEADER_SIZE) {
    throw new RegistryCoreError(
      'ERR_LOCKB_TRUNCATED',
      `registry.lockb header is truncated: expected ${HEADER_SIZE} bytes, found ${bytes.length}`,
      { hint: REPAIR_HINT },
    );
  }
  for (let i = 0; i < MAGIC.length; i++) {
    if (bytes[i] !== MAGIC[i]) {
      throw new RegistryCoreError(
        'ERR_LOCKB_MAGIC',
        `registry.lockb has a bad magic: expected "BREG" (42 52 45 47) at offset 0, found ${hex(bytes, 0, 4)} — not a registry.lockb or damaged`,
        { field: 'magic', hint: REPAIR_HINT },
      );
    }
  }
  const expected = crc8(bytes, CONFIG_START, CHECK_OFFSET);
  if (bytes[CHECK_OFFSET] !== expected) {
    throw new RegistryCoreError(
      'ERR_LOCKB_CHECK',
      `registry.lockb check byte is wrong: offset 16 holds 0x${bytes[CHECK_OFFSET].toString(16).padStart(2, '0')} but the CRC-8 of bytes 4..15 (${hex(bytes, 4, 16)}) is 0x${expected.toString(16).padStart(2, '0')} — the config bytes were changed without updating it or are damaged`,
      { field: 'check', hint: REPAIR_HINT },
    );
  }
  const fields = readConfigBytes(bytes);
  validateFields(fields, REPAIR_HINT);
  return fields;
}

export type HeaderPosition = keyof ConfigFields | 'check' | 'magic';

const POSITIONS: readonly HeaderPosition[] = [
  'magic', 'magic', 'magic', 'magic', 'version',
  'registryHash', 'registryHash', 'registryHash', 'registryHash',
  'featureFlags', 'featureFlags', 'featureFlags', 'featureFlags',
  'terminalMode', 'rows', 'cols', 'check',
];

export function fieldAt(offset: number): HeaderPosition {
  if (!isInt(offset, 0, HEADER_SIZE - 1)) throw fieldError('offset', `offset must be 0..16 (the header), got ${offset}`);
  return POSITIONS[offset];
}

/** Checks offset 4..15 and value 0..255; errors name 'offset' or 'value'. */
export function checkByteEdit(offset: number, value: number): void {
  if (!isInt(offset, CONFIG_START, CHECK_OFFSET - 1)) {
    throw fieldError('offset', `offset must be 4..15 (the config bytes; the check byte at 16 is computed), got ${offset}`);
  }
  if (!isInt(value, 0, 255)) throw fieldError('value', `value must be 0..255 (one byte), got ${value}`);
}

const scratch = new Uint8Array(HEADER_SIZE);

/** `fields` with the byte at `offset` replaced; validated, so the error names the field that byte belongs to. */
export function withByte(fields: ConfigFields, offset: number, value: number): ConfigFields {
  checkByteEdit(offset, value);
  writeConfigBytes(fields, scratch);
  scratch[offset] = value;
  const next = readConfigBytes(scratch);
  const field = POSITIONS[offset] as keyof ConfigFields;
  const problem = fieldProblem(field, next[field]);
  if (problem !== undefined) throw fieldError(field, problem);
  validateFields(next);
  return next;
}

export function defaultFields(registryUrl: string = LOCAL_REGISTRY_URL): ConfigFields {
  return {
    version: 1,
    registryHash: hashRegistryUrl(registryUrl),
    featureFlags: FEATURE_FLAGS.PREMIUM_TYPES | FEATURE_FLAGS.PRIVATE_REGISTRY,
    terminalMode: 2,
    rows: 24,
    cols: 80,
  };
}

export function hasFeature(fields: ConfigFields, flag: FeatureFlag): boolean {
  return (fields.featureFlags & FEATURE_FLAGS[flag]) !== 0;
}

export function withFeatureToggled(fields: ConfigFields, flag: FeatureFlag): ConfigFields {
  const bit = FEATURE_FLAGS[flag];
  if (bit === undefined) throw fieldError('featureFlags', `unknown feature flag ${JSON.stringify(flag)} (known: ${FEATURE_FLAG_NAMES.join(', ')})`);
  return { ...fields, featureFlags: (fields.featureFlags ^ bit) >>> 0 };
}
