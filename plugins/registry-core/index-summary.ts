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

interface Building {
  versions: string[];
  distTags: Record<string, string>;
  time: number;
}

export function summarizeIndex(records: IndexRecord[]): PackageSummary[] {
  const packages = new Map<string, Building>();
  const get = (name: string): Building => {
    let entry = packages.get(name);
    if (!entry) packages.set(name, (entry = { versions: [], distTags: {}, time: 0 }));
    return entry;
  };
  for (const record of records) {
    if (record.kind === 'self-reference') continue; // bookkeeping of self-publish, not a package change
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
        for (const [tag, version] of Object.entries(entry.distTags)) if (version === record.version) delete entry.distTags[tag];
        break;
      case 'dist-tag':
        entry.distTags[record.detail] = record.version;
        break;
      case 'dist-tag-rm':
        delete entry.distTags[record.detail];
        break;
      case 'deprecate':
        break;
    }
  }
  return [...packages.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, entry]) => ({ name, versions: entry.versions, distTags: entry.distTags, time: new Date(entry.time).toISOString() }));
}
