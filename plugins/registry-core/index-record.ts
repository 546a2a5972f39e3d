/**
 * Binary codec of one package-index record (layout documented in README.md):
 *
 *   u8  magic 0xB5 | u32 bodyLength | body | u32 CRC-32 (zlib) of magic+length+body
 *   body = u8 kind | u64 time | u16+name | u16+version | u8+sha512 (0 or 64 raw bytes) | u16+detail
 *
 * Self-checking: a reader can tell a complete record from a torn one or from garbage without
 * any other context, which is what makes the append-only index recoverable.
 */
import { crc32 } from 'node:zlib';
import { RegistryCoreError } from './errors';

export type IndexRecordKind = 'publish' | 'unpublish' | 'unpublish-package' | 'dist-tag' | 'dist-tag-rm' | 'deprecate' | 'self-reference' | 'cache';

export interface IndexRecord {
  kind: IndexRecordKind;
  name: string;
  /** '' when not applicable */
  version: string;
  /** 128 lowercase hex chars or '' */
  sha512: string;
  /** ms since epoch */
  time: number;
  /** dist-tag name, deprecation message, registry URL of a self-reference, upstream URL of a cache record, … or '' */
  detail: string;
}

export const RECORD_MAGIC = 0xb5;
export const RECORD_PREFIX = 5; // magic + u32 length
export const RECORD_TRAILER = 4; // CRC-32
/** No valid body is larger: 1 + 8 + 3 × (2 + 65535) + 1 + 64. Anything bigger is a damaged length. */
export const MAX_BODY = 1 + 8 + 3 * (2 + 0xffff) + 1 + 64;

export const RECORD_KINDS: readonly IndexRecordKind[] = ['publish', 'unpublish', 'unpublish-package', 'dist-tag', 'dist-tag-rm', 'deprecate', 'self-reference', 'cache'];
const KIND_CODES = new Map(RECORD_KINDS.map((kind, i) => [kind, i + 1]));

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

function recordError(message: string, field: string): RegistryCoreError {
  return new RegistryCoreError('ERR_INDEX_RECORD', `index record: ${message}`, { field });
}

function text(value: unknown, field: string, allowEmpty: boolean): Uint8Array {
  if (typeof value !== 'string') throw recordError(`${field} must be a string, got ${typeof value}`, field);
  if (!allowEmpty && value === '') throw recordError(`${field} must not be empty`, field);
  const bytes = encoder.encode(value);
  if (bytes.length > 0xffff) throw recordError(`${field} is ${bytes.length} bytes; at most 65535`, field);
  return bytes;
}

export function encodeRecord(record: IndexRecord): Buffer {
  if (record === null || typeof record !== 'object') throw recordError('must be an object', 'record');
  const kind = KIND_CODES.get(record.kind);
  if (kind === undefined) throw recordError(`unknown kind ${JSON.stringify(record.kind)} (known: ${RECORD_KINDS.join(', ')})`, 'kind');
  if (!Number.isSafeInteger(record.time) || record.time < 0) throw recordError(`time must be a non-negative integer (ms since epoch), got ${record.time}`, 'time');
  const name = text(record.name, 'name', false);
  const version = text(record.version, 'version', true);
  const detail = text(record.detail, 'detail', true);
  if (typeof record.sha512 !== 'string' || (record.sha512 !== '' && !/^[0-9a-f]{128}$/.test(record.sha512))) {
    throw recordError(`sha512 must be 128 lowercase hex chars or '', got ${JSON.stringify(record.sha512)}`, 'sha512');
  }
  const sha = Buffer.from(record.sha512, 'hex');
  const bodyLength = 1 + 8 + 2 + name.length + 2 + version.length + 1 + sha.length + 2 + detail.length;
  const out = Buffer.allocUnsafe(RECORD_PREFIX + bodyLength + RECORD_TRAILER);
  let at = 0;
  out[at++] = RECORD_MAGIC;
  at = out.writeUInt32LE(bodyLength, at);
  out[at++] = kind;
  at = out.writeBigUInt64LE(BigInt(record.time), at);
  for (const [bytes, width] of [[name, 2], [version, 2], [sha, 1], [detail, 2]] as const) {
    at = width === 2 ? out.writeUInt16LE(bytes.length, at) : out.writeUInt8(bytes.length, at);
    out.set(bytes, at);
    at += bytes.length;
  }
  out.writeUInt32LE(crc32(out.subarray(0, at)), at);
  return out;
}

export type DecodeResult = { ok: true; record: IndexRecord; next: number } | { ok: false; reason: string; truncated: boolean };

/** Decodes the record starting at `at`. Never throws: damage is described in `reason`. */
export function decodeRecordAt(buf: Buffer, at: number): DecodeResult {
  const remaining = buf.length - at;
  if (buf[at] !== RECORD_MAGIC) return { ok: false, reason: `bad record magic 0x${buf[at].toString(16).padStart(2, '0')} at offset ${at} (expected 0xb5)`, truncated: false };
  if (remaining < RECORD_PREFIX) return { ok: false, reason: `record at offset ${at} is cut off in its length field (${remaining} bytes)`, truncated: true };
  const bodyLength = buf.readUInt32LE(at + 1);
  if (bodyLength > MAX_BODY) return { ok: false, reason: `record at offset ${at} declares an impossible length ${bodyLength}`, truncated: false };
  const total = RECORD_PREFIX + bodyLength + RECORD_TRAILER;
  if (remaining < total) return { ok: false, reason: `record at offset ${at} declares ${total} bytes but only ${remaining} remain`, truncated: true };
  const end = at + RECORD_PREFIX + bodyLength;
  const stored = buf.readUInt32LE(end);
  const actual = crc32(buf.subarray(at, end));
  if (stored !== actual) return { ok: false, reason: `record at offset ${at} fails its CRC-32 (stored 0x${stored.toString(16)}, computed 0x${actual.toString(16)})`, truncated: false };
  const record = parseBody(buf, at + RECORD_PREFIX, end);
  if (typeof record === 'string') return { ok: false, reason: `record at offset ${at}: ${record}`, truncated: false };
  return { ok: true, record, next: end + RECORD_TRAILER };
}

function parseBody(buf: Buffer, start: number, end: number): IndexRecord | string {
  let at = start;
  if (end - at < 9) return 'body too short';
  const kind = RECORD_KINDS[buf[at++] - 1];
  if (kind === undefined) return `unknown kind code ${buf[at - 1]}`;
  const time = buf.readBigUInt64LE(at);
  at += 8;
  if (time > BigInt(Number.MAX_SAFE_INTEGER)) return 'time out of range';
  const fields: string[] = [];
  for (const width of [2, 2, 1, 2]) {
    if (end - at < width) return 'body too short';
    const length = width === 2 ? buf.readUInt16LE(at) : buf[at];
    at += width;
    if (end - at < length) return 'field runs past the body';
    const bytes = buf.subarray(at, at + length);
    at += length;
    if (width === 1) {
      if (length !== 0 && length !== 64) return `sha512 length ${length} (expected 0 or 64)`;
      fields.push(bytes.toString('hex'));
    } else {
      try {
        fields.push(decoder.decode(bytes));
      } catch {
        return 'invalid UTF-8';
      }
    }
  }
  if (at !== end) return 'trailing bytes in body';
  const [name, version, sha512, detail] = fields;
  if (name === '') return 'empty name';
  return { kind, name, version, sha512, time: Number(time), detail };
}
