/**
 * The live 13-byte config of one registry.lockb: in-memory snapshot (getConfig), positioned
 * writes (setByteUnlocked), locked read-modify-write (update/toggleFeature) and change notification
 * (watchConfig). All handles opened on one real path in a process share one state, so every
 * plugin sees an in-process write at once. Other processes' writes are seen through inotify
 * (fs.watch, for the whole life of the state), with a slow safety poll behind it; see "Freshness"
 * below.
 */
import { closeSync, existsSync, fstatSync, openSync, realpathSync, statSync, statfsSync, watch, writeSync, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
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

/**
 * Freshness. The primary signal is inotify on the file: a positioned write is IN_MODIFY; an atomic
 * replace by rename (an editor, a restore) or a delete drops the old inode's link count, IN_ATTRIB.
 * Each event costs one stat of the path and one 17-byte read; when the path now names another
 * inode, the file is reopened and the watch moved to it. While nothing is at the path, the watch
 * is on the folder instead (filtered by the file's name) until a file is back. Not the folder all
 * the time: the lock directory and owner file of every update() live there too, and each of their
 * events would wake the process. Behind inotify, a safety poll (the same stat + read) catches what
 * it cannot report: a watch that failed or was dropped, an event queue overflow. Its period is the
 * idle cost: the earlier 50 ms poll woke the process 20 times a second for ≈ 15–180 s CPU per hour
 * (config bench, loaded machine); 1 s is 20× fewer wake-ups.
 *
 * On network and FUSE-like file systems (NFS, SMB, 9p, virtiofs, FUSE, Ceph…) inotify reports only
 * this host's own writes, so there the poll stays at 50 ms: another host's write is then still
 * seen within 100 ms (docs/config-format.md), as before.
 */
export const WATCH_POLL_MS = 1_000;
export const WATCH_POLL_REMOTE_MS = 50;

/** statfs f_type of file systems whose inotify misses other hosts' writes (linux/magic.h). */
const REMOTE_FS_TYPES: ReadonlySet<number> = new Set([
  0x6969, // nfs
  0xff534d42, // cifs
  0xfe534d42, // smb2
  0x517b, // smbfs
  0x65735546, // fuse (sshfs, gcsfuse, Docker Desktop file sharing, …)
  0x01021997, // v9fs (WSL2, some VMs)
  0x6a656a63, // virtiofs
  0x00c36400, // ceph
  0x01161970, // gfs2
  0x47504653, // gpfs
  0x0bd00bd0, // lustre
  0x5346414f, // afs
  0x6b414653, // kafs
  0x564c, // ncp
  0x73757245, // coda
]);

/** The safety poll's period for a file: 50 ms where inotify cannot be trusted with other hosts' writes, else 1 s. */
function pollPeriodFor(path: string): number {
  try {
    return REMOTE_FS_TYPES.has(Number(statfsSync(path).type)) ? WATCH_POLL_REMOTE_MS : WATCH_POLL_MS;
  } catch {
    return WATCH_POLL_REMOTE_MS; // cannot tell: assume the worst
  }
}

/** A check that read a half-written header (a writer between its write and our read) is retried this soon, not at the next poll. */
const TORN_RETRY_MS = 10;

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
  /** inotify for the whole life of the state: on the file (inode `watchedIno`), or on its folder while the path is empty */
  watcher: FSWatcher | undefined;
  /** the inode the file watch is on; undefined while the watch is on the folder (or there is none) */
  watchedIno: number | undefined;
  poll: NodeJS.Timeout | undefined;
  pollMs: number;
  retry: NodeJS.Timeout | undefined;
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
  // a replaced file is followed first, so a locked update never writes into an inode nobody reads
  if (!followPath(state)) throw missingFile(state.path);
  const header = readHeaderBytes(state.fd);
  const fields = decodeHeader(header);
  state.mirror.set(header);
  return adopt(state, fields);
}

/**
 * Follows the path, not the descriptor: when the file was replaced (an atomic rename from an
 * editor, a restore from backup), reopen it. False when nothing is at the path (deleted): the
 * last valid config stays in memory until a file is back.
 */
function followPath(state: SharedState): boolean {
  const stat = statSync(state.path, { throwIfNoEntry: false });
  if (stat === undefined) return false;
  if (stat.ino !== state.ino) {
    const fd = openSync(state.path, 'r+');
    closeSync(state.fd);
    state.fd = fd;
    state.ino = fstatSync(fd).ino; // the file now open, even if it was replaced once more since the stat
  }
  return true;
}

/**
 * One look at the file (an inotify event, a poll tick): adopts the header when it changed and is
 * valid. `retry` marks the one quick second look after a failed one (never a third: a lasting
 * problem must not turn into a 10 ms loop).
 */
function checkState(state: SharedState, retry = false): void {
  if (states.get(state.path) !== state) return; // closed meanwhile (a late event or retry)
  try {
    const present = followPath(state);
    // the watch follows the path too: onto the new inode, or onto the folder while nothing is there
    if (state.watcher !== undefined && state.watchedIno !== (present ? state.ino : undefined)) {
      disarmWatcher(state);
      armWatcher(state);
    }
    if (!present) return;
    const header = readHeaderBytes(state.fd);
    if (header.length === HEADER_SIZE && sameHeader(header, state.mirror)) return;
    const fields = decodeHeader(header);
    state.mirror.set(header);
    adopt(state, fields);
  } catch {
    // A half-written or damaged header is never adopted; memory keeps the last valid config. A
    // torn read is retried shortly (the writer is mid-write); a lasting problem is reported by
    // reload() / start-up, and the poll keeps looking.
    if (!retry && state.retry === undefined) {
      state.retry = setTimeout(() => {
        state.retry = undefined;
        checkState(state, true);
      }, TORN_RETRY_MS);
      state.retry.unref();
    }
  }
}

/**
 * inotify on the file while it exists (on the inode at the path now), else on its folder filtered
 * by the file's name. `persistent: false`: it never keeps the process alive. On an error (folder
 * gone, watch limit) it is dropped and the next poll tick tries to arm it again.
 */
function armWatcher(state: SharedState): void {
  if (state.watcher) return;
  const name = basename(state.path);
  try {
    let watcher: FSWatcher;
    if (existsSync(state.path)) {
      watcher = watch(state.path, { persistent: false }, () => checkState(state));
      // the inode at the path once the watch exists; if it was replaced in between, the first event re-arms
      state.watchedIno = state.ino;
    } else {
      watcher = watch(dirname(state.path), { persistent: false }, (_event, filename) => {
        // filename is null where the platform does not say: then it may be ours
        if (filename === null || filename === name) checkState(state);
      });
      state.watchedIno = undefined;
    }
    watcher.on('error', () => {
      watcher.close();
      if (state.watcher === watcher) state.watcher = undefined;
    });
    state.watcher = watcher;
  } catch {
    state.watcher = undefined; // no inotify here (or no watches left): the poll alone
  }
}

function disarmWatcher(state: SharedState): void {
  state.watcher?.close();
  state.watcher = undefined;
  state.watchedIno = undefined;
}

/**
 * The next safety poll: its own period while inotify watches the file, the fast one while no watch
 * could be armed (no inotify, or no watches left), so another process's write is still seen within
 * 100 ms (SPEC §2).
 */
function schedulePoll(state: SharedState): void {
  const period = state.watcher === undefined ? Math.min(state.pollMs, WATCH_POLL_REMOTE_MS) : state.pollMs;
  state.poll = setTimeout(() => pollTick(state), period);
  state.poll.unref(); // never keeps the process alive
}

function pollTick(state: SharedState): void {
  if (state.watcher === undefined) armWatcher(state);
  checkState(state);
  if (states.get(state.path) === state) schedulePoll(state);
}

/** Both run for the whole life of the state, so getConfig() follows another process for every plugin, listener or not. */
function startWatching(state: SharedState): void {
  armWatcher(state);
  if (state.poll) return;
  schedulePoll(state);
}

function stopWatching(state: SharedState): void {
  if (state.poll) clearTimeout(state.poll);
  state.poll = undefined;
  if (state.retry) clearTimeout(state.retry);
  state.retry = undefined;
  disarmWatcher(state);
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
      watchedIno: undefined,
      poll: undefined,
      pollMs: pollPeriodFor(realPath),
      retry: undefined,
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
   * `safetyPollMs` overrides the safety poll's period (WATCH_POLL_MS / WATCH_POLL_REMOTE_MS) when
   * this call is the first open of the path in this process; tests use an hour to see inotify alone.
   */
  static open(path: string, options: { createWith?: ConfigFields; safetyPollMs?: number } = {}): ConfigFile {
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
      if (options.safetyPollMs !== undefined) state.pollMs = options.safetyPollMs;
      states.set(realPath, state);
      startWatching(state);
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
    return () => {
      this.#ownListeners.delete(listener);
      state.listeners.delete(listener);
    };
  }

  close(): void {
    const state = this.#state;
    if (!state) return;
    this.#state = undefined;
    for (const listener of this.#ownListeners) state.listeners.delete(listener);
    this.#ownListeners.clear();
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
