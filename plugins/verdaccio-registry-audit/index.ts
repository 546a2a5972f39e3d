/**
 * Verdaccio middleware plugin `registry-audit` (config.yaml: `middlewares: { registry-audit: {} }`).
 * Replaces Verdaccio's bundled `audit` middleware, which sends every audit to one hard-coded
 * public registry whatever the uplinks say, forwards the client's headers (its token, and a
 * `content-encoding` that does not match the body) and answers any failure with an empty 500 —
 * npm then prints "invalid json response body". Here the upstream is config.yaml's uplink
 * (upstream.ts) and every outcome is JSON (relay.ts).
 */
import type { Application } from 'express';
import { bootMark, bootRegistry } from '../registry-core/index';
import { announcePluginLoaded } from '../registry-core/plugin-presence';
import { AUDIT_PATHS, createAuditRelay } from './relay';
import { chooseUpstream, type AuditUpstream } from './upstream';

interface Logger {
  warn(fields: object, message: string): void;
}

function loggerOf(options: unknown): Logger {
  const logger = (options as { logger?: unknown } | undefined)?.logger;
  if (typeof logger === 'object' && logger !== null && typeof (logger as { warn?: unknown }).warn === 'function') return logger as Logger;
  return { warn: () => undefined };
}

export default class RegistryAudit {
  readonly upstream: AuditUpstream | null;
  readonly #logger: Logger;

  constructor(_pluginConfig: unknown, options: unknown) {
    const config = (options as { config?: unknown } | undefined)?.config;
    // The first of our plugins to load prepares registry.lockb/.env.local and arms the presence guard (idempotent).
    bootRegistry(config, process.env);
    this.#logger = loggerOf(options);
    const uplinks = typeof config === 'object' && config !== null ? (config as { uplinks?: unknown }).uplinks : undefined;
    const choice = chooseUpstream(uplinks, process.env);
    // a broken uplink entry stops start-up (the presence guard names this part) instead of failing every audit
    if (!choice.ok) throw new Error(`registry-audit: ${choice.error}`);
    this.upstream = choice.upstream;
    announcePluginLoaded('audit', this.upstream ? `relays to ${this.upstream.name}` : 'no upstream');
  }

  register_middlewares(app: Application): void {
    const relay = createAuditRelay({ upstream: this.upstream, warn: (text) => this.#logger.warn({ detail: text }, 'registry-audit: @{detail}') });
    for (const path of AUDIT_PATHS) app.post(path, relay);
    bootMark(this.upstream ? `audit: npm audit relayed to uplink ${this.upstream.name} (${this.upstream.url})` : 'audit: no uplinks — npm audit answers a clear 501 error');
  }
}
