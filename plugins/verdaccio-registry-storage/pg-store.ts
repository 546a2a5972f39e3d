/**
 * `PackageStore` on PostgreSQL (docs/database.md): packuments, tarballs (bytea — chosen by
 * measurement), the package list and secret, shared by every node on one database.
 *
 * One transaction per locked section: `withLock(key, fn)` queues in-process per key (so waiting
 * requests hold no connection), then opens a transaction and takes
 * `pg_advisory_xact_lock(REGP, hashtext(key))` — every node excludes every other — and runs fn
 * with that transaction as the context of every store call fn makes (AsyncLocalStorage). A publish
 * is therefore ONE transaction: the packument row, the tarball row and the index rows (the sink
 * writes them through `inTransaction`) commit together or not at all.
 *
 * Tarballs stream in before the lock (Verdaccio uploads first, then updates the packument): the
 * writer keeps the verified bytes in this process ("staged", bounded by the publish body limit);
 * the packument write in the lock inserts every staged tarball its versions name. So nothing of
 * a publish is in the database before its COMMIT, and a node killed mid-publish leaves nothing
 * (the client got no answer). Two nodes staging the same version: the second's packument write
 * finds the version (Verdaccio: 409) or the tarball row (ERR_EXISTS → 409) — never a replaced winner.
 *
 * Errors: lock_timeout (55P03) → ERR_LOCK_TIMEOUT (503); a lost connection / database down →
 * ERR_UNAVAILABLE (503); nothing is changed either way.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';
import type { PoolClient, QueryResultRow } from 'pg';
import { type Database, isConnectionError, isLockTimeout, type PackageChangeBus } from '../registry-core/database/index';
import { StorageError } from './errors';
import { parseTarballName, type ParsedName } from './names';
import { packumentText, type Manifest, type PackageStore, type StorageDb, type TarballDigest, type TarballReader, type TarballWriteOptions, type TarballWriter } from './store';

/** pg_advisory_xact_lock(int4, int4) namespace of package locks: 'REGP'. */
export const PACKAGE_LOCK_NAMESPACE = 0x52454750;
/** The lock that orders index ids by commit (taken right before the index rows are inserted). */
export const INDEX_ORDER_LOCK = [PACKAGE_LOCK_NAMESPACE, 0] as const;
const DB_LOCK_KEY = '.verdaccio-db';
/** A staged tarball no packument write picked up (its publish was refused or abandoned) is dropped after this. */
const STAGED_TTL_MS = 5 * 60_000;
/** An upload claim older than this was left by a node that died mid-publish: another upload may take it (package-service's ABANDONED_TARBALL_MS). */
const CLAIM_EXPIRY_S = 120;

export interface PgStoreOptions {
  lockTimeoutMs?: number;
  /** a lock acquisition that had to wait (in-process queue + advisory lock), as KeyedLock reports it */
  onLockWait?: (key: string, waitedMs: number) => void;
  /** the cross-node seam (core package-changes): commits are announced, deliveries invalidate */
  changes?: PackageChangeBus;
}

interface Staged {
  bytes: Buffer;
  digest: TarballDigest;
  expires: number;
}

interface TxContext {
  client: PoolClient;
  held: Set<string>;
  /** names whose packument/tarballs this transaction changed */
  changed: Set<string>;
  /** staged tarballs inserted by this transaction (dropped from staging after COMMIT) */
  consumed: string[];
  /** run after COMMIT, in order (index mirror, events, announcements) */
  afterCommit: Array<() => void | Promise<void>>;
  indexId: string | null;
  indexOrdered: boolean;
}

/** Does a version of manifest name file with dist.integrity = sha512 (hex)? */
function integrityNames(manifest: Manifest, file: string, sha512Hex: string): boolean {
  const wanted = `sha512-${Buffer.from(sha512Hex, 'hex').toString('base64')}`;
  return Object.values(manifest.versions ?? {}).some((meta) => {
    const url = meta?.dist?.tarball;
    return typeof url === 'string' && url.split(/[?#]/)[0].endsWith(`/${file}`) && String(meta?.dist?.integrity ?? '').split(/\s+/).includes(wanted);
  });
}

function stageKey(name: string, file: string): string {
  return `${name}\u0000${file}`;
}

/** StorageError for what PostgreSQL answered; others pass through. */
export function storageErrorOf(error: unknown, what: string): unknown {
  if (error instanceof StorageError) return error;
  if (isLockTimeout(error)) return new StorageError('ERR_LOCK_TIMEOUT', `could not lock ${what} in time (another write is in progress); nothing was changed, retry`, { cause: error });
  if (isConnectionError(error)) return new StorageError('ERR_UNAVAILABLE', `the database is unavailable (${(error as Error).message}); nothing was changed, retry`, { cause: error });
  return error;
}

/** In-process FIFO per key: requests of one node wait here, holding no database connection. */
class LocalQueue {
  readonly #tails = new Map<string, Promise<void>>();

  async run<T>(key: string, fn: () => Promise<T>): Promise<{ result: T; waitedMs: number }> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolveMine) => (release = resolveMine));
    const tail = previous.then(() => mine);
    this.#tails.set(key, tail);
    const started = performance.now();
    await previous;
    const waitedMs = performance.now() - started;
    try {
      return { result: await fn(), waitedMs };
    } finally {
      release();
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    }
  }
}

class PgTarballWriter implements TarballWriter {
  readonly stream: Writable;
  readonly #chunks: Buffer[] = [];
  readonly #sha512 = createHash('sha512');
  readonly #sha1 = createHash('sha1');
  #size = 0;
  #done = false;

  constructor(
    private readonly store: PgPackageStore,
    private readonly pkg: ParsedName,
    private readonly fileName: string,
    private readonly options: TarballWriteOptions = {},
  ) {
    this.stream = new Writable({
      construct: (callback) => {
        this.prepare().then(() => callback(), callback);
      },
      write: (chunk: Buffer, _encoding, callback) => {
        this.#sha512.update(chunk);
        this.#sha1.update(chunk);
        this.#size += chunk.length;
        this.#chunks.push(chunk);
        callback();
      },
    });
  }

  private async prepare(): Promise<void> {
    await this.options.precheck?.();
    // fail fast (before the body is read) when the tarball is published already
    if ((await this.store.committedTarballExists(this.pkg, this.fileName)) && !(await this.options.reclaim?.())) {
      this.store.forget(this.pkg.name); // another node published it: what this node remembers may predate that
      throw new StorageError('ERR_EXISTS', `${this.pkg.name}/${this.fileName} already exists`);
    }
    this.stream.emit('open');
  }

  async commit(): Promise<TarballDigest> {
    if (this.#done) throw new Error('tarball already committed or aborted');
    this.#done = true;
    const digest = { sha512: this.#sha512.digest('hex'), sha1: this.#sha1.digest('hex'), size: this.#size };
    // the claim: a second upload of this file, on any node, gets ERR_EXISTS here (409), as link() gives on files
    await this.store.claim(this.pkg, this.fileName, digest);
    this.store.stage(this.pkg, this.fileName, Buffer.concat(this.#chunks), digest);
    this.#chunks.length = 0;
    return digest;
  }

  async abort(): Promise<void> {
    this.#done = true;
    this.#chunks.length = 0;
    if (!this.stream.destroyed) this.stream.destroy();
  }
}

export class PgPackageStore implements PackageStore {
  readonly location: string;
  readonly database: Database;
  readonly #als = new AsyncLocalStorage<TxContext>();
  readonly #queue = new LocalQueue();
  readonly #staged = new Map<string, Staged>();
  /** packument revision per name as this node last saw it (null: known not to exist) */
  readonly #revisions = new Map<string, string | null>();
  /** packument text per name, trusted only while a transport delivers other nodes' changes */
  readonly #texts = new Map<string, { revision: string; text: string }>();
  /** bumped on every change this node commits or is told of: a read that started before one never stores what it read */
  readonly #generations = new Map<string, number>();
  #epoch = 0;
  readonly #lockTimeoutMs: number;
  readonly #onLockWait?: (key: string, waitedMs: number) => void;
  readonly #changes?: PackageChangeBus;

  constructor(database: Database, options: PgStoreOptions = {}) {
    this.database = database;
    this.location = database.location;
    this.#lockTimeoutMs = options.lockTimeoutMs ?? 30_000;
    this.#onLockWait = options.onLockWait;
    this.#changes = options.changes;
    this.#changes?.onDelivered((change) => this.forget(change.name));
  }

  /** Drops what this node remembers of name ('*': of everything): another node changed it. */
  forget(name: string): void {
    if (name === '*') {
      this.#epoch += 1;
      this.#revisions.clear();
      this.#texts.clear();
      return;
    }
    this.#bump(name);
    this.#revisions.delete(name);
    this.#texts.delete(name);
  }

  #bump(name: string): void {
    this.#generations.set(name, (this.#generations.get(name) ?? 0) + 1);
  }

  #generationOf(name: string): string {
    return `${this.#epoch}:${this.#generations.get(name) ?? 0}`;
  }

  /** What a committed write (or delete) left: revision null = no packument. */
  #committed(name: string, revision: string | null): void {
    this.#bump(name);
    this.#revisions.set(name, revision);
    this.#texts.delete(name);
  }

  // ---- transactions ---------------------------------------------------------------------

  /** The transaction of the current locked section, or null outside one. */
  current(): TxContext | null {
    return this.#als.getStore() ?? null;
  }

  private async query<R extends QueryResultRow>(text: string, values: unknown[], name?: string): Promise<R[]> {
    const context = this.#als.getStore();
    try {
      if (context) return (await context.client.query<R>(name === undefined ? { text, values } : { name, text, values })).rows;
      return await this.database.query<R>(text, values, name);
    } catch (error) {
      throw storageErrorOf(error, 'the package');
    }
  }

  /**
   * Runs fn inside the current locked section's transaction (the index sink uses it so the
   * index rows commit with the packument). Outside a locked section it throws: every index write
   * happens under a package lock.
   */
  async inTransaction<T>(fn: (client: PoolClient, context: TxContext) => Promise<T>): Promise<T> {
    const context = this.#als.getStore();
    if (!context) throw new Error('registry-storage: an index write outside a package lock');
    return fn(context.client, context);
  }

  /** Takes the index-order lock once per transaction: index ids then increase in commit order. */
  async orderIndex(context: TxContext): Promise<void> {
    if (context.indexOrdered) return;
    await context.client.query('SELECT pg_advisory_xact_lock($1, $2)', [...INDEX_ORDER_LOCK]);
    context.indexOrdered = true;
  }

  async withLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const outer = this.#als.getStore();
    if (outer) {
      // nested (e.g. the package list inside a package's section): same transaction, one more lock
      if (!outer.held.has(key)) {
        try {
          await outer.client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [PACKAGE_LOCK_NAMESPACE, key]);
        } catch (error) {
          throw storageErrorOf(error, key);
        }
        outer.held.add(key);
      }
      return fn();
    }
    const { result, waitedMs } = await this.#queue.run(key, async () => {
      const started = performance.now();
      let context: TxContext | null = null;
      let value: T;
      try {
        value = await this.database.transaction(async (client) => {
          await client.query("SELECT set_config('lock_timeout', $1, true)", [`${this.#lockTimeoutMs}ms`]);
          await client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [PACKAGE_LOCK_NAMESPACE, key]);
          const waited = performance.now() - started;
          if (waited > 5) this.#onLockWait?.(key, waited);
          context = { client, held: new Set([key]), changed: new Set(), consumed: [], afterCommit: [], indexId: null, indexOrdered: false };
          return this.#als.run(context, fn);
        });
      } catch (error) {
        throw storageErrorOf(error, key);
      }
      // committed: what the transaction did is now visible to every node
      const done = context as TxContext | null;
      if (done !== null) await this.afterCommit(done);
      return value;
    });
    if (waitedMs > 5) this.#onLockWait?.(key, waitedMs);
    return result;
  }

  private async afterCommit(context: TxContext): Promise<void> {
    for (const key of context.consumed) this.#staged.delete(key);
    for (const action of context.afterCommit) {
      try {
        await action();
      } catch {
        // the commit stands; the mirror catches up at the next sync
      }
    }
    for (const name of context.changed) {
      this.#changes?.committed({ name, revision: this.#revisions.get(name) ?? null, indexId: context.indexId });
    }
  }

  // ---- packuments -----------------------------------------------------------------------

  async readPackument(pkg: ParsedName): Promise<Manifest | null> {
    const inside = this.#als.getStore() !== undefined;
    const trusted = !inside && this.#changes?.transportAttached() === true;
    if (trusted) {
      const revision = this.#revisions.get(pkg.name);
      const cached = this.#texts.get(pkg.name);
      if (revision === null) return null;
      if (revision !== undefined && cached && cached.revision === revision) return JSON.parse(cached.text) as Manifest;
    }
    const generation = this.#generationOf(pkg.name);
    const rows = await this.query<{ body: string; revision: string }>('SELECT body, revision::text AS revision FROM packuments WHERE name = $1', [pkg.name], 'packument-read');
    const row = rows[0];
    // inside a transaction the row may still roll back; after a change began, the row may be old
    const remember = !inside && generation === this.#generationOf(pkg.name);
    // a locked read that sees another revision than the one remembered: another node committed
    // and its NOTIFY is still on its way; what is remembered is stale now, whatever this section does
    if (inside && this.#revisions.has(pkg.name) && this.#revisions.get(pkg.name) !== (row?.revision ?? null)) this.forget(pkg.name);
    if (!row) {
      if (remember) {
        this.#revisions.set(pkg.name, null);
        this.#texts.delete(pkg.name);
      }
      return null;
    }
    if (remember) {
      this.#revisions.set(pkg.name, row.revision);
      this.#texts.set(pkg.name, { revision: row.revision, text: row.body });
    }
    try {
      return JSON.parse(row.body) as Manifest;
    } catch (error) {
      throw new Error(`packument ${pkg.name} in the database is not valid JSON: ${(error as Error).message}`);
    }
  }

  async packumentExists(pkg: ParsedName): Promise<boolean> {
    return (await this.query('SELECT 1 FROM packuments WHERE name = $1', [pkg.name], 'packument-exists')).length > 0;
  }

  /**
   * Synchronous, so from what this node saw: null for a name it does not know to be stored (the
   * HTTP layer then asks the store), `pg:<revision>` while a transport delivers other nodes'
   * changes, else a stamp that never repeats (no rendered response is reused: another node may
   * have written meanwhile).
   */
  packumentStamp(pkg: ParsedName): string | null {
    const revision = this.#revisions.get(pkg.name);
    if (revision === undefined || revision === null) return null;
    return this.#changes?.transportAttached() === true ? `pg:${revision}` : `pg:${revision}:racy-${process.hrtime.bigint()}`;
  }

  async writePackument(pkg: ParsedName, manifest: Manifest): Promise<void> {
    if (manifest.name !== pkg.name) {
      throw new StorageError('ERR_BAD_MANIFEST', `manifest name ${JSON.stringify(manifest.name)} does not match ${pkg.name}`);
    }
    await this.withLock(pkg.name, async () => {
      const context = this.#als.getStore() as TxContext;
      await this.insertStagedTarballs(context, pkg, manifest);
      const rows = await this.query<{ revision: string }>(
        `INSERT INTO packuments (name, body) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET body = EXCLUDED.body, revision = nextval('packument_revision'), updated_at = now()
         RETURNING revision::text AS revision`,
        [pkg.name, packumentText(manifest)],
        'packument-write',
      );
      const revision = rows[0].revision;
      context.changed.add(pkg.name);
      this.#bump(pkg.name); // a read racing this write never stores the old row
      context.afterCommit.push(() => this.#committed(pkg.name, revision));
    });
  }

  /** Every staged tarball (this node's uploads) that a version of manifest names and the database lacks. */
  private async insertStagedTarballs(context: TxContext, pkg: ParsedName, manifest: Manifest): Promise<void> {
    const named = new Set<string>();
    for (const meta of Object.values(manifest.versions ?? {})) {
      const url = meta?.dist?.tarball;
      if (typeof url !== 'string') continue;
      const base = url.split(/[?#]/)[0];
      let file = base.slice(base.lastIndexOf('/') + 1);
      try {
        file = decodeURIComponent(file);
      } catch {
        // keep it as it is
      }
      named.add(file);
    }
    for (const file of named) {
      const key = stageKey(pkg.name, file);
      const staged = this.#staged.get(key);
      if (!staged) continue;
      const inserted = await context.client.query(
        {
          name: 'tarball-insert',
          text: 'INSERT INTO tarballs (package, file, bytes, size, sha512, sha1) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (package, file) DO NOTHING',
          values: [pkg.name, file, staged.bytes, staged.digest.size, staged.digest.sha512, staged.digest.sha1],
        },
      );
      if (inserted.rowCount === 0) {
        const existing = await this.query<{ sha512: string }>('SELECT sha512 FROM tarballs WHERE package = $1 AND file = $2', [pkg.name, file]);
        if (existing[0]?.sha512 !== staged.digest.sha512) {
          // another upload published this file first. If the manifest's version is that one (this
          // write did not add it), the staged bytes are a loser's leftover: dropped, never stored.
          // If the manifest says these staged bytes, the write would pair a version with other bytes: 409.
          if (integrityNames(manifest, file, staged.digest.sha512)) throw new StorageError('ERR_EXISTS', `${pkg.name}/${file} already exists`);
          this.#staged.delete(key);
          continue;
        }
      }
      await context.client.query({ name: 'claim-drop', text: 'DELETE FROM tarball_claims WHERE package = $1 AND file = $2', values: [pkg.name, file] });
      context.consumed.push(key);
      context.changed.add(pkg.name);
    }
  }

  async deletePackument(pkg: ParsedName): Promise<boolean> {
    return this.withLock(pkg.name, async () => {
      const context = this.#als.getStore() as TxContext;
      const rows = await this.query('DELETE FROM packuments WHERE name = $1 RETURNING 1', [pkg.name]);
      context.changed.add(pkg.name);
      this.#bump(pkg.name);
      context.afterCommit.push(() => this.#committed(pkg.name, null));
      return rows.length > 0;
    });
  }

  // ---- tarballs -------------------------------------------------------------------------

  createTarball(pkg: ParsedName, fileName: string, options?: TarballWriteOptions): TarballWriter {
    parseTarballName(pkg, fileName);
    this.sweepStaged();
    return new PgTarballWriter(this, pkg, fileName, options);
  }

  /** Called by the writer once the bytes are complete and hashed. */
  stage(pkg: ParsedName, fileName: string, bytes: Buffer, digest: TarballDigest): void {
    this.#staged.set(stageKey(pkg.name, fileName), { bytes, digest, expires: Date.now() + STAGED_TTL_MS });
  }

  private sweepStaged(): void {
    const now = Date.now();
    for (const [key, entry] of this.#staged) if (entry.expires < now) this.#staged.delete(key);
  }

  /** Claims (package, file) for this upload, or ERR_EXISTS when it is published or claimed by another upload. */
  async claim(pkg: ParsedName, fileName: string, digest: TarballDigest): Promise<void> {
    const rows = await this.query(
      `INSERT INTO tarball_claims (package, file, sha512)
       SELECT $1, $2, $3 WHERE NOT EXISTS (SELECT 1 FROM tarballs WHERE package = $1 AND file = $2)
       ON CONFLICT (package, file) DO UPDATE SET sha512 = EXCLUDED.sha512, claimed_at = now()
         WHERE tarball_claims.claimed_at < now() - make_interval(secs => $4)
       RETURNING 1`,
      [pkg.name, fileName, digest.sha512, CLAIM_EXPIRY_S],
      'tarball-claim',
    );
    if (rows.length === 0) {
      // another upload (perhaps on another node) holds or published it: this node's cached
      // revision may predate that commit, and its NOTIFY may not have arrived yet when the
      // client, told 409, reads the package here (read-your-writes across nodes, test 14.3)
      this.forget(pkg.name);
      throw new StorageError('ERR_EXISTS', `${pkg.name}/${fileName} already exists (or is being published right now)`);
    }
    // READ COMMITTED: the INSERT may have waited for a winner's claim row and gone ahead once the
    // winner's COMMIT deleted it, with a snapshot from before that COMMIT. A new statement sees it.
    if (await this.committedTarballExists(pkg, fileName)) {
      await this.query('DELETE FROM tarball_claims WHERE package = $1 AND file = $2 AND sha512 = $3', [pkg.name, fileName, digest.sha512]);
      this.forget(pkg.name);
      throw new StorageError('ERR_EXISTS', `${pkg.name}/${fileName} already exists`);
    }
  }

  async committedTarballExists(pkg: ParsedName, fileName: string): Promise<boolean> {
    return (await this.query('SELECT 1 FROM tarballs WHERE package = $1 AND file = $2', [pkg.name, fileName], 'tarball-exists')).length > 0;
  }

  async readTarball(pkg: ParsedName, fileName: string): Promise<TarballReader | null> {
    parseTarballName(pkg, fileName);
    const rows = await this.query<{ bytes: Buffer }>('SELECT bytes FROM tarballs WHERE package = $1 AND file = $2', [pkg.name, fileName], 'tarball-read');
    const bytes = rows[0]?.bytes;
    return bytes ? { bytes, size: bytes.length } : null;
  }

  async tarballDigest(pkg: ParsedName, fileName: string): Promise<TarballDigest | null> {
    parseTarballName(pkg, fileName);
    const staged = this.#staged.get(stageKey(pkg.name, fileName));
    if (staged) return { ...staged.digest };
    const rows = await this.query<{ size: number; sha512: string; sha1: string }>('SELECT size, sha512, sha1 FROM tarballs WHERE package = $1 AND file = $2', [pkg.name, fileName], 'tarball-digest');
    return rows[0] ? { size: rows[0].size, sha512: rows[0].sha512, sha1: rows[0].sha1 } : null;
  }

  async tarballAgeMs(pkg: ParsedName, fileName: string): Promise<number | null> {
    const staged = this.#staged.get(stageKey(pkg.name, fileName));
    if (staged) return 0;
    const rows = await this.query<{ age: number }>('SELECT (extract(epoch FROM now() - created_at) * 1000)::float8 AS age FROM tarballs WHERE package = $1 AND file = $2', [pkg.name, fileName]);
    return rows[0] ? rows[0].age : null;
  }

  /** A staged (unpublished) upload is dropped first; else the committed row, under the package lock. */
  async deleteTarball(pkg: ParsedName, fileName: string): Promise<boolean> {
    parseTarballName(pkg, fileName);
    if (this.#staged.delete(stageKey(pkg.name, fileName))) {
      // a refused publish: its upload claim goes too, so the version can be published again at once
      await this.query('DELETE FROM tarball_claims WHERE package = $1 AND file = $2', [pkg.name, fileName], 'claim-drop');
      return true;
    }
    return this.withLock(pkg.name, async () => {
      const context = this.#als.getStore() as TxContext;
      const rows = await this.query('DELETE FROM tarballs WHERE package = $1 AND file = $2 RETURNING 1', [pkg.name, fileName]);
      if (rows.length > 0) context.changed.add(pkg.name);
      return rows.length > 0;
    });
  }

  async removePackageContainer(): Promise<void> {
    // rows, not folders: nothing to remove once the packument and tarballs are gone
  }

  async listPackages(): Promise<Array<{ name: string; mtimeMs: number }>> {
    const rows = await this.query<{ name: string; mtime: number }>('SELECT name, (extract(epoch FROM updated_at) * 1000)::float8 AS mtime FROM packuments ORDER BY name', [], 'packument-list');
    return rows.map((row) => ({ name: row.name, mtimeMs: row.mtime }));
  }

  // ---- package list, secret -------------------------------------------------------------

  async readDb(): Promise<StorageDb> {
    const [list, secret] = await Promise.all([
      this.query<{ name: string }>('SELECT name FROM package_list ORDER BY name', [], 'db-list'),
      this.query<{ value: string }>("SELECT value FROM storage_settings WHERE key = 'secret'", [], 'db-secret'),
    ]);
    return { list: list.map((row) => row.name), secret: secret[0]?.value ?? '' };
  }

  updateDb(mutate: (db: StorageDb) => StorageDb): Promise<StorageDb> {
    return this.withLock(DB_LOCK_KEY, async () => {
      const before = await this.readDb();
      const next = mutate({ ...before, list: [...before.list] });
      const added = next.list.filter((name) => !before.list.includes(name));
      const removed = before.list.filter((name) => !next.list.includes(name));
      if (added.length > 0) await this.query('INSERT INTO package_list (name) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING', [added]);
      if (removed.length > 0) await this.query('DELETE FROM package_list WHERE name = ANY($1::text[])', [removed]);
      if (next.secret !== before.secret) {
        await this.query("INSERT INTO storage_settings (key, value) VALUES ('secret', $1) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value", [next.secret]);
      }
      return next;
    });
  }
}
