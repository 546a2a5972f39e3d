/**
 * Typed errors of the terminal client. `code` is stable (tests and callers branch on it),
 * `message` says what is wrong, `hint` how to get out of it.
 */
export type TerminalErrorCode =
  | 'ERR_ARGS'
  | 'ERR_NPMRC'
  | 'ERR_REGISTRY_UNREACHABLE'
  | 'ERR_REGISTRY_RESPONSE'
  | 'ERR_UNAUTHORIZED'
  | 'ERR_NOT_CONNECTED'
  | 'ERR_COMMAND_TIMEOUT'
  | 'ERR_NOT_A_TERMINAL';

export class TerminalError extends Error {
  readonly code: TerminalErrorCode;
  readonly hint?: string;

  constructor(code: TerminalErrorCode, message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TerminalError';
    this.code = code;
    if (options.hint !== undefined) this.hint = options.hint;
  }
}

export function isTerminalError(error: unknown, code?: TerminalErrorCode): error is TerminalError {
  return error instanceof TerminalError && (code === undefined || error.code === code);
}

/** What the CLI prints for any error: message, then the hint on its own line. */
export function describeError(error: unknown): string {
  if (error instanceof Error) {
    const hint = (error as { hint?: unknown }).hint;
    return typeof hint === 'string' && hint !== '' ? `${error.message}\n  ${hint}` : error.message;
  }
  return String(error);
}
