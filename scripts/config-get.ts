/**
 * The lean part of the config CLI: where its files are (the default config.yaml, the `.env.local`
 * beside it), how it prints a line, and the fast entry of `registry config get`.
 *
 * `registry config get` is a command people type and scripts call in loops (docs/targets.md:
 * ≤ 1.3× a bare `node -e 0`). Measured with callgrind (instructions, all threads; load-independent),
 * the full CLI cost 1.41× `node -e 0`: 14 modules of ours plus node:util's parseArgs, the command
 * table, ConfigFile (realpath, a poll timer) — each CommonJS module costs about a million
 * instructions to resolve, read, wrap and compile before it does anything. bin/registry.js tries
 * runFastGet() first: it loads only what decoding and printing the 13 bytes needs (this file,
 * layout + crc8 + errors + registry-url, describe, env-file, fd-read) and takes only the
 * plain shape `[--file F] [--config C] get`. Anything else — another command, another spelling,
 * no --file (then config.yaml must be parsed, with js-yaml), any failure — returns false having
 * printed nothing, and the full CLI (config-cli.ts) runs the command from scratch, so its usage
 * errors, messages and exit codes stay the only ones.
 */
import { closeSync, existsSync, openSync, writeSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { readFromStart } from '../plugins/registry-core/fd-read';
import { HEADER_SIZE, decodeHeader, type ConfigFields } from '../plugins/registry-core/layout';
import { describeConfig, formatConfig } from '../plugins/registry-core/describe';
import { ENV_FILE_NAME, readRegistryUrl } from '../plugins/registry-core/env-file';

/** The repository (or installed package) root: build/scripts → ../.. */
const PROJECT_ROOT = resolve(__dirname, '..', '..');

/** The config.yaml the CLI acts on: --config, else the package's own. */
export function configPathOf(config: string | undefined): string {
  return resolve(config ?? join(PROJECT_ROOT, 'config.yaml'));
}

/** The `.env.local` (registry URL) that belongs to a config.yaml. */
export function envFileOf(configPath: string): string {
  return join(dirname(configPath), ENV_FILE_NAME);
}

/** Set once a descriptor refused a direct write: from then on its stream, so lines stay in order. */
const useStream = { 1: false, 2: false };

/**
 * One line, written with write(2) on the descriptor itself. Creating `process.stdout` for a pipe
 * builds a net.Socket (net + streams: about a fifth of a bare `node -e 0`, measured with callgrind),
 * which alone is most of what `registry config get` may cost beyond Node's own start (≤ 1.3×).
 * A descriptor that refuses (non-blocking and full: EAGAIN, or closed) falls back to the stream
 * for the rest, as before.
 */
export function writeLine(fd: 1 | 2, text: string): void {
  let data = Buffer.from(`${text}\n`, 'utf8');
  if (!useStream[fd]) {
    try {
      while (data.length > 0) data = data.subarray(writeSync(fd, data));
      return;
    } catch {
      useStream[fd] = true;
    }
  }
  (fd === 1 ? process.stdout : process.stderr).write(data);
}

/**
 * `--file F`, `--file=F`, `--config C`, `--config=C` (each at most once, non-empty, not starting
 * with `-`) and the one word `get`, in any order — the shapes on which config-cli.ts's parseArgs
 * (node:util, strict) gives exactly these options and the words ['get']; undefined for anything
 * else (test/core/config-get.test.ts holds both parsers to that).
 */
export function plainGetArgs(argv: readonly string[]): { file?: string; config?: string } | undefined {
  const options: { file?: string; config?: string } = {};
  let words = 0;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === 'get') {
      words++;
      continue;
    }
    const eq = arg.indexOf('=');
    const name = eq < 0 ? arg : arg.slice(0, eq);
    if (name !== '--file' && name !== '--config') return undefined;
    const value = eq < 0 ? argv[++i] : arg.slice(eq + 1);
    const key = name === '--file' ? 'file' : 'config';
    if (value === undefined || value === '' || value.startsWith('-') || options[key] !== undefined) return undefined;
    options[key] = value;
  }
  return words === 1 ? options : undefined;
}

/** The header of the file at `path`, verified (decodeHeader throws on a short file, bad magic or check byte). */
function readFields(path: string): ConfigFields {
  // read-only: `get` changes nothing, so it needs no write permission and no ConfigFile (its poll, its lock)
  const fd = openSync(path, 'r');
  try {
    return decodeHeader(readFromStart(fd, HEADER_SIZE));
  } finally {
    closeSync(fd);
  }
}

/**
 * Prints what `config-cli.ts … get` prints and returns true, or returns false having printed
 * nothing (not the plain shape, or anything failed): then the full CLI must run the command.
 */
export function runFastGet(argv: readonly string[]): boolean {
  const options = plainGetArgs(argv);
  if (options?.file === undefined) return false;
  let text: string;
  try {
    const configPath = configPathOf(options.config);
    // a --config that does not exist is a usage error the full CLI words
    if (options.config !== undefined && !existsSync(configPath)) return false;
    const fields = readFields(resolve(options.file));
    text = formatConfig(describeConfig(fields), readRegistryUrl(envFileOf(configPath)));
  } catch {
    return false; // missing, damaged, unreadable, a bad .env.local: the full CLI says which
  }
  writeLine(1, text);
  return true;
}
