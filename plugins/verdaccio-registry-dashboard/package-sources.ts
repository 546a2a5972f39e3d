/**
 * Local or cached: which packages of the list were published here and which are copies of the
 * upstream's (docs/offline-and-warm.md). Derived from the registry.lockb index alone: a name with
 * any `publish` record still standing is `local`; a name whose versions come only from `cache`
 * records (written by the storage plugin's upstream cache, one per cached version) is `cached`.
 * Pure: records in, answer out.
 */
import { foldIndex, type IndexRecord, type IndexRecordKind, type PackageSummary } from '../registry-core/index';

export type PackageSourceKind = 'local' | 'cached';

/** One row of GET /_dashboard/api/packages: the core summary plus where it came from. */
export interface ListedPackage extends PackageSummary {
  source: PackageSourceKind;
}

/** The record kind of a cached upstream version (docs/upstream.md). */
export const CACHE_RECORD_KIND = 'cache' satisfies IndexRecordKind;

export interface IndexSources {
  /** names with a standing local publish */
  local: Set<string>;
  /** names known only from cache records, with their cached versions (in cache order) and last change */
  cached: Map<string, { versions: string[]; time: number }>;
}

export function indexSources(records: readonly IndexRecord[]): IndexSources {
  // The core's fold gives the local picture (publish/unpublish/dist-tag…); cache records are
  // replayed here (a local publish always wins over a cached copy of the same name).
  const local = new Set<string>();
  for (const [name, entry] of foldIndex(records.filter((r) => r.kind !== CACHE_RECORD_KIND))) {
    if (entry.versions.length > 0) local.add(name);
  }
  const cached = new Map<string, { versions: string[]; time: number }>();
  for (const record of records) {
    if (record.kind === 'unpublish-package') cached.delete(record.name);
    if (record.kind !== CACHE_RECORD_KIND || local.has(record.name)) continue;
    let entry = cached.get(record.name);
    if (!entry) cached.set(record.name, (entry = { versions: [], time: 0 }));
    if (!entry.versions.includes(record.version)) entry.versions.push(record.version);
    entry.time = Math.max(entry.time, record.time);
  }
  return { local, cached };
}

/** Marks each locally listed package and adds the cached-only ones in `readable`, sorted by name. */
export function withSources(listed: readonly PackageSummary[], sources: IndexSources, readable: ReadonlySet<string>): ListedPackage[] {
  const out: ListedPackage[] = listed.map((p) => ({ ...p, source: sources.cached.has(p.name) && !sources.local.has(p.name) ? 'cached' : 'local' }));
  const shown = new Set(listed.map((p) => p.name));
  for (const [name, entry] of sources.cached) {
    if (shown.has(name) || !readable.has(name)) continue;
    out.push({ name, versions: entry.versions, distTags: {}, time: new Date(entry.time).toISOString(), source: 'cached' });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}
