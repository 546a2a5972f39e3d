/**
 * The storage rules, Verdaccio-free and promise-based, on top of any `PackageStore`:
 * - tarball first, then metadata: a new package gets no package.json before its first version
 *   (createPackage's template is held in memory until then);
 * - every manifest read-modify-write runs under the package lock;
 * - a version is only added when its stored tarball matches dist.integrity / dist.shasum;
 *   otherwise the orphan tarball is deleted and nothing remains, not even an index record;
 * - every publish / unpublish / dist-tag change / deprecation becomes an index record,
 *   appended under the same lock once the manifest is durable.
 */
import { type ManifestSnapshot, diffSnapshots, isEmpty, recordsFor, snapshotOf, withDistTagsOf } from './changes';
import { StorageError } from './errors';
import { verifyDist } from './integrity';
import { type ParsedName, isValidVersion, parsePackageName, parseReadName, parseTarballName, tarballFileOf, tarballNameFor } from './names';
import { type Actor, type Maintainer, maintainersOf, ownershipProblem } from './owners';
import { endUpload, forgetUpload, isAnnouncedUpload, noteCommittedUpload, takeIntent, uploadsInFlight } from './publish-intent';
import type { VersionSigner } from './signatures';
import type { Manifest, PackageStore, ReadOptions, TarballReader, TarballWriter } from './store';
import type { IndexRecord } from '../registry-core/index';
import { LRUCache } from 'lru-cache';

export const PACKUMENT_FILE = 'package.json';
const PENDING_TTL_MS = 10 * 60_000;
/** No publish takes this long between writing its tarball and adding its version. */
const ABANDONED_TARBALL_MS = 120_000;

/**
 * Where index records go (registry.lockb + the dashboard event bus on files; the shared
 * package_index table, in the publish's own transaction, on PostgreSQL — docs/database.md).
 */
export interface IndexSink {
  append(records: IndexRecord[], context: { user?: string }): void | Promise<void>;
  /**
   * The sink's lock taken ahead of a write's records (registry.lockb: the lock rebuild-index
   * takes), started before the packument write so its acquisition overlaps that write; absent:
   * append() is called after the write.
   */
  reserve?(): Promise<IndexSinkSlot>;
  /**
   * true: the records are part of the write's transaction, so a failure fails the write (the
   * PostgreSQL sink). false/absent: the manifest is durable already and the index can be
   * rebuilt from it, so a failure is logged (registry.lockb).
   */
  readonly atomic?: boolean;
}

/** A sink's lock held for one write's records (IndexSink.reserve). */
export interface IndexSinkSlot {
  append(records: IndexRecord[], context: { user?: string }): void;
  release(): Promise<void>;
}

export interface ServiceLog {
  warn(message: string): void;
  error(message: string): void;
}

function notFound(what: string): StorageError {
  return new StorageError('ERR_NOT_FOUND', `${what} not found`);
}

function isReferenced(manifest: Manifest, fileName: string): boolean {
  if (manifest._attachments?.[fileName]?.version) return true;
  return listedVersionOf(manifest, fileName) !== null;
}

/**
 * A dist-tag must name a version of the document: a `/-rev/` change may carry a tag for a
 * version the store does not have (Verdaccio replaces dist-tags with the body's), and a tag
 * pointing nowhere then made the guard refuse the owner's own later changes.
 */
function refuseDanglingTags(name: string, manifest: Manifest): void {
  const tags = manifest['dist-tags'];
  if (tags === null || typeof tags !== 'object') return;
  for (const [tag, version] of Object.entries(tags)) {
    if (typeof version !== 'string' || !Object.prototype.hasOwnProperty.call(manifest.versions ?? {}, version)) {
      throw new StorageError('ERR_BAD_MANIFEST', `dist-tag ${JSON.stringify(tag)} of ${name} would point at ${JSON.stringify(version)}, which is not a version of the package`);
    }
  }
}

/**
 * Verdaccio's removeTarball (`DELETE /:package/-/:file/-rev/:rev`) drops the attachment and then
 * deletes the file, whether or not a version still names it: a raw DELETE would leave a listed
 * version without its tarball. npm unpublishes the version first (a `/-rev/` document), then
 * deletes the tarball; the other order is refused.
 */
function refuseDroppingListedTarballs(name: string, attachmentsBefore: readonly string[], next: Manifest): void {
  const kept = next._attachments ?? {};
  for (const file of attachmentsBefore) {
    if (Object.prototype.hasOwnProperty.call(kept, file)) continue;
    const version = listedVersionOf(next, file);
    if (version !== null) throw new StorageError('ERR_EXISTS', `tarball ${file} is still part of ${name}@${version}: unpublish that version first`);
  }
}

/** The version whose dist.tarball names fileName, or null. */
function listedVersionOf(manifest: Manifest, fileName: string): string | null {
  for (const [version, meta] of Object.entries(manifest.versions ?? {})) if (tarballFileOf(meta?.dist?.tarball) === fileName) return version;
  return null;
}

/** CouchDB-style `<n>-<hex>`, as Verdaccio's generateRevision makes it. */
function nextRevision(rev: unknown): string {
  const count = typeof rev === 'string' ? Number.parseInt(rev.split('-')[0], 10) : 0;
  const random = Math.floor(Math.random() * 2 ** 48).toString(16).padStart(12, '0');
  return `${Number.isSafeInteger(count) && count >= 0 ? count + 1 : 1}-${random}`;
}

/** Dist-tags pointing at no version (stored before they were refused): dropped from what is read. */
function withoutDanglingTags(manifest: Manifest): Manifest {
  const tags = manifest['dist-tags'];
  if (tags === null || typeof tags !== 'object') return manifest;
  for (const [tag, version] of Object.entries(tags)) {
    if (typeof version !== 'string' || !Object.prototype.hasOwnProperty.call(manifest.versions ?? {}, version)) delete tags[tag];
  }
  return manifest;
}

type AttachmentEntry = { shasum?: string; version?: string };

/**
 * Every top-level field but `versions` (the snapshot covers what handlers change there: added and
 * removed versions, deprecations), `_attachments` (compared on their own) and `_rev` (Verdaccio's
 * onWrite bumps it on every write): what tells a change that changes nothing.
 */
function restOf(manifest: Manifest): string {
  const rest: Record<string, unknown> = {};
  for (const key of Object.keys(manifest)) {
    if (key === 'versions' || key === '_attachments' || key === '_rev') continue;
    const value = manifest[key];
    // `time` grows with the versions: no handler changes a version's date without adding or removing
    // that version (in the snapshot), so its size and its created/modified entries stand for it
    rest[key] = key === 'time' && value !== null && typeof value === 'object' ? timeSummary(value as Record<string, unknown>) : value;
  }
  return JSON.stringify(rest);
}

function timeSummary(time: Record<string, unknown>): unknown[] {
  return [Object.keys(time).length, time.created, time.modified];
}

/** Attachment names added without a version (the caller compares the earlier entries); [] otherwise. */
function newRegistrations(before: ReadonlySet<string>, after: Record<string, AttachmentEntry>): string[] {
  const added: string[] = [];
  for (const [file, entry] of Object.entries(after)) {
    if (before.has(file)) continue;
    if (entry === null || typeof entry !== 'object' || entry.version !== undefined) return [];
    added.push(file);
  }
  return added;
}

function uploadKeyOf(name: string, fileName: string): string {
  return `${name}\0${fileName}`;
}

export class PackageService {
  readonly store: PackageStore;
  private readonly sink: IndexSink;
  private readonly log: ServiceLog;
  /** createPackage templates (plus attachment registrations) of packages without a version yet. */
  private readonly pending = new Map<string, { manifest: Manifest; expires: number }>();
  /** The manifest our updatePackage handed to Verdaccio's onWrite: its savePackage runs under our lock. */
  private readonly inflight = new Map<string, Manifest>();
  /** Registrations of announced uploads (publish-intent.ts), written with the version that follows. */
  private readonly deferred = new Map<string, { files: Record<string, AttachmentEntry>; expires: number }>();
  /**
   * The snapshot (versions, deprecations, dist-tags) of a document this service just wrote, or
   * gave back to the store unchanged: the store hands that very object out again (its kept copy,
   * proven to be the file's bytes), so the next cycle's pre-image needs no walk of every version.
   * A publish runs three cycles; at 1,000 versions each walk is ≈ 0.6 ms (issue 18, third pass).
   * Taken out when used: a cycle that fails never gives its document back, so its entry is gone.
   */
  private readonly snapshots = new WeakMap<Manifest, ManifestSnapshot>();

  /**
   * Tarballs of failed publishes this process committed and could not remove when the request
   * ended (the lock cannot be taken on a full disk): `<name>\0<file>` → sha512. The next publish
   * of that file reclaims it at once (reclaimAbandonedTarball) instead of after ABANDONED_TARBALL_MS.
   */
  private readonly abandoned = new LRUCache<string, string>({ max: 10_000 });

  /** Registry signatures (signatures.ts); null: versions are stored and served unsigned. */
  private readonly signer: VersionSigner | null;

  /**
   * The upstream cache (`<storage>/.upstream`, docs/upstream.md): read only when there is no local
   * packument, so a local package is never mixed with upstream versions.
   */
  cache: PackageStore | null = null;
  /** Names the cache may answer for (not in a local scope: those are never proxied, docs/upstream.md). */
  cacheServes: (name: string) => boolean = () => true;
  /** The upstream proxy's packument whose durable write is still running (upstream/proxy.ts `filling`): read before the cache store. */
  upstreamFilling: (name: string) => Manifest | null = () => null;
  /** The upstream proxy's revision of a cold fill's answer (proxy.ts revisionOf); null: the cache store's stamp. */
  upstreamRevision: (name: string, storedStamp: string | null) => string | null = () => null;

  constructor(store: PackageStore, sink: IndexSink, log: ServiceLog, signer: VersionSigner | null = null) {
    this.store = store;
    this.sink = sink;
    this.log = log;
    this.signer = signer;
  }

  /** Names that cannot exist in this storage read as "not found" (Verdaccio turns other read errors into 500). */
  private forRead(name: string): ParsedName {
    try {
      return parseReadName(name);
    } catch {
      throw notFound(`package ${JSON.stringify(name)}`);
    }
  }

  private pendingOf(name: string): Manifest | null {
    const entry = this.pending.get(name);
    if (!entry) return null;
    if (entry.expires < Date.now()) {
      this.pending.delete(name);
      return null;
    }
    return entry.manifest;
  }

  private hold(name: string, manifest: Manifest): void {
    this.pending.set(name, { manifest, expires: Date.now() + PENDING_TTL_MS });
  }

  // ---- manifests ------------------------------------------------------------------------

  /** `options.keep: false`: a one-off read that fills no text cache (store.ts ReadOptions). */
  async readPackage(name: string, options?: ReadOptions): Promise<Manifest> {
    const pkg = this.forRead(name);
    const local = await this.store.readPackument(pkg, options);
    const manifest = local ?? (this.cache !== null && !this.pendingOf(pkg.name) && this.cacheServes(pkg.name) ? (this.upstreamFilling(pkg.name) ?? (await this.cache.readPackument(pkg, options))) : null);
    if (!manifest) throw notFound(`package ${name}`);
    const served = withoutDanglingTags(manifest);
    // only local versions are ours to sign: a cached (upstream) packument keeps exactly the
    // upstream's signatures, or none (docs/signatures.md)
    return this.signer === null || local === null ? served : this.signer.withSignatures(served);
  }

  /** Changes whenever the packument of name changes; null for no (or an impossible) package. */
  packumentStamp(name: string): string | null {
    try {
      const pkg = parseReadName(name);
      const local = this.store.packumentStamp(pkg);
      if (local !== null || this.cache === null || !this.cacheServes(pkg.name)) return local;
      // a first publish in flight, or an upstream copy not yet on disk: nothing to replay (a racy stamp never repeats)
      if (this.pendingOf(pkg.name) !== null) return `pending:racy-${process.hrtime.bigint()}`;
      const cached = this.cache.packumentStamp(pkg);
      // a cold fill's answer keeps one revision from the fill to its stored file (proxy.ts revisionOf)
      const fill = this.upstreamRevision(pkg.name, cached);
      if (fill !== null) return fill;
      return cached === null ? null : `upstream:${cached}`;
    } catch {
      return null;
    }
  }

  /** A local packument exists (or a first publish is in flight): the upstream is never asked about it. */
  async isLocal(name: string): Promise<boolean> {
    try {
      const pkg = parsePackageName(name, 'read');
      return this.pendingOf(pkg.name) !== null || (await this.store.packumentExists(pkg));
    } catch {
      return false;
    }
  }

  async createPackage(name: string, template: Manifest): Promise<void> {
    const pkg = parsePackageName(name, 'write');
    if (template.name !== name) throw new StorageError('ERR_BAD_MANIFEST', `manifest name ${JSON.stringify(template.name)} does not match ${name}`);
    if (this.pendingOf(name) || (await this.store.packumentExists(pkg))) throw new StorageError('ERR_EXISTS', `package ${name} already exists`);
    this.hold(pkg.name, template);
  }

  async savePackage(name: string, manifest: Manifest): Promise<void> {
    // our updatePackage's own document: handed over to the store, which may keep it (no parse next time)
    if (this.inflight.get(name) === manifest) return this.writeOrHold(this.forRead(name), manifest, true);
    const pkg = await this.parseForWrite(name);
    await this.store.withLock(pkg.name, () => this.writeOrHold(pkg, manifest));
  }

  /** Existing (adopted) packages keep their legacy names; new ones must follow npm's rules. */
  private async parseForWrite(name: string): Promise<ParsedName> {
    try {
      return parsePackageName(name, 'write');
    } catch (error) {
      const legacy = parsePackageName(name, 'read');
      if (await this.store.packumentExists(legacy)) return legacy;
      throw error;
    }
  }

  private async writeOrHold(pkg: ParsedName, manifest: Manifest, keep = false): Promise<void> {
    if (manifest.name !== pkg.name) throw new StorageError('ERR_BAD_MANIFEST', `manifest name ${JSON.stringify(manifest.name)} does not match ${pkg.name}`);
    const hasVersions = manifest.versions !== null && typeof manifest.versions === 'object' && Object.keys(manifest.versions).length > 0;
    if (!hasVersions && this.pendingOf(pkg.name) && !(await this.store.packumentExists(pkg))) {
      this.hold(pkg.name, manifest); // still no version: keep it in memory, no metadata before a tarball+version
      return;
    }
    await this.store.writePackument(pkg, manifest, { keep });
    this.pending.delete(pkg.name);
  }

  /** Attachment registrations of announced uploads not yet written (see updatePackage). */
  private deferredOf(name: string): Record<string, AttachmentEntry> | null {
    const entry = this.deferred.get(name);
    if (!entry) return null;
    if (entry.expires < Date.now()) {
      this.deferred.delete(name);
      return null;
    }
    return entry.files;
  }

  private forgetDeferred(name: string, files: readonly string[]): void {
    const entry = this.deferred.get(name);
    if (!entry) return;
    for (const file of files) {
      delete entry.files[file];
      forgetUpload(name, file);
    }
    if (Object.keys(entry.files).length === 0) this.deferred.delete(name);
  }

  /**
   * Verdaccio's read-modify-write: mutate = its update handler (+ normalisation), write = its
   * onWrite (bumps _rev, then calls our savePackage with that very object).
   *
   * A publish runs three of these (addTarball's attachment registration, addVersion, mergeTags);
   * only one writes:
   * - the document comes from the store's kept copy of its own last write when the file still
   *   holds exactly it (`readPackumentForUpdate`): no parse, and no deep copy of it here — what the
   *   refusal paths need of the pre-image (version keys, attachment names, owners) is taken before
   *   the mutation, and a rollback re-reads the untouched file;
   * - a change that changes nothing (mergeTags after the version's own write applied the tags) is
   *   not written: the snapshot (versions, deprecations, dist-tags), every other top-level field
   *   but `versions`/`_rev`, and the attachments are compared before and after;
   * - the registration of an announced tarball (publish-intent.ts: a JSON publish the entry let
   *   through) is kept in memory and written with the version in the next cycle of this request;
   *   the tarball's folder fsync is left to that write too (same folder).
   * No acknowledged state is weakened: the request is answered after the version write, which is
   * fsynced (file + folder) and carries the registration; before it nothing was promised, and a
   * tarball left by a publish interrupted in between is reclaimed as before (never part of a version).
   */
  async updatePackage(name: string, mutate: (manifest: Manifest) => Promise<Manifest>, write: (manifest: Manifest) => Promise<void>): Promise<void> {
    const pkg = this.forRead(name);
    await this.store.withLock(pkg.name, async () => {
      const onDisk = this.store.readPackumentForUpdate ? await this.store.readPackumentForUpdate(pkg) : await this.store.readPackument(pkg);
      const held = this.pendingOf(pkg.name);
      const deferred = this.deferredOf(pkg.name);
      const deferredFiles = deferred === null ? [] : Object.keys(deferred);
      /** The document as this cycle starts from it, built on `base` (the file's, or a fresh parse of it for a rollback). */
      const compose = (base: Manifest | null): Manifest => {
        let doc: Manifest;
        if (base) {
          doc = withoutDanglingTags(base);
          // another process created the package meanwhile: keep our uploads' registrations
          if (held?._attachments) doc._attachments = { ...held._attachments, ...(doc._attachments ?? {}) };
        } else if (held) {
          doc = structuredClone(held);
        } else {
          throw notFound(`package ${name}`);
        }
        if (deferred !== null && deferredFiles.length > 0) {
          // added in place, an entry the document already has winning: a spread of every attachment
          // into a new object was most of this function at 1,000 versions (issue 18, third pass)
          const attachments = (doc._attachments ??= {});
          for (const [file, entry] of Object.entries(structuredClone(deferred))) {
            if (!Object.prototype.hasOwnProperty.call(attachments, file)) attachments[file] = entry;
          }
        }
        return doc;
      };
      const current = compose(onDisk);
      const merged = deferredFiles.length > 0 || (onDisk !== null && held?._attachments !== undefined);
      /** The untouched pre-image, for the refusal paths only: the file was not written in this cycle. */
      const loadOriginal = async (): Promise<Manifest> => compose(onDisk ? await this.store.readPackument(pkg) : null);
      const versionsBefore = new Set(Object.keys(current.versions ?? {}));
      const attachmentsBefore = new Set(Object.keys(current._attachments ?? {}));
      const attachmentsTextBefore = JSON.stringify(current._attachments ?? {});
      const ownersBefore = maintainersOf(current);
      const restBefore = onDisk ? restOf(current) : '';
      const known = onDisk !== null && current === onDisk ? this.snapshots.get(onDisk) : undefined;
      if (onDisk !== null) this.snapshots.delete(onDisk);
      const before: ManifestSnapshot = known ?? snapshotOf(current);
      let next: Manifest;
      try {
        next = await mutate(current);
      } catch (error) {
        const original = await loadOriginal();
        const refused = this.filesRefusedByVerdaccio(original, error);
        if (refused.length > 0) await this.rollbackRefusedTarballs(pkg, original, onDisk !== null, refused);
        throw error;
      }
      let changes: ReturnType<typeof diffSnapshots>;
      let after: ManifestSnapshot;
      let published = new Map<string, string>();
      try {
        refuseDroppingListedTarballs(pkg.name, [...attachmentsBefore], next);
        after = snapshotOf(next);
        changes = diffSnapshots(before, after);
        if (changes.added.length > 0) {
          this.applyPublishIntents(pkg.name, ownersBefore, next, changes.added);
          // the intents set dist-tags, _npmUser and maintainers: of the snapshot, only the tags can change
          after = withDistTagsOf(after, next);
          changes = diffSnapshots(before, after);
        }
        refuseDanglingTags(pkg.name, next);
        if (changes.added.length > 0) published = await this.verifyAddedVersions(pkg, next, changes.added);
        // signed in the same write as the version, over the integrity that was just verified (docs/signatures.md)
        if (this.signer !== null) for (const version of changes.added) this.signer.signPublished(pkg.name, version, next.versions[version]);
      } catch (error) {
        // whatever went wrong, a version that is not added leaves no tarball behind
        const added = Object.keys(next?.versions ?? {}).filter((version) => !versionsBefore.has(version));
        const files = added.filter((version) => isValidVersion(version)).map((version) => tarballNameFor(pkg, version));
        await this.rollbackRefusedTarballs(pkg, await loadOriginal(), onDisk !== null, files);
        throw error;
      }

      if (onDisk !== null && !merged && next === current && isEmpty(changes) && restOf(next) === restBefore) {
        const attachments = (next._attachments ?? {}) as Record<string, AttachmentEntry>;
        if (JSON.stringify(attachments) === attachmentsTextBefore) {
          this.store.returnPackument?.(pkg, next); // nothing changed: nothing to write
          this.snapshots.set(next, after);
          return;
        }
        const registered = newRegistrations(attachmentsBefore, attachments).filter((file) => isAnnouncedUpload(pkg.name, file));
        if (registered.length > 0) {
          const entries: Record<string, AttachmentEntry> = {};
          for (const file of registered) {
            entries[file] = attachments[file];
            delete attachments[file];
          }
          if (JSON.stringify(attachments) === attachmentsTextBefore) {
            const slot = this.deferred.get(pkg.name) ?? { files: {}, expires: 0 };
            Object.assign(slot.files, entries);
            slot.expires = Date.now() + PENDING_TTL_MS;
            this.deferred.set(pkg.name, slot);
            this.store.returnPackument?.(pkg, next); // the document is the file's again
            this.snapshots.set(next, after);
            return;
          }
          Object.assign(attachments, entries); // more than a registration changed: written as it is
        }
      }

      this.inflight.set(pkg.name, next);
      // the index lock is taken while the packument is written (overlapped), its records appended once it is durable
      const slot = !isEmpty(changes) && this.sink.reserve ? this.sink.reserve() : null;
      slot?.catch(() => undefined); // a failure to take it is reported by appendRecords
      try {
        await write(next);
      } catch (error) {
        if (slot) void slot.then((held) => held.release()).catch(() => undefined);
        // the packument write failed (ENOSPC, EROFS…): the file is untouched (atomic), so a version
        // it would have added must leave no committed tarball behind, or the next publish of that
        // version would meet it and be refused as already present
        const files = changes.added.filter((version) => isValidVersion(version)).map((version) => tarballNameFor(pkg, version));
        this.forgetDeferred(pkg.name, files);
        for (const file of files) await this.store.deleteTarball(pkg, file).catch(() => undefined);
        throw error;
      } finally {
        this.inflight.delete(pkg.name);
      }
      // what was just written (Verdaccio's onWrite changes only _rev; the signatures added after
      // the snapshot are not part of it): the pre-image of this package's next cycle
      this.snapshots.set(next, after);
      // the registrations merged into this document are on disk now
      if (deferredFiles.length > 0) this.forgetDeferred(pkg.name, deferredFiles);
      if (!isEmpty(changes)) {
        const user = changes.added.map((v) => next.versions[v]?._npmUser?.name).find((n) => typeof n === 'string');
        await this.appendRecords(recordsFor(pkg.name, changes, published, Date.now()), { user }, slot);
      }
    });
  }

  /**
   * A new version's publish intent (publish-intent.ts), applied in the same write as the version:
   * ownership checked under the lock, `_npmUser` = the authenticated publisher (never the body's),
   * the body's dist-tags set here (Verdaccio's later mergeTags then changes nothing), the first
   * authenticated publisher recorded as the first maintainer.
   */
  private applyPublishIntents(name: string, owners: Maintainer[], next: Manifest, added: string[]): void {
    for (const version of added) {
      const meta = next.versions[version];
      const intent = takeIntent(meta);
      if (intent === null || meta === null || typeof meta !== 'object') continue;
      const problem = ownershipProblem(name, owners, intent.actor, 'publish a new version of');
      if (problem !== null) throw new StorageError('ERR_FORBIDDEN', problem);
      if (intent.actor.name !== null) meta._npmUser = { name: intent.actor.name };
      else delete meta._npmUser;
      if (next['dist-tags'] === null || typeof next['dist-tags'] !== 'object') next['dist-tags'] = {};
      for (const [tag, tagged] of Object.entries(intent.tags)) if (tagged === version) next['dist-tags'][tag] = version;
      if (maintainersOf(next).length === 0 && intent.actor.name !== null) next.maintainers = [{ name: intent.actor.name }];
      meta.maintainers = maintainersOf(next);
    }
  }

  /** The package's owners; null when there is no such package. */
  async ownersOf(name: string): Promise<Maintainer[] | null> {
    let pkg: ParsedName;
    try {
      pkg = parsePackageName(name, 'read');
    } catch {
      return null; // a name that cannot be stored has no owners (Verdaccio answers the request)
    }
    // every publish asks: the store's kept document (read-only) saves a parse of the whole packument
    const peeked = this.store.peekPackument?.(pkg);
    const manifest = peeked !== undefined ? peeked : await this.store.readPackument(pkg);
    return manifest ? maintainersOf(manifest) : null;
  }

  /**
   * `npm owner add|rm`: replaces the packument's maintainers (Verdaccio's changePackage ignores
   * them), under the lock, after checking that `actor` is an owner or an admin.
   */
  async changeOwners(name: string, maintainers: Maintainer[], actor: Actor): Promise<void> {
    const pkg = this.forRead(name);
    await this.store.withLock(pkg.name, async () => {
      const manifest = await this.store.readPackument(pkg);
      if (!manifest) throw notFound(`package ${name}`);
      const problem = ownershipProblem(pkg.name, maintainersOf(manifest), actor, 'change the owners of');
      if (problem !== null) throw new StorageError('ERR_FORBIDDEN', problem);
      if (maintainersOf(manifest).length === 0 && actor.name === null) {
        throw new StorageError('ERR_FORBIDDEN', `${pkg.name} has no maintainers yet: log in to record owners`);
      }
      manifest.maintainers = maintainers;
      manifest._rev = nextRevision(manifest._rev);
      if (manifest.time !== null && typeof manifest.time === 'object') manifest.time.modified = new Date().toISOString();
      await this.store.writePackument(pkg, manifest);
    });
  }

  private async appendRecords(records: IndexRecord[], context: { user?: string }, slot: Promise<IndexSinkSlot> | null = null): Promise<void> {
    try {
      if (slot === null) {
        await this.sink.append(records, context);
        return;
      }
      const held = await slot;
      try {
        held.append(records, context);
      } finally {
        // given back without making the client wait (the next holder of this process queues behind it)
        held.release().catch((error: unknown) => this.log.error(`registry.lockb: could not give its lock back: ${(error as Error).message}`));
      }
    } catch (error) {
      if (this.sink.atomic) throw error;
      // the manifest (the source of truth) is durable already; the index can be rebuilt from it
      this.log.error(`registry.lockb: could not append ${records.length} index record(s): ${(error as Error).message} — run \`npm run config -- rebuild-index\``);
    }
  }

  private async verifyAddedVersions(pkg: ParsedName, manifest: Manifest, added: string[]): Promise<Map<string, string>> {
    const published = new Map<string, string>();
    for (const version of added) {
      const label = `${pkg.name}@${version}`;
      if (!isValidVersion(version)) throw new StorageError('ERR_BAD_MANIFEST', `${label}: not a semver version`);
      const meta = manifest.versions[version];
      const expected = tarballNameFor(pkg, version);
      const declared = tarballFileOf(meta?.dist?.tarball);
      if (declared !== expected) {
        throw new StorageError('ERR_BAD_MANIFEST', `${label}: dist.tarball must end in /${expected} (got ${JSON.stringify(meta?.dist?.tarball ?? null)})`);
      }
      // Verdaccio's packument route runs `new URL()` on it in a callback: a stored relative URL would crash every read
      if (!URL.canParse(String(meta?.dist?.tarball))) {
        throw new StorageError('ERR_BAD_MANIFEST', `${label}: dist.tarball must be an absolute URL (got ${JSON.stringify(meta?.dist?.tarball)})`);
      }
      const digest = await this.store.tarballDigest(pkg, expected);
      if (!digest) throw new StorageError('ERR_BAD_MANIFEST', `${label}: tarball ${expected} was not uploaded`);
      verifyDist(label, meta?.dist, digest);
      published.set(version, digest.sha512);
    }
    return published;
  }

  /**
   * Verdaccio's own addVersion handler refuses a version whose dist.shasum differs from the sha1
   * it recorded for the upload ("shasum error, <recorded> != <declared>"); it names no file, but
   * the recorded sha1 identifies the attachment that is not part of any version yet.
   */
  private filesRefusedByVerdaccio(original: Manifest, error: unknown): string[] {
    const match = /^shasum error, ([0-9a-f]{40}) != /i.exec(error instanceof Error ? error.message : '');
    if (!match) return [];
    const referenced = new Set(Object.values(original.versions ?? {}).map((meta) => tarballFileOf(meta?.dist?.tarball)));
    return Object.entries(original._attachments ?? {})
      .filter(([file, entry]) => entry?.shasum === match[1] && !entry.version && !referenced.has(file))
      .map(([file]) => file);
  }

  /** A refused publish leaves nothing: its tarball, its attachment record, a package made for it. */
  private async rollbackRefusedTarballs(pkg: ParsedName, original: Manifest, existedOnDisk: boolean, files: string[]): Promise<void> {
    this.forgetDeferred(pkg.name, files);
    try {
      let registered = false;
      for (const file of files) {
        await this.store.deleteTarball(pkg, file);
        this.abandoned.delete(uploadKeyOf(pkg.name, file));
        if (original._attachments && Object.prototype.hasOwnProperty.call(original._attachments, file)) {
          delete original._attachments[file];
          registered = true;
        }
      }
      if (existedOnDisk) {
        // the file is rewritten only if it carries a registration to take back
        if (registered) await this.store.writePackument(pkg, original);
        return;
      }
      if (Object.keys(original._attachments ?? {}).length > 0) {
        this.hold(pkg.name, original); // a concurrent upload of another version is still on its way
        return;
      }
      this.pending.delete(pkg.name);
      await this.store.removePackageContainer(pkg);
      if ((await this.store.readDb()).list.includes(pkg.name)) await this.store.updateDb((db) => ({ ...db, list: db.list.filter((item) => item !== pkg.name) }));
    } catch (error) {
      this.log.error(`${pkg.name}: cleanup after a refused publish failed: ${(error as Error).message}`);
    }
  }

  /**
   * The request of an announced upload (publish-intent.ts) was answered with an error, or its
   * client left before the answer. A refused publish changes nothing: whatever it left and no
   * version write claimed — the tarball this process committed for it (Verdaccio commits it
   * before the package lock is taken, so a refusal after that left it behind and the next
   * publish of the version met it as "already present"), its deferred registration, the
   * in-memory template of a package it was creating — is taken back under the package lock.
   * When even that lock cannot be taken (a full disk), the tarball is remembered and the next
   * publish of it reclaims it at once.
   */
  async publishFailed(name: string, fileName: string): Promise<void> {
    const { last, committed } = endUpload(name, fileName);
    if (!last) return; // another request of the same upload is in flight here: it settles what is left
    let pkg: ParsedName;
    try {
      pkg = parsePackageName(name, 'read');
      parseTarballName(pkg, fileName);
    } catch {
      return;
    }
    try {
      await this.store.withLock(pkg.name, async () => {
        const onDisk = await this.store.readPackument(pkg);
        if (onDisk !== null && isReferenced(onDisk, fileName)) return; // its version was written: the request failed after (that write stands)
        const ours = committed !== null && (await this.store.tarballDigest(pkg, fileName))?.sha512 === committed;
        const files = ours ? [fileName] : [];
        if (onDisk !== null) {
          await this.rollbackRefusedTarballs(pkg, onDisk, true, files);
          return;
        }
        const template = this.pendingOf(pkg.name);
        if (template === null || uploadsInFlight(pkg.name, fileName)) {
          // another version's first publish still needs the template (and a package folder)
          this.forgetDeferred(pkg.name, files);
          for (const file of files) await this.store.deleteTarball(pkg, file);
          if (template?._attachments) delete template._attachments[fileName];
          return;
        }
        // the template of the package this publish was creating goes too (else the name reads as local for PENDING_TTL_MS)
        await this.rollbackRefusedTarballs(pkg, template, false, files);
      });
    } catch (error) {
      if (committed !== null) this.abandoned.set(uploadKeyOf(pkg.name, fileName), committed);
      this.log.warn(`${pkg.name}: could not take back ${fileName} of a refused publish now (${(error as Error).message}); its next publish removes it`);
    }
  }

  /** Verdaccio's deletePackage: 'package.json' (whole-package unpublish) or one tarball. */
  async deleteFile(name: string, fileName: string): Promise<void> {
    const pkg = this.forRead(name);
    if (fileName === PACKUMENT_FILE) {
      await this.store.withLock(pkg.name, async () => {
        this.pending.delete(pkg.name);
        this.deferred.delete(pkg.name);
        const removed = await this.store.deletePackument(pkg);
        if (!removed) throw notFound(`package ${name}`);
        await this.appendRecords([{ kind: 'unpublish-package', name: pkg.name, version: '', sha512: '', time: Date.now(), detail: '' }], {});
      });
      return;
    }
    parseTarballName(pkg, fileName);
    // a tarball that is already gone is fine: unpublish must be idempotent
    await this.store.withLock(pkg.name, async () => {
      const manifest = await this.store.readPackument(pkg);
      const version = manifest ? listedVersionOf(manifest, fileName) : null;
      if (version !== null) throw new StorageError('ERR_EXISTS', `tarball ${fileName} is still part of ${pkg.name}@${version}: unpublish that version first`);
      await this.store.deleteTarball(pkg, fileName);
    });
  }

  async removeContainer(name: string): Promise<void> {
    await this.store.removePackageContainer(this.forRead(name));
  }

  // ---- tarballs -------------------------------------------------------------------------

  uploadTarball(name: string, fileName: string): TarballWriter {
    const pkg = parsePackageName(name, 'read');
    parseTarballName(pkg, fileName);
    const announced = isAnnouncedUpload(pkg.name, fileName);
    const writer = this.store.createTarball(pkg, fileName, {
      precheck: async () => {
        await this.parseForWrite(name);
      },
      reclaim: () => this.reclaimAbandonedTarball(pkg, fileName),
      // a JSON publish's tarball: the version write that follows fsyncs the same folder
      deferFolderSync: announced,
    });
    if (!announced) return writer;
    // the tarball is this process's own from here: a refusal of its publish takes it back (publishFailed)
    const commit = writer.commit.bind(writer);
    writer.commit = async () => {
      const digest = await commit();
      noteCommittedUpload(pkg.name, fileName, digest.sha512);
      return digest;
    };
    return writer;
  }

  /**
   * A tarball no version refers to, older than any publish in flight, is what a publish
   * interrupted between its tarball and its metadata leaves behind (client gone, process
   * killed). It was never acknowledged, so the next publish of that version may replace it.
   */
  private reclaimAbandonedTarball(pkg: ParsedName, fileName: string): Promise<boolean> {
    return this.store.withLock(pkg.name, async () => {
      const age = await this.store.tarballAgeMs(pkg, fileName);
      if (age === null) return true;
      // a refused publish of this process left it (publishFailed could not take it back then)
      const refusedHere = this.abandoned.get(uploadKeyOf(pkg.name, fileName));
      if (age < ABANDONED_TARBALL_MS && refusedHere === undefined) return false;
      const manifest = (await this.store.readPackument(pkg)) ?? this.pendingOf(pkg.name);
      if (manifest && isReferenced(manifest, fileName)) return false;
      if (age < ABANDONED_TARBALL_MS && (await this.store.tarballDigest(pkg, fileName))?.sha512 !== refusedHere) return false;
      await this.store.deleteTarball(pkg, fileName);
      this.abandoned.delete(uploadKeyOf(pkg.name, fileName));
      this.log.warn(`${pkg.name}: removed ${fileName}, left by ${refusedHere === undefined ? 'an interrupted' : 'a refused'} publish ${Math.round(age / 1000)} s ago and never part of a version`);
      return true;
    });
  }

  async readTarball(name: string, fileName: string): Promise<TarballReader> {
    const pkg = this.forRead(name);
    try {
      parseTarballName(pkg, fileName);
    } catch {
      throw notFound(`tarball ${JSON.stringify(fileName)}`);
    }
    // The local store's tarballs only for a package with a local packument: without one, a tarball
    // there is what a publish left that did not complete (interrupted before its version, or in
    // flight) — never served, never preferred to the upstream's copy, whose bytes the cache fill
    // verified against the upstream's integrity. The fast path answers the same way by its stamp
    // (heldTarballBytes: a local stamp exists only with a local packument).
    const local = await this.store.packumentExists(pkg);
    let reader = local ? await this.store.readTarball(pkg, fileName) : null;
    // a cached tarball only for a package that is not local, nor being first published (never mixed)
    if (!local && this.cache !== null && this.cacheServes(pkg.name) && this.pendingOf(pkg.name) === null) reader = await this.cache.readTarball(pkg, fileName);
    if (!reader) throw notFound(`tarball ${fileName}`);
    return reader;
  }

  /**
   * Where the HTTP fast path finds a tarball, by the packument stamp the caller just took: a local
   * stamp reads the local store only, an `upstream:` stamp (no local packument, no publish in
   * flight) the upstream cache only — exactly where readTarball would find it. null: not a
   * tarball of this package, or no upstream cache.
   */
  private heldTarballSource(name: string, fileName: string, stamp: string): { store: PackageStore; pkg: ParsedName } | null {
    let pkg: ParsedName;
    try {
      pkg = this.forRead(name);
      parseTarballName(pkg, fileName);
    } catch {
      return null;
    }
    const store = stamp.startsWith('upstream:') ? this.cache : this.store;
    return store === null ? null : { store, pkg };
  }

  /** heldTarballBytes without a promise when the store holds the bytes in memory (every repeated download); undefined: ask heldTarballBytes. */
  heldTarballBytesNow(name: string, fileName: string, stamp: string): Buffer | undefined {
    const source = this.heldTarballSource(name, fileName, stamp);
    return source?.store.peekTarball?.(source.pkg, fileName);
  }

  /** The bytes of a tarball for the fast path (heldTarballSource); null: not held in memory-sized form (absent, or a large file read as a stream): the caller takes the full path. */
  async heldTarballBytes(name: string, fileName: string, stamp: string): Promise<Buffer | null> {
    const source = this.heldTarballSource(name, fileName, stamp);
    if (source === null) return null;
    const reader = await source.store.readTarball(source.pkg, fileName);
    if (reader === null) return null;
    if ('bytes' in reader) return reader.bytes;
    reader.stream.destroy();
    return null;
  }

  // ---- package list, secret -------------------------------------------------------------

  async listNames(): Promise<string[]> {
    return (await this.store.readDb()).list;
  }

  async addName(name: string): Promise<void> {
    const pkg = this.forRead(name);
    const db = await this.store.readDb();
    if (db.list.includes(pkg.name)) return;
    await this.store.updateDb((current) => (current.list.includes(pkg.name) ? current : { ...current, list: [...current.list, pkg.name] }));
  }

  async removeName(name: string): Promise<void> {
    await this.store.updateDb((current) => ({ ...current, list: current.list.filter((item) => item !== name) }));
  }

  async getSecret(): Promise<string> {
    return (await this.store.readDb()).secret;
  }

  async setSecret(secret: string): Promise<void> {
    if ((await this.store.readDb()).secret === secret) return;
    await this.store.updateDb((current) => ({ ...current, secret }));
  }

  /** Every stored package with the mtime of its manifest (for search). */
  listStored(): Promise<Array<{ name: string; mtimeMs: number }>> {
    return this.store.listPackages();
  }
}
