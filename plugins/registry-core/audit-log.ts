/**
 * The audit trail (docs/audit.md): `audit.log` beside registry.lockb, NDJSON, append-only, one
 * O_APPEND write() per record, each line carrying a hash chain (`prev` = the previous line's
 * `hash`, `hash` = sha256 over `prev` + the line's JSON without `hash`). On open every line is
 * verified (the lines a checkpoint vouches for by their SHA-256 at once: see AUDIT_CHECKPOINT_FILE); a torn last line (no newline, unparsable, or a bad hash in the very last line — what a
 * crash mid-write leaves) is cut off and reported, damage anywhere else refuses to open.
 *
 * ONE writer per registry.lockb and process (`startAuditTrail`), subscribed to the core event bus;
 * producers only emit events (actor, address and token id are filled from the request context).
 */
import { createHash, type Hash } from 'node:crypto';
import { closeSync, existsSync, ftruncateSync, openSync, readFileSync, writeSync } from 'node:fs';
import { writeFileAtomicSync } from './atomic-file';
import { readWholeFile } from './fd-read';
import { dirname, join, resolve } from 'node:path';
import { RegistryCoreError } from './errors';
import { registryEvents, type RegistryEvent } from './events';

export const AUDIT_FILE = 'audit.log';
const GENESIS = '0'.repeat(64);

export interface AuditRecord {
  seq: number;
  /** ISO 8601 */
  time: string;
  kind: RegistryEvent['kind'];
  /** the authenticated user who did it; null: anonymous (or outside a request) */
  actor: string | null;
  address: string | null;
  tokenId: string | null;
  name?: string;
  version?: string;
  /** whom it is about when that differs from the actor (the user who logged in, the token owner) */
  user?: string;
  detail?: string;
  /** publish: the dist-tags set by the same write (one record per publish, docs/audit.md) */
  tags?: string[];
}

interface StoredLine extends AuditRecord {
  prev: string;
  hash: string;
}

export function auditPathFor(lockbPath: string): string {
  return join(dirname(resolve(lockbPath)), AUDIT_FILE);
}

function hashOf(prev: string, body: string): string {
  return createHash('sha256').update(prev).update('\n').update(body).digest('hex');
}

/** The line for a record after `prev`; exported for tests that build files by hand. */
export function encodeAuditLine(record: AuditRecord, prev: string): { line: string; hash: string } {
  const body = JSON.stringify({ ...record, prev });
  const hash = hashOf(prev, body);
  return { line: `${body.slice(0, -1)},"hash":${JSON.stringify(hash)}}\n`, hash };
}

type LineCheck = { ok: true; record: AuditRecord; hash: string } | { ok: false; reason: string };

function checkLine(text: string, prev: string, seq: number): LineCheck {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { ok: false, reason: 'not JSON' };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return { ok: false, reason: 'not an object' };
  const line = parsed as Partial<StoredLine>;
  if (typeof line.hash !== 'string') return { ok: false, reason: 'no hash' };
  const { hash, ...rest } = line;
  if (rest.prev !== prev) return { ok: false, reason: 'hash chain broken (prev does not name the line before)' };
  if (hashOf(prev, JSON.stringify(rest)) !== hash) return { ok: false, reason: 'hash mismatch' };
  if (rest.seq !== seq) return { ok: false, reason: `sequence ${String(rest.seq)}, expected ${seq}` };
  const { prev: _prev, ...record } = rest as StoredLine;
  void _prev;
  return { ok: true, record, hash };
}


export interface AuditQuery {
  name?: string;
  /** matches the actor or the user the record is about */
  user?: string;
  limit?: number;
  /** extra filter (access rules) */
  where?: (record: AuditRecord) => boolean;
}

/**
 * `audit.log.checkpoint` beside the log: "the first `bytes` bytes of audit.log, whose SHA-256 is
 * `digest`, were verified as a chain of `lines` lines ending in hash `last`". A start whose file
 * begins with exactly those bytes (one native SHA-256 over them, ≈ 3 ms per MB, instead of a JSON
 * parse, a re-serialisation and a hash per line: ≈ 25–100 ms at 3,000 lines; issue 17) verifies
 * only the lines after them. Any changed byte in that prefix changes the digest and the whole file
 * is verified line by line as before, so what open() detects is unchanged: an edit that does not
 * recompute the chain is found and named. (Like the chain itself the checkpoint is not keyed: whoever
 * can rewrite audit.log and recompute every hash could also rewrite this file — docs/audit.md.)
 * Written only at a normal exit, and only when audit.log is then exactly the verified prefix plus the
 * lines this process appended (a running SHA-256 of both); a missing or damaged checkpoint just
 * means the next start verifies every line.
 */
export const AUDIT_CHECKPOINT_FILE = 'audit.log.checkpoint';
const CHECKPOINT_MAGIC = '#audit-checkpoint v1 sha256=';

interface Checkpoint {
  bytes: number;
  lines: number;
  last: string;
  digest: string;
}

function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export function encodeCheckpoint(checkpoint: Checkpoint): string {
  const body = `${checkpoint.bytes} ${checkpoint.lines} ${checkpoint.last} ${checkpoint.digest}\n`;
  return `${CHECKPOINT_MAGIC}${sha256Hex(body)}\n${body}`;
}

/** null when missing or not intact (then every line is verified). */
function readCheckpoint(path: string): Checkpoint | null {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return null;
  }
  const match = /^#audit-checkpoint v1 sha256=([0-9a-f]{64})\n((0|[1-9][0-9]*) (0|[1-9][0-9]*) ([0-9a-f]{64}) ([0-9a-f]{64})\n)$/.exec(text);
  if (match === null || sha256Hex(match[2]) !== match[1]) return null;
  return { bytes: Number(match[3]), lines: Number(match[4]), last: match[5], digest: match[6] };
}

export class AuditLog {
  readonly path: string;
  /** what open() cut off (a torn last line) */
  readonly recovered: { droppedBytes: number; reason: string } | null;
  /** how many lines open() took from the checkpoint without re-verifying them one by one (0: none) */
  readonly checkpointedLines: number;
  readonly #fd: number;
  /** the checkpointed prefix, parsed into records by the first query (verified at open by its digest) */
  #prefix: Buffer | null;
  #records: AuditRecord[];
  #count: number;
  #last: string;
  /** SHA-256 of every byte the file should hold: the verified bytes at open, then each appended line */
  readonly #content: Hash;
  #bytes: number;
  #stored: Checkpoint | null;
  #broken: RegistryCoreError | undefined;

  private constructor(path: string, fd: number, state: { prefix: Buffer | null; prefixLines: number; records: AuditRecord[]; last: string; content: Hash; bytes: number; stored: Checkpoint | null }, recovered: AuditLog['recovered']) {
    this.path = path;
    this.#fd = fd;
    this.#prefix = state.prefix;
    this.checkpointedLines = state.prefixLines;
    this.#records = state.records;
    this.#count = state.prefixLines + state.records.length;
    this.#last = state.last;
    this.#content = state.content;
    this.#bytes = state.bytes;
    this.#stored = state.stored;
    this.recovered = recovered;
  }

  static open(path: string): AuditLog {
    const absolute = resolve(path);
    const readFd = openSync(absolute, existsSync(absolute) ? 'r+' : 'w+', 0o600);
    let recovered: AuditLog['recovered'] = null;
    const records: AuditRecord[] = [];
    let last = GENESIS;
    let prefix: Buffer | null = null;
    let prefixLines = 0;
    const content = createHash('sha256');
    const stored = readCheckpoint(checkpointPathOf(absolute));
    let start = 0;
    try {
      const bytes = readWholeFile(readFd);
      if (stored !== null && stored.bytes > 0 && stored.bytes <= bytes.length && bytes[stored.bytes - 1] === 0x0a) {
        const head = bytes.subarray(0, stored.bytes);
        const headHash = createHash('sha256').update(head);
        if (headHash.copy().digest('hex') === stored.digest) {
          // exactly the bytes verified before: only what follows them is checked line by line
          content.update(head);
          prefix = head;
          prefixLines = stored.lines;
          last = stored.last;
          start = stored.bytes;
        }
      }
      while (start < bytes.length) {
        const end = bytes.indexOf(0x0a, start);
        const isLast = end === -1 || end === bytes.length - 1;
        const text = bytes.subarray(start, end === -1 ? bytes.length : end).toString('utf8');
        const seq = prefixLines + records.length + 1;
        const check: LineCheck = end === -1 ? { ok: false, reason: 'no newline (torn write)' } : checkLine(text, last, seq);
        if (!check.ok) {
          if (!isLast) {
            throw new RegistryCoreError('ERR_AUDIT_CORRUPT', `${absolute}: line ${seq} is damaged (${check.reason}); later lines exist, so it is not a torn write`, {
              hint: 'move the file aside to keep it as evidence; the registry then starts a new audit log',
            });
          }
          ftruncateSync(readFd, start);
          recovered = { droppedBytes: bytes.length - start, reason: check.reason };
          break;
        }
        content.update(bytes.subarray(start, end + 1));
        records.push(check.record);
        last = check.hash;
        start = end + 1;
      }
    } finally {
      closeSync(readFd);
    }
    const fd = openSync(absolute, 'a', 0o600);
    return new AuditLog(absolute, fd, { prefix, prefixLines, records, last, content, bytes: start, stored }, recovered);
  }

  /** One write() on the O_APPEND descriptor; the in-memory copy only after it landed whole. */
  append(entry: Omit<AuditRecord, 'seq'>): AuditRecord {
    if (this.#broken) throw this.#broken;
    const record: AuditRecord = { seq: this.#count + 1, ...entry };
    const { line, hash } = encodeAuditLine(record, this.#last);
    const bytes = Buffer.from(line, 'utf8');
    const written = writeSync(this.#fd, bytes);
    if (written !== bytes.length) {
      // a torn tail is dropped on the next open; appending after it would make it mid-file damage
      this.#broken = new RegistryCoreError('ERR_AUDIT_CORRUPT', `${this.path}: short write (${written} of ${bytes.length} bytes)`, {
        hint: 'free disk space and restart the registry (the torn line is dropped on open)',
      });
      throw this.#broken;
    }
    this.#last = hash;
    this.#content.update(bytes);
    this.#bytes += bytes.length;
    this.#count += 1;
    this.#records.push(record);
    return record;
  }

  get size(): number {
    return this.#count;
  }

  /** Every record, oldest first: the checkpointed prefix is parsed once, by the first caller. */
  #all(): AuditRecord[] {
    if (this.#prefix !== null) {
      const parsed: AuditRecord[] = [];
      const text = this.#prefix.toString('utf8');
      for (let at = 0; at < text.length; ) {
        const end = text.indexOf('\n', at);
        const { prev: _prev, hash: _hash, ...record } = JSON.parse(text.slice(at, end)) as StoredLine;
        void _prev;
        void _hash;
        parsed.push(record);
        at = end + 1;
      }
      this.#records = [...parsed, ...this.#records];
      this.#prefix = null;
    }
    return this.#records;
  }

  /** Newest first. */
  query(query: AuditQuery = {}): AuditRecord[] {
    const limit = query.limit ?? 100;
    const records = this.#all();
    const out: AuditRecord[] = [];
    for (let i = records.length - 1; i >= 0 && out.length < limit; i--) {
      const record = records[i];
      if (query.name !== undefined && record.name !== query.name) continue;
      if (query.user !== undefined && record.actor !== query.user && record.user !== query.user) continue;
      if (query.where && !query.where(record)) continue;
      out.push(record);
    }
    return out;
  }

  /**
   * Records the checkpoint (normal exit): only when the file is now exactly what this process
   * verified and appended — its length and SHA-256 read back and compared — so it never vouches
   * for a byte nobody checked. Returns whether it wrote one.
   */
  writeCheckpoint(): boolean {
    const digest = this.#content.copy().digest('hex');
    if (this.#stored !== null && this.#stored.bytes === this.#bytes && this.#stored.digest === digest) return false;
    let now: Buffer;
    const fd = openSync(this.path, 'r');
    try {
      now = readWholeFile(fd);
    } finally {
      closeSync(fd);
    }
    if (now.length !== this.#bytes || createHash('sha256').update(now).digest('hex') !== digest) return false;
    const checkpoint = { bytes: this.#bytes, lines: this.#count, last: this.#last, digest };
    writeFileAtomicSync(checkpointPathOf(this.path), encodeCheckpoint(checkpoint), 0o600);
    this.#stored = checkpoint;
    return true;
  }

  close(): void {
    closeSync(this.#fd);
  }
}

function checkpointPathOf(auditPath: string): string {
  return join(dirname(auditPath), AUDIT_CHECKPOINT_FILE);
}

/** The audit entry of an event: the actor is the request's authenticated user, else the producer's `user` outside a request. */
export function auditEntryOf(event: RegistryEvent): Omit<AuditRecord, 'seq'> {
  const entry: Omit<AuditRecord, 'seq'> = {
    time: new Date(event.time).toISOString(),
    kind: event.kind,
    actor: event.actor ?? null,
    address: event.address ?? null,
    tokenId: event.tokenId ?? null,
  };
  if (event.name !== undefined) entry.name = event.name;
  if (event.version !== undefined) entry.version = event.version;
  if (event.user !== undefined) entry.user = event.user;
  if (event.detail !== undefined) entry.detail = event.detail;
  if (event.tags !== undefined && event.tags.length > 0) entry.tags = [...event.tags];
  return entry;
}

interface Trail {
  log: AuditLog;
  stop(): void;
}
const TRAILS = Symbol.for('mycompany-registry:audit-trails');
type TrailHolder = { [TRAILS]?: Map<string, Trail> };

/**
 * The one audit writer for this registry.lockb in this process: opens audit.log and records every
 * event of the bus. Idempotent — every plugin calls it at start-up, so the trail runs whichever
 * plugins are configured. `onError` hears appends that failed (the mutation itself already happened).
 */
export function startAuditTrail(lockbPath: string, onError: (message: string) => void = (m) => process.emitWarning(m)): AuditLog {
  const holder = globalThis as TrailHolder;
  let trails = holder[TRAILS];
  if (trails === undefined) {
    const all = new Map<string, Trail>();
    trails = holder[TRAILS] = all;
    // a normal exit (Verdaccio's graceful stop ends in process.exit) records each open trail's
    // checkpoint, so the next start verifies only what is appended after it (AUDIT_CHECKPOINT_FILE)
    process.once('exit', () => {
      for (const trail of all.values()) {
        try {
          trail.log.writeCheckpoint();
        } catch (error) {
          onError(`audit.log: checkpoint not written at exit (the next start verifies every line): ${error instanceof Error ? error.message : String(error)}`);
        }
      }
    });
  }
  const key = resolve(lockbPath);
  const existing = trails.get(key);
  if (existing) return existing.log;
  const log = AuditLog.open(auditPathFor(key));
  const stop = registryEvents(key).on((event) => {
    // another node's change (replayed from the shared index): recorded by that node's trail
    if (event.origin === 'remote') return;
    try {
      log.append(auditEntryOf(event));
    } catch (error) {
      onError(`audit.log: could not record a ${event.kind} event: ${error instanceof Error ? error.message : String(error)}`);
    }
  });
  trails.set(key, { log, stop });
  return log;
}

/** Tests and shutdown: stop recording and close the file. */
export function stopAuditTrail(lockbPath: string): void {
  const trails = (globalThis as TrailHolder)[TRAILS];
  const key = resolve(lockbPath);
  const trail = trails?.get(key);
  if (!trail) return;
  trail.stop();
  trail.log.close();
  trails?.delete(key);
}
