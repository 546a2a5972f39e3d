/**
 * The storage plugin's per-package lock: the core `KeyedLock` (plugins/registry-core/lock.ts — the
 * one lock implementation: in-process FIFO per key + `<key>.lock` directory and `<key>.owner`
 * file, dead holders on this host taken over at once) with a timeout that is a `StorageError`
 * (ERR_LOCK_TIMEOUT → 503, nothing changed).
 */
import { KeyedLock as CoreKeyedLock, pidAlive, type LockOptions as CoreLockOptions } from '../registry-core/index';
import { StorageError } from './errors';

export { pidAlive };

export type LockOptions = Omit<CoreLockOptions, 'timeoutError'>;

export class KeyedLock extends CoreKeyedLock {
  constructor(directory: string, options: LockOptions = {}) {
    super(directory, {
      // a publish's read-modify-writes come back to back: one lock directory per publish, not three
      handOff: true,
      ...options,
      timeoutError: (key, timeoutMs) =>
        new StorageError('ERR_LOCK_TIMEOUT', `could not lock ${key} within ${timeoutMs} ms (another write is in progress); nothing was changed, retry`),
    });
  }
}
