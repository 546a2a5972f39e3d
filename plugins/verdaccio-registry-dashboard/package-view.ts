/**
 * GET /_dashboard/api/package?name=<name> — one package as the package view shows it (issue 15.7):
 * versions (newest first) with publisher (`_npmUser`), time, integrity, shasum, sizes and
 * deprecation; dist-tags; maintainers; the dependencies of the version shown; the readme rendered
 * safely (readme.ts). Pure: the packument is read through Verdaccio (access rules and filters as
 * for `npm view`, checked by the route), tarball sizes come from the caller.
 */
import { tarballFileOf } from '../registry-core/index';
import type { PackageSourceKind } from './package-sources';
import { renderReadme, type RenderedReadme } from './readme';
import type { Packument } from './verdaccio-adapter';

/** npm's name rule (old packages may have capitals): optional `@scope/`, no leading dot or underscore, ≤ 214 characters. */
const PACKAGE_NAME = /^(?:@[a-z0-9\-*~][a-z0-9\-*._~]*\/)?[a-z0-9\-~][a-z0-9\-._~]*$/i;
export function isPackageName(name: string): boolean {
  return name.length > 0 && name.length <= 214 && PACKAGE_NAME.test(name);
}

/**
 * The stored tarball file of each version: the core's one rule (`tarballFileOf`, the last path
 * segment of `dist.tarball`, as Verdaccio and the storage plugin read it), kept only when it is a
 * plain file name — never a path out of the package folder.
 */
export function storedTarballFiles(packument: Packument): Map<string, string> {
  const files = new Map<string, string>();
  for (const [version, meta] of Object.entries(packument.versions)) {
    const file = tarballFileOf(record(record(meta).dist).tarball);
    if (file !== null && isPlainFileName(file)) files.set(version, file);
  }
  return files;
}

export function isPlainFileName(file: string): boolean {
  return file !== '' && file !== '.' && file !== '..' && file.length <= 255 && !/[/\\\u0000]/.test(file);
}

export interface Person {
  name: string;
  email?: string;
}

export interface VersionView {
  version: string;
  /** ISO time of the publish, null when the packument does not say */
  time: string | null;
  /** `_npmUser.name`: who published it (the storage plugin records the authenticated user) */
  publisher: string | null;
  integrity: string | null;
  shasum: string | null;
  /** bytes of the stored tarball, null when not stored here (or not measurable) */
  tarballBytes: number | null;
  /** `dist.unpackedSize` / `dist.fileCount` as the publisher's npm reported them */
  unpackedSize: number | null;
  fileCount: number | null;
  deprecated?: string;
  /** how many runtime dependencies this version declares */
  dependencyCount: number;
  tags: string[];
}

export interface DependencyView {
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
  peerDependencies: Record<string, string>;
  optionalDependencies: Record<string, string>;
}

export interface PackageView {
  name: string;
  source: PackageSourceKind;
  description: string | null;
  license: string | null;
  homepage: string | null;
  repository: string | null;
  distTags: Record<string, string>;
  /** the version whose dependencies and readme are shown: `latest`, else the newest */
  shown: string | null;
  maintainers: Person[];
  versions: VersionView[];
  dependencies: DependencyView;
  readme: RenderedReadme;
}

function record(value: unknown): Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

function text(value: unknown): string | null {
  return typeof value === 'string' && value !== '' ? value : null;
}

function count(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : null;
}

function stringMap(value: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, entry] of Object.entries(record(value))) if (typeof entry === 'string') out[key] = entry;
  return out;
}

function person(value: unknown): Person | undefined {
  if (typeof value === 'string') {
    // "Name <email> (url)"
    const match = /^\s*([^<(]*?)\s*(?:<([^>]*)>)?\s*(?:\([^)]*\))?\s*$/.exec(value);
    const name = match?.[1] ?? value;
    if (name === '') return undefined;
    return match?.[2] ? { name, email: match[2] } : { name };
  }
  const entry = record(value);
  const name = text(entry.name);
  if (name === null) return undefined;
  const email = text(entry.email);
  return email === null ? { name } : { name, email };
}

function repositoryOf(value: unknown): string | null {
  if (typeof value === 'string') return value;
  return text(record(value).url);
}

function licenseOf(value: unknown): string | null {
  if (typeof value === 'string') return value;
  return text(record(value).type);
}

/**
 * @param tarballBytes stored tarball sizes by version (the route measures them)
 */
export function buildPackageView(packument: Packument, source: PackageSourceKind, tarballBytes: ReadonlyMap<string, number>): PackageView {
  const doc = packument.document;
  const distTags: Record<string, string> = {};
  for (const [tag, version] of Object.entries(packument['dist-tags'])) if (typeof version === 'string') distTags[tag] = version;
  const tagsOf = new Map<string, string[]>();
  for (const [tag, version] of Object.entries(distTags)) tagsOf.set(version, [...(tagsOf.get(version) ?? []), tag]);

  const publishedAt = (version: string): number => Date.parse(packument.time[version] ?? '') || 0;
  const names = Object.keys(packument.versions).sort((a, b) => publishedAt(b) - publishedAt(a) || b.localeCompare(a));
  const versions: VersionView[] = names.map((version) => {
    const meta = record(packument.versions[version]);
    const dist = record(meta.dist);
    const time = publishedAt(version);
    const view: VersionView = {
      version,
      time: time > 0 ? new Date(time).toISOString() : null,
      publisher: person(meta._npmUser)?.name ?? null,
      integrity: text(dist.integrity),
      shasum: text(dist.shasum),
      tarballBytes: tarballBytes.get(version) ?? null,
      unpackedSize: count(dist.unpackedSize),
      fileCount: count(dist.fileCount),
      dependencyCount: Object.keys(record(meta.dependencies)).length,
      tags: tagsOf.get(version) ?? [],
    };
    const deprecated = text(meta.deprecated);
    if (deprecated !== null) view.deprecated = deprecated;
    return view;
  });

  const latest = distTags.latest;
  const shown = latest !== undefined && latest in packument.versions ? latest : (names[0] ?? null);
  const shownMeta = shown === null ? {} : record(packument.versions[shown]);
  const maintainers = (Array.isArray(doc.maintainers) ? doc.maintainers : Array.isArray(shownMeta.maintainers) ? shownMeta.maintainers : [])
    .map(person)
    .filter((entry): entry is Person => entry !== undefined);
  // Verdaccio keeps the readme of the latest publish at the top level; older stores keep it per version
  const readme = text(doc.readme) ?? text(shownMeta.readme) ?? '';
  return {
    name: packument.name,
    source,
    description: text(doc.description) ?? text(shownMeta.description),
    license: licenseOf(shownMeta.license ?? doc.license),
    homepage: text(shownMeta.homepage ?? doc.homepage),
    repository: repositoryOf(shownMeta.repository ?? doc.repository),
    distTags,
    shown,
    maintainers,
    versions,
    dependencies: {
      dependencies: stringMap(shownMeta.dependencies),
      devDependencies: stringMap(shownMeta.devDependencies),
      peerDependencies: stringMap(shownMeta.peerDependencies),
      optionalDependencies: stringMap(shownMeta.optionalDependencies),
    },
    readme: renderReadme(readme),
  };
}
