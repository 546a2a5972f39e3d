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
