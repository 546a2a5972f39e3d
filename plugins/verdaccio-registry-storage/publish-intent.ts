/**
 * What the HTTP entry (http/routes.ts) knows about a publish that the store must apply in the
 * SAME packument write as the new version. Verdaccio's publish handler stores a version in two
 * writes — addVersion, then mergeTags — so a kill between them left the version untagged, and
 * its storage calls carry no user at all.
 *
 * The entry attaches the intent to the version object of the request body under a symbol;
 * Verdaccio hands that very object to our updatePackage (`data.versions[version] = metadata`),
 * where PackageService reads it, applies it and removes it. A symbol cannot come from a JSON
 * body (so a client cannot forge it) and is never serialised (so it cannot be stored). If
 * Verdaccio ever copied the object, the intent would simply be missing: the version is then
 * stored as before (tags by mergeTags), never with a wrong publisher.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Actor } from './owners';

export const PUBLISH_INTENT: unique symbol = Symbol.for('@mycompany/registry-storage.publish-intent');

export interface PublishIntent {
  /** The authenticated publisher (from req.remote_user), or anonymous. */
  actor: Actor;
  /** The dist-tags the body sets, each pointing at this version (the guard checked). */
  tags: Record<string, string>;
}

type WithIntent = { [PUBLISH_INTENT]?: PublishIntent };

export function attachIntent(versionMeta: object, intent: PublishIntent): void {
  (versionMeta as WithIntent)[PUBLISH_INTENT] = intent;
}

/** Reads and removes the intent (it must never outlive the write it belongs to). */
export function takeIntent(versionMeta: unknown): PublishIntent | null {
  if (typeof versionMeta !== 'object' || versionMeta === null) return null;
  const holder = versionMeta as WithIntent;
  const intent = holder[PUBLISH_INTENT] ?? null;
  delete holder[PUBLISH_INTENT];
  return intent;
}

/**
 * The tarballs of JSON publishes the entry let through (guard + ownership passed), in this
 * process: `<name>\0<file>` → its requests in flight. The store uses it for what only such a
 * publish allows — the tarball's attachment registration and its folder fsync go into the one
 * packument write of the version that follows in the same request (PackageService.updatePackage).
 * A tarball that is not announced (the legacy `PUT /:package/-/:file` upload, acknowledged by
 * itself) is registered and made durable at once, as before.
 *
 * It also tells a failed publish's cleanup (PackageService.publishFailed) whether the tarball on
 * disk is this process's own: Verdaccio commits the tarball BEFORE the package lock is taken for
 * the version, so a refusal after that point (the lock cannot be taken on a full disk, the
 * registration or the version write fails…) left a committed tarball no version names, and the
 * next publish of that version met it as "already present".
 */
interface AnnouncedUpload {
  expires: number;
  /** requests of this upload in flight in this process */
  live: number;
  /** sha512 of the tarball this process committed for it; null: none (yet) */
  committed: string | null;
}

const announced = new Map<string, AnnouncedUpload>();
const ANNOUNCE_TTL_MS = 10 * 60_000;

function uploadKey(name: string, file: string): string {
  return `${name}\0${file}`;
}

export function announceUpload(name: string, file: string): void {
  const now = Date.now();
  if (announced.size > 1_000) for (const [key, entry] of announced) if (entry.expires < now) announced.delete(key);
  const key = uploadKey(name, file);
  const entry = announced.get(key);
  if (entry !== undefined && entry.expires >= now) {
    entry.live += 1;
    entry.expires = now + ANNOUNCE_TTL_MS;
  } else {
    announced.set(key, { expires: now + ANNOUNCE_TTL_MS, live: 1, committed: null });
  }
}

export function isAnnouncedUpload(name: string, file: string): boolean {
  const entry = announced.get(uploadKey(name, file));
  return entry !== undefined && entry.expires >= Date.now();
}

/** This process committed the announced tarball (link succeeded: no other writer has that name). */
export function noteCommittedUpload(name: string, file: string, sha512: string): void {
  const entry = announced.get(uploadKey(name, file));
  if (entry !== undefined) entry.committed = sha512;
}

/**
 * One request of the upload has ended. `last`: no other request of it is in flight here, so the
 * caller settles what it left; `committed`: the sha512 of the tarball this process committed for
 * it and no version write has claimed yet (forgetUpload), else null.
 */
export function endUpload(name: string, file: string): { last: boolean; committed: string | null } {
  const key = uploadKey(name, file);
  const entry = announced.get(key);
  if (entry === undefined) return { last: true, committed: null };
  entry.live -= 1;
  if (entry.live > 0) return { last: false, committed: null };
  announced.delete(key);
  return { last: true, committed: entry.committed };
}

/** Whether an upload of another file of this package is in flight here (its first publish shares the template). */
export function uploadsInFlight(name: string, exceptFile: string): boolean {
  const prefix = `${name}\0`;
  const except = uploadKey(name, exceptFile);
  for (const key of announced.keys()) if (key !== except && key.startsWith(prefix)) return true;
  return false;
}

/** The version write that names the tarball is durable: nothing of the upload is left to settle. */
export function forgetUpload(name: string, file: string): void {
  announced.delete(uploadKey(name, file));
}

/**
 * The body copy of a JSON publish's tarball (`_attachments[file].data`, the base64 string: 4/3 of
 * the tarball, in the V8 heap) is needed once: Verdaccio's handler decodes it into a Buffer and
 * streams that into the store (`stream.end(Buffer.from(data, 'base64')); stream.done()`), then
 * keeps the request body — string included — until the publish has answered, i.e. through the
 * tarball's fsync, the package lock and the version write. Twenty concurrent 5 MB publishes held
 * 20 × 7.6 MB of such dead strings at their peak (SPEC §9 burst RSS row). The entry runs the rest
 * of the request inside `runInPublish`, and the store's upload calls `releaseAttachment` when the
 * decoded bytes are in its stream: only then, only for that request's own attachment, and only
 * after the decode (the store never sees the string, so nothing it checks depends on it).
 */
interface PublishRequest {
  name: string;
  file: string;
  release(): void;
}

const inPublish = new AsyncLocalStorage<PublishRequest>();

/** Runs fn (the rest of a guarded JSON publish) so the store can drop the attachment's base64 once decoded. */
export function runInPublish<T>(name: string, file: string, attachment: Record<string, unknown>, fn: () => T): T {
  let held: Record<string, unknown> | null = attachment;
  const release = (): void => {
    if (held === null) return;
    // the object stays (Verdaccio checks `_attachments` is one key); only its 4/3-size string goes
    delete held.data;
    held = null;
  };
  return inPublish.run({ name, file, release }, fn);
}

/**
 * The tarball `file` of `name` is decoded and in the store's stream: if the current request is the
 * guarded publish of exactly that tarball, its body no longer holds the base64 copy. Elsewhere
 * (the legacy octet-stream upload, another package's tarball, no publish) it does nothing.
 */
export function releaseAttachment(name: string, file: string): void {
  const request = inPublish.getStore();
  if (request !== undefined && request.name === name && request.file === file) request.release();
}
