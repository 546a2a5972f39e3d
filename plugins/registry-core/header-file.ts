/**
 * File-level operations on the registry.lockb header that do not need a live ConfigFile:
 * create (atomic, never overwrites), inspect, repair. The inode is never replaced once the file
 * exists: other processes hold descriptors on it and the package index lives after the header.
 */
import { closeSync, existsSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { readFromStart } from './fd-read';
import { createFileOnceSync } from './atomic-file';
import { resolve } from 'node:path';
import { crc8 } from './crc8';
import { RegistryCoreError } from './errors';
import {
  CHECK_OFFSET,
  CONFIG_START,
  HEADER_SIZE,
  MAGIC,
  decodeHeader,
  defaultFields,
  encodeHeader,
  fieldProblem,
  readConfigBytes,
  writeConfigBytes,
  type ConfigFields,
} from './layout';
import { withFileLockSync } from './lock';

export const CREATE_HINT = 'start the registry once (`npm start` creates it with defaults), or pass --file PATH';

export function missingFile(path: string): RegistryCoreError {
  return new RegistryCoreError('ERR_LOCKB_MISSING', `no registry.lockb at ${path}`, { hint: CREATE_HINT });
}

/** Up to 17 header bytes via a positioned read (a short file gives a short array; decodeHeader reports it). */
export function readHeaderBytes(fd: number): Uint8Array {
  return readFromStart(fd, HEADER_SIZE);
}


/** Writes a fresh header (no records) atomically, never over an existing file (core createFileOnceSync). */
export function createConfigFile(path: string, fields: ConfigFields): void {
  const target = resolve(path);
  if (!createFileOnceSync(target, encodeHeader(fields), 0o644)) {
    throw new RegistryCoreError('ERR_LOCKB_EXISTS', `${target} already exists; refusing to overwrite it`);
  }
}

export function inspectConfigFile(path: string): { ok: true; fields: ConfigFields } | { ok: false; error: RegistryCoreError } {
  const target = resolve(path);
  if (!existsSync(target)) return { ok: false, error: missingFile(target) };
  const fd = openSync(target, 'r');
  try {
    return { ok: true, fields: decodeHeader(readHeaderBytes(fd)) };
  } catch (error) {
    if (error instanceof RegistryCoreError) return { ok: false, error };
    throw error;
  } finally {
    closeSync(fd);
  }
}

const hex2 = (n: number): string => `0x${n.toString(16).padStart(2, '0')}`;
const hexBytes = (bytes: Uint8Array): string => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(' ');

/**
 * Restores the magic, replaces each invalid field by its default (valid ones are kept), recomputes
 * the check byte; one positioned write of the 17 header bytes under the lock. Records after the
 * header are untouched. Returns one human-readable line per change ([] when the header was fine).
 */
export function repairConfigFile(path: string, options: { registryUrl: string }): { changed: string[] } {
  const target = resolve(path);
  if (!existsSync(target)) throw missingFile(target);
  const defaults = defaultFields(options.registryUrl);
  return withFileLockSync(target, () => {
    const fd = openSync(target, 'r+');
    try {
      const found = readHeaderBytes(fd);
      const changed: string[] = [];
      const header = new Uint8Array(HEADER_SIZE);
      if (found.length < HEADER_SIZE) {
        // Shorter than a header means no record can follow: rebuild it from defaults.
        writeConfigBytes(defaults, header);
        header.set(MAGIC, 0);
        changed.push(`header: file had ${found.length} of ${HEADER_SIZE} bytes; wrote a default header`);
      } else {
        header.set(found);
        if (hexBytes(found.subarray(0, 4)) !== hexBytes(MAGIC)) {
          changed.push(`magic: ${hexBytes(found.subarray(0, 4))} → ${hexBytes(MAGIC)} ("BREG")`);
          header.set(MAGIC, 0);
        }
        const fields = readConfigBytes(header);
        for (const field of Object.keys(defaults) as (keyof ConfigFields)[]) {
          const problem = fieldProblem(field, fields[field]);
          if (problem !== undefined) {
            changed.push(`${field}: ${fields[field]} → ${defaults[field]} (default; ${problem})`);
            fields[field] = defaults[field];
          }
        }
        const oldCheck = header[CHECK_OFFSET];
        writeConfigBytes(fields, header);
        if (header[CHECK_OFFSET] !== oldCheck) changed.push(`check: ${hex2(oldCheck)} → ${hex2(header[CHECK_OFFSET])}`);
      }
      if (changed.length > 0) {
        header[CHECK_OFFSET] = crc8(header, CONFIG_START, CHECK_OFFSET);
        decodeHeader(header); // never write something we would refuse to read
        writeSync(fd, header, 0, HEADER_SIZE, 0);
        fsyncSync(fd);
      }
      return { changed };
    } finally {
      closeSync(fd);
    }
  });
}
