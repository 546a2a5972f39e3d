/**
 * Index records go to registry.lockb (core `PackageIndex`: one O_APPEND write per record, so
 * appends from several processes never interleave) and, as events, to the process-local bus the
 * dashboard listens on.
 */
import { PackageIndex, registryEvents, type IndexRecord, type RegistryEvent } from '../registry-core/index';
import type { IndexSink } from './package-service';

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

export class LockbIndexSink implements IndexSink {
  readonly lockbPath: string;
  readonly index: PackageIndex;
  private readonly events: ReturnType<typeof registryEvents>;

  constructor(lockbPath: string) {
    this.lockbPath = lockbPath;
    this.index = PackageIndex.open(lockbPath);
    this.events = registryEvents(lockbPath);
  }

  append(records: IndexRecord[], context: { user?: string }): void {
    for (const record of records) this.index.append(record);
    for (const record of records) {
      try {
        this.events.emit(eventOf(record, context.user));
      } catch {
        // a failing listener must not fail the write that already happened
      }
    }
  }

  close(): void {
    this.index.close();
  }
}
