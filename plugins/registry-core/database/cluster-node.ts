/**
 * One registry node in a cluster (docs/cluster.md): started once per process by whichever of our
 * plugins loads first when the PostgreSQL backend is chosen. It keeps what each node holds locally
 * in step with every other node:
 *
 * - the 13 config bytes: `registry_config` is the record, each node's `registry.lockb` header its
 *   mirror. A change of the local file (the dashboard API, the WebSocket, the config CLI on this
 *   node's file — anything ConfigFile's watcher sees) is written to the table with a new revision
 *   and NOTIFYed; a NOTIFY with a newer revision is written into the local file, whose watchers
 *   then tell this node's WebSocket clients. Revisions order concurrent changes: every node ends
 *   with the last one committed. While the database is away local changes are kept and pushed
 *   when it is back; on every (re)connection the row is re-read (a NOTIFY missed is not lost).
 * - events (login, logout, token, owner, upstream, cache): NOTIFYed and re-emitted on the other
 *   nodes' buses with `origin: 'remote'` (package events come from the shared index instead, and
 *   config events from each node's own watcher).
 * - the audit trail: every event this node records also goes to `registry_audit`.
 * - package changes: the storage backend's bus (package-changes.ts) — committed changes are
 *   NOTIFYed, other nodes' are delivered; the transport is attached only while LISTEN is live.
 */
import { ConfigFile, type ConfigSnapshot } from '../config-file';
import { auditEntryOf } from '../audit-log';
import { registryEvents, type RegistryEvent } from '../events';
import { CONFIG_START, HEADER_SIZE, MAGIC, decodeHeader } from '../layout';
import { clusterLink, type ClusterLink } from './cluster';
import { packageChanges } from './package-changes';
import { resolve } from 'node:path';

/** events other nodes hear over NOTIFY (package events travel in the shared index, config in the file) */
export const FORWARDED_EVENT_KINDS: ReadonlySet<RegistryEvent['kind']> = new Set(['login', 'logout', 'token', 'owner', 'upstream', 'cache']);

export interface ClusterNode {
  link: ClusterLink;
  lockbPath: string;
  /** the config revision this node's file holds */
  configRevision(): bigint;
  stop(): void;
}

const NODES = Symbol.for('mycompany.registry.cluster-nodes');

function hexOf(snapshot: ConfigSnapshot): string {
  return Buffer.from(snapshot.bytes).toString('hex');
}

/** The 13 bytes as a validated header's fields (throws on anything a node must not adopt). */
function fieldsOfHex(hex: string): ReturnType<typeof decodeHeader> {
  const bytes = Buffer.from(hex, 'hex');
  if (bytes.length !== HEADER_SIZE - CONFIG_START) throw new Error(`config row holds ${bytes.length} bytes, expected ${HEADER_SIZE - CONFIG_START}`);
  const header = new Uint8Array(HEADER_SIZE);
  header.set(MAGIC, 0);
  header.set(bytes, CONFIG_START);
  return decodeHeader(header);
}

export function startClusterNode(url: string, lockbPath: string, report: (message: string) => void): ClusterNode {
  const holder = globalThis as unknown as Record<symbol, Map<string, ClusterNode> | undefined>;
  const table = (holder[NODES] ??= new Map());
  const key = `${url}\u0000${resolve(lockbPath)}`;
  const existing = table.get(key);
  if (existing) return existing;

  const link = clusterLink(url, report);
  const database = link.database;
  const config = ConfigFile.open(lockbPath);
  const events = registryEvents(lockbPath);
  /** the bytes the table held at `revision`, as far as this node knows */
  let sharedHex = '';
  let revision = -1n;
  /** a local change not yet in the table (the database was away) */
  let pendingLocal = false;
  let chain: Promise<unknown> = Promise.resolve();
  const serial = (work: () => Promise<void>): void => {
    chain = chain.then(work, work).catch((error: unknown) => report(`cluster config: ${(error as Error).message}`));
  };

  const adoptRow = async (hex: string, rowRevision: bigint): Promise<void> => {
    if (rowRevision <= revision) return;
    revision = rowRevision;
    sharedHex = hex;
    if (hexOf(config.getConfig()) === hex) return;
    const fields = fieldsOfHex(hex);
    await config.update(() => fields);
  };

  const pushLocal = async (): Promise<void> => {
    const hex = hexOf(config.getConfig());
    if (hex === sharedHex) {
      pendingLocal = false;
      return;
    }
    try {
      const rows = await database.query<{ revision: string }>(
        "UPDATE registry_config SET bytes = decode($1, 'hex'), revision = revision + 1, updated_at = now() WHERE id = 1 RETURNING revision::text AS revision",
        [hex],
        'registry-config-update',
      );
      pendingLocal = false;
      sharedHex = hex;
      revision = BigInt(rows[0].revision);
      await link.publish('registry_config', { hex, revision: rows[0].revision }).catch(() => undefined);
    } catch (error) {
      pendingLocal = true;
      throw error;
    }
  };

  const pullRow = async (): Promise<void> => {
    const hex = hexOf(config.getConfig());
    // the first node offers its bytes; every later one adopts the cluster's
    await database.query("INSERT INTO registry_config (id, bytes, revision) VALUES (1, decode($1, 'hex'), 1) ON CONFLICT DO NOTHING", [hex]);
    const rows = await database.query<{ hex: string; revision: string }>("SELECT encode(bytes, 'hex') AS hex, revision::text AS revision FROM registry_config WHERE id = 1");
    await adoptRow(rows[0].hex, BigInt(rows[0].revision));
  };

  const stopWatch = config.watchConfig((next) => {
    if (hexOf(next) === sharedHex) return;
    serial(pushLocal);
  });
  const stopConfigNotify = link.on('registry_config', (payload) => {
    if (typeof payload.hex !== 'string' || typeof payload.revision !== 'string') {
      serial(pullRow);
      return;
    }
    const hex = payload.hex;
    const rowRevision = BigInt(payload.revision);
    serial(() => adoptRow(hex, rowRevision));
  });
  const stopConnect = link.onConnect(() => serial(pendingLocal ? pushLocal : pullRow));

  const stopEventsOut = events.on((event) => {
    if (event.origin === 'remote') return;
    database
      .query('INSERT INTO registry_audit (node, line) VALUES ($1, $2)', [link.node, JSON.stringify(auditEntryOf(event))], 'registry-audit-insert')
      .catch((error: unknown) => report(`cluster audit: could not record a ${event.kind} event: ${(error as Error).message}`));
    if (FORWARDED_EVENT_KINDS.has(event.kind)) void link.publish('registry_events', { event }).catch(() => undefined);
  });
  const stopEventsIn = link.on('registry_events', (payload) => {
    const event = payload.event as RegistryEvent | undefined;
    if (!event || typeof event !== 'object' || typeof event.kind !== 'string' || !FORWARDED_EVENT_KINDS.has(event.kind)) return;
    events.emit({ ...event, origin: 'remote' });
  });

  // package changes (storage backend, docs/database.md "Package changes"): committed here → NOTIFY;
  // another node's → delivered; after a (re)connection anything may have changed ('*')
  const changes = packageChanges(lockbPath);
  let detach: (() => void) | null = null;
  const stopCommitted = changes.onCommitted((change) => {
    void link.publish('registry_packages', { change }).catch((error: unknown) => report(`cluster: could not announce a change of ${change.name}: ${(error as Error).message}`));
  });
  const stopPackages = link.on('registry_packages', (payload) => {
    const change = payload.change as { name?: unknown; revision?: unknown; indexId?: unknown } | undefined;
    if (payload.truncated === true || !change || typeof change.name !== 'string') {
      changes.deliver({ name: '*', revision: null, indexId: null });
      return;
    }
    changes.deliver({
      name: change.name,
      revision: typeof change.revision === 'string' ? change.revision : null,
      indexId: typeof change.indexId === 'string' ? change.indexId : null,
    });
  });
  const stopPackagesConnect = link.onConnect(() => {
    detach ??= changes.attachTransport();
    changes.deliver({ name: '*', revision: null, indexId: null });
  });
  const stopLost = link.onLost(() => {
    detach?.();
    detach = null;
  });

  link.start();
  const node: ClusterNode = {
    link,
    lockbPath,
    configRevision: () => revision,
    stop() {
      stopWatch();
      stopConfigNotify();
      stopConnect();
      stopEventsOut();
      stopEventsIn();
      stopCommitted();
      stopPackages();
      stopPackagesConnect();
      stopLost();
      detach?.();
      config.close();
      table.delete(key);
    },
  };
  table.set(key, node);
  return node;
}
