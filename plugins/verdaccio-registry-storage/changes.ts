/**
 * What a manifest update changed, as registry.lockb index records. Pure: the adapter takes a
 * snapshot before Verdaccio's update handler runs, diffs it with the result, and appends the
 * records under the package lock once the new manifest is durable.
 */
import type { IndexRecord } from '../registry-core/index';
import { sha512HexOf } from './integrity';
import type { Manifest } from './store';

export interface ManifestSnapshot {
  /** `integrity` is the raw dist.integrity: its sha512 is only decoded for a removed version (an unpublish record), not for every version of every snapshot. */
  versions: Map<string, { deprecated: string; integrity: unknown }>;
  distTags: Record<string, string>;
}

export interface ManifestChanges {
  added: string[];
  removed: Array<{ version: string; sha512: string }>;
  deprecations: Array<{ version: string; message: string }>;
  tagsSet: Array<{ tag: string; version: string }>;
  tagsRemoved: Array<{ tag: string; version: string }>;
}

function stringOrEmpty(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

function distTagsOf(manifest: Manifest | null): Record<string, string> {
  const distTags: Record<string, string> = {};
  if (manifest) {
    for (const [tag, version] of Object.entries(manifest['dist-tags'] ?? {})) {
      if (typeof version === 'string') distTags[tag] = version;
    }
  }
  return distTags;
}

export function snapshotOf(manifest: Manifest | null): ManifestSnapshot {
  const versions = new Map<string, { deprecated: string; integrity: unknown }>();
  if (manifest) {
    for (const [version, meta] of Object.entries(manifest.versions ?? {})) {
      versions.set(version, { deprecated: stringOrEmpty(meta?.deprecated), integrity: meta?.dist?.integrity });
    }
  }
  return { versions, distTags: distTagsOf(manifest) };
}

/** `snapshot` with the dist-tags of `manifest`: for a change known to touch no version's snapshot fields. */
export function withDistTagsOf(snapshot: ManifestSnapshot, manifest: Manifest): ManifestSnapshot {
  return { versions: snapshot.versions, distTags: distTagsOf(manifest) };
}

export function diffSnapshots(before: ManifestSnapshot, after: ManifestSnapshot): ManifestChanges {
  const changes: ManifestChanges = { added: [], removed: [], deprecations: [], tagsSet: [], tagsRemoved: [] };
  for (const [version, meta] of after.versions) {
    const previous = before.versions.get(version);
    if (!previous) {
      changes.added.push(version);
      if (meta.deprecated !== '') changes.deprecations.push({ version, message: meta.deprecated });
    } else if (previous.deprecated !== meta.deprecated) {
      changes.deprecations.push({ version, message: meta.deprecated });
    }
  }
  for (const [version, meta] of before.versions) {
    if (!after.versions.has(version)) changes.removed.push({ version, sha512: typeof meta.integrity === 'string' ? sha512HexOf({ integrity: meta.integrity }) : '' });
  }
  for (const [tag, version] of Object.entries(after.distTags)) {
    if (before.distTags[tag] !== version) changes.tagsSet.push({ tag, version });
  }
  for (const [tag, version] of Object.entries(before.distTags)) {
    if (!(tag in after.distTags)) changes.tagsRemoved.push({ tag, version });
  }
  return changes;
}

export function isEmpty(changes: ManifestChanges): boolean {
  return (
    changes.added.length + changes.removed.length + changes.deprecations.length + changes.tagsSet.length + changes.tagsRemoved.length === 0
  );
}

/**
 * Records in a stable order: publishes first (so a reader replaying the index knows a version
 * before a tag points at it), then deprecations, tag changes, and unpublishes last.
 */
export function recordsFor(name: string, changes: ManifestChanges, published: Map<string, string>, time: number): IndexRecord[] {
  const records: IndexRecord[] = [];
  for (const version of changes.added) {
    records.push({ kind: 'publish', name, version, sha512: published.get(version) ?? '', time, detail: '' });
  }
  for (const { version, message } of changes.deprecations) {
    records.push({ kind: 'deprecate', name, version, sha512: '', time, detail: message });
  }
  for (const { tag, version } of changes.tagsSet) {
    records.push({ kind: 'dist-tag', name, version, sha512: '', time, detail: tag });
  }
  for (const { tag, version } of changes.tagsRemoved) {
    records.push({ kind: 'dist-tag-rm', name, version, sha512: '', time, detail: tag });
  }
  for (const { version, sha512 } of changes.removed) {
    records.push({ kind: 'unpublish', name, version, sha512, time, detail: '' });
  }
  return records;
}
