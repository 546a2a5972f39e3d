/**
 * How the WebSocket learns who a token belongs to: through the core's token seam
 * (`registry-core/token-verifier.ts`), which the auth plugin fills when it loads. It is the same
 * check the auth plugin's HTTP middleware runs — signature, current issuer/audience, expiry,
 * revocation, then the token's restrictions (read-only for writes, CIDR against the socket's real
 * peer address) — so a token means the same on both channels. The admin decision is the one
 * HTTP writes use (`sessionOf`). Without the auth plugin every token is refused (`unavailable`).
 */
import { verifyRegistryToken, type TokenIdentity, type TokenUse } from '../registry-core/token-verifier';
import { sessionOf, type Session } from './access';
import { authenticatedUser, type VerdaccioRemoteUser } from './verdaccio-adapter';

export interface VerifiedToken {
  session: Session;
  /** what `req.remote_user` would be for that token: used for package access checks on the socket */
  user: VerdaccioRemoteUser;
  identity: TokenIdentity;
}

export type SocketTokenCheck = (token: string, use: TokenUse) => Promise<VerifiedToken>;

export function createSocketTokenCheck(lockbPath: string, admins: ReadonlySet<string>): SocketTokenCheck {
  return async (token, use) => {
    const identity = await verifyRegistryToken(lockbPath, token, use);
    const user = authenticatedUser(identity.user, identity.groups);
    return { session: sessionOf(user, admins), user, identity };
  };
}
