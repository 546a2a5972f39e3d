/** Command-line options of `npm run term -- …`. Pure: argv and env in, options out. */
import { parseArgs } from 'node:util';
import { TerminalError } from './errors';

export const DEFAULT_REGISTRY_URL = 'http://localhost:4873';

export interface TerminalOptions {
  /** Where the dashboard API lives, without a trailing slash. */
  registry: string;
  /** Explicit `--token`; when absent the token comes from `.npmrc`. */
  token?: string;
  /** Explicit `--npmrc FILE`: the only file searched for a token. */
  npmrc?: string;
  once: boolean;
  json: boolean;
  readonly: boolean;
  help: boolean;
}

export const USAGE = `usage: npm run term -- [options]

  --registry URL   registry to monitor (default: $BUN_REGISTRY_URL or ${DEFAULT_REGISTRY_URL})
  --token T        bearer token (default: the _authToken for that registry in .npmrc)
  --npmrc FILE     read the token from this .npmrc only
  --once           print a plain snapshot and exit (also when stdout is not a terminal)
  --json           with --once: print the snapshot as JSON
  --readonly       full screen without the editing keys
  -h, --help       this text

The screen follows terminalMode in registry.lockb: raw = full screen, cooked = line REPL,
disabled = explains and exits. NO_COLOR=1 turns colours off.`;

/** `http(s)://host[:port][/path]` without a trailing slash; throws ERR_ARGS otherwise. */
export function normalizeClientRegistry(raw: string, source: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new TerminalError('ERR_ARGS', `${source} is not a URL: ${JSON.stringify(raw)}`, { hint: 'e.g. --registry http://localhost:4873' });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new TerminalError('ERR_ARGS', `${source} must be an http(s) URL, got ${JSON.stringify(raw)}`);
  }
  if (url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
    throw new TerminalError('ERR_ARGS', `${source} must not carry credentials, a query or a fragment: ${JSON.stringify(raw)}`, {
      hint: 'pass the token with --token or in .npmrc',
    });
  }
  return `${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, '')}`;
}

export function parseTerminalArgs(argv: readonly string[], env: Record<string, string | undefined>): TerminalOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        registry: { type: 'string' },
        token: { type: 'string' },
        npmrc: { type: 'string' },
        once: { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
        readonly: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (error) {
    throw new TerminalError('ERR_ARGS', (error as Error).message, { hint: 'run `npm run term -- --help`' });
  }
  const values = parsed.values;
  const registry =
    values.registry !== undefined
      ? normalizeClientRegistry(values.registry, '--registry')
      : env.BUN_REGISTRY_URL !== undefined && env.BUN_REGISTRY_URL !== ''
        ? normalizeClientRegistry(env.BUN_REGISTRY_URL, 'BUN_REGISTRY_URL')
        : DEFAULT_REGISTRY_URL;
  if (values.token !== undefined && values.token.trim() === '') throw new TerminalError('ERR_ARGS', '--token is empty');
  if (values.json && !values.once) throw new TerminalError('ERR_ARGS', '--json only makes sense with --once');
  const options: TerminalOptions = {
    registry,
    once: values.once === true,
    json: values.json === true,
    readonly: values.readonly === true,
    help: values.help === true,
  };
  if (values.token !== undefined) options.token = values.token.trim();
  if (values.npmrc !== undefined) options.npmrc = values.npmrc;
  return options;
}
