/**
 * The frame of a `registry <verb>` tool (backup, restore, doctor): arguments parsed strictly with
 * a usage message, `main()`'s number as the exit code, an unexpected error printed with the verb.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * Parsed arguments; `--help` prints the usage. With `file` set the command takes exactly one
 * positional FILE (`file` = what to say when it is missing). Returns the exit code instead when
 * there is nothing more to do (0 after --help, 2 after a usage error).
 */
export function readCliArgs<O extends Options>(verb: string, usage: string, options: O, file?: string) {
  let parsed;
  try {
    parsed = parseArgs({ args: process.argv.slice(2), options, allowPositionals: file !== undefined, strict: true });
  } catch (error) {
    process.stderr.write(`${verb}: ${(error as Error).message}\n\n${usage}`);
    return 2;
  }
  if ((parsed.values as Record<string, unknown>).help === true) {
    process.stdout.write(usage);
    return 0;
  }
  if (file !== undefined && parsed.positionals.length !== 1) {
    process.stderr.write(`${verb}: ${parsed.positionals.length === 0 ? file : 'one FILE only'}\n\n${usage}`);
    return 2;
  }
  return { values: parsed.values, file: parsed.positionals[0] ?? '' };
}

/** Runs main() and leaves with its exit code; `registry <verb>` (bin/registry.js) and `node <verb>.js` both land here. */
export function runMain(verb: string, main: () => Promise<number>): void {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`${verb}: error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
