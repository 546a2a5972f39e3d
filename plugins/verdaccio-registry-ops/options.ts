/**
 * `middlewares: { registry-ops: { … } }` options (prefixed: Verdaccio merges the whole config
 * into a plugin's config). Who may read `GET /-/metrics` (docs/operations.md):
 *
 *   (default)                  loopback only: the peer is 127.0.0.0/8 or ::1 AND the request
 *                              carries no Forwarded / X-Forwarded-For header (a reverse proxy
 *                              on the same host would otherwise make every client "local")
 *   metrics_token: <secret>    `Authorization: Bearer <secret>` from anywhere, nothing else;
 *                              the environment variable REGISTRY_METRICS_TOKEN overrides it
 *   metrics_public: true       anyone (the numbers carry no secrets, but route and user counts
 *                              tell a lot about a private registry: say so on purpose)
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';

export type MetricsAccess = { kind: 'loopback' } | { kind: 'token'; digest: Buffer } | { kind: 'public' };

export interface OpsOptions {
  metrics: MetricsAccess;
}

export const METRICS_TOKEN_ENV = 'REGISTRY_METRICS_TOKEN';
const MIN_TOKEN_LENGTH = 16;

function digestOf(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

export function parseOpsOptions(pluginConfig: unknown, env: Record<string, string | undefined>): OpsOptions {
  const config = (pluginConfig ?? {}) as Record<string, unknown>;
  const fromEnv = env[METRICS_TOKEN_ENV];
  const token = fromEnv !== undefined && fromEnv !== '' ? fromEnv : config.metrics_token;
  const open = config.metrics_public;
  if (open !== undefined && open !== null && typeof open !== 'boolean') {
    throw new Error(`registry-ops: \`metrics_public\` must be true or false (got ${JSON.stringify(open)})`);
  }
  if (token !== undefined && token !== null) {
    if (typeof token !== 'string' || token.length < MIN_TOKEN_LENGTH || /\s/.test(token)) {
      throw new Error(`registry-ops: \`metrics_token\` (or ${METRICS_TOKEN_ENV}) must be a string of at least ${MIN_TOKEN_LENGTH} characters without spaces`);
    }
    if (open === true) throw new Error('registry-ops: set either `metrics_token` or `metrics_public: true`, not both');
    return { metrics: { kind: 'token', digest: digestOf(token) } };
  }
  return { metrics: open === true ? { kind: 'public' } : { kind: 'loopback' } };
}

export function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  const plain = address.startsWith('::ffff:') ? address.slice(7) : address;
  if (isIP(plain) === 4) return plain.startsWith('127.');
  return plain === '::1';
}

export interface MetricsRequest {
  peerAddress: string | undefined;
  headers: Record<string, string | string[] | undefined>;
}

/** null = allowed; else the status and the error text to answer. */
export function metricsRefusal(access: MetricsAccess, request: MetricsRequest): { status: 401 | 403; error: string } | null {
  switch (access.kind) {
    case 'public':
      return null;
    case 'token': {
      const header = request.headers.authorization;
      const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
      if (!match) return { status: 401, error: 'metrics need `Authorization: Bearer <metrics_token>`' };
      return timingSafeEqual(digestOf(match[1]), access.digest) ? null : { status: 403, error: 'wrong metrics token' };
    }
    case 'loopback': {
      const proxied = request.headers.forwarded !== undefined || request.headers['x-forwarded-for'] !== undefined;
      if (isLoopback(request.peerAddress) && !proxied) return null;
      return { status: 403, error: 'metrics are served to loopback clients only; set `metrics_token` (or metrics_public: true) under middlewares.registry-ops in config.yaml' };
    }
  }
}
