/** Folds the index records into the package list the dashboard and the `packages` command show. */
import type { IndexRecord } from './index-record';

export interface PackageSummary {
  name: string;
  /** in publish order */
  versions: string[];
  distTags: Record<string, string>;
  /** ISO time of the last change */
  time: string;
}

/** What the index says about one package: versions, dist-tags and deprecations (version → message). */
export interface IndexedPackage {
  /** in publish order */
  versions: string[];
  distTags: Record<string, string>;
  deprecated: Record<string, string>;
  /** ms since epoch of the last change */
  time: number;
}

/** Replays the records in order (the one fold both the summary and start-up reconciliation use). */
export function foldIndex(records: IndexRecord[]): Map<string, IndexedPackage> {
  const packages = new Map<string, IndexedPackage>();
  const get = (name: string): IndexedPackage => {
    let entry = packages.get(name);
    if (!entry) packages.set(name, (entry = { versions: [], distTags: {}, deprecated: {}, time: 0 }));
    return entry;
  };
  for (const record of records) {
    if (record.kind === 'self-reference') continue; // bookkeeping of self-publish, not a package change
    if (record.kind === 'cache') continue; // a version cached from the upstream is not a local package (docs/upstream.md)
    if (record.kind === 'unpublish-package') {
      packages.delete(record.name);
      continue;
    }
    const entry = get(record.name);
    entry.time = Math.max(entry.time, record.time);
    switch (record.kind) {
      case 'publish':
        if (!entry.versions.includes(record.version)) entry.versions.push(record.version);
        break;
      case 'unpublish':
        entry.versions = entry.versions.filter((v) => v !== record.version);
        delete entry.deprecated[record.version];
        for (const [tag, version] of Object.entries(entry.distTags)) if (version === record.version) delete entry.distTags[tag];
        break;
      case 'dist-tag':
        entry.distTags[record.detail] = record.version;
        break;
      case 'dist-tag-rm':
        delete entry.distTags[record.detail];
        break;
      case 'deprecate':
        // an empty message is an undeprecation
        if (record.detail === '') delete entry.deprecated[record.version];
        else entry.deprecated[record.version] = record.detail;
        break;
    }
  }
  return packages;
}

export function summarizeIndex(records: IndexRecord[]): PackageSummary[] {
  return [...foldIndex(records).entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, entry]) => ({ name, versions: entry.versions, distTags: entry.distTags, time: new Date(entry.time).toISOString() }));
}
