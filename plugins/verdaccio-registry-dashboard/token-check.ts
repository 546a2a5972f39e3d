/**
 * How the WebSocket learns who a token belongs to: it asks the registry itself, on loopback,
 * `GET /_dashboard/api/session` with that token as `Authorization: Bearer`.
 *
 * Why not verify the token here: the token is checked by whatever auth the registry runs (our
 * auth plugin's middleware, or Verdaccio's own while it is not configured), including revocation
 * and rate limits, and the admin decision is made by the same route handler HTTP writes use.
 * Going through the real HTTP pipeline is the only way to be exactly as strict as HTTP without a
 * second copy of that logic or reaching into Verdaccio's internals. It costs one loopback
 * request per `auth` message, which is rare.
 */
import { request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import { request as httpsRequest, Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Session } from './access';
import type { RemoteUser } from './verdaccio-adapter';

export interface VerifiedToken {
  session: Session;
  /** what `req.remote_user` was for that token: used for package access checks on the socket */
  user: RemoteUser;
}

export class TokenCheckError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TokenCheckError';
  }
}

/** The wire format of GET /_dashboard/api/session. */
export interface SessionDocument extends Session {
  /** all of remote_user.groups, including the `$authenticated`-style roles access rules use */
  accessGroups: string[];
  /** set when the auth middleware rejected the token that came with the request */
  error?: string;
}

const TIMEOUT_MS = 5000;
const MAX_RESPONSE_BYTES = 64 * 1024;

function loopbackTarget(server: Server): { host?: string; port?: number; socketPath?: string } {
  const address = server.address();
  if (address === null) throw new TokenCheckError('the registry is not listening yet');
  if (typeof address === 'string') return { socketPath: address };
  const info = address as AddressInfo;
  if (info.address === '0.0.0.0') return { host: '127.0.0.1', port: info.port };
  if (info.address === '::') return { host: '::1', port: info.port };
  return { host: info.address, port: info.port };
}

export function checkTokenOnLoopback(server: Server, sessionPath: string, token: string): Promise<VerifiedToken> {
  return new Promise((resolve, reject) => {
    const secure = server instanceof HttpsServer;
    const options = {
      ...loopbackTarget(server),
      method: 'GET',
      path: sessionPath,
      headers: { authorization: `Bearer ${token}`, accept: 'application/json' },
      timeout: TIMEOUT_MS,
      // our own server on loopback: its certificate may be issued for the public name only
      ...(secure ? { rejectUnauthorized: false } : {}),
    };
    const onResponse = (response: IncomingMessage): void => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        body += chunk;
        if (body.length > MAX_RESPONSE_BYTES) response.destroy(new TokenCheckError('session answer too large'));
      });
      response.on('error', reject);
      response.on('end', () => {
        try {
          if (response.statusCode !== 200) throw new TokenCheckError(`session check answered ${response.statusCode}`);
          const document = JSON.parse(body) as SessionDocument;
          if (!document.user) throw new TokenCheckError(document.error ? `token rejected (${document.error})` : 'token rejected');
          resolve({
            session: { user: document.user, admin: document.admin === true, groups: document.groups },
            user: { name: document.user, groups: document.accessGroups, real_groups: document.groups },
          });
        } catch (error) {
          reject(error instanceof TokenCheckError ? error : new TokenCheckError(`session check failed: ${String(error)}`));
        }
      });
    };
    const req = secure ? httpsRequest(options, onResponse) : httpRequest(options, onResponse);
    req.on('timeout', () => req.destroy(new TokenCheckError('session check timed out')));
    req.on('error', (error) => reject(error instanceof TokenCheckError ? error : new TokenCheckError(`session check failed: ${error.message}`)));
    req.end();
  });
}
