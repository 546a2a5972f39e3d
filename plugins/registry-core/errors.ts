/**
 * One error class for the whole library. Callers branch on `code` (stable), show `message`
 * (says what is wrong, expected vs found) and `hint` (how to get out of it).
 */
export type RegistryCoreErrorCode =
  | 'ERR_CONFIG_FIELD'
  | 'ERR_LOCKB_TRUNCATED'
  | 'ERR_LOCKB_MAGIC'
  | 'ERR_LOCKB_CHECK'
  | 'ERR_LOCKB_MISSING'
  | 'ERR_LOCKB_EXISTS'
  | 'ERR_REGISTRY_URL'
  | 'ERR_ENV_VALUE'
  | 'ERR_COMMAND_SYNTAX'
  | 'ERR_INDEX_CORRUPT'
  | 'ERR_INDEX_RECORD'
  | 'ERR_LOCK_TIMEOUT'
  | 'ERR_STORAGE_MISSING'
  | 'ERR_CLOSED'
  | 'ERR_AUDIT_CORRUPT'
  | 'ERR_DATABASE_CONFIG'
  | 'ERR_DATABASE_SCHEMA'
  | 'ERR_DATABASE';

export const REPAIR_HINT = 'run `npm run config -- repair`';

export class RegistryCoreError extends Error {
  readonly code: RegistryCoreErrorCode;
  /** The config field, env variable or command argument at fault, when there is one. */
  readonly field?: string;
  readonly hint?: string;

  constructor(code: RegistryCoreErrorCode, message: string, options: { field?: string; hint?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'RegistryCoreError';
    this.code = code;
    if (options.field !== undefined) this.field = options.field;
    if (options.hint !== undefined) this.hint = options.hint;
  }
}

export function isRegistryCoreError(error: unknown, code?: RegistryCoreErrorCode): error is RegistryCoreError {
  return error instanceof RegistryCoreError && (code === undefined || error.code === code);
}

/** `message` plus the hint on its own line: what a CLI or a start-up failure prints. */
export function formatError(error: RegistryCoreError): string {
  return error.hint ? `${error.message}\n  ${error.hint}` : error.message;
}
