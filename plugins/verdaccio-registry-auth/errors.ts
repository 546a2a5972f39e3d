/**
 * Errors of the auth plugin. `code` is stable (tests and callers branch on it); `status` is the
 * HTTP status a route answers with; `message` is safe to show (never a token or a password).
 */
export type AuthErrorCode =
  | 'ERR_AUTH_CONFIG'
  | 'ERR_KEY_FILE'
  | 'ERR_HTPASSWD'
  | 'ERR_USER_NAME'
  | 'ERR_PASSWORD_POLICY'
  | 'ERR_USER_EXISTS'
  | 'ERR_REGISTRATION_CLOSED'
  | 'ERR_BAD_CREDENTIALS'
  | 'ERR_RATE_LIMITED'
  | 'ERR_TOKEN_INVALID'
  | 'ERR_TOKEN_OPTIONS'
  | 'ERR_BAD_REQUEST'
  | 'ERR_FORBIDDEN'
  | 'ERR_NOT_FOUND'
  | 'ERR_UNAVAILABLE'
  | 'ERR_CONFLICT';

const STATUS: Record<AuthErrorCode, number> = {
  ERR_AUTH_CONFIG: 500,
  ERR_KEY_FILE: 500,
  ERR_HTPASSWD: 500,
  ERR_USER_NAME: 400,
  ERR_PASSWORD_POLICY: 400,
  ERR_USER_EXISTS: 409,
  ERR_REGISTRATION_CLOSED: 403,
  ERR_BAD_CREDENTIALS: 401,
  ERR_RATE_LIMITED: 429,
  ERR_TOKEN_INVALID: 401,
  ERR_TOKEN_OPTIONS: 400,
  ERR_BAD_REQUEST: 400,
  ERR_FORBIDDEN: 403,
  ERR_NOT_FOUND: 404,
  ERR_UNAVAILABLE: 503,
  ERR_CONFLICT: 409,
};

export class AuthError extends Error {
  readonly code: AuthErrorCode;
  readonly status: number;
  /** seconds, for ERR_RATE_LIMITED */
  readonly retryAfter?: number;

  constructor(code: AuthErrorCode, message: string, options: { retryAfter?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AuthError';
    this.code = code;
    this.status = STATUS[code];
    if (options.retryAfter !== undefined) this.retryAfter = options.retryAfter;
  }
}

export function isAuthError(error: unknown, code?: AuthErrorCode): error is AuthError {
  return error instanceof AuthError && (code === undefined || error.code === code);
}
