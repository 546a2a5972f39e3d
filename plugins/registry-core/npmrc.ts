/**
 * The one `.npmrc` reader of the project (the terminal client, `registry warm`, self-publish):
 * the bearer token npm would send to a registry, read the way npm stores it —
 * `//host:port/path/:_authToken=…` (npm's "nerf dart" key), walking up the path like
 * npm-registry-fetch does, with `${VAR}` expanded from the environment.
 *
 * Parsing is npm's own library, `ini` (what @npmcli/config parses .npmrc with; ~1 ms to load,
 * ~13 µs per small file, measured 2026-12-02); like npm, only top-level `key = value` entries
 * count (a `[section]` is not a registry setting) and `${NAME}` is expanded in keys and values
 * (`\${NAME}` stays literal).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { parse } from 'ini';

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

function expand(value: string, env: Record<string, string | undefined>): string {
  // npm: `${NAME}` → env value (empty when unset); `\${NAME}` stays literal.
  return value.replace(/(\\*)\$\{([^}]+)\}/g, (match: string, slashes: string, name: string) => {
    if (slashes.length % 2 === 1) return match.slice(1);
    return slashes + (env[name] ?? '');
  });
}

/** The top-level `key = value` entries of an .npmrc text, `${VAR}` expanded. */
export function parseNpmrc(text: string, env: Record<string, string | undefined>): Map<string, string> {
  const entries = new Map<string, string>();
  for (const [key, value] of Object.entries(parse(text) as Record<string, unknown>)) {
    if (typeof value === 'string') entries.set(expand(key, env), expand(value, env));
  }
  return entries;
}

export interface NpmrcToken {
  token: string;
  /** `file (key)` — so the operator knows which credential is in use */
  source: string;
}

export class NpmrcError extends Error {
  readonly code = 'ERR_NPMRC';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'NpmrcError';
  }
}

/**
 * The first `_authToken` for `registryUrl` in `files`, in order (missing files and folders are
 * skipped; with `required`, a missing file is an NpmrcError, not a silent "no token").
 */
export function npmrcToken(
  registryUrl: string,
  files: readonly string[],
  env: Record<string, string | undefined>,
  options: { required?: boolean } = {},
): NpmrcToken | undefined {
  const candidates = nerfDartCandidates(registryUrl);
  for (const file of files) {
    if (!existsSync(file) || !statSync(file).isFile()) {
      if (options.required) throw new NpmrcError(`--npmrc ${file} does not exist`);
      continue;
    }
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      throw new NpmrcError(`cannot read ${file}: ${(error as Error).message}`, { cause: error });
    }
    const entries = parseNpmrc(text, env);
    for (const key of candidates) {
      const token = entries.get(`${key}:_authToken`);
      if (token !== undefined && token !== '') return { token, source: `${file} (${key}:_authToken)` };
    }
  }
  return undefined;
}
