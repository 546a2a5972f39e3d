/**
 * The one positioned read loop: read(2) may return fewer bytes than asked, so every whole-file or
 * header read loops until the length or the end of the file. Used by the header (header-file.ts),
 * the package index and the audit log.
 */
import { fstatSync, readSync } from 'node:fs';

/** Up to `length` bytes from offset 0; fewer when the file is shorter (the caller reports a short file). */
export function readFromStart(fd: number, length: number): Buffer {
  const buffer = Buffer.allocUnsafe(length);
  let total = 0;
  while (total < length) {
    const n = readSync(fd, buffer, total, length - total, total);
    if (n === 0) break;
    total += n;
  }
  return total === length ? buffer : buffer.subarray(0, total);
}

/** The whole file as it is now (its size from fstat). */
export function readWholeFile(fd: number): Buffer {
  return readFromStart(fd, fstatSync(fd).size);
}
