/**
 * Process-local event bus, one per registry.lockb, so the storage and auth plugins can tell the
 * dashboard what happened without importing each other. Built on diagnostics_channel: it is
 * process-wide even if this module were loaded twice, and costs nothing without subscribers.
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import { resolve } from 'node:path';

export interface RegistryEvent {
  kind: 'publish' | 'unpublish' | 'dist-tag' | 'deprecate' | 'login' | 'logout' | 'token' | 'config' | 'upstream' | 'cache';
  time: number;
  name?: string;
  version?: string;
  user?: string;
  detail?: string;
}

export interface RegistryEventBus {
  emit(event: RegistryEvent): void;
  on(listener: (event: RegistryEvent) => void): () => void;
}

export function registryEvents(lockbPath: string): RegistryEventBus {
  const channel = diagnosticsChannel.channel(`mycompany-registry:events:${resolve(lockbPath)}`);
  return {
    emit(event) {
      if (channel.hasSubscribers) channel.publish(Object.freeze({ ...event }));
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
