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
 *     trusted_publishing: {...}  # CI providers, token_ttl, audiences (docs/trusted-publishing.md)
 * ```
 *
 * Relative paths are resolved against the folder of config.yaml (as verdaccio-htpasswd does).
 * Verdaccio 6 hands auth plugins the WHOLE config merged with this section, so the top-level
 * keys we need (`storage`, `registry_lockb`, `configPath`) are read from the same object.
 */
import { dirname, resolve } from 'node:path';
import { lockbPathFor } from '../registry-core/index';
import { AuthError } from './errors';
import { DEFAULT_PASSWORD_MIN_LENGTH } from './users';
import { parseTrustedPublishing, type TrustedPublishingSettings } from './oidc-exchange';

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
  throw new AuthError('ERR_AUTH_CONFIG', `auth.registry-auth.${key}: expected a duration like 7d, 12h, 30m or a number of seconds, got ${JSON.stringify(value)}`);
}

/*
 * Checked by hand rather than with zod: loading zod costs tens of milliseconds of cold start
 * (measured 50–300 ms on the 2-core box) for nine keys.
 */
function stringOption(section: Record<string, unknown>, key: string, fallback: string): string {
  const value = section[key];
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'string' || value.trim() === '') throw new AuthError('ERR_AUTH_CONFIG', `auth.registry-auth.${key}: expected a non-empty string, got ${JSON.stringify(value)}`);
  return value;
}

function integer(section: Record<string, unknown>, key: string, fallback: number, min: number, max: number): number {
  const value = section[key];
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new AuthError('ERR_AUTH_CONFIG', `auth.registry-auth.${key}: expected a whole number from ${min} to ${max}, got ${JSON.stringify(value)}`);
  }
  return value;
}

function nameList(section: Record<string, unknown>, key: string): string[] | undefined {
  const value = section[key];
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string' && item.length > 0)) {
    throw new AuthError('ERR_AUTH_CONFIG', `auth.registry-auth.${key}: expected a list of user names, got ${JSON.stringify(value)}`);
  }
  return value as string[];
}

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
  /** `trusted_publishing:` (docs/trusted-publishing.md) */
  trustedPublishing: TrustedPublishingSettings;
}

/**
 * `merged` is what Verdaccio passes as the plugin config (our section merged into the whole
 * config); `configPath` is the path of config.yaml (from the plugin options).
 */
export function readPluginSettings(merged: Record<string, unknown>, configPath: string | undefined): AuthPluginSettings {
  if (!configPath) throw new AuthError('ERR_AUTH_CONFIG', 'Verdaccio gave the auth plugin no config path; start it with -c config.yaml');
  const configDir = dirname(resolve(configPath));
  const file = stringOption(merged, 'file', './htpasswd');
  const keysDir = stringOption(merged, 'keys_dir', './keys');
  const storage = stringOption(merged, 'storage', './storage');
  const lockb = stringOption(merged, 'registry_lockb', '');
  return {
    configPath: resolve(configPath),
    configDir,
    htpasswdFile: resolve(configDir, file),
    maxUsers: integer(merged, 'max_users', 1000, -1, Number.MAX_SAFE_INTEGER),
    admins: nameList(merged, 'admins'),
    keysDir: resolve(configDir, keysDir),
    storageDir: resolve(configDir, storage),
    lockbPath: lockbPathFor(configDir, lockb), // the core's one rule (layout.ts)
    tokenTtlSeconds: parseDuration(merged.token_ttl ?? '7d', 'token_ttl'),
    generatedTokenTtlSeconds: parseDuration(merged.generated_token_ttl ?? '90d', 'generated_token_ttl'),
    passwordMinLength: integer(merged, 'password_min_length', DEFAULT_PASSWORD_MIN_LENGTH, 1, 72),
    bcryptRounds: integer(merged, 'bcrypt_rounds', 10, 4, 15),
    loginMaxFailures: integer(merged, 'login_max_failures', 5, 1, 1000),
    trustedPublishing: parseTrustedPublishing(merged.trusted_publishing, parseDuration),
  };
}
