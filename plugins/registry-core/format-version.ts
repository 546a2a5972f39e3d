/**
 * What the `version` byte (offset 4) means: the on-disk format of registry.lockb
 * (docs/config-format.md, "version byte").
 *
 * - 1 (modern): the bytes after the header are this registry's package index — self-checking
 *   records (0xB5 magic, CRC-32) appended by this registry as it stores packages. They are
 *   authoritative: a record that verifies is never dropped.
 * - 0 (legacy): a file whose bytes after the header are NOT known to be such an index: the
 *   config-only 17-byte file of the original config tool (it knew no package index), or a file
 *   whose index an operator wants regenerated (`BUN_CONFIG_VERSION=0`). Whatever follows the
 *   header is not trusted.
 *
 * Migration 0 → 1 happens when the registry opens the file at start-up (`bootRegistry`), under
 * the registry.lockb lock, in one critical section: the index is regenerated from the storage
 * folder (the package.json files, the source of truth), written in place of what followed the
 * header, then the version byte becomes 1. A crash in between leaves version 0, so the next start
 * migrates again (idempotent). The CLI never migrates (it may not see the storage folder).
 */
import { closeSync, existsSync, fsyncSync, ftruncateSync, openSync, realpathSync, statSync, writeSync } from 'node:fs';
import { resolve } from 'node:path';
import { RegistryCoreError } from './errors';
import { readHeaderBytes } from './header-file';
import { collectIndexRecords } from './index-rebuild';
import { encodeRecord } from './index-record';
import { CONFIG_START, HEADER_SIZE, decodeHeader, encodeHeader } from './layout';
import { withFileLockSync } from './lock';

export const LEGACY_FORMAT_VERSION = 0;
export const CURRENT_FORMAT_VERSION = 1;

export interface FormatMigration {
  from: number;
  to: number;
  /** bytes after the header that were replaced */
  replacedBytes: number;
  records: number;
  packages: number;
  skipped: { path: string; reason: string }[];
}

/**
 * Migrates a version-0 registry.lockb to version 1 (see above); null when it already is 1.
 * A missing storage folder means no packages (an empty index). Throws RegistryCoreError for a
 * file that is not a valid registry.lockb (nothing is written then).
 */
export function migrateLegacyFormat(lockbPath: string, storageDir: string): FormatMigration | null {
  const path = realpathSync(resolve(lockbPath));
  return withFileLockSync(path, () => {
    const fd = openSync(path, 'r+'); // no O_APPEND: the header write must land at offset 4
    let appendFd: number | undefined;
    try {
      const fields = decodeHeader(readHeaderBytes(fd));
      if (fields.version !== LEGACY_FORMAT_VERSION) return null;
      const storage = resolve(storageDir);
      const collected = existsSync(storage) && statSync(storage).isDirectory() ? collectIndexRecords(storage) : { records: [], packages: 0, skipped: [] };
      const encoded = Buffer.concat(collected.records.map(encodeRecord));
      const replacedBytes = Math.max(0, statSync(path).size - HEADER_SIZE);
      ftruncateSync(fd, HEADER_SIZE);
      appendFd = openSync(path, 'a');
      if (encoded.length > 0 && writeSync(appendFd, encoded) !== encoded.length) {
        throw new RegistryCoreError('ERR_INDEX_CORRUPT', `${path}: short write while migrating the index`, { hint: 'free disk space and start again (the file stays at version 0 until it succeeds)' });
      }
      fsyncSync(appendFd);
      // the version byte last: until it is written the file still says "legacy" and is migrated again
      const header = encodeHeader({ ...fields, version: CURRENT_FORMAT_VERSION });
      writeSync(fd, header, CONFIG_START, HEADER_SIZE - CONFIG_START, CONFIG_START);
      fsyncSync(fd);
      return { from: LEGACY_FORMAT_VERSION, to: CURRENT_FORMAT_VERSION, replacedBytes, records: collected.records.length, packages: collected.packages, skipped: collected.skipped };
    } finally {
      closeSync(fd);
      if (appendFd !== undefined) closeSync(appendFd);
    }
  });
}
