/**
 * The node's link to the other nodes (docs/cluster.md "Notifications"): one LISTEN connection per
 * database URL per process, re-established after PostgreSQL restarts or the connection drops
 * (bounded back-off, forever: a node comes back when its database does), and `publish` =
 * `pg_notify` on the shared pool. Every payload carries the sending node's id; a node ignores its
 * own. After every (re)connection the `onConnect` handlers run: whatever was missed while not
 * listening is re-read from the tables (NOTIFY is only a wake-up call, never the record).
 */
import { randomBytes } from 'node:crypto';
import type { Client } from 'pg';
import { sharedDatabase, type Database } from './database';

export const CLUSTER_CHANNELS = ['registry_config', 'registry_events', 'registry_tokens', 'registry_users', 'registry_packages'] as const;
export type ClusterChannel = (typeof CLUSTER_CHANNELS)[number];

/** pg_notify payloads must stay under 8000 bytes */
export const MAX_PAYLOAD_BYTES = 7900;
const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 2000;

export type ClusterHandler = (payload: Record<string, unknown>) => void;

export interface ClusterStatus {
  listening: boolean;
  /** the last connection error, while not listening */
  error: string | null;
  reconnects: number;
}

export class ClusterLink {
  readonly node = randomBytes(8).toString('hex');
  readonly database: Database;
  readonly #handlers = new Map<ClusterChannel, Set<ClusterHandler>>();
  readonly #onConnect = new Set<() => void>();
  readonly #onLost = new Set<() => void>();
  #client: Client | null = null;
  #listening = false;
  #error: string | null = 'not connected yet';
  #reconnects = 0;
  #started = false;
  #closed = false;
  #retryMs = RETRY_MIN_MS;
  #timer: NodeJS.Timeout | null = null;
  readonly #report: (message: string) => void;

  constructor(database: Database, report: (message: string) => void) {
    this.database = database;
    this.#report = report;
  }

  status(): ClusterStatus {
    return { listening: this.#listening, error: this.#listening ? null : this.#error, reconnects: this.#reconnects };
  }

  get listening(): boolean {
    return this.#listening;
  }

  on(channel: ClusterChannel, handler: ClusterHandler): () => void {
    let set = this.#handlers.get(channel);
    if (!set) this.#handlers.set(channel, (set = new Set()));
    set.add(handler);
    this.start();
    return () => set.delete(handler);
  }

  /** Runs now when listening, and after every later (re)connection. */
  onConnect(handler: () => void): () => void {
    this.#onConnect.add(handler);
    if (this.#listening) queueMicrotask(() => this.#run(handler));
    this.start();
    return () => this.#onConnect.delete(handler);
  }

  /** Runs whenever the LISTEN connection is lost (notifications may be missed until the next onConnect). */
  onLost(handler: () => void): () => void {
    this.#onLost.add(handler);
    return () => this.#onLost.delete(handler);
  }

  /** Tells every other node (after the caller's COMMIT). Payload is JSON; too large a payload is cut to {truncated: true}. */
  async publish(channel: ClusterChannel, payload: Record<string, unknown>): Promise<void> {
    let text = JSON.stringify({ ...payload, node: this.node });
    if (Buffer.byteLength(text) > MAX_PAYLOAD_BYTES) text = JSON.stringify({ node: this.node, truncated: true });
    await this.database.query('SELECT pg_notify($1, $2)', [channel, text], 'registry-cluster-notify');
  }

  start(): void {
    if (this.#started || this.#closed) return;
    this.#started = true;
    void this.#connect();
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    const client = this.#client;
    this.#client = null;
    this.#listening = false;
    await client?.end().catch(() => undefined);
  }

  #run(handler: () => void): void {
    try {
      handler();
    } catch (error) {
      this.#report(`cluster: a reconnect handler threw: ${(error as Error).message}`);
    }
  }

  #dispatch(channel: string, text: string | undefined): void {
    let payload: Record<string, unknown>;
    try {
      payload = JSON.parse(text ?? '{}') as Record<string, unknown>;
    } catch {
      return;
    }
    if (payload.node === this.node) return;
    for (const handler of this.#handlers.get(channel as ClusterChannel) ?? []) {
      try {
        handler(payload);
      } catch (error) {
        this.#report(`cluster: a ${channel} handler threw: ${(error as Error).message}`);
      }
    }
  }

  async #connect(): Promise<void> {
    if (this.#closed) return;
    // `pg` loaded here, not at import: a registry on files never opens this link (database.ts)
    const { Client: PgClient } = require('pg') as typeof import('pg');
    const client = new PgClient({ connectionString: this.database.url, application_name: 'mycompany-registry listen', connectionTimeoutMillis: 5000 });
    const lost = (reason: string): void => {
      if (this.#client !== client) return;
      this.#client = null;
      const was = this.#listening;
      this.#listening = false;
      this.#error = reason;
      if (was) {
        this.#report(`cluster: LISTEN connection lost (${reason}); reconnecting`);
        for (const handler of [...this.#onLost]) this.#run(handler);
      }
      client.end().catch(() => undefined);
      this.#schedule();
    };
    client.on('error', (error) => lost(error.message));
    client.on('end', () => lost('connection ended'));
    client.on('notification', (message) => this.#dispatch(message.channel, message.payload));
    this.#client = client;
    try {
      await client.connect();
      await this.database.ready();
      for (const channel of CLUSTER_CHANNELS) await client.query(`LISTEN ${channel}`);
    } catch (error) {
      lost((error as Error).message);
      return;
    }
    if (this.#client !== client) return;
    this.#listening = true;
    this.#error = null;
    this.#retryMs = RETRY_MIN_MS;
    this.#reconnects++;
    for (const handler of [...this.#onConnect]) this.#run(handler);
  }

  #schedule(): void {
    if (this.#closed || this.#timer) return;
    const wait = this.#retryMs;
    this.#retryMs = Math.min(RETRY_MAX_MS, this.#retryMs * 2);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.#connect();
    }, wait);
    this.#timer.unref();
  }
}

const LINKS = Symbol.for('mycompany.registry.cluster-links');

/** The process's link for url (created, not yet connected, on first use). */
export function clusterLink(url: string, report: (message: string) => void = (message) => process.emitWarning(message)): ClusterLink {
  const holder = globalThis as unknown as Record<symbol, Map<string, ClusterLink> | undefined>;
  const table = (holder[LINKS] ??= new Map());
  let link = table.get(url);
  if (!link) {
    link = new ClusterLink(sharedDatabase(url, { onError: report }), report);
    table.set(url, link);
  }
  return link;
}
