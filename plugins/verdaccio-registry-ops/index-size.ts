/**
 * The index-size gauges: records and bytes of registry.lockb's package index. The index is
 * append-only, so each read decodes only the bytes appended since the last one; a file that
 * shrank (a rebuild or a dropped torn tail) is counted again from the header.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { HEADER_SIZE, decodeRecordAt } from '../registry-core/index';

export class IndexSizeReader {
  readonly #path: string;
  #offset = HEADER_SIZE;
  #records = 0;
  #size = HEADER_SIZE;

  constructor(lockbPath: string) {
    this.#path = lockbPath;
  }

  read(): { records: number; bytes: number } {
    const fd = openSync(this.#path, 'r');
    try {
      const size = fstatSync(fd).size;
      if (size < this.#size) {
        this.#offset = HEADER_SIZE;
        this.#records = 0;
      }
      this.#size = size;
      if (size > this.#offset) {
        const buf = Buffer.allocUnsafe(size - this.#offset);
        const got = readSync(fd, buf, 0, buf.length, this.#offset);
        const view = buf.subarray(0, got);
        let at = 0;
        while (at < view.length) {
          const decoded = decodeRecordAt(view, at);
          if (!decoded.ok) break; // an append in flight (or a torn tail): counted once complete
          this.#records++;
          at = decoded.next;
        }
        this.#offset += at;
      }
      return { records: this.#records, bytes: Math.max(0, size - HEADER_SIZE) };
    } finally {
      closeSync(fd);
    }
  }
}
