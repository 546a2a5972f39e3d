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
 * process: `<name>\0<file>` → expiry. The store uses it for what only such a publish allows —
 * the tarball's attachment registration and its folder fsync go into the one packument write of
 * the version that follows in the same request (PackageService.updatePackage). A tarball that
 * is not announced (the legacy `PUT /:package/-/:file` upload, acknowledged by itself) is
 * registered and made durable at once, as before.
 */
const announced = new Map<string, number>();
const ANNOUNCE_TTL_MS = 10 * 60_000;

function uploadKey(name: string, file: string): string {
  return `${name}\0${file}`;
}

export function announceUpload(name: string, file: string): void {
  const now = Date.now();
  if (announced.size > 1_000) for (const [key, expires] of announced) if (expires < now) announced.delete(key);
  announced.set(uploadKey(name, file), now + ANNOUNCE_TTL_MS);
}

export function isAnnouncedUpload(name: string, file: string): boolean {
  const expires = announced.get(uploadKey(name, file));
  return expires !== undefined && expires >= Date.now();
}

export function forgetUpload(name: string, file: string): void {
  announced.delete(uploadKey(name, file));
}
