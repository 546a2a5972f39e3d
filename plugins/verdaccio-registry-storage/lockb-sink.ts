/**
 * Index records go to registry.lockb (core `PackageIndex.appendLocked`: one O_APPEND write per
 * record, so appends from several processes never interleave, under the registry.lockb lock, so a
 * rebuild-index in another process never truncates one away) and, as events, to the process-local bus the
 * dashboard listens on.
 */
import { PackageIndex, registryEvents, type IndexRecord, type RegistryEvent } from '../registry-core/index';
import type { IndexSink, IndexSinkSlot } from './package-service';

/** The dashboard/audit event of one index record (also the PostgreSQL backend's, pg-index.ts). */
export function eventOf(record: IndexRecord, user: string | undefined): RegistryEvent {
  const base = { time: record.time, name: record.name };
  switch (record.kind) {
    case 'publish':
      return { ...base, kind: 'publish', version: record.version, ...(user ? { user } : {}) };
    case 'unpublish':
      return { ...base, kind: 'unpublish', version: record.version };
    case 'unpublish-package':
      return { ...base, kind: 'unpublish' };
    case 'dist-tag':
      return { ...base, kind: 'dist-tag', version: record.version, detail: record.detail };
    case 'dist-tag-rm':
      return { ...base, kind: 'dist-tag', version: record.version, detail: `-${record.detail}` };
    case 'deprecate':
      return { ...base, kind: 'deprecate', version: record.version, detail: record.detail };
    case 'cache':
      // a version cached from the upstream (docs/upstream.md): detail = the upstream URL
      return { ...base, kind: 'cache', version: record.version, detail: record.detail };
    default:
      return { ...base, kind: 'publish', detail: record.kind };
  }
}

/**
 * The events of one write's records. A publish is one event: the dist-tags the same write points
 * at a version it adds (`latest` on every npm publish) ride on that publish event as `tags`
 * instead of becoming dist-tag events of their own. A tag moved to a version that already existed
 * is still its own `dist-tag` event. The index keeps every record (its fold needs the tags).
 */
export function eventsOf(records: readonly IndexRecord[], user: string | undefined): RegistryEvent[] {
  const published = new Map<string, RegistryEvent>();
  const events: RegistryEvent[] = [];
  for (const record of records) {
    if (record.kind === 'dist-tag') {
      const publish = published.get(`${record.name}\u0000${record.version}`);
      if (publish) {
        publish.tags = [...(publish.tags ?? []), record.detail];
        continue;
      }
    }
    const event = eventOf(record, user);
    if (record.kind === 'publish') published.set(`${record.name}\u0000${record.version}`, event);
    events.push(event);
  }
  return events;
}

export class LockbIndexSink implements IndexSink {
  readonly lockbPath: string;
  readonly index: PackageIndex;
  private readonly events: ReturnType<typeof registryEvents>;

  /** `index`: one already opened on lockbPath (start-up reconciliation's, so its records are not verified twice) */
  constructor(lockbPath: string, index?: PackageIndex) {
    this.lockbPath = lockbPath;
    this.index = index ?? PackageIndex.open(lockbPath);
    this.events = registryEvents(lockbPath);
  }

  async append(records: IndexRecord[], context: { user?: string }): Promise<void> {
    // under the registry.lockb lock: a concurrent `registry rebuild-index` cannot truncate it away
    await this.index.appendLocked(records);
    this.emit(records, context);
  }

  /** The registry.lockb lock taken ahead of a write's records (PackageService starts it before the packument write). */
  async reserve(): Promise<IndexSinkSlot> {
    const slot = await this.index.reserveAppend();
    return {
      append: (records, context) => {
        slot.append(records);
        this.emit(records, context);
      },
      release: () => slot.release(),
    };
  }

  private emit(records: IndexRecord[], context: { user?: string }): void {
    for (const event of eventsOf(records, context.user)) {
      try {
        this.events.emit(event);
      } catch {
        // a failing listener must not fail the write that already happened
      }
    }
  }

  close(): void {
    this.index.close();
  }
}
