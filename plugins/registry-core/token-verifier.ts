/**
 * The one token check of the registry, as a seam between plugins: the auth plugin (the only part
 * that can verify a token: it holds the keys, the issuer decision and the revocations) registers
 * its verifier here when it loads; every other channel that receives a token outside Verdaccio's
 * HTTP pipeline (the dashboard's WebSocket) asks through `verifyRegistryToken`. The auth plugin's
 * own HTTP middleware applies the same verifier's rules, so a token means the same on every channel.
 *
 * Registration is per registry.lockb (resolved path), like the event bus: two registries in one
 * process never see each other's verifier. The table is this module's state; plugins import the
 * core from the same build folder, so they share it. When no verifier is registered (the auth
 * plugin did not load, or a second copy of this module were loaded) a check fails with code
 * `unavailable` — tokens are refused, never accepted by some fallback.
 */
import { registrySeam } from './seam';

/** What the caller is about to do with the token: `write` is refused for read-only tokens. */
export type TokenIntent = 'read' | 'write';

export interface TokenUse {
  /** the client's address as the registry sees it (HTTP: `req.ip`, so `server.trustProxy` applies) */
  peerAddress: string;
  intent: TokenIntent;
  /**
   * the package the use is about (HTTP: `packageOfRequest` of the route, docs/web-login-and-tokens.md;
   * the socket: an event's package); absent = not about one package. A package-limited token
   * (`packages`/`scopes` claims, or the `pkg` claim of a trusted-publishing token,
   * docs/trusted-publishing.md) may only use its packages, and may write nothing that is not one of them.
   */
  package?: string;
  /** the write is a publish (`PUT /<package>`, not a `-rev` change, dist-tag or unpublish): the only write a trusted-publishing token may make */
  publish?: boolean;
}

export interface TokenIdentity {
  user: string;
  /** the user's real groups as the token carries them (no `$all`-style pseudo groups) */
  groups: readonly string[];
  jti: string;
  /** ms since epoch */
  expiresAt: number;
  readonly: boolean;
  /** allowed client ranges; empty = any address */
  cidr: readonly string[];
  /** package limits (granular tokens); both empty = every package the user may use */
  packages: readonly string[];
  scopes: readonly string[];
}

/**
 * Stable reasons a token is refused. `invalid`: not a token of ours (bad signature, unknown key,
 * malformed…); `wrong-issuer`: issued for another issuer/audience (the registry URL changed);
 * `read-only`: a write with a read-only token; `cidr`: the peer address is outside the token's
 * ranges; `package`: a package-limited token used for another package (or for a write that is
 * about no package); `unavailable`: no verifier is registered for this registry.
 */
export const TOKEN_REJECTION_CODES = ['invalid', 'expired', 'revoked', 'wrong-issuer', 'read-only', 'cidr', 'package', 'unavailable'] as const;
export type TokenRejectionCode = (typeof TOKEN_REJECTION_CODES)[number];

export class TokenRejectedError extends Error {
  readonly code: TokenRejectionCode;

  constructor(code: TokenRejectionCode, message: string) {
    super(message);
    this.name = 'TokenRejectedError';
    this.code = code;
  }
}

export function isTokenRejection(error: unknown, code?: TokenRejectionCode): error is TokenRejectedError {
  return error instanceof TokenRejectedError && (code === undefined || error.code === code);
}

/** Resolves with the identity, or rejects with a TokenRejectedError (anything else is a defect of the verifier). */
export type TokenVerifier = (token: string, use: TokenUse) => Promise<TokenIdentity>;

const verifiers = registrySeam<TokenVerifier>();

/** Registers (or replaces) the verifier of the registry whose config is `lockbPath`. Returns the unregister function. */
export function registerTokenVerifier(lockbPath: string, verifier: TokenVerifier): () => void {
  return verifiers.register(lockbPath, verifier);
}

export function hasTokenVerifier(lockbPath: string): boolean {
  return verifiers.get(lockbPath) !== undefined;
}

/** The token check for the registry of `lockbPath`; rejects with code `unavailable` when its auth plugin is not loaded. */
export function verifyRegistryToken(lockbPath: string, token: string, use: TokenUse): Promise<TokenIdentity> {
  const verifier = verifiers.get(lockbPath);
  if (!verifier) {
    return Promise.reject(new TokenRejectedError('unavailable', 'tokens cannot be checked: the registry auth plugin is not loaded'));
  }
  return verifier(token, use);
}
