import diagnosticsChannel from 'node:diagnostics_channel';

/**
 * Verdaccio only logs a plugin that fails to load and starts anyway (for auth it even falls
 * back to htpasswd with open registration). Our plugins announce themselves here once fully
 * initialised; the start script listens and refuses to serve unless every configured part did.
 * diagnostics_channel is Node's own process-wide pub/sub, so no module state of ours is shared.
 */
export type RegistryPart = 'auth' | 'storage' | 'storage-http' | 'dashboard';

const CHANNEL_NAME = 'mycompany-registry:plugin-loaded';

export interface PluginAnnouncement {
  part: RegistryPart;
  detail: string;
}

export function announcePluginLoaded(part: RegistryPart, detail = ''): void {
  diagnosticsChannel.channel(CHANNEL_NAME).publish({ part, detail } satisfies PluginAnnouncement);
}

export function onPluginLoaded(listener: (announcement: PluginAnnouncement) => void): () => void {
  const handler = (message: unknown): void => listener(message as PluginAnnouncement);
  diagnosticsChannel.subscribe(CHANNEL_NAME, handler);
  return () => diagnosticsChannel.unsubscribe(CHANNEL_NAME, handler);
}
