/**
 * The plugin's own section of config.yaml, validated once at start-up:
 *
 * ```yaml
 * auth:
 *   registry-auth:
 *     file: ./htpasswd          # users (htpasswd format, bcrypt)
 *     max_users: 1000           # -1 = registration closed
 *     admins: [alice]           # default: the first user in the file
 *     keys_dir: ./keys          # default: <config dir>/keys
 *     token_ttl: 7d             # npm login / POST /_auth/token
 *     generated_token_ttl: 90d  # npm token create without --expires
 *     password_min_length: 8
 *     bcrypt_rounds: 10
 *     login_max_failures: 5     # per username + IP per minute, then 429 (doubling lock-outs)
 * ```
 *
 * Relative paths are resolved against the folder of config.yaml (as verdaccio-htpasswd does).
 * Verdaccio 6 hands auth plugins the WHOLE config merged with this section, so the top-level
 * keys we need (`storage`, `registry_lockb`, `configPath`) are read from the same object.
 */
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { AuthError } from './errors';
import { DEFAULT_PASSWORD_MIN_LENGTH } from './users';

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };

/** `90d`, `12h`, `30m`, `45s`, `2w` or a number of seconds → seconds. */
export function parseDuration(value: unknown, key: string): number {
  if (typeof value === 'number' && Number.isInteger(value) && value > 0) return value;
  if (typeof value === 'string') {
    const match = /^\s*(\d+)\s*([smhdw]?)\s*$/.exec(value);
    if (match) {
      const seconds = Number(match[1]) * UNITS[match[2] || 's'];
      if (seconds > 0) return seconds;
    }
  }
  throw new AuthError('ERR_AUTH_CONFIG', `${key}: expected a duration like 7d, 12h, 30m or a number of seconds, got ${JSON.stringify(value)}`);
}

const duration = z.union([z.string(), z.number()]).optional();

const sectionSchema = z.object({
  file: z.string().min(1).default('./htpasswd'),
  max_users: z.number().int().min(-1).default(1000),
  admins: z.array(z.string().min(1)).optional(),
  keys_dir: z.string().min(1).optional(),
  token_ttl: duration,
  generated_token_ttl: duration,
  password_min_length: z.number().int().min(1).max(72).default(DEFAULT_PASSWORD_MIN_LENGTH),
  bcrypt_rounds: z.number().int().min(4).max(15).default(10),
  login_max_failures: z.number().int().min(1).max(1000).default(5),
  storage: z.string().min(1).default('./storage'),
  registry_lockb: z.string().min(1).optional(),
});

export interface AuthPluginSettings {
  configPath: string;
  configDir: string;
  htpasswdFile: string;
  maxUsers: number;
  admins: string[] | undefined;
  keysDir: string;
  storageDir: string;
  lockbPath: string;
  tokenTtlSeconds: number;
  generatedTokenTtlSeconds: number;
  passwordMinLength: number;
  bcryptRounds: number;
  loginMaxFailures: number;
}

/**
 * `merged` is what Verdaccio passes as the plugin config (our section merged into the whole
 * config); `configPath` is the path of config.yaml (from the plugin options).
 */
export function readPluginSettings(merged: Record<string, unknown>, configPath: string | undefined): AuthPluginSettings {
  if (!configPath) throw new AuthError('ERR_AUTH_CONFIG', 'Verdaccio gave the auth plugin no config path; start it with -c config.yaml');
  const parsed = sectionSchema.safeParse(merged);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new AuthError('ERR_AUTH_CONFIG', `auth.registry-auth.${issue.path.join('.')}: ${issue.message}`);
  }
  const section = parsed.data;
  const configDir = dirname(resolve(configPath));
  return {
    configPath: resolve(configPath),
    configDir,
    htpasswdFile: resolve(configDir, section.file),
    maxUsers: section.max_users,
    admins: section.admins,
    keysDir: resolve(configDir, section.keys_dir ?? './keys'),
    storageDir: resolve(configDir, section.storage),
    lockbPath: resolve(configDir, section.registry_lockb ?? './registry.lockb'),
    tokenTtlSeconds: parseDuration(section.token_ttl ?? '7d', 'token_ttl'),
    generatedTokenTtlSeconds: parseDuration(section.generated_token_ttl ?? '90d', 'generated_token_ttl'),
    passwordMinLength: section.password_min_length,
    bcryptRounds: section.bcrypt_rounds,
    loginMaxFailures: section.login_max_failures,
  };
}
