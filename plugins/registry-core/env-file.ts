/**
 * Reading `.env.local`: its dotenv syntax and the registry URL it holds. Apart from env.ts (which
 * re-exports all of this) so that `registry config get` (scripts/config-get.ts) reads the URL
 * without the export/import and atomic-write code it never runs.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { RegistryCoreError } from './errors';
import { LOCAL_REGISTRY_URL, normalizeRegistryUrl } from './registry-url';

export const ENV_FILE_NAME = '.env.local';

export const KEY_PATTERN = /^[A-Za-z_][A-Za-z0-9_.]*$/;

function unescapeDoubleQuoted(body: string): string {
  return body.replace(/\\([nrt"\\])/g, (_, c: string) => ({ n: '\n', r: '\r', t: '\t', '"': '"', '\\': '\\' })[c] ?? c);
}

/**
 * dotenv syntax: `KEY=VALUE`, optional `export `, `#` comment lines, `"double"` (with \n \" \\
 * escapes) or `'single'` (literal) quotes, ` # comment` after an unquoted value. A line that is
 * none of these is an error naming its line number — a typo must not be silently ignored.
 */
export function parseEnvText(text: string): Record<string, string> {
  const result: Record<string, string> = {};
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, index) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const match = /^(?:export\s+)?([^=\s]+)\s*=\s*(.*)$/.exec(line);
    if (!match || !KEY_PATTERN.test(match[1])) {
      throw new RegistryCoreError('ERR_ENV_VALUE', `line ${index + 1}: expected KEY=VALUE, got ${JSON.stringify(raw)}`, { field: `line ${index + 1}` });
    }
    const [, key, rest] = match;
    let value: string;
    const quote = rest[0];
    if (quote === '"' || quote === "'") {
      const end = quote === '"' ? findClosingDoubleQuote(rest) : rest.indexOf("'", 1);
      const after = end < 0 ? '' : rest.slice(end + 1).trim();
      if (end < 0 || (after !== '' && !after.startsWith('#'))) {
        throw new RegistryCoreError('ERR_ENV_VALUE', `line ${index + 1}: unterminated or trailing text after quoted value for ${key}`, { field: key });
      }
      const body = rest.slice(1, end);
      value = quote === '"' ? unescapeDoubleQuoted(body) : body;
    } else {
      value = rest.replace(/\s+#.*$/, '').trim();
    }
    result[key] = value;
  });
  return result;
}

function findClosingDoubleQuote(text: string): number {
  for (let i = 1; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === '"') return i;
  }
  return -1;
}

export function readEnvFile(envFile: string): Record<string, string> {
  if (!existsSync(envFile)) return {};
  try {
    return parseEnvText(readFileSync(envFile, 'utf8'));
  } catch (error) {
    if (error instanceof RegistryCoreError) {
      throw new RegistryCoreError('ERR_ENV_VALUE', `${envFile}: ${error.message}`, { field: error.field ?? 'envFile' });
    }
    throw error;
  }
}

interface UrlCacheEntry {
  ino: bigint;
  mtimeNs: bigint;
  size: bigint;
  url: string;
}
const urlCache = new Map<string, UrlCacheEntry>();

/**
 * BUN_REGISTRY_URL from the env file (default http://localhost:4873 when the file or the key is
 * absent), normalized. Cached by (inode, mtime, size): one stat per call. An invalid value throws.
 */
export function readRegistryUrl(envFile: string): string {
  const target = resolve(envFile);
  const stat = statSync(target, { bigint: true, throwIfNoEntry: false });
  if (!stat) {
    urlCache.delete(target);
    return LOCAL_REGISTRY_URL;
  }
  const cached = urlCache.get(target);
  if (cached && cached.ino === stat.ino && cached.mtimeNs === stat.mtimeNs && cached.size === stat.size) return cached.url;
  const raw = readEnvFile(target).BUN_REGISTRY_URL?.trim();
  let url: string;
  try {
    url = raw ? normalizeRegistryUrl(raw) : LOCAL_REGISTRY_URL;
  } catch (error) {
    throw new RegistryCoreError('ERR_ENV_VALUE', `BUN_REGISTRY_URL in ${target}: ${error instanceof Error ? error.message : String(error)}`, {
      field: 'BUN_REGISTRY_URL',
    });
  }
  urlCache.set(target, { ino: stat.ino, mtimeNs: stat.mtimeNs, size: stat.size, url });
  return url;
}

/** Drops the cached URL of `envFile` (its writer, setEnvFileValue, calls this after replacing the file). */
export function forgetRegistryUrl(envFile: string): void {
  urlCache.delete(resolve(envFile));
}
