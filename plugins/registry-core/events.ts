/**
 * Process-local event bus, one per registry.lockb, so the storage and auth plugins can tell the
 * dashboard (and the audit trail, docs/audit.md) what happened without importing each other.
 * Built on diagnostics_channel: it is process-wide even if this module were loaded twice, and
 * costs nothing without subscribers.
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import { resolve } from 'node:path';
import { currentRequestActor } from './request-context';

export interface RegistryEvent {
  kind: 'publish' | 'unpublish' | 'dist-tag' | 'deprecate' | 'login' | 'logout' | 'token' | 'config' | 'owner' | 'upstream' | 'cache';
  time: number;
  name?: string;
  version?: string;
  /** whom the event is about (the publisher, the user who logged in, the token's owner) */
  user?: string;
  detail?: string;
  /** who did it: the authenticated user of the request (filled from the request context when the producer does not say) */
  actor?: string;
  /** the peer address of the request */
  address?: string;
  /** the jti of the token the request was authenticated with */
  tokenId?: string;
  /**
   * 'remote': another node made this change (the PostgreSQL backend's index mirror replays the
   * shared index, docs/database.md); that node's audit trail has recorded it already.
   */
  origin?: 'remote';
}

export interface RegistryEventBus {
  emit(event: RegistryEvent): void;
  on(listener: (event: RegistryEvent) => void): () => void;
}

/**
 * Actor, address and token id come from the request the event happens in (core
 * request-context, set by the auth plugin's middleware); what a producer states explicitly wins.
 */
export function enrichEvent(event: RegistryEvent): RegistryEvent {
  const context = currentRequestActor();
  if (context === undefined) return event;
  const enriched: RegistryEvent = { ...event };
  if (enriched.actor === undefined && context.user !== null) enriched.actor = context.user;
  if (enriched.address === undefined && context.address !== null) enriched.address = context.address;
  if (enriched.tokenId === undefined && context.tokenId !== null) enriched.tokenId = context.tokenId;
  return enriched;
}

export function registryEvents(lockbPath: string): RegistryEventBus {
  const channel = diagnosticsChannel.channel(`mycompany-registry:events:${resolve(lockbPath)}`);
  return {
    emit(event) {
      if (channel.hasSubscribers) channel.publish(Object.freeze(enrichEvent(event)));
    },
    on(listener) {
      // diagnostics_channel rethrows a subscriber's error as an uncaught exception: contain it here.
      const handler = (message: unknown): void => {
        try {
          listener(message as RegistryEvent);
        } catch (error) {
          process.emitWarning(`registry-core: event listener threw: ${error instanceof Error ? error.message : String(error)}`);
        }
      };
      channel.subscribe(handler);
      return () => {
        channel.unsubscribe(handler);
      };
    },
  };
}

/**
 * For the upstream part: a version (tarball) or packument was cached from the upstream. Emitted
 * on the bus like every other mutation, so the audit trail records it with the request's actor,
 * address and token id (docs/audit.md, kind `cache`).
 */
export function announceCacheFill(lockbPath: string, fill: { name: string; version?: string; detail?: string }): void {
  registryEvents(lockbPath).emit({ kind: 'cache', time: Date.now(), ...fill });
}
