/**
 * The dashboard's wire shapes (docs/http-api.md) as zod schemas: everything the server sends is checked
 * once here, so the rest of the client works with typed values and never with `unknown`.
 */
import { z } from 'zod';

const flagsSchema = z.object({ PREMIUM_TYPES: z.boolean(), PRIVATE_REGISTRY: z.boolean(), DEBUG: z.boolean(), OFFLINE: z.boolean() });

/** GET /_dashboard/api/config and the WebSocket `config` message (extra members are kept). */
export const configViewSchema = z.looseObject({
  hex: z.string().regex(/^[0-9a-f]{24}$/, 'hex must be 24 lowercase hex chars (bytes 4..15)'),
  check: z.string().regex(/^[0-9a-f]{2}$/, 'check must be 2 lowercase hex chars'),
  fields: z.object({
    version: z.number().int(),
    registryHash: z.string(),
    featureFlags: z.number().int(),
    terminalMode: z.string(),
    rows: z.number().int(),
    cols: z.number().int(),
  }),
  flags: flagsSchema,
  issuer: z.looseObject({ url: z.string(), alg: z.string() }).optional(),
  env: z.string().optional(),
  registryUrl: z.string().optional(),
});
export type ServerConfig = z.infer<typeof configViewSchema>;

export const packageSummarySchema = z.object({
  name: z.string(),
  versions: z.array(z.string()),
  distTags: z.record(z.string(), z.string()),
  time: z.string(),
  /** local = published here, cached = a copy of the upstream's (docs/offline-and-warm.md); absent from older servers */
  source: z.enum(['local', 'cached']).optional(),
});
export type PackageInfo = z.infer<typeof packageSummarySchema>;

/** GET /_dashboard/api/upstream (docs/offline-and-warm.md). */
export const upstreamViewSchema = z.union([
  z.looseObject({
    available: z.literal(true),
    url: z.string().nullable(),
    offline: z.boolean(),
    lastSuccess: z.number().nullable(),
    lastFailure: z.object({ time: z.number(), error: z.string() }).nullable(),
    latencyMs: z.number().nullable(),
    cachedPackages: z.number().int().nonnegative(),
    cachedBytes: z.number().nonnegative(),
  }),
  z.looseObject({ available: z.literal(false), reason: z.string().optional() }),
]);
export type UpstreamView = z.infer<typeof upstreamViewSchema>;
export const packagesResponseSchema = z.object({ packages: z.array(packageSummarySchema) });

export const eventMessageSchema = z.looseObject({
  type: z.literal('event'),
  kind: z.string(),
  time: z.number().optional(),
  name: z.string().optional(),
  version: z.string().optional(),
  user: z.string().optional(),
  detail: z.string().optional(),
  /** publish: the dist-tags the same write set (one event per publish) */
  tags: z.array(z.string()).optional(),
});
export type EventMessage = z.infer<typeof eventMessageSchema>;

export const outputMessageSchema = z.looseObject({
  type: z.literal('output'),
  ok: z.boolean(),
  text: z.string(),
  id: z.union([z.string(), z.number()]).optional(),
});
export type OutputMessage = z.infer<typeof outputMessageSchema>;

export const authMessageSchema = z.looseObject({
  type: z.literal('auth'),
  ok: z.boolean(),
  user: z.string().nullable().optional(),
  admin: z.boolean().optional(),
  error: z.string().optional(),
});
export type AuthMessage = z.infer<typeof authMessageSchema>;

export const historyMessageSchema = z.looseObject({
  type: z.literal('history'),
  events: z.array(eventMessageSchema),
});

const activityTotalsSchema = z.object({ publishes: z.number().nonnegative(), downloads: z.number().nonnegative(), requests: z.number().nonnegative() });

/** GET /_dashboard/api/activity and the socket's `activity` message (issue 15.7). */
export const activitySchema = z.looseObject({
  bucketSeconds: z.number().positive(),
  now: z.string(),
  buckets: z.array(activityTotalsSchema.extend({ start: z.string() })),
  totals: activityTotalsSchema,
  storage: z.looseObject({ localBytes: z.number().nonnegative(), cachedBytes: z.number().nonnegative(), files: z.number().int().nonnegative() }).nullable(),
});
export type ActivityView = z.infer<typeof activitySchema>;

const versionViewSchema = z.looseObject({
  version: z.string(),
  time: z.string().nullable(),
  publisher: z.string().nullable(),
  integrity: z.string().nullable(),
  tarballBytes: z.number().nullable(),
  unpackedSize: z.number().nullable(),
  deprecated: z.string().optional(),
  tags: z.array(z.string()),
});

/** GET /_dashboard/api/package?name= (issue 15.7; the readme stays on the page). */
export const packageViewSchema = z.looseObject({
  name: z.string(),
  source: z.enum(['local', 'cached']),
  description: z.string().nullable(),
  license: z.string().nullable(),
  distTags: z.record(z.string(), z.string()),
  shown: z.string().nullable(),
  maintainers: z.array(z.looseObject({ name: z.string() })),
  versions: z.array(versionViewSchema),
  dependencies: z.looseObject({ dependencies: z.record(z.string(), z.string()), peerDependencies: z.record(z.string(), z.string()) }),
});
export type PackageDetail = z.infer<typeof packageViewSchema>;

export type ServerMessage =
  | { type: 'config'; config: ServerConfig }
  | { type: 'history'; events: EventMessage[] }
  | { type: 'auth'; auth: AuthMessage }
  | { type: 'pong' }
  | { type: 'event'; event: EventMessage }
  | { type: 'output'; output: OutputMessage }
  | { type: 'error'; error: string }
  | { type: 'activity'; activity: ActivityView }
  | { type: 'other'; kind: string; raw: Record<string, unknown> };

/** Parses one WebSocket frame. Throws with a readable message when the frame is not valid. */
export function parseServerMessage(text: string): ServerMessage {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new Error(`server sent a frame that is not JSON: ${text.slice(0, 80)}`);
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) throw new Error('server sent a frame that is not a JSON object');
  const record = data as Record<string, unknown>;
  switch (record.type) {
    case 'config':
      return { type: 'config', config: check(configViewSchema, record, 'config') };
    case 'event':
      return { type: 'event', event: check(eventMessageSchema, record, 'event') };
    case 'output':
      return { type: 'output', output: check(outputMessageSchema, record, 'output') };
    case 'history':
      return { type: 'history', events: check(historyMessageSchema, record, 'history').events };
    case 'auth':
      return { type: 'auth', auth: check(authMessageSchema, record, 'auth answer') };
    case 'pong':
      return { type: 'pong' };
    case 'activity':
      return { type: 'activity', activity: check(activitySchema, record, 'activity') };
    case 'error':
      return { type: 'error', error: typeof record.error === 'string' ? record.error : JSON.stringify(record) };
    default:
      return { type: 'other', kind: String(record.type), raw: record };
  }
}

export function check<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const result = schema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new Error(`server sent an invalid ${what}: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  return result.data;
}

/** The 13 config bytes (offsets 4..16) of a view, as numbers. */
export function configBytes(config: Pick<ServerConfig, 'hex' | 'check'>): number[] {
  const bytes: number[] = [];
  for (let i = 0; i < 24; i += 2) bytes.push(parseInt(config.hex.slice(i, i + 2), 16));
  bytes.push(parseInt(config.check, 16));
  return bytes;
}
