/**
 * The bearer token npm would send to a registry, read from `.npmrc` files the way npm stores it:
 * `//host:port/path/:_authToken=…` (npm's "nerf dart" key), walking up the path like
 * npm-registry-fetch does, with `${VAR}` expanded from the environment.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { TerminalError } from './errors';

/** `//host[:port]/path/` — npm's key prefix for per-registry settings. */
export function nerfDart(registryUrl: string): string {
  const url = new URL(registryUrl);
  const path = url.pathname.endsWith('/') ? url.pathname : `${url.pathname}/`;
  return `//${url.host}${path}`;
}

/** The keys npm tries, most specific first: `//h/a/b/`, `//h/a/`, `//h/`. */
export function nerfDartCandidates(registryUrl: string): string[] {
  const keys: string[] = [];
  let key = nerfDart(registryUrl);
  const root = key.slice(0, key.indexOf('/', 2) + 1);
  for (;;) {
    keys.push(key);
    if (key === root) return keys;
    key = key.replace(/[^/]+\/$/, '');
  }
}

/** Minimal npm-ini: `key = value` lines, `;`/`#` comments, quoted values, `${VAR}` expansion. */
export function parseNpmrc(text: string, env: Record<string, string | undefined>): Map<string, string> {
  const entries = new Map<string, string>();
  for (const rawLine of text.split(/\r?\n/)) {
    const line = rawLine.trim();
    if (line === '' || line.startsWith(';') || line.startsWith('#') || line.startsWith('[')) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    const key = expand(line.slice(0, eq).trim(), env);
    let value = line.slice(eq + 1).trim();
    if (value.length >= 2 && ((value.startsWith('"') && value.endsWith('"')) || (value.startsWith("'") && value.endsWith("'")))) {
      value = value.slice(1, -1);
    }
    entries.set(key, expand(value, env));
  }
  return entries;
}

function expand(value: string, env: Record<string, string | undefined>): string {
  // npm: `${NAME}` → env value (empty when unset); `\${NAME}` stays literal.
  return value.replace(/(\\*)\$\{([^}]+)\}/g, (match: string, slashes: string, name: string) => {
    if (slashes.length % 2 === 1) return match.slice(1);
    return slashes + (env[name] ?? '');
  });
}

export interface TokenLookup {
  token: string;
  /** `file (key)` — shown on screen so the operator knows which credential is in use. */
  source: string;
}

/** Files searched, in order: `./.npmrc`, the user config npm reads (`$NPM_CONFIG_USERCONFIG`), `~/.npmrc`. */
export function defaultNpmrcFiles(cwd: string, env: Record<string, string | undefined>, home: string = homedir()): string[] {
  const files = [join(cwd, '.npmrc')];
  const userconfig = env.NPM_CONFIG_USERCONFIG ?? env.npm_config_userconfig;
  if (userconfig !== undefined && userconfig !== '') files.push(resolve(cwd, userconfig));
  files.push(join(home, '.npmrc'));
  return [...new Set(files)];
}

/**
 * The first `_authToken` for `registryUrl` in `files` (missing files are skipped). An explicit
 * file (`--npmrc`) that does not exist is an error, not a silent "no token".
 */
export function findAuthToken(
  registryUrl: string,
  files: readonly string[],
  env: Record<string, string | undefined>,
  options: { required?: boolean } = {},
): TokenLookup | undefined {
  const candidates = nerfDartCandidates(registryUrl);
  for (const file of files) {
    if (!existsSync(file)) {
      if (options.required) throw new TerminalError('ERR_NPMRC', `--npmrc ${file} does not exist`);
      continue;
    }
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      throw new TerminalError('ERR_NPMRC', `cannot read ${file}: ${(error as Error).message}`, { cause: error });
    }
    const entries = parseNpmrc(text, env);
    for (const key of candidates) {
      const token = entries.get(`${key}:_authToken`);
      if (token !== undefined && token !== '') return { token, source: `${file} (${key}:_authToken)` };
    }
  }
  return undefined;
}
