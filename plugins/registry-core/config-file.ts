/**
 * The live 13-byte config of one registry.lockb: in-memory snapshot (getConfig), positioned
 * writes (setByteUnlocked), locked read-modify-write (update/toggleFeature) and change notification
 * (watchConfig). All handles opened on one real path in a process share one state, so every
 * plugin sees an in-process write at once; other processes' writes are picked up by fs.watch
 * with a 50 ms poll as the safety net (inotify misses events on some mounts and after renames).
 */
import { closeSync, existsSync, fstatSync, openSync, realpathSync, statSync, watch, writeSync, type FSWatcher } from 'node:fs';
import { resolve } from 'node:path';
import { crc8 } from './crc8';
import { RegistryCoreError } from './errors';
import { describeConfig, type ConfigView } from './describe';
import {
  CHECK_OFFSET,
  CONFIG_START,
  FEATURE_FLAGS,
  FIELD_OFFSETS,
  FEATURE_FLAG_NAMES,
  HEADER_SIZE,
  MAGIC,
  checkByteEdit,
  decodeHeader,
  fieldProblem,
  readConfigBytes,
  validateFields,
  withFeatureToggled,
  writeConfigBytes,
  type ConfigFields,
  type FeatureFlag,
} from './layout';
import { createConfigFile, missingFile, readHeaderBytes } from './header-file';
import { withFileLock } from './lock';

export interface ConfigSnapshot {
  readonly fields: Readonly<ConfigFields>;
  /** the 13 config bytes: file offsets 4..16 (check byte last). Treat as read-only. */
  readonly bytes: Uint8Array;
  readonly view: ConfigView;
}

export type ConfigListener = (next: ConfigSnapshot, prev: ConfigSnapshot) => void;

export const WATCH_POLL_MS = 50;

/**
 * Immutable. Holds the decoded fields; `bytes` and `view` are derived on first use, so setByteUnlocked()
 * costs one syscall plus a small object (docs/targets.md: ≤ 2× a bare positioned write). `fields` is
 * frozen on first read rather than at creation, for the same reason.
 */
class Snapshot implements ConfigSnapshot {
  readonly #fields: ConfigFields;
  #frozen = false;
  #bytes: Uint8Array | undefined;
  #view: ConfigView | undefined;

  constructor(fields: ConfigFields) {
    this.#fields = fields;
  }

  get fields(): Readonly<ConfigFields> {
    if (!this.#frozen) {
      Object.freeze(this.#fields);
      this.#frozen = true;
    }
    return this.#fields;
  }

  /** the same fields, for internal comparisons without freezing */
  get raw(): ConfigFields {
    return this.#fields;
  }

  get bytes(): Uint8Array {
    if (this.#bytes === undefined) {
      const header = new Uint8Array(HEADER_SIZE);
      writeConfigBytes(this.#fields, header);
      this.#bytes = header.subarray(CONFIG_START, HEADER_SIZE);
    }
    return this.#bytes;
  }

  get view(): ConfigView {
    return (this.#view ??= describeConfig(this.fields));
  }

  toJSON(): { fields: Readonly<ConfigFields>; view: ConfigView } {
    return { fields: this.fields, view: this.view };
  }
}

interface SharedState {
  readonly path: string;
  fd: number;
  ino: number;
  /** the 17 header bytes as this process last read or wrote them; never handed out */
  readonly mirror: Uint8Array;
  snapshot: Snapshot;
  readonly listeners: Set<ConfigListener>;
  handles: number;
  watcher: FSWatcher | undefined;
  poll: NodeJS.Timeout | undefined;
  /** serialises this process's locked updates so they do not spin against each other on the lock directory */
  queue: Promise<unknown>;
}

const states = new Map<string, SharedState>();

function sameHeader(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < HEADER_SIZE; i++) if (a[i] !== b[i]) return false;
  return true;
}

function sameFields(a: ConfigFields, b: ConfigFields): boolean {
  return (
    a.version === b.version &&
    a.registryHash === b.registryHash &&
    a.featureFlags === b.featureFlags &&
    a.terminalMode === b.terminalMode &&
    a.rows === b.rows &&
    a.cols === b.cols
  );
}

function notify(state: SharedState, next: Snapshot, prev: Snapshot): void {
  if (state.listeners.size === 0) return;
  for (const listener of [...state.listeners]) {
    try {
      listener(next, prev);
    } catch (error) {
      // one broken listener must not stop the others nor the write that triggered it
      process.emitWarning(`registry-core: config listener threw: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
}

/** Makes `fields` the current snapshot (the mirror already holds its bytes) and tells the watchers. */
function adopt(state: SharedState, fields: ConfigFields): Snapshot {
  const prev = state.snapshot;
  if (sameFields(prev.raw, fields)) return prev;
  const next = new Snapshot(fields);
  state.snapshot = next;
  notify(state, next, prev);
  return next;
}

/** Reads and verifies the header from disk; adopts it (notifying watchers) when it differs from memory. */
function reloadState(state: SharedState): Snapshot {
  const header = readHeaderBytes(state.fd);
  const fields = decodeHeader(header);
  state.mirror.set(header);
  return adopt(state, fields);
}

function pollState(state: SharedState): void {
  try {
    const ino = statSync(state.path).ino;
    if (ino !== state.ino) {
      // someone replaced the file (editor, restore from backup): follow the path, not the old inode
      const fd = openSync(state.path, 'r+');
      closeSync(state.fd);
      state.fd = fd;
      state.ino = ino;
    }
    const header = readHeaderBytes(state.fd);
    if (header.length === HEADER_SIZE && sameHeader(header, state.mirror)) return;
    const fields = decodeHeader(header);
    state.mirror.set(header);
    adopt(state, fields);
  } catch {
    // A half-written or damaged header is never adopted; memory keeps the last valid config and
    // the next tick tries again. (A lasting problem is reported by reload() / start-up.)
  }
}

/** The 50 ms poll runs for the whole life of the state, so getConfig() is never more than ~50 ms behind another process. */
function startPolling(state: SharedState): void {
  if (state.poll) return;
  state.poll = setInterval(() => pollState(state), WATCH_POLL_MS);
  state.poll.unref();
}

/**
 * inotify only while someone listens: it makes notification near-instant, but every write to a
 * watched file pays for the event in the kernel (~200 ns, measured by the config bench).
 */
function startInotify(state: SharedState): void {
  if (state.watcher) return;
  try {
    state.watcher = watch(state.path, { persistent: false }, () => pollState(state));
    state.watcher.on('error', () => {
      state.watcher?.close();
      state.watcher = undefined; // the poll keeps going
    });
  } catch {
    state.watcher = undefined; // no inotify here: the poll alone still meets the 100 ms bound
  }
}

function stopInotify(state: SharedState): void {
  state.watcher?.close();
  state.watcher = undefined;
}

function stopWatching(state: SharedState): void {
  if (state.poll) clearInterval(state.poll);
  state.poll = undefined;
  stopInotify(state);
}

function openState(realPath: string): SharedState {
  const fd = openSync(realPath, 'r+'); // no O_APPEND: positioned writes must land where they say
  try {
    const header = readHeaderBytes(fd).slice();
    const fields = decodeHeader(header);
    const state: SharedState = {
      path: realPath,
      fd,
      ino: fstatSync(fd).ino,
      mirror: header,
      snapshot: new Snapshot(fields),
      listeners: new Set(),
      handles: 0,
      watcher: undefined,
      poll: undefined,
      queue: Promise.resolve(),
    };
    return state;
  } catch (error) {
    closeSync(fd);
    throw error;
  }
}

function closedError(path: string): RegistryCoreError {
  return new RegistryCoreError('ERR_CLOSED', `ConfigFile for ${path} is closed`);
}

function checkFlag(flag: FeatureFlag): void {
  if (typeof flag !== 'string' || !Object.hasOwn(FEATURE_FLAGS, flag)) {
    throw new RegistryCoreError('ERR_CONFIG_FIELD', `unknown feature flag ${JSON.stringify(flag)} (known: ${FEATURE_FLAG_NAMES.join(', ')})`, {
      field: 'featureFlags',
    });
  }
}

export class ConfigFile {
  readonly path: string;
  #state: SharedState | undefined;
  readonly #ownListeners = new Set<ConfigListener>();

  private constructor(state: SharedState) {
    this.#state = state;
    this.path = state.path;
  }

  /**
   * Opens (sync) and verifies the header. Every open() on the same real path in this process
   * shares one state; each returned handle must be closed once. Throws ERR_LOCKB_MISSING (unless
   * `createWith` is given), ERR_LOCKB_TRUNCATED / _MAGIC / _CHECK or ERR_CONFIG_FIELD.
   */
  static open(path: string, options: { createWith?: ConfigFields } = {}): ConfigFile {
    const absolute = resolve(path);
    if (!existsSync(absolute)) {
      if (!options.createWith) throw missingFile(absolute);
      try {
        createConfigFile(absolute, options.createWith);
      } catch (error) {
        // lost a creation race against another process: theirs is as good as ours
        if (!(error instanceof RegistryCoreError && error.code === 'ERR_LOCKB_EXISTS')) throw error;
      }
    }
    const realPath = realpathSync(absolute);
    let state = states.get(realPath);
    if (!state) {
      state = openState(realPath);
      states.set(realPath, state);
      // Poll for the whole life of the state, not only while listeners exist, so getConfig()
      // reflects another process's write within 100 ms for every plugin (unref'd: it never
      // keeps the process alive).
      startPolling(state);
    }
    state.handles++;
    return new ConfigFile(state);
  }

  #live(): SharedState {
    const state = this.#state;
    if (!state) throw closedError(this.path);
    return state;
  }

  getConfig(): ConfigSnapshot {
    const state = this.#state;
    if (state === undefined) throw closedError(this.path);
    return state.snapshot;
  }

  /**
   * One positioned write, no lock, no fsync: the fast path for a single writer. The write covers
   * bytes 4..16 (so also [offset..16]) from memory: if another process changed a different byte
   * meanwhile, the file still ends up self-consistent (its check byte matches its bytes) instead
   * of carrying a check byte computed over bytes it does not hold. Cross-process
   * read-modify-write goes through update()/toggleFeature().
   */
  setByteUnlocked(offset: number, value: number): ConfigSnapshot {
    const state = this.#live();
    checkByteEdit(offset, value);
    const mirror = state.mirror;
    const oldByte = mirror[offset];
    const oldCheck = mirror[CHECK_OFFSET];
    mirror[offset] = value;
    const field = fieldOf(offset);
    const problem = fieldProblem(field, fieldValue(mirror, field));
    if (problem !== undefined) {
      mirror[offset] = oldByte;
      throw new RegistryCoreError('ERR_CONFIG_FIELD', problem, { field });
    }
    mirror[CHECK_OFFSET] = crc8(mirror, CONFIG_START, CHECK_OFFSET);
    try {
      writeSync(state.fd, mirror, CONFIG_START, HEADER_SIZE - CONFIG_START, CONFIG_START);
    } catch (error) {
      mirror[offset] = oldByte;
      mirror[CHECK_OFFSET] = oldCheck;
      throw error;
    }
    return adopt(state, readConfigBytes(mirror));
  }

  toggleFeature(flag: FeatureFlag): Promise<ConfigSnapshot> {
    try {
      checkFlag(flag);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.update((fields) => withFeatureToggled(fields, flag));
  }

  /**
   * Locked read-modify-write: takes the cross-process lock, re-reads the header from disk (so
   * another process's change is the base, never lost), applies `mutate`, validates, writes all
   * 13 bytes in one positioned write, releases. If `mutate` throws or the result is invalid,
   * nothing is written.
   */
  update(mutate: (fields: ConfigFields) => ConfigFields): Promise<ConfigSnapshot> {
    let state: SharedState;
    try {
      state = this.#live();
    } catch (error) {
      return Promise.reject(error);
    }
    const run = (): Promise<ConfigSnapshot> =>
      withFileLock(state.path, () => {
        const current = reloadState(state);
        const nextFields = mutate({ ...current.fields });
        validateFields(nextFields);
        const header = new Uint8Array(HEADER_SIZE);
        header.set(MAGIC, 0);
        writeConfigBytes(nextFields, header);
        if (sameHeader(header, state.mirror)) return current;
        writeSync(state.fd, header, CONFIG_START, HEADER_SIZE - CONFIG_START, CONFIG_START);
        state.mirror.set(header);
        return adopt(state, readConfigBytes(header));
      });
    const result = state.queue.then(run, run);
    state.queue = result.catch(() => undefined);
    return result;
  }

  /** Re-reads from disk; throws (and keeps the last valid config in memory) if the file is now invalid. */
  reload(): ConfigSnapshot {
    return reloadState(this.#live());
  }

  watchConfig(listener: ConfigListener): () => void {
    const state = this.#live();
    state.listeners.add(listener);
    this.#ownListeners.add(listener);
    startInotify(state);
    return () => {
      this.#ownListeners.delete(listener);
      if (state.listeners.delete(listener) && state.listeners.size === 0) stopInotify(state);
    };
  }

  close(): void {
    const state = this.#state;
    if (!state) return;
    this.#state = undefined;
    for (const listener of this.#ownListeners) state.listeners.delete(listener);
    this.#ownListeners.clear();
    if (state.listeners.size === 0) stopInotify(state);
    if (--state.handles === 0) {
      stopWatching(state);
      closeSync(state.fd);
      states.delete(state.path);
    }
  }
}

/** One field's value straight from header bytes (the others are unchanged and were valid). */
function fieldValue(header: Uint8Array, field: keyof ConfigFields): number {
  switch (field) {
    case 'registryHash':
      return (header[5] | (header[6] << 8) | (header[7] << 16) | (header[8] << 24)) >>> 0;
    case 'featureFlags':
      return (header[9] | (header[10] << 8) | (header[11] << 16) | (header[12] << 24)) >>> 0;
    default:
      return header[FIELD_OFFSETS[field]];
  }
}

function fieldOf(offset: number): keyof ConfigFields {
  if (offset === 4) return 'version';
  if (offset <= 8) return 'registryHash';
  if (offset <= 12) return 'featureFlags';
  if (offset === 13) return 'terminalMode';
  return offset === 14 ? 'rows' : 'cols';
}
