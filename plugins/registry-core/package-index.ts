/**
 * The append-only package index after the 17-byte header of registry.lockb.
 *
 * Recovery rule: a record that verifies is never dropped. Damage with no verifying record after
 * it is a torn tail (a short or interrupted append) and is cut off on open and reported; damage
 * followed by any verifying record is corruption and refuses to open (ERR_INDEX_CORRUPT), with
 * `rebuild-index` as the way out.
 */
import { closeSync, existsSync, fstatSync, ftruncateSync, openSync, realpathSync, writeSync } from 'node:fs';
import { readFromStart, readWholeFile } from './fd-read';
import { resolve } from 'node:path';
import { REPAIR_HINT, RegistryCoreError } from './errors';
import { missingFile } from './header-file';
import { decodeRecordAt, encodeRecord, RECORD_MAGIC, type IndexRecord } from './index-record';
import { HEADER_SIZE, MAGIC } from './layout';
import { holdFileLock, withFileLockSync } from './lock';

export const REBUILD_HINT = 'run `npm run config -- rebuild-index` to rebuild the index from the storage folder';

export interface ScanResult {
  records: IndexRecord[];
  /** set when the bytes from `offset` to the end do not form records and nothing valid follows */
  tail: { offset: number; droppedBytes: number; reason: string } | null;
}

/** Parses every record after the header. Throws ERR_INDEX_CORRUPT when damage is followed by a valid record. */
export function scanRecords(buf: Buffer, path = 'registry.lockb'): ScanResult {
  const records: IndexRecord[] = [];
  let at = HEADER_SIZE;
  while (at < buf.length) {
    const result = decodeRecordAt(buf, at);
    if (result.ok) {
      records.push(result.record);
      at = result.next;
      continue;
    }
    const valid = findValidRecordAfter(buf, at + 1);
    if (valid >= 0) {
      throw new RegistryCoreError(
        'ERR_INDEX_CORRUPT',
        `${path}: package index is corrupt: ${result.reason}, yet a valid record follows at offset ${valid} — refusing to drop verified records`,
        { hint: REBUILD_HINT },
      );
    }
    return { records, tail: { offset: at, droppedBytes: buf.length - at, reason: result.reason } };
  }
  return { records, tail: null };
}

function findValidRecordAfter(buf: Buffer, from: number): number {
  for (let at = buf.indexOf(RECORD_MAGIC, from); at >= 0; at = buf.indexOf(RECORD_MAGIC, at + 1)) {
    if (decodeRecordAt(buf, at).ok) return at;
  }
  return -1;
}


function checkHeaderMagic(buf: Buffer, path: string): void {
  if (buf.length < HEADER_SIZE) {
    throw new RegistryCoreError('ERR_LOCKB_TRUNCATED', `${path}: expected at least the ${HEADER_SIZE}-byte header, found ${buf.length} bytes`, { hint: REPAIR_HINT });
  }
  if (!buf.subarray(0, 4).equals(MAGIC)) {
    throw new RegistryCoreError('ERR_LOCKB_MAGIC', `${path}: bad magic: expected "BREG" (42 52 45 47), found ${buf.subarray(0, 4).toString('hex').replace(/(..)(?!$)/g, '$1 ')}`, {
      field: 'magic',
      hint: REPAIR_HINT,
    });
  }
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** The registry.lockb lock held for one write's records (PackageIndex.reserveAppend). */
export interface IndexAppendSlot {
  /** appends under the held lock (synchronous, like append) */
  append(records: readonly IndexRecord[]): void;
  /** gives the lock back; resolves once it is */
  release(): Promise<void>;
}

export class PackageIndex {
  readonly path: string;
  readonly recovered: { droppedBytes: number; reason: string } | null;
  /** read + truncate; never used for writes at an offset */
  #readFd: number;
  /** O_APPEND: every record lands at the end, atomically with respect to other appenders */
  #appendFd: number;
  #cache: { size: number; mtimeMs: number; records: IndexRecord[] } | undefined;
  #broken: RegistryCoreError | undefined;

  private constructor(path: string, readFd: number, appendFd: number, recovered: PackageIndex['recovered']) {
    this.path = path;
    this.#readFd = readFd;
    this.#appendFd = appendFd;
    this.recovered = recovered;
  }

  /** Verifies every record; drops and reports a torn last record; throws ERR_INDEX_CORRUPT on damage elsewhere. */
  static open(lockbPath: string): PackageIndex {
    const absolute = resolve(lockbPath);
    if (!existsSync(absolute)) throw missingFile(absolute);
    const path = realpathSync(absolute);
    const readFd = openSync(path, 'r+');
    let appendFd: number | undefined;
    try {
      let recovered: PackageIndex['recovered'] = null;
      const stat = fstatSync(readFd);
      const first = readFromStart(readFd, stat.size);
      checkHeaderMagic(first, path);
      const scan = scanRecords(first, path);
      if (scan.tail) recovered = recoverTail(path, readFd, first.length, scan.tail);
      appendFd = openSync(path, 'a');
      const index = new PackageIndex(path, readFd, appendFd, recovered);
      // the records just verified are what the first readAll returns (start-up reconciliation
      // opens and reads at once: decoding 6,000 records twice cost ≈ 25 ms): the same key
      // readAll uses, only when the bytes read are the size fstat saw before the read and no
      // tail was cut (which changed the file)
      if (scan.tail === null && first.length === stat.size) index.#cache = { size: first.length, mtimeMs: stat.mtimeMs, records: scan.records };
      return index;
    } catch (error) {
      closeSync(readFd);
      if (appendFd !== undefined) closeSync(appendFd);
      throw error;
    }
  }

  /** Exactly one write() of the whole record on the O_APPEND descriptor. */
  append(record: IndexRecord): void {
    if (this.#broken) throw this.#broken;
    const bytes = encodeRecord(record);
    const written = writeSync(this.#appendFd, bytes);
    if (written !== bytes.length) {
      // A short write (disk full) leaves a torn tail; appending after it would turn it into
      // mid-file corruption, so this handle refuses further appends. The next open drops it.
      this.#broken = new RegistryCoreError('ERR_INDEX_CORRUPT', `${this.path}: short write (${written} of ${bytes.length} bytes) while appending to the package index`, {
        hint: 'free disk space and restart the registry (the torn record is dropped on open)',
      });
      throw this.#broken;
    }
  }

  /**
   * The records of one write, appended under the registry.lockb lock — the lock `rebuild-index`
   * (index-rebuild.ts) and the config writers take, on the same path (the file's real path) — so
   * a rebuild that read the storage folder before this write never truncates the append away: it
   * waits for the rebuild and lands after it. O_APPEND alone keeps appenders from interleaving,
   * not from a truncate. The wait is asynchronous (the thread pool), in the same in-process queue
   * as the config writes.
   */
  async appendLocked(records: readonly IndexRecord[]): Promise<void> {
    if (records.length === 0) return;
    const slot = await this.reserveAppend();
    try {
      slot.append(records);
    } finally {
      await slot.release();
    }
  }

  /**
   * The same lock, taken ahead of the records: a writer starts it before its own durable write
   * (the packument) so the acquisition — four file-system metadata operations, ~0.4 ms on a busy
   * ext4 and far more right after an fsync — overlaps that write instead of following it, and
   * gives it back without making its client wait. Lock order: a package lock, then this one
   * (rebuild-index, the config writers and the PostgreSQL mirror take this one alone).
   */
  async reserveAppend(): Promise<IndexAppendSlot> {
    const hold = await holdFileLock(this.path);
    let open = true;
    return {
      append: (records) => {
        if (!open) throw new Error(`${this.path}: index append slot already released`);
        for (const record of records) this.append(record);
      },
      release: () => {
        open = false;
        return hold.release();
      },
    };
  }

  /** Re-reads the file (sees other processes' appends). A torn tail being written right now is left out, not cut. */
  readAll(): IndexRecord[] {
    const stat = fstatSync(this.#readFd);
    if (this.#cache && this.#cache.size === stat.size && this.#cache.mtimeMs === stat.mtimeMs) return [...this.#cache.records];
    const buf = readWholeFile(this.#readFd);
    checkHeaderMagic(buf, this.path);
    const { records } = scanRecords(buf, this.path);
    this.#cache = { size: buf.length, mtimeMs: stat.mtimeMs, records };
    return [...records];
  }

  close(): void {
    if (this.#readFd < 0) return;
    closeSync(this.#readFd);
    closeSync(this.#appendFd);
    this.#readFd = -1;
    this.#appendFd = -1;
  }
}

/**
 * Every record of registry.lockb, read-only — no torn tail is cut, no lock taken (a process that
 * is exiting must not repair what another process may be appending): null when the file ends in
 * a torn record. Throws what open throws for a missing file, a bad header or corruption.
 */
export function readIndexRecordsOnly(lockbPath: string): IndexRecord[] | null {
  const absolute = resolve(lockbPath);
  if (!existsSync(absolute)) throw missingFile(absolute);
  const fd = openSync(absolute, 'r');
  try {
    const buf = readWholeFile(fd);
    checkHeaderMagic(buf, absolute);
    const scan = scanRecords(buf, absolute);
    return scan.tail === null ? scan.records : null;
  } finally {
    closeSync(fd);
  }
}

/**
 * A damaged tail seen once might be another process's append in flight: look again after a
 * moment, then cut it under the lock only if the file still ends in the same damage.
 */
function recoverTail(path: string, fd: number, seenSize: number, tail: NonNullable<ScanResult['tail']>): PackageIndex['recovered'] {
  Atomics.wait(sleeper, 0, 0, 20);
  return withFileLockSync(path, () => {
    const buf = readWholeFile(fd);
    const scan = scanRecords(buf, path);
    if (!scan.tail) return null; // it was an append in flight after all
    if (buf.length !== seenSize || scan.tail.offset !== tail.offset) {
      throw new RegistryCoreError('ERR_INDEX_CORRUPT', `${path}: the package index changed while recovering a torn record; open it again`);
    }
    ftruncateSync(fd, scan.tail.offset);
    return { droppedBytes: scan.tail.droppedBytes, reason: scan.tail.reason };
  });
}
