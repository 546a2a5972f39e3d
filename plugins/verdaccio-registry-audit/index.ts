/**
 * Verdaccio middleware plugin `registry-audit` (config.yaml: `middlewares: { registry-audit: {} }`).
 * Replaces Verdaccio's bundled `audit` middleware, which sends every audit to one hard-coded
 * public registry whatever the uplinks say, forwards the client's headers (its token, and a
 * `content-encoding` that does not match the body) and answers any failure with an empty 500 —
 * npm then prints "invalid json response body". Here the upstream is config.yaml's uplink
 * (upstream.ts) and every outcome is JSON (relay.ts).
 */
import type { Application } from 'express';
import { ConfigFile, bootMark, bootRegistry, explicitUpstreamError, hasFeature, sharedUpstream } from '../registry-core/index';
import { announcePluginLoaded } from '../registry-core/plugin-presence';
import { AUDIT_PATHS, createAuditRelay } from './relay';
import { auditUpstreamOf, type AuditUpstream } from './upstream';

interface Logger {
  warn(fields: object, message: string): void;
}

function loggerOf(options: unknown): Logger {
  const logger = (options as { logger?: unknown } | undefined)?.logger;
  if (typeof logger === 'object' && logger !== null && typeof (logger as { warn?: unknown }).warn === 'function') return logger as Logger;
  return { warn: () => undefined };
}

export default class RegistryAudit {
  /** The registry's one upstream (core sharedUpstream, also the storage part's): npm may still be answering. */
  readonly upstream: Promise<AuditUpstream | null>;
  readonly #logger: Logger;
  /** the live config bytes: OFFLINE set → audits are answered without contacting the upstream */
  readonly #config: ConfigFile;

  constructor(_pluginConfig: unknown, options: unknown) {
    const config = (options as { config?: unknown } | undefined)?.config;
    // The first of our plugins to load prepares registry.lockb/.env.local and arms the presence guard (idempotent).
    this.#logger = loggerOf(options);
    const state = bootRegistry(config, process.env);
    this.#config = ConfigFile.open(state.lockbPath);
    // a broken (or self-referencing) upstream entry stops start-up (the presence guard names this part) instead of failing every audit
    const problem = explicitUpstreamError(config, process.env, state.registryUrl);
    if (problem !== null) throw new Error(`registry-audit: ${problem}`);
    this.upstream = sharedUpstream(state.lockbPath, config, process.env, state.registryUrl).then((resolution) => {
      const choice = auditUpstreamOf(resolution);
      return choice.ok ? choice.upstream : null;
    });
    announcePluginLoaded('audit', 'relays to the upstream (docs/upstream.md)');
  }

  register_middlewares(app: Application): void {
    const warn = (text: string): void => this.#logger.warn({ detail: text }, 'registry-audit: @{detail}');
    let relay: ReturnType<typeof createAuditRelay> | undefined;
    const ready = this.upstream.then((upstream) => {
      relay = createAuditRelay({ upstream, warn, offline: () => hasFeature(this.#config.getConfig().fields, 'OFFLINE') });
      bootMark(upstream ? `audit: npm audit relayed to ${upstream.name} (${upstream.url})` : 'audit: no upstream — npm audit answers a clear 501 error');
    });
    for (const path of AUDIT_PATHS) {
      app.post(path, (req, res, next) => {
        if (relay) relay(req, res, next);
        else void ready.then(() => relay?.(req, res, next));
      });
    }
  }
}
