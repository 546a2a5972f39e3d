/**
 * The dashboard's side of the 13 bytes: the current document, the three write operations of
 * docs/http-api.md, and the CommandContext the shared command language runs against. All writes go
 * through core ConfigFile's locked `update`/`toggleFeature`, so the dashboard, the terminal and
 * `npm run config` in another process never lose each other's changes.
 */
import {
  CONFIG_FIELD_ORDER,
  describeConfigChange,
  hashRegistryUrl,
  normalizeRegistryUrl,
  readRegistryUrl,
  setEnvFileValue,
  validateFields,
  withByte,
  withFeatureToggled,
  currentRequestActor,
  type RequestActor,
  type CommandContext,
  type ConfigFields,
  type ConfigFile,
  type ConfigSnapshot,
  type PackageSummary,
} from '../registry-core/index';
import { ConfigRenderer, type RenderedConfig } from './config-view';
import type { ConfigOperation } from './requests';

/** What changed and, when it was this process's dashboard or terminal socket, who did it. */
export interface ConfigChange {
  detail: string;
  user?: string;
  /** the request's address and token id (core request context), when this process made the change */
  address?: string;
  tokenId?: string;
}

type ConfigWriter = Pick<ConfigFile, 'getConfig' | 'update' | 'toggleFeature'>;

export class ConfigService {
  readonly config: ConfigFile;
  readonly envFile: string;
  readonly #renderer = new ConfigRenderer();
  /**
   * Set inside the locked critical section, right before the write it describes, and consumed
   * by the (synchronous) change notification of that write: so a change another process made
   * meanwhile is never attributed to our user.
   */
  #actor: string | undefined;
  #context: RequestActor | undefined;

  constructor(config: ConfigFile, envFile: string) {
    this.config = config;
    this.envFile = envFile;
  }

  /** `.env.local` is the one source of truth for the URL inside the server (start.ts writes it). */
  registryUrl(): string {
    return readRegistryUrl(this.envFile);
  }

  current(snapshot: ConfigSnapshot = this.config.getConfig()): RenderedConfig {
    return this.#renderer.render(snapshot, this.registryUrl());
  }

  /** Locked read-modify-write on behalf of `actor` (a user name, or undefined for anonymous/system). */
  async update(mutate: (fields: ConfigFields) => ConfigFields, actor?: string): Promise<ConfigSnapshot> {
    try {
      return await this.config.update((current) => {
        const next = mutate(current);
        validateFields(next);
        this.#actor = sameFields(current, next) ? undefined : actor;
        this.#context = this.#actor === undefined ? undefined : currentRequestActor();
        return next;
      });
    } finally {
      this.#actor = undefined;
      this.#context = undefined;
    }
  }

  async apply(operation: ConfigOperation, actor?: string): Promise<RenderedConfig> {
    switch (operation.op) {
      case 'setByte': {
        const { offset, value } = operation;
        return this.current(await this.update((fields) => withByte(fields, offset, value), actor));
      }
      case 'toggleFeature': {
        const { flag } = operation;
        return this.current(await this.update((fields) => withFeatureToggled(fields, flag), actor));
      }
      case 'setRegistryUrl':
        await this.setRegistryUrl(operation.url, actor);
        return this.current();
    }
  }

  /**
   * The env file first, THEN the hash: watchers react to the hash change and read the URL from
   * the file, so by the time they look the file already holds the new URL.
   */
  async setRegistryUrl(url: string, actor?: string): Promise<void> {
    const normalized = normalizeRegistryUrl(url);
    setEnvFileValue(this.envFile, 'BUN_REGISTRY_URL', normalized);
    const registryHash = hashRegistryUrl(normalized);
    await this.update((fields) => ({ ...fields, registryHash }), actor);
  }

  /** Every change from any source (this process at once, other processes within ~100 ms). */
  watch(listener: (rendered: RenderedConfig, change: ConfigChange) => void): () => void {
    return this.config.watchConfig((next, prev) => {
      const change: ConfigChange = { detail: describeConfigChange(prev.fields, next.fields) };
      if (this.#actor !== undefined) change.user = this.#actor;
      if (this.#context?.address) change.address = this.#context.address;
      if (this.#context?.tokenId) change.tokenId = this.#context.tokenId;
      this.#actor = undefined;
      this.#context = undefined;
      listener(this.current(next), change);
    });
  }

  /** The shared command language runs against this, so its writes are attributed and locked like the API's. */
  commandContext(actor: string | undefined, listPackages: () => Promise<PackageSummary[]>): CommandContext {
    const config: ConfigWriter = {
      getConfig: () => this.config.getConfig(),
      update: (mutate) => this.update(mutate, actor),
      toggleFeature: (flag) => this.update((fields) => withFeatureToggled(fields, flag), actor),
    };
    return {
      config,
      registryUrl: () => this.registryUrl(),
      setRegistryUrl: (url) => this.setRegistryUrl(url, actor),
      listPackages,
    };
  }
}

function sameFields(a: ConfigFields, b: ConfigFields): boolean {
  return CONFIG_FIELD_ORDER.every((field) => a[field] === b[field]);
}
