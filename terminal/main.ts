/**
 * `npm run term -- [--registry URL] [--token T] [--npmrc FILE] [--once [--json]] [--readonly]`
 *
 * Picks the face from the registry's config: a plain snapshot when not interactive, else
 * terminalMode raw → full screen, cooked → line REPL, disabled → explains and exits 0.
 * Talks to the registry over HTTP/WebSocket only.
 */
import { fetchActivity, fetchConfig, fetchPackages, fetchUpstream } from './api';
import { parseTerminalArgs, USAGE } from './args';
import { runCooked } from './cooked';
import { describeError, isTerminalError } from './errors';
import { fieldsOf } from './model';
import { defaultNpmrcFiles, findAuthToken } from './npmrc';
import { runRawApp } from './raw-app';
import { DISABLED_MESSAGE, renderSnapshot, snapshotJson } from './snapshot';

export interface MainIo {
  argv: readonly string[];
  env: Record<string, string | undefined>;
  cwd: string;
  stdoutIsTTY: boolean;
  stdinIsTTY: boolean;
  write(text: string): void;
  writeError(text: string): void;
}

/** https://no-color.org: present and not empty turns colour off; so does a dumb terminal. */
export function wantsColor(env: Record<string, string | undefined>): boolean {
  return !((env.NO_COLOR !== undefined && env.NO_COLOR !== '') || env.TERM === 'dumb');
}

export async function main(io: MainIo): Promise<number> {
  const options = parseTerminalArgs(io.argv, io.env);
  if (options.help) {
    io.write(`${USAGE}\n`);
    return 0;
  }
  const found =
    options.token !== undefined
      ? { token: options.token, source: '--token' }
      : findAuthToken(options.registry, options.npmrc !== undefined ? [options.npmrc] : defaultNpmrcFiles(io.cwd, io.env), io.env, {
          required: options.npmrc !== undefined,
        });
  const token = found?.token;
  const config = await fetchConfig(options.registry, token);
  const interactive = !options.once && io.stdoutIsTTY && io.stdinIsTTY;

  if (!interactive) {
    const packages = await fetchPackages(options.registry, token).catch((error: Error) => ({ error: error.message }));
    const upstream = await fetchUpstream(options.registry, token).catch((error: Error) => ({ error: error.message }));
    const activity = await fetchActivity(options.registry, token).catch((error: Error) => ({ error: error.message }));
    const input = { registry: options.registry, config, packages, upstream, activity };
    io.write(options.json ? snapshotJson(input) : renderSnapshot(input));
    return 0;
  }

  const mode = fieldsOf(config).terminalMode;
  if (mode === 0) {
    io.write(`${DISABLED_MESSAGE}\n`);
    return 0;
  }
  const common = { registry: options.registry, token, tokenSource: found?.source ?? null, readonly: options.readonly, initialConfig: config };
  if (mode === 1) return runCooked(common);
  return runRawApp({ ...common, color: wantsColor(io.env) });
}

/** The command itself: `registry term …` (bin/registry.js) and `node main.js …` both land here. */
export function runCli(): void {
  main({
    argv: process.argv.slice(2),
    env: process.env,
    cwd: process.cwd(),
    stdoutIsTTY: process.stdout.isTTY === true,
    stdinIsTTY: process.stdin.isTTY === true,
    write: (text) => process.stdout.write(text),
    writeError: (text) => process.stderr.write(text),
  }).then(
    (code) => {
      // stdin (a raw tty or a readline) would keep the process alive: leave once output is out.
      process.stdout.write('', () => process.exit(code));
    },
    (error: unknown) => {
      process.stderr.write(`error: ${describeError(error)}\n`);
      process.exit(isTerminalError(error, 'ERR_ARGS') ? 2 : 1);
    },
  );
}

if (require.main === module) runCli();
