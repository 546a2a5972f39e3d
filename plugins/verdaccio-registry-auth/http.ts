/**
 * The plugin's HTTP side, returned by `apiJWTmiddleware(helpers)` and therefore run app-wide,
 * before every other route (research §1/§3.3):
 *
 *   credentials → req.remote_user (ALWAYS set, anonymous at least) → token restrictions
 *   (read-only, CIDR) → our routes → next()
 *
 * Verdaccio calls the factory twice (app level and inside its API router); the second copy sees
 * `req` already handled and passes it on.
 *
 * Route spelling: Verdaccio's routers are Express 4 defaults — case-insensitive, one trailing
 * slash optional, matched on the raw (still percent-encoded) path with parameters decoded after.
 * Our routes use the same options, so every spelling Express would route to one of Verdaccio's
 * auth handlers reaches ours first; the few Verdaccio auth routes we do not serve are answered
 * with 404 by a final guard (`VERDACCIO_AUTH_ROUTES`), so Verdaccio's legacy token minting,
 * token records and unlimited web login can never run, in any spelling.
 *
 * `npm logout` puts the token itself in the URL (`DELETE /-/user/token/<token>`), and Verdaccio's
 * request logger prints URLs. The token is taken out of the URL before any logger sees it
 * (Node's `http.server.request.start` diagnostics channel fires before the app runs) and kept
 * beside the request for the logout route.
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import type { IncomingMessage } from 'node:http';
import { Router, type Response } from 'express';
import { TokenStoreError, type IssuedTokenRecord } from '../registry-core/token-store';
import { REDACTED, runWithRequestActor, splitLogoutToken, type RequestActor } from '../registry-core/index';
import { AuthError, isAuthError } from './errors';
import { parseTokenRequest, type AuthService } from './auth-service';
import { normalizeIp } from './network';
import { describeLimits, restrictionProblem, type TokenIssuer, type VerifiedToken } from './token-issuer';
import { isPackageLimited, isPublishRequest, packageOfRequest } from '../registry-core/request-package';
import type { TokenUse } from '../registry-core/token-verifier';
import { publicBaseUrl, type AuthRequest, type Middleware, type PluginLogger, type RemoteUserHelpers } from './verdaccio-adapter';
import { TOKEN_ALGORITHMS } from './keys';
import { addTrustRoutes, type TrustRouteDependencies } from './trust-routes';
import { SESSION_ID, WebLoginSessions, type WebLoginOptions } from './web-login';

/** Case-insensitive like the route it redacts for: Express serves `/-/USER/TOKEN/<token>` too. */
const COUCH_PREFIX = 'org.couchdb.user:';
/** Verdaccio's routers use Express 4's defaults; ours must match exactly the same spellings. */
export const EXPRESS_ROUTER_OPTIONS = { caseSensitive: false, strict: false } as const;
/** Every route of ours (and every Verdaccio auth route we guard) starts with one of these, in any case. */
const OWN_PATH_PREFIX = /^\/(?:_auth\/|-\/user\/|-\/npm\/v1\/(?:tokens|user|oidc\/)|-\/verdaccio\/sec\/|-\/v1\/(?:login|done)|-\/package\/[^/]+\/trust)/i;
/**
 * POSTs that are not writes with the caller's token. The web login's routes act on a session
 * secret: npm sends whatever token its .npmrc holds (a read-only or package-limited one too), and
 * starting a new login must not be refused as a "write" with it. `npm audit` POSTs the lockfile
 * to ask about advisories: a read (a read-only token may audit, as it may install).
 */
const NOT_A_WRITE_PATH = /^\/-\/(?:v1\/(?:login|done)(?:\/|$)|npm\/v1\/security\/)/i;
/** Where the dashboard serves the web login's sign-in page (its plugin owns the page; this one the sessions). */
const WEB_LOGIN_PAGE = '/_dashboard/login/';
/** A Host header we are willing to put into a URL we hand out. */
const USABLE_HOST = /^[a-z0-9.\-:[\]]{1,255}$/i;
/** What path-to-regexp builds for `/-/npm/v1/tokens/token/:key` with EXPRESS_ROUTER_OPTIONS. */
const TOKEN_KEY_PATH = /^\/-\/npm\/v1\/tokens\/token\/(?:([^/]+?))\/?$/i;
/**
 * Verdaccio 6.10.4's own auth routes (its api/endpoint/api/user.js, v1/token.js, v1/profile.js,
 * web/api/user.js), verbatim. Whatever ours pass on along these paths gets 404: Verdaccio's
 * handlers mint its legacy tokens, write never-expiring token records, change passwords without
 * invalidating sessions and share one login bucket between all addresses.
 */
export const VERDACCIO_AUTH_ROUTES: readonly { method: 'all' | 'post'; path: string }[] = [
  { method: 'all', path: '/-/user/:org_couchdb_user' },
  { method: 'all', path: '/-/user/:org_couchdb_user/:_rev?/:revision?' },
  { method: 'all', path: '/-/user/token/*' },
  { method: 'all', path: '/-/npm/v1/tokens' },
  { method: 'all', path: '/-/npm/v1/tokens/token/:tokenKey' },
  { method: 'post', path: '/-/npm/v1/user' },
  { method: 'all', path: '/-/verdaccio/sec/login' },
  { method: 'all', path: '/-/verdaccio/sec/reset_password' },
];

/** decodeURIComponent that answers null for a malformed escape (`%E0%A4%A`) instead of throwing. */
export function decodePathPart(part: string): string | null {
  try {
    return decodeURIComponent(part);
  } catch {
    return null;
  }
}

const logoutTokens = new WeakMap<IncomingMessage, string>();
let redactionInstalled = false;

/** Takes `npm logout` tokens out of request URLs before anything logs them (once per process). */
export function installLogoutUrlRedaction(): void {
  if (redactionInstalled) return;
  redactionInstalled = true;
  diagnosticsChannel.subscribe('http.server.request.start', (message) => {
    const { request } = message as { request: IncomingMessage };
    const url = request.url;
    if (!url) return;
    const split = splitLogoutToken(url); // the core's one rule (debug-log.ts), also used by redactUrl
    if (!split) return;
    logoutTokens.set(request, decodePathPart(split.token) ?? split.token);
    request.url = split.redacted;
  });
}

export interface HttpDependencies {
  service: AuthService;
  issuer: TokenIssuer;
  helpers: RemoteUserHelpers;
  logger: PluginLogger;
  maxGeneratedTtlSeconds: number;
  /** trusted publishing (docs/trusted-publishing.md); absent: its routes are not served */
  trust?: Omit<TrustRouteDependencies, 'logger' | 'sendError' | 'isPackageLimited'>;
  /** web login session limits (tests shorten them); defaults in web-login.ts */
  webLogin?: WebLoginOptions;
  /** Verdaccio's `url_prefix`: part of the URLs the web login hands out */
  urlPrefix?: string | undefined;
}

interface RequestAuth {
  kind: 'anonymous' | 'bearer' | 'basic';
  bearer?: string;
  verified?: VerifiedToken;
  basicUser?: string;
  basicOk?: boolean;
}

const requestAuth = new WeakMap<IncomingMessage, RequestAuth>();

/** The request's actor for the core request context: the remote user, its address and the token's jti. */
function actorOf(req: AuthRequest): RequestActor {
  const name = req.remote_user?.name;
  return { user: typeof name === 'string' && name !== '' ? name : null, address: clientIp(req), tokenId: requestAuth.get(req)?.verified?.jti ?? null };
}

function clientIp(req: AuthRequest): string {
  return normalizeIp(req.ip ?? req.socket.remoteAddress);
}

function sendJson(res: Response, status: number, body: unknown, noStore = false): void {
  if (noStore) res.set('cache-control', 'no-store');
  res.status(status).json(body);
}

function sendError(res: Response, logger: PluginLogger, error: unknown): void {
  if (error instanceof AuthError) {
    if (error.retryAfter !== undefined) res.set('retry-after', String(error.retryAfter));
    sendJson(res, error.status, { error: error.message });
    return;
  }
  if (error instanceof TokenStoreError && error.code === 'ERR_TOKEN_NOT_FOUND') {
    sendJson(res, 404, { error: error.message });
    return;
  }
  logger.error({ message: error instanceof Error ? error.message : String(error) }, 'auth route failed: @{message}');
  sendJson(res, 500, { error: 'internal error in the auth plugin' });
}

function parseBasic(value: string): { user: string; password: string } | null {
  let decoded: string;
  try {
    decoded = Buffer.from(value, 'base64').toString('utf8');
  } catch {
    return null;
  }
  const colon = decoded.indexOf(':');
  if (colon <= 0) return null;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The one exception to read-only: a token may always revoke itself (by its key or, as npm sends
 * it for `npm token revoke <token>`, by the whole token). 'malformed' = the key in the URL is not
 * valid percent-encoding.
 */
function isSelfRevocation(req: AuthRequest, auth: RequestAuth): boolean | 'malformed' {
  if (req.method !== 'DELETE' || !auth.verified) return false;
  if (logoutTokens.get(req) === auth.bearer) return true;
  const match = TOKEN_KEY_PATH.exec(req.path);
  if (match === null) return false;
  const key = decodePathPart(match[1]);
  if (key === null) return 'malformed';
  return key === auth.verified.jti || key === auth.bearer;
}

/**
 * One row of `npm token list`. npm prints `Token <token>… with id <key prefix> name <name>
 * created <date>`, and for `npm token revoke <whole token>` it checks that the token STARTS with
 * one listed `token` value — so `token` is the token's real first characters (npm adds the
 * ellipsis itself), and the readable identity is the key (id), the name and the permissions.
 */
function tokenView(record: IssuedTokenRecord): Record<string, unknown> {
  const permission = record.readonly ? 'read-only' : 'read-write';
  const view: Record<string, unknown> = {
    token: record.token.replace(/…$/, ''),
    key: record.key,
    user: record.user,
    readonly: record.readonly,
    cidr_whitelist: record.cidr.length > 0 ? record.cidr : null,
    created: new Date(record.created).toISOString(),
    // npm's own registry reports last use as `updated`; npm prints only name and created, so the name says it too
    updated: new Date(record.lastUsed ?? record.created).toISOString(),
  };
  if (record.lastUsed !== undefined) view.last_used = new Date(record.lastUsed).toISOString();
  if (record.expiresAt !== null) view.expires = new Date(record.expiresAt).toISOString();
  const limits = { packages: record.packages ?? [], scopes: record.scopes ?? [] };
  if (isPackageLimited(limits)) {
    view.packages = limits.packages;
    view.scopes = limits.scopes;
  }
  const limitText = isPackageLimited(limits) ? `, ${describeLimits(limits)}` : '';
  const cidrText = record.cidr.length > 0 ? `, from ${record.cidr.join(', ')}` : '';
  const kind = record.kind === 'session' ? 'login session' : 'token';
  const expires = record.expiresAt === null ? '' : `, expires ${new Date(record.expiresAt).toISOString().slice(0, 10)}`;
  const used = record.lastUsed === undefined ? ', never used' : `, last used ${new Date(record.lastUsed).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
  view.name = `${record.name ?? (record.kind === 'session' ? 'login' : 'npm token create')} (${kind}, ${permission}${limitText}${cidrText}${expires}${used})`;
  view.permission = permission;
  view.kind = kind;
  if (record.description !== undefined) view.description = record.description;
  return view;
}

export function createAuthMiddleware(deps: HttpDependencies): Middleware {
  const { service, issuer, helpers, logger } = deps;
  const router = createRoutes(deps);

  const anonymous = (req: AuthRequest, res: Response, error?: string): void => {
    const user = helpers.createAnonymousRemoteUser();
    if (error) user.error = error;
    req.remote_user = user;
    res.locals.remote_user = user;
  };

  /** A verified token becomes the remote user, then its restrictions apply (false = answered 403). */
  const acceptToken = (req: AuthRequest, res: Response, auth: RequestAuth, verified: VerifiedToken): boolean => {
    auth.verified = verified;
    const user = helpers.createRemoteUser(verified.user, verified.groups);
    req.remote_user = user;
    res.locals.remote_user = user;
    // the same restriction rule as every other channel (the core's token seam, see token-issuer.ts)
    const writing = req.method !== 'GET' && req.method !== 'HEAD' && !NOT_A_WRITE_PATH.test(req.path);
    // package-limited: granular `packages`/`scopes`, or a trusted-publishing token (`pkg` claim)
    const limited = isPackageLimited(verified) || verified.trustedPackage !== null;
    const self = (verified.readonly || limited) && writing ? isSelfRevocation(req, auth) : false;
    if (self === 'malformed') {
      sendJson(res, 400, { error: 'the token key in the URL is not valid percent-encoding' });
      return false;
    }
    // only a package-limited token needs the route's package (one regex; skipped for every other token)
    const addressed = limited ? packageOfRequest(req.method, req.path) : undefined;
    if (addressed?.kind === 'malformed') {
      sendJson(res, 400, { error: 'the package name in the URL is not valid percent-encoding' });
      return false;
    }
    const use: TokenUse = { peerAddress: clientIp(req), intent: writing && self !== true ? 'write' : 'read' };
    if (addressed?.kind === 'package') use.package = addressed.name;
    if (limited) use.publish = isPublishRequest(req.method, req.path);
    const problem = restrictionProblem(verified, use);
    if (problem) {
      sendJson(res, 403, { error: problem.message });
      return false;
    }
    issuer.noteUse(verified);
    return true;
  };

  const rejectToken = (req: AuthRequest, res: Response, error: unknown): boolean => {
    const reason = isAuthError(error) ? error.message : 'invalid token';
    logger.debug({ ip: clientIp(req), reason }, 'bearer token rejected from @{ip}: @{reason}');
    anonymous(req, res, reason);
    return true;
  };

  const checkBasic = async (req: AuthRequest, res: Response, auth: RequestAuth, user: string, password: string): Promise<boolean> => {
    let groups: string[] | null;
    try {
      groups = await service.basic(user, password, clientIp(req));
    } catch (error) {
      anonymous(req, res);
      sendError(res, logger, error);
      return false;
    }
    auth.basicOk = groups !== null;
    if (!groups) {
      anonymous(req, res, 'bad username or password');
      return true;
    }
    const remoteUser = helpers.createRemoteUser(user, groups);
    req.remote_user = remoteUser;
    res.locals.remote_user = remoteUser;
    return true;
  };

  /** true = go on, false = already answered. Synchronous when it can be (no header, a token seen before). */
  const resolveCredentials = (req: AuthRequest, res: Response): boolean | Promise<boolean> => {
    const header = req.headers.authorization;
    const auth: RequestAuth = { kind: 'anonymous' };
    requestAuth.set(req, auth);
    if (!header) {
      anonymous(req, res);
      return true;
    }
    const space = header.indexOf(' ');
    const scheme = space > 0 ? header.slice(0, space).toLowerCase() : '';
    const value = space > 0 ? header.slice(space + 1).trim() : '';
    if (scheme === 'bearer' && value) {
      auth.kind = 'bearer';
      auth.bearer = value;
      // a shared store (docs/cluster.md) is asked first: a token revoked on any node is refused here at once
      if (!issuer.sharedRevocations) {
        const seen = issuer.peekVerified(value);
        if (seen) return acceptToken(req, res, auth, seen);
      }
      return issuer.verify(value).then(
        (verified) => acceptToken(req, res, auth, verified),
        (error: unknown) => rejectToken(req, res, error),
      );
    }
    if (scheme === 'basic' && value) {
      const credentials = parseBasic(value);
      if (!credentials) {
        anonymous(req, res, 'malformed Basic credentials');
        return true;
      }
      auth.kind = 'basic';
      auth.basicUser = credentials.user;
      return checkBasic(req, res, auth, credentials.user, credentials.password);
    }
    anonymous(req, res, 'unsupported Authorization header (use Bearer or Basic)');
    return true;
  };

  const failed = (req: AuthRequest, res: Response, error: unknown): void => {
    if (!req.remote_user) anonymous(req, res);
    sendError(res, logger, error);
  };

  return (req, res, next) => {
    if (requestAuth.has(req)) {
      next();
      return;
    }
    // only a few path prefixes are ours: everything else skips the router's per-route matching
    // everything after this middleware runs with who-is-asking in the core request context (the audit trail, docs/audit.md)
    const proceed = (): void =>
      runWithRequestActor(actorOf(req), () => (OWN_PATH_PREFIX.test(req.url) ? router(req, res, next) : next()));
    let result: boolean | Promise<boolean>;
    try {
      result = resolveCredentials(req, res);
    } catch (error) {
      failed(req, res, error);
      return;
    }
    if (result === true) proceed();
    else if (result !== false) {
      result.then(
        (ok) => {
          if (ok) proceed();
        },
        (error: unknown) => failed(req, res, error),
      );
    }
  };
}

function createRoutes(deps: HttpDependencies): Router {
  const { service, issuer, logger } = deps;
  const router = Router(EXPRESS_ROUTER_OPTIONS);

  const authenticatedUser = (req: AuthRequest, res: Response): string | null => {
    const name = req.remote_user?.name;
    if (name) return name;
    sendJson(res, 401, { error: req.remote_user?.error ?? 'authentication required' });
    return null;
  };

  router.get('/_auth/.well-known/jwks.json', (_req, res) => {
    issuer.jwks().then(
      (document) => {
        res.set('cache-control', 'public, max-age=300');
        res.json(document);
      },
      (error: unknown) => sendError(res, logger, error),
    );
  });

  router.get('/_auth/.well-known/openid-configuration', (_req, res) => {
    const state = issuer.state();
    res.set('cache-control', 'no-cache');
    res.json({
      issuer: state.issuer.url,
      jwks_uri: `${state.registryUrl}/_auth/.well-known/jwks.json`,
      token_endpoint: `${state.registryUrl}/_auth/token`,
      id_token_signing_alg_values_supported: [...TOKEN_ALGORITHMS],
      token_endpoint_auth_methods_supported: ['none'],
      grant_types_supported: ['password'],
      response_types_supported: ['token'],
      subject_types_supported: ['public'],
      claims_supported: ['sub', 'groups', 'iss', 'aud', 'iat', 'exp', 'jti', 'gen', 'readonly', 'cidr', 'packages', 'scopes'],
      registry_signing_alg: state.alg,
      registry_audience: state.audience,
      registry_issuer_kind: state.issuer.kind,
    });
  });

  router.post('/_auth/token', (req: AuthRequest, res) => {
    const body: unknown = req.body;
    if (!isRecord(body) || typeof body.username !== 'string' || typeof body.password !== 'string' || body.username === '') {
      sendJson(res, 400, { error: 'expected a JSON body {"username": "...", "password": "..."}' });
      return;
    }
    service.login(body.username, body.password, clientIp(req), 'POST /_auth/token').then(
      (issued) => sendJson(res, 200, { token: issued.token, expiresAt: new Date(issued.expiresAt).toISOString() }, true),
      (error: unknown) => sendError(res, logger, error),
    );
  });

  // Verdaccio's web UI login: served here so it is limited per address + user like every other
  // login (Verdaccio's handler called the plugin without an address: one bucket for everyone) and
  // answers with a token of our issuer, which the UI then sends as Bearer.
  router.post('/-/verdaccio/sec/login', (req: AuthRequest, res) => {
    const body: unknown = req.body;
    if (!isRecord(body) || typeof body.username !== 'string' || typeof body.password !== 'string' || body.username === '') {
      sendJson(res, 400, { error: 'expected a body {"username": "...", "password": "..."}' });
      return;
    }
    const username = body.username;
    service.login(username, body.password, clientIp(req), 'web login').then(
      (issued) => sendJson(res, 200, { token: issued.token, username }, true),
      (error: unknown) => sendError(res, logger, error),
    );
  });

  // npm profile set password (npm-profile `set`): {password: {old, new}} plus the profile fields
  // npm read back from GET /-/npm/v1/user (ignored). Behind the failed-login limiter; every
  // earlier token of the user (this request's included) stops working.
  router.post('/-/npm/v1/user', (req: AuthRequest, res) => {
    const user = authenticatedUser(req, res);
    if (!user) return;
    const body: unknown = req.body;
    if (!isRecord(body)) {
      sendJson(res, 400, { error: 'expected a JSON object body' });
      return;
    }
    const password = body.password;
    if (password === undefined || password === null) {
      sendJson(res, 400, {
        error: body.tfa !== undefined ? 'two-factor authentication is not supported by this registry' : 'only the password can be changed here: {"password": {"old": "...", "new": "..."}}',
      });
      return;
    }
    if (!isRecord(password) || typeof password.old !== 'string' || typeof password.new !== 'string') {
      sendJson(res, 400, { error: 'password must be {"old": "...", "new": "..."}' });
      return;
    }
    service.changePassword(user, password.old, password.new, clientIp(req)).then(
      () =>
        sendJson(res, 200, { tfa: false, name: user, email: '', email_verified: false, created: '', updated: '', cidr_whitelist: null, fullname: '' }, true),
      (error: unknown) => sendError(res, logger, error),
    );
  });

  // npm's couch login/adduser (npm-profile loginCouch/adduserCouch).
  const couchName = (req: AuthRequest): string | null => {
    const id = req.params.couchId;
    return typeof id === 'string' && id.startsWith(COUCH_PREFIX) ? id.slice(COUCH_PREFIX.length) : null;
  };

  router.get('/-/user/:couchId', (req: AuthRequest, res, next) => {
    const name = couchName(req);
    if (name === null) return next();
    Promise.resolve(service.users.sync()).then(
      () => {
        // `npm owner add <user>` reads this first: an unknown user must not become an owner
        if (!service.users.has(name)) {
          sendJson(res, 404, { error: `no such user ${JSON.stringify(name)}` });
          return;
        }
        const self = req.remote_user?.name === name;
        sendJson(res, 200, {
          _id: `${COUCH_PREFIX}${name}`,
          _rev: '1-registry',
          name,
          type: 'user',
          roles: [],
          ok: self ? `you are authenticated as '${name}'` : 'you are not authenticated',
        });
      },
      (error: unknown) => sendError(res, logger, error),
    );
  });

  const couchPut = (retry: boolean) => (req: AuthRequest, res: Response, next: () => void) => {
    const name = couchName(req);
    if (name === null) return next();
    const body: unknown = req.body;
    if (!isRecord(body)) {
      sendJson(res, 400, { error: 'expected a JSON user document' });
      return;
    }
    if (body.name !== undefined && body.name !== name) {
      sendJson(res, 400, { error: `the document name ${JSON.stringify(body.name)} does not match the URL (${name})` });
      return;
    }
    const auth = requestAuth.get(req);
    const ip = clientIp(req);
    const run = async (): Promise<{ status: number; body: Record<string, unknown> }> => {
      // another node may have registered the name a moment ago (docs/cluster.md)
      await service.users.sync();
      if (auth?.kind === 'basic' && auth.basicUser === name) {
        // the middleware already checked these credentials (and counted a failure)
        if (!auth.basicOk) throw new AuthError('ERR_BAD_CREDENTIALS', 'bad username or password');
        const issued = await service.issueSession(name, ip, 'npm login');
        return { status: 201, body: { ok: `you are authenticated as '${name}'`, token: issued.token } };
      }
      if (typeof body.password !== 'string' || body.password === '') throw new AuthError('ERR_BAD_REQUEST', 'password is required');
      if (retry) {
        if (service.recentCouchFailure(name, body.password, ip)) throw new AuthError('ERR_BAD_CREDENTIALS', 'bad username or password');
        const issued = await service.login(name, body.password, ip, 'npm login');
        return { status: 201, body: { ok: `you are authenticated as '${name}'`, token: issued.token } };
      }
      if (service.users.has(name)) {
        try {
          const issued = await service.login(name, body.password, ip, 'npm login');
          return { status: 201, body: { ok: `you are authenticated as '${name}'`, token: issued.token } };
        } catch (error) {
          if (!isAuthError(error, 'ERR_BAD_CREDENTIALS')) throw error;
          // CouchDB semantics: the user document exists. npm then retries on /-rev/ with Basic
          // auth, and that answer (401) is what it shows.
          service.rememberCouchFailure(name, body.password, ip);
          throw new AuthError('ERR_USER_EXISTS', `user ${name} already exists (wrong password?)`);
        }
      }
      const issued = await service.register(name, body.password, ip);
      return { status: 201, body: { ok: `user '${name}' created`, token: issued.token } };
    };
    run().then(
      (result) => sendJson(res, result.status, result.body, true),
      (error: unknown) => sendError(res, logger, error),
    );
  };
  router.put('/-/user/:couchId', couchPut(false));
  router.put('/-/user/:couchId/-rev/:rev', couchPut(true));

  // npm logout
  router.delete('/-/user/token/:token', (req: AuthRequest, res) => {
    const token = logoutTokens.get(req) ?? req.params.token;
    if (!token || token === REDACTED) {
      sendJson(res, 400, { error: 'no token in the URL' });
      return;
    }
    service.logout(token).then(
      () => sendJson(res, 200, { ok: 'Logged out' }),
      (error: unknown) =>
        isAuthError(error, 'ERR_TOKEN_INVALID')
          ? sendJson(res, 400, { error: `not a token issued by this registry (${error.message})` })
          : sendError(res, logger, error),
    );
  });

  // npm token list / create / revoke
  router.get('/-/npm/v1/tokens', (req: AuthRequest, res) => {
    const user = authenticatedUser(req, res);
    if (!user) return;
    service.listTokens(user).then(
      (records) => {
        const objects = records.map(tokenView);
        sendJson(res, 200, { objects, total: objects.length, urls: {} }, true);
      },
      (error: unknown) => sendError(res, logger, error),
    );
  });

  router.post('/-/npm/v1/tokens', (req: AuthRequest, res) => {
    const user = authenticatedUser(req, res);
    if (!user) return;
    let request;
    try {
      request = parseTokenRequest(req.body, deps.maxGeneratedTtlSeconds);
    } catch (error) {
      sendError(res, logger, error);
      return;
    }
    service.createGeneratedToken(user, request, clientIp(req)).then(
      ({ issued, record }) => sendJson(res, 201, { ...tokenView(record), token: issued.token }, true),
      (error: unknown) => sendError(res, logger, error),
    );
  });

  router.delete('/-/npm/v1/tokens/token/:key', (req: AuthRequest, res) => {
    const user = authenticatedUser(req, res);
    if (!user) return;
    service.revokeToken(user, req.params.key).then(
      () => sendJson(res, 200, {}),
      (error: unknown) => sendError(res, logger, error),
    );
  });

  if (deps.trust) {
    addTrustRoutes(router, {
      ...deps.trust,
      logger,
      sendError: (res, error) => sendError(res, logger, error),
      isPackageLimited: (req) => (requestAuth.get(req)?.verified?.trustedPackage ?? null) !== null,
    });
  }
  // `npm access list packages <user>` (libnpmaccess GET /-/user/<user>/package) is the storage
  // part's route: leave this router so the guard below does not answer it (docs/trusted-publishing.md)
  router.get('/-/user/:user/package', (_req, _res, next) => next('router'));
  // npm's web login (docs/web-login-and-tokens.md): POST /-/v1/login starts a session, the
  // dashboard's sign-in page completes it over the two routes below it, npm polls doneUrl.
  const webLogin = new WebLoginSessions(deps.webLogin);
  const revokeUncollected = (expired: readonly { jti: string; expiresAt: number }[]): void => {
    for (const token of expired) {
      service.revokeUncollected(token.jti, token.expiresAt).catch((error: unknown) => {
        logger.error({ message: error instanceof Error ? error.message : String(error) }, 'web login: revoking an uncollected token failed: @{message}');
      });
    }
  };
  // expired sessions are dropped (their uncollected tokens revoked) on the next start, and at least once a minute
  setInterval(() => revokeUncollected(webLogin.sweep()), 60_000).unref();

  const publicBase = (req: AuthRequest): string | null => {
    const host = req.get('host');
    return host !== undefined && USABLE_HOST.test(host) ? publicBaseUrl(req, deps.urlPrefix) : null;
  };

  router.post('/-/v1/login', (req: AuthRequest, res) => {
    const body: unknown = req.body ?? {};
    if (!isRecord(body)) {
      sendJson(res, 400, { error: 'expected a JSON object body ({} or {"create": true})' });
      return;
    }
    if (body.create !== undefined && typeof body.create !== 'boolean') {
      sendJson(res, 400, { error: 'create must be true or false' });
      return;
    }
    const base = publicBase(req);
    if (base === null) {
      sendJson(res, 400, { error: 'the Host header cannot be used to build the login URLs' });
      return;
    }
    let started;
    try {
      const result = webLogin.start(clientIp(req), body.create === true);
      revokeUncollected(result.expired);
      started = result.started;
    } catch (error) {
      sendError(res, logger, error);
      return;
    }
    logger.info({ ip: clientIp(req), create: body.create === true }, 'web login started from @{ip} (create @{create})');
    sendJson(res, 200, { loginUrl: `${base}${WEB_LOGIN_PAGE}${started.loginId}`, doneUrl: `${base}/-/v1/done/${started.doneId}` }, true);
  });

  const sessionId = (req: AuthRequest, res: Response): string | null => {
    const id = req.params.id;
    if (typeof id === 'string' && SESSION_ID.test(id)) return id;
    sendJson(res, 404, { error: 'no such login session' });
    return null;
  };

  // the sign-in page reads whether to offer registration and who asked
  router.get('/-/v1/login/:id', (req: AuthRequest, res) => {
    const id = sessionId(req, res);
    if (id === null) return;
    const view = webLogin.view(id);
    if (!view) {
      sendJson(res, 404, { error: 'this login link is unknown, expired or already used: run npm login again' });
      return;
    }
    sendJson(res, 200, { create: view.create, requestedFrom: view.requestedFrom, expiresAt: new Date(view.expiresAt).toISOString() }, true);
  });

  router.post('/-/v1/login/:id/complete', (req: AuthRequest, res) => {
    const id = sessionId(req, res);
    if (id === null) return;
    // a cross-site page cannot send application/json without a preflight, and must not be the origin
    if (!req.is('application/json')) {
      sendJson(res, 415, { error: 'content-type must be application/json' });
      return;
    }
    const origin = req.get('origin');
    const base = publicBase(req);
    if (origin !== undefined && (base === null || origin !== new URL(base).origin)) {
      sendJson(res, 403, { error: 'sign in from the registry\'s own login page' });
      return;
    }
    const body: unknown = req.body;
    if (!isRecord(body) || typeof body.username !== 'string' || body.username === '' || typeof body.password !== 'string' || body.password === '') {
      sendJson(res, 400, { error: 'expected {"username": "...", "password": "..."} (and "create": true to register)' });
      return;
    }
    if (body.create !== undefined && typeof body.create !== 'boolean') {
      sendJson(res, 400, { error: 'create must be true or false' });
      return;
    }
    let session: { create: boolean };
    try {
      session = webLogin.beginSignIn(id);
    } catch (error) {
      sendError(res, logger, error);
      return;
    }
    if (body.create === true && !session.create) {
      webLogin.abortSignIn(id);
      sendJson(res, 400, { error: 'this login was started by npm login: sign in with an existing account (npm adduser offers registration)' });
      return;
    }
    const username = body.username;
    service.webSignIn(username, body.password, clientIp(req), body.create === true).then(
      (issued) => {
        if (!webLogin.finishSignIn(id, issued.token, issued.jti, issued.expiresAt)) {
          revokeUncollected([{ jti: issued.jti, expiresAt: issued.expiresAt }]);
          sendJson(res, 404, { error: 'this login link expired while signing in: run npm login again' });
          return;
        }
        sendJson(res, 200, { ok: true, username }, true);
      },
      (error: unknown) => {
        webLogin.abortSignIn(id);
        sendError(res, logger, error);
      },
    );
  });

  // npm polls here: 202 + Retry-After until the browser signed in, then the token, once
  router.get('/-/v1/done/:id', (req: AuthRequest, res) => {
    const id = sessionId(req, res);
    if (id === null) return;
    const result = webLogin.poll(id);
    if (!result) {
      sendJson(res, 404, { error: 'this login session is unknown, expired or its token was already collected: run npm login again' });
      return;
    }
    if (result.state === 'pending') {
      res.set('retry-after', String(result.retryAfterSeconds));
      sendJson(res, 202, { pending: true }, true);
      return;
    }
    sendJson(res, 200, { token: result.token }, true);
  });

  // Last: whatever ours passed on along Verdaccio's auth paths stops here (see the file comment).
  const notServed = (req: AuthRequest, res: Response): void => {
    sendJson(res, 404, { error: `not found: ${req.method} ${req.path.slice(0, 200)}` });
  };
  for (const route of VERDACCIO_AUTH_ROUTES) router[route.method](route.path, notServed);

  return router;
}
