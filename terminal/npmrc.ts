/**
 * Where the terminal looks for the bearer token npm would send: the files npm reads, in npm's
 * order. Reading them is the project's one .npmrc reader (core `npmrc.ts`: npm's `ini`, nerf-dart
 * keys walked up like npm-registry-fetch, `${VAR}` expansion).
 */
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { NpmrcError, npmrcToken, type NpmrcToken } from '../plugins/registry-core/npmrc';
import { TerminalError } from './errors';

export { nerfDart, nerfDartCandidates, parseNpmrc } from '../plugins/registry-core/npmrc';

export type TokenLookup = NpmrcToken;

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
  try {
    return npmrcToken(registryUrl, files, env, options);
  } catch (error) {
    if (error instanceof NpmrcError) throw new TerminalError('ERR_NPMRC', error.message, { cause: error });
    throw error;
  }
}
