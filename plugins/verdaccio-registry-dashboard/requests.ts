/**
 * The shapes clients may send: POST /_dashboard/api/config bodies (docs/http-api.md) and WebSocket
 * messages. Strict objects: an unknown key is an error, not something silently ignored, so a
 * typo ("flags" for "flag") is reported instead of doing nothing.
 */
import { z } from 'zod';
import { FEATURE_FLAGS, type FeatureFlag } from '../registry-core/index';
import { AUDIT_MAX_LIMIT, MAX_BODY_BYTES, MAX_FILTER_LENGTH, MAX_PAGE_SIZE, MAX_URL_LENGTH } from './request-limits';

export { AUDIT_DEFAULT_LIMIT, AUDIT_MAX_LIMIT, MAX_BODY_BYTES, MAX_FILTER_LENGTH, MAX_PAGE_SIZE, MAX_URL_LENGTH } from './request-limits';

const FLAG_NAMES = Object.keys(FEATURE_FLAGS) as [FeatureFlag, ...FeatureFlag[]];

/** `7`, `"7"`, `null`, `an array` — for error messages; long inputs are cut. */
export function describeValue(input: unknown): string {
  if (input === undefined) return 'nothing';
  if (Array.isArray(input)) return 'an array';
  if (typeof input === 'object' && input !== null) return 'an object';
  const text = typeof input === 'string' ? JSON.stringify(input) : String(input);
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

const integer = (name: string, min: number, max: number, meaning: string) => {
  const expected = `${name} must be an integer ${min}..${max}${meaning}`;
  const problem = (issue: { input?: unknown }): string =>
    issue.input === undefined ? `${name} is required (an integer ${min}..${max}${meaning})` : `${expected}, got ${describeValue(issue.input)}`;
  return z.number({ error: problem }).int({ error: problem }).min(min, { error: problem }).max(max, { error: problem });
};

export const ConfigOperation = z.discriminatedUnion(
  'op',
  [
    z.strictObject({
      op: z.literal('setByte'),
      offset: integer('offset', 4, 15, '; 0..3 are the magic, 16 is the check byte and is computed'),
      value: integer('value', 0, 255, ', one byte'),
    }),
    z.strictObject({
      op: z.literal('toggleFeature'),
      flag: z.enum(FLAG_NAMES, { error: `flag must be one of ${FLAG_NAMES.join(', ')}` }),
    }),
    z.strictObject({
      op: z.literal('setRegistryUrl'),
      url: z
        .string({ error: 'url must be a string' })
        .min(1, { error: 'url must not be empty' })
        .max(MAX_URL_LENGTH, { error: `url must be at most ${MAX_URL_LENGTH} characters` }),
    }),
  ],
  { error: 'op must be one of setByte, toggleFeature, setRegistryUrl' },
);
export type ConfigOperation = z.infer<typeof ConfigOperation>;

const requestId = z.union([z.string().max(64), z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)]).optional();

export const ClientMessage = z.discriminatedUnion(
  'type',
  [
    z.strictObject({ type: z.literal('auth'), token: z.string().min(1, { error: 'token must not be empty' }).max(MAX_BODY_BYTES) }),
    z.strictObject({ type: z.literal('command'), line: z.string().max(MAX_BODY_BYTES), id: requestId }),
    z.strictObject({ type: z.literal('ping'), id: requestId }),
  ],
  { error: 'type must be one of auth, command, ping' },
);
export type ClientMessage = z.infer<typeof ClientMessage>;

/** A query parameter given at most once and at most `max` characters; '' counts as absent. */
const singleQuery = (key: string, max: number) =>
  z
    .string({ error: `${key} must be a single string` })
    .max(max, { error: `${key} must be at most ${max} characters` })
    .optional()
    .transform((value) => (value === '' ? undefined : value));

/** A whole-number query parameter in [min, max], given at most once; absent stays undefined. */
const wholeNumberQuery = (key: string, min: number, max: number) =>
  singleQuery(key, 10)
    .refine((raw) => raw === undefined || (/^[0-9]+$/.test(raw) && Number(raw) >= min && Number(raw) <= max), {
      error: `${key} must be a whole number from ${min} to ${max}`,
    })
    .transform((raw) => (raw === undefined ? undefined : Number(raw)));

/** `GET /_dashboard/api/packages?q=&offset=&limit=` (other parameters are ignored, as they always were). */
export const PackagesQuery = z.looseObject({
  q: singleQuery('q', MAX_FILTER_LENGTH),
  offset: wholeNumberQuery('offset', 0, 1_000_000_000),
  limit: wholeNumberQuery('limit', 1, MAX_PAGE_SIZE),
});

/** `GET /_dashboard/api/package?name=` */
export const PackageQuery = z.looseObject({ name: singleQuery('name', MAX_FILTER_LENGTH) });

/** `GET /_dashboard/api/audit?package=&user=&limit=` */
export const AuditQuery = z.looseObject({
  package: singleQuery('package', MAX_FILTER_LENGTH),
  user: singleQuery('user', 100),
  limit: singleQuery('limit', 5).refine((limit) => limit === undefined || (/^[0-9]+$/.test(limit) && Number(limit) >= 1 && Number(limit) <= AUDIT_MAX_LIMIT), {
    error: `limit must be a whole number from 1 to ${AUDIT_MAX_LIMIT}`,
  }),
});

/** One sentence naming the first problem, e.g. `offset must be an integer 4..15 …, got 16` or `unknown key "flags"`. */
export function describeIssues(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return 'invalid request';
  if (issue.code === 'unrecognized_keys') {
    return `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((key) => JSON.stringify(key)).join(', ')}`;
  }
  if (issue.path.length === 0 && issue.code === 'invalid_type') return 'body must be a JSON object';
  const field = issue.path.join('.');
  if (!field || issue.message.startsWith(`${field} `)) return issue.message;
  return `${field}: ${issue.message}`;
}
