/**
 * The package index on PostgreSQL (docs/database.md "The index and its mirror"):
 *
 * - `PgIndexSink` writes a change's index records into `package_index` inside the change's own
 *   transaction (after taking the index-order lock, so ids increase in commit order), each
 *   `record` exactly the bytes `encodeRecord` makes for registry.lockb;
 * - `IndexMirror` keeps this node's registry.lockb equal to the shared index: at start-up it
 *   compares the two (rewriting the file's records from the database when they differ, keeping the
 *   node's own `cache` / `self-reference` records after them), then appends every row past its
 *   position — after each local commit, on a delivered change (core package-changes), and, while
 *   no transport is attached, on a 1 s poll. Rows other nodes wrote are emitted on this node's
 *   event bus with `origin: 'remote'` (dashboards and terminals see them; the audit trail leaves
 *   them to the node that made them).
 */
import type { Database, PackageChangeBus } from '../registry-core/database/index';
import { PackageIndex, bootMark, decodeRecordAt, encodeRecord, registryEvents, replaceIndexRecords, type IndexRecord } from '../registry-core/index';
import { eventOf } from './lockb-sink';
import type { IndexSink } from './package-service';
import type { PgPackageStore } from './pg-store';

/** Record kinds that belong to one node, never to the shared index. */
const NODE_LOCAL_KINDS = new Set<IndexRecord['kind']>(['cache', 'self-reference']);
const BATCH = 5000;
const POLL_MS = 1000;

function decode(bytes: Buffer, id: string): IndexRecord {
  const decoded = decodeRecordAt(bytes, 0);
  if (!decoded.ok || decoded.next !== bytes.length) throw new Error(`package_index row ${id} is not one index record${decoded.ok ? '' : `: ${decoded.reason}`}`);
  return decoded.record;
}

export class IndexMirror {
  readonly lockbPath: string;
  readonly #database: Database;
  readonly #index: PackageIndex;
  readonly #events: ReturnType<typeof registryEvents>;
  readonly #onRemote: (names: string[]) => void;
  readonly #log: (text: string) => void;
  /** ids this process wrote (their events were emitted at commit, with the request's actor) */
  readonly #local = new Set<string>();
  #position = 0n;
  #started = false;
  #chain: Promise<void> = Promise.resolve();
  #timer: NodeJS.Timeout | null = null;

  constructor(database: Database, lockbPath: string, options: { onRemote: (names: string[]) => void; log: (text: string) => void; changes?: PackageChangeBus }) {
    this.#database = database;
    this.lockbPath = lockbPath;
    this.#index = PackageIndex.open(lockbPath);
    this.#events = registryEvents(lockbPath);
    this.#onRemote = options.onRemote;
    this.#log = options.log;
    const changes = options.changes;
    changes?.onDelivered(() => void this.sync().catch(() => undefined));
    // without a transport, other nodes' changes are found by polling the index (one cheap query a second)
    this.#timer = setInterval(() => {
      if (changes?.transportAttached() !== true) void this.sync().catch(() => undefined);
    }, POLL_MS);
    this.#timer.unref();
  }

  /** The newest package_index id this node's registry.lockb holds. */
  get position(): bigint {
    return this.#position;
  }

  markLocal(ids: string[]): void {
    for (const id of ids) this.#local.add(id);
  }

  /** Brings registry.lockb up to date (serialised; the first call does the start-up comparison). */
  sync(): Promise<void> {
    const next = this.#chain.then(() => (this.#started ? this.#pull() : this.#start()));
    this.#chain = next.catch(() => undefined);
    return next;
  }

  async #start(): Promise<void> {
    const rows = await this.#database.query<{ id: string; record: Buffer }>('SELECT id::text AS id, record FROM package_index ORDER BY package_index.id');
    const shared = rows.map((row) => decode(row.record, row.id));
    const onFile = this.#index.readAll();
    const fileShared = onFile.filter((record) => !NODE_LOCAL_KINDS.has(record.kind));
    const same = fileShared.length === shared.length && fileShared.every((record, i) => encodeRecord(record).equals(rows[i].record));
    if (!same) {
      replaceIndexRecords(this.lockbPath, [...shared, ...onFile.filter((record) => NODE_LOCAL_KINDS.has(record.kind))]);
      const text = `registry.lockb: index mirrored from the database (${shared.length} records; the file had ${fileShared.length})`;
      this.#log(text);
      bootMark(`storage: ${text}`);
    }
    this.#position = rows.length > 0 ? BigInt(rows[rows.length - 1].id) : 0n;
    this.#started = true;
  }

  async #pull(): Promise<void> {
    for (let round = 0; round < 10_000; round += 1) {
      const rows = await this.#database.query<{ id: string; record: Buffer }>(
        'SELECT id::text AS id, record FROM package_index WHERE id > $1 ORDER BY package_index.id LIMIT $2',
        [this.#position.toString(), BATCH],
        'index-pull',
      );
      const remoteNames = new Set<string>();
      const records = rows.map((row) => decode(row.record, row.id));
      // one registry.lockb lock per batch (the lock rebuild-index takes)
      await this.#index.appendLocked(records);
      for (const [i, row] of rows.entries()) {
        const record = records[i];
        this.#position = BigInt(row.id);
        if (this.#local.delete(row.id)) continue;
        remoteNames.add(record.name);
        try {
          this.#events.emit({ ...eventOf(record, undefined), origin: 'remote' });
        } catch {
          // a failing listener must not stop the mirror
        }
      }
      if (remoteNames.size > 0) this.#onRemote([...remoteNames]);
      if (rows.length < BATCH) return;
    }
  }

  close(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    this.#index.close();
  }
}

export class PgIndexSink implements IndexSink {
  readonly atomic = true;
  readonly #store: PgPackageStore;
  readonly #mirror: IndexMirror;
  readonly #events: ReturnType<typeof registryEvents>;

  constructor(store: PgPackageStore, mirror: IndexMirror) {
    this.#store = store;
    this.#mirror = mirror;
    this.#events = registryEvents(mirror.lockbPath);
  }

  async append(records: IndexRecord[], context: { user?: string }): Promise<void> {
    if (records.length === 0) return;
    const encoded = records.map(encodeRecord);
    await this.#store.inTransaction(async (client, tx) => {
      await this.#store.orderIndex(tx);
      // (id::text would sort as text if it were ordered by its alias: ids are ordered as bigint everywhere)
      const result = await client.query<{ id: string }>({
        name: 'index-insert',
        text: 'INSERT INTO package_index (name, record) SELECT * FROM unnest($1::text[], $2::bytea[]) RETURNING id::text AS id',
        values: [records.map((record) => record.name), encoded],
      });
      const ids = result.rows.map((row) => row.id);
      tx.indexId = ids[ids.length - 1] ?? tx.indexId;
      // before COMMIT: a poll that sees the rows first must not take them for another node's
      this.#mirror.markLocal(ids);
      tx.afterCommit.push(async () => {
        for (const record of records) {
          try {
            this.#events.emit(eventOf(record, context.user));
          } catch {
            // a failing listener must not fail the write that already happened
          }
        }
        await this.#mirror.sync();
      });
    });
  }
}
