/**
 * The audit trail (docs/audit.md): `audit.log` beside registry.lockb, NDJSON, append-only, one
 * O_APPEND write() per record, each line carrying a hash chain (`prev` = the previous line's
 * `hash`, `hash` = sha256 over `prev` + the line's JSON without `hash`). On open every line is
 * verified; a torn last line (no newline, unparsable, or a bad hash in the very last line — what a
 * crash mid-write leaves) is cut off and reported, damage anywhere else refuses to open.
 *
 * ONE writer per registry.lockb and process (`startAuditTrail`), subscribed to the core event bus;
 * producers only emit events (actor, address and token id are filled from the request context).
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, fstatSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';
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

function readWhole(fd: number): Buffer {
  const size = fstatSync(fd).size;
  const buffer = Buffer.alloc(size);
  let offset = 0;
  while (offset < size) {
    const read = readSync(fd, buffer, offset, size - offset, offset);
    if (read === 0) break;
    offset += read;
  }
  return buffer.subarray(0, offset);
}

export interface AuditQuery {
  name?: string;
  /** matches the actor or the user the record is about */
  user?: string;
  limit?: number;
  /** extra filter (access rules) */
  where?: (record: AuditRecord) => boolean;
}

export class AuditLog {
  readonly path: string;
  /** what open() cut off (a torn last line) */
  readonly recovered: { droppedBytes: number; reason: string } | null;
  readonly #fd: number;
  readonly #records: AuditRecord[];
  #last: string;
  #broken: RegistryCoreError | undefined;

  private constructor(path: string, fd: number, records: AuditRecord[], last: string, recovered: AuditLog['recovered']) {
    this.path = path;
    this.#fd = fd;
    this.#records = records;
    this.#last = last;
    this.recovered = recovered;
  }

  static open(path: string): AuditLog {
    const absolute = resolve(path);
    const readFd = openSync(absolute, existsSync(absolute) ? 'r+' : 'w+', 0o600);
    let recovered: AuditLog['recovered'] = null;
    const records: AuditRecord[] = [];
    let last = GENESIS;
    try {
      const bytes = readWhole(readFd);
      let start = 0;
      while (start < bytes.length) {
        const end = bytes.indexOf(0x0a, start);
        const isLast = end === -1 || end === bytes.length - 1;
        const text = bytes.subarray(start, end === -1 ? bytes.length : end).toString('utf8');
        const check: LineCheck = end === -1 ? { ok: false, reason: 'no newline (torn write)' } : checkLine(text, last, records.length + 1);
        if (!check.ok) {
          if (!isLast) {
            throw new RegistryCoreError('ERR_AUDIT_CORRUPT', `${absolute}: line ${records.length + 1} is damaged (${check.reason}); later lines exist, so it is not a torn write`, {
              hint: 'move the file aside to keep it as evidence; the registry then starts a new audit log',
            });
          }
          ftruncateSync(readFd, start);
          recovered = { droppedBytes: bytes.length - start, reason: check.reason };
          break;
        }
        records.push(check.record);
        last = check.hash;
        start = end + 1;
      }
    } finally {
      closeSync(readFd);
    }
    const fd = openSync(absolute, 'a', 0o600);
    return new AuditLog(absolute, fd, records, last, recovered);
  }

  /** One write() on the O_APPEND descriptor; the in-memory copy only after it landed whole. */
  append(entry: Omit<AuditRecord, 'seq'>): AuditRecord {
    if (this.#broken) throw this.#broken;
    const record: AuditRecord = { seq: this.#records.length + 1, ...entry };
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
    this.#records.push(record);
    return record;
  }

  get size(): number {
    return this.#records.length;
  }

  /** Newest first. */
  query(query: AuditQuery = {}): AuditRecord[] {
    const limit = query.limit ?? 100;
    const out: AuditRecord[] = [];
    for (let i = this.#records.length - 1; i >= 0 && out.length < limit; i--) {
      const record = this.#records[i];
      if (query.name !== undefined && record.name !== query.name) continue;
      if (query.user !== undefined && record.actor !== query.user && record.user !== query.user) continue;
      if (query.where && !query.where(record)) continue;
      out.push(record);
    }
    return out;
  }

  close(): void {
    closeSync(this.#fd);
  }
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
  const trails = (holder[TRAILS] ??= new Map<string, Trail>());
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
