/**
 * The package list of the dashboard: every locally published package the caller may read,
 * straight from Verdaccio's storage (so filter plugins and `packages:` access rules apply
 * exactly as for `npm view`), reduced to the core's PackageSummary shape.
 */
import type { IndexRecord, PackageSummary } from '../registry-core/index';
import { indexSources, withSources, type ListedPackage } from './package-sources';
import type { AccessChecker, PackageSource, Packument, VerdaccioRemoteUser } from './verdaccio-adapter';

/** Versions in publish order (oldest first); the packument's `time` has one entry per version. */
export function summarizePackument(packument: Packument): PackageSummary {
  const versions = Object.keys(packument.versions);
  const published = (version: string): number => Date.parse(packument.time[version] ?? '') || 0;
  versions.sort((a, b) => published(a) - published(b) || a.localeCompare(b));
  const times = versions.map(published).filter((time) => time > 0);
  const modified = Date.parse(packument.time.modified ?? '') || 0;
  const last = Math.max(modified, ...times, 0);
  const distTags: Record<string, string> = {};
  for (const [tag, version] of Object.entries(packument['dist-tags'])) {
    if (typeof version === 'string') distTags[tag] = version;
  }
  return { name: packument.name, versions, distTags, time: last > 0 ? new Date(last).toISOString() : '' };
}

export function matchesFilter(name: string, filter: string | undefined): boolean {
  return !filter || name.toLowerCase().includes(filter.toLowerCase());
}

/**
 * Local packages from Verdaccio's storage, plus the cached ones the index knows (each marked with
 * its `source`, see package-sources.ts). `records` reads the index; access rules apply to both.
 */
export async function listPackages(
  source: PackageSource,
  access: AccessChecker,
  user: VerdaccioRemoteUser,
  filter: string | undefined,
  records: () => readonly IndexRecord[],
): Promise<ListedPackage[]> {
  const names = (await source.listNames()).filter((name) => matchesFilter(name, filter));
  const results = await Promise.all(
    names.map(async (name) => {
      if (!(await access.canAccess(name, user))) return undefined;
      const packument = await source.readPackage(name);
      return packument ? summarizePackument(packument) : undefined;
    }),
  );
  const sources = indexSources(records());
  const candidates = [...sources.cached.keys()].filter((name) => matchesFilter(name, filter) && !names.includes(name));
  const readable = new Set<string>();
  await Promise.all(candidates.map(async (name) => (await access.canAccess(name, user)) && readable.add(name)));
  return withSources(
    results.filter((item): item is PackageSummary => item !== undefined),
    sources,
    readable,
  );
}
