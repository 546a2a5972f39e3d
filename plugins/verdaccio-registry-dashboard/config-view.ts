/**
 * The docs/http-api.md config document (GET /_dashboard/api/config and every WebSocket `config` message):
 * the core's view of the 13 bytes plus what they mean for tokens (issuer, algorithm), the env
 * export and the registry URL they were hashed from. Built once per (snapshot, URL) and reused,
 * so a GET or a broadcast to many sockets costs one JSON.stringify per change, not per reader.
 */
import {
  describeConfig,
  exportEnv,
  getIssuer,
  getTokenAlgorithm,
  registryUrlMatches,
  type ConfigFields,
  type ConfigSnapshot,
  type ConfigView,
} from '../registry-core/index';

export interface DashboardConfig extends ConfigView {
  issuer: { url: string; alg: 'EdDSA' | 'RS256'; kind: 'private' | 'local' | 'public' };
  env: string;
  registryUrl: string;
  /** false when `.env.local`'s URL does not hash to the file's registryHash: the page warns. */
  urlMatchesHash: boolean;
}

export function buildDashboardConfig(fields: ConfigFields, registryUrl: string, view: ConfigView = describeConfig(fields)): DashboardConfig {
  const issuer = getIssuer(fields, registryUrl);
  return {
    ...view,
    issuer: { url: issuer.url, alg: getTokenAlgorithm(fields), kind: issuer.kind },
    env: exportEnv(fields, registryUrl),
    registryUrl,
    urlMatchesHash: registryUrlMatches(fields, registryUrl),
  };
}

export interface RenderedConfig {
  readonly value: DashboardConfig;
  /** `JSON.stringify(value)` */
  readonly json: string;
  /** `JSON.stringify({ type: 'config', ...value })` — the WebSocket message */
  readonly message: string;
}

/** Memo of the last rendering: snapshots are immutable, so identity + URL is a complete key. */
export class ConfigRenderer {
  #snapshot: ConfigSnapshot | undefined;
  #url: string | undefined;
  #rendered: RenderedConfig | undefined;

  render(snapshot: ConfigSnapshot, registryUrl: string): RenderedConfig {
    if (this.#rendered && this.#snapshot === snapshot && this.#url === registryUrl) return this.#rendered;
    const value = buildDashboardConfig(snapshot.fields, registryUrl, snapshot.view);
    const json = JSON.stringify(value);
    this.#rendered = { value, json, message: `{"type":"config",${json.slice(1)}` };
    this.#snapshot = snapshot;
    this.#url = registryUrl;
    return this.#rendered;
  }
}
