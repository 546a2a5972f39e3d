/**
 * Everything below `/_dashboard` over plain HTTP, as one handler (no router stack: the page is
 * a hot path). Routes (docs/http-api.md):
 *   GET  /_dashboard                 the page
 *   GET  /_dashboard/assets/<file>   its script, styles, icon
 *   GET  /_dashboard/api/config      the config document
 *   POST /_dashboard/api/config      {op: setByte|toggleFeature|setRegistryUrl} (admin)
 *   GET  /_dashboard/api/packages    packages the caller may read, from the index (?q= by name, ?offset=&limit= a page)
 *   GET  /_dashboard/api/package     one package for the package view (?name=; access rules as for `npm view`)
 *   GET  /_dashboard/api/activity    publishes/downloads/requests per minute and the storage size
 *   GET  /_dashboard/api/env         the env export (text/plain)
 *   GET  /_dashboard/api/session     who the caller is: {user, admin, groups, accessGroups}
 *   GET  /_dashboard/login/<session> the web login's sign-in page (docs/web-login-and-tokens.md;
 *                                    the auth plugin owns the sessions, the page talks to it over HTTP)
 *   GET  /_dashboard/api/upstream    upstream health and cache size, or {available:false} (docs/offline-and-warm.md)
 *   GET  /_dashboard/api/audit       the audit trail (?package=&user=&limit=; docs/audit.md)
 *   GET  /_dashboard/terminal        WebSocket only (the upgrade is handled in terminal-socket.ts)
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { NextFunction, Request, Response } from 'express';
import { RegistryCoreError, type AuditLog, type AuditRecord } from '../registry-core/index';
import type { ActivityDocument } from './activity';
import type { ListPage, ListQuery } from './packages';
import { isPackageName, type PackageView } from './package-view';
import { requireAdmin, sessionOf, type Session } from './access';
import { serveAsset, type Asset } from './assets';
import type { ConfigService } from './config-service';
import { DashboardHttpError, describeBodyParserError, sendError, sendJson } from './http-errors';
import { AUDIT_DEFAULT_LIMIT, MAX_BODY_BYTES, requestSchemas } from './request-limits';
import type { ConfigOperation } from './requests';
import type { UpstreamView } from './upstream-status-access';
import { remoteUserOf, type DashboardLogger, type VerdaccioRemoteUser } from './verdaccio-adapter';

/** The wire format of GET /_dashboard/api/session. */
export interface SessionDocument extends Session {
  /** all of remote_user.groups, including the `$authenticated`-style roles access rules use */
  accessGroups: string[];
  /** set when the auth middleware rejected the token that came with the request */
  error?: string;
}

export interface RouteOptions {
  mountPath: string;
  assets: Map<string, Asset>;
  service: ConfigService;
  admins: ReadonlySet<string>;
  listPackages(user: VerdaccioRemoteUser, query: ListQuery): Promise<ListPage>;
  /** undefined: no such package (the route has checked access before asking) */
  packageView(name: string): Promise<PackageView | undefined>;
  activity(): ActivityDocument;
  upstreamStatus(): UpstreamView;
  audit: AuditLog;
  canAccess(name: string, user: VerdaccioRemoteUser): Promise<boolean>;
  logger: DashboardLogger;
}

export { AUDIT_DEFAULT_LIMIT, AUDIT_MAX_LIMIT } from './request-limits';

export interface AuditParams {
  package?: string;
  user?: string;
  limit: number;
}

export function auditParams(req: Request): AuditParams {
  const { AuditQuery, describeIssues } = requestSchemas();
  const parsed = AuditQuery.safeParse(req.query);
  if (!parsed.success) throw new DashboardHttpError(400, describeIssues(parsed.error));
  const params: AuditParams = { limit: parsed.data.limit === undefined ? AUDIT_DEFAULT_LIMIT : Number(parsed.data.limit) };
  if (parsed.data.package !== undefined) params.package = parsed.data.package;
  if (parsed.data.user !== undefined) params.user = parsed.data.user;
  return params;
}

/**
 * Admins see every record; any other signed-in user sees what they did or what is about them,
 * and records of packages they may access (Verdaccio's `access` rule, asked once per package).
 */
async function visibleAudit(options: RouteOptions, user: VerdaccioRemoteUser, session: Session, params: AuditParams): Promise<AuditRecord[]> {
  const query = { limit: params.limit, ...(params.package === undefined ? {} : { name: params.package }), ...(params.user === undefined ? {} : { user: params.user }) };
  if (session.admin) return options.audit.query(query);
  const me = session.user;
  const candidates = options.audit.query({ ...query, limit: Number.MAX_SAFE_INTEGER });
  const allowed = new Map<string, boolean>();
  const out: AuditRecord[] = [];
  for (const record of candidates) {
    if (out.length >= params.limit) break;
    let visible = record.actor === me || record.user === me;
    if (!visible && record.name !== undefined) {
      let ok = allowed.get(record.name);
      if (ok === undefined) {
        ok = await options.canAccess(record.name, user);
        allowed.set(record.name, ok);
      }
      visible = ok;
    }
    if (visible) out.push(record);
  }
  return out;
}

const PAGE_CACHE = 'no-cache, no-transform';
const VERSIONED_CACHE = 'public, max-age=31536000, immutable, no-transform';
/** A web-login session id as the auth plugin makes them (32 random bytes, base64url). */
const LOGIN_PAGE_PATH = /^\/login\/[A-Za-z0-9_-]{43}\/?$/;

/** Strict CSP: our own origin only; the WebSocket of this very host is named explicitly for older engines. */
function securityHeaders(host: string | undefined, cache: Map<string, Record<string, string>>): Record<string, string> {
  const key = host ?? '';
  const cached = cache.get(key);
  if (cached) return cached;
  const safeHost = host !== undefined && /^[a-z0-9.\-:[\]]{1,255}$/i.test(host) ? host : undefined;
  const connect = safeHost ? `'self' ws://${safeHost} wss://${safeHost}` : `'self'`;
  const headers = {
    'Content-Security-Policy':
      `default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src ${connect}; ` +
      `object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'`,
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    'X-Frame-Options': 'DENY',
  };
  if (cache.size < 32) cache.set(key, headers);
  return headers;
}

function methodNotAllowed(allowed: string): DashboardHttpError {
  return new DashboardHttpError(405, `method not allowed; use ${allowed}`, { Allow: allowed });
}

export function listQuery(req: Request): ListQuery {
  const { PackagesQuery, describeIssues } = requestSchemas();
  const parsed = PackagesQuery.safeParse(req.query);
  if (!parsed.success) throw new DashboardHttpError(400, describeIssues(parsed.error));
  const { q: filter, offset, limit } = parsed.data;
  return { offset: offset ?? 0, ...(filter === undefined ? {} : { filter }), ...(limit === undefined ? {} : { limit }) };
}

function packageQueryName(req: Request): string | undefined {
  const { PackageQuery, describeIssues } = requestSchemas();
  const parsed = PackageQuery.safeParse(req.query);
  if (!parsed.success) throw new DashboardHttpError(400, describeIssues(parsed.error));
  return parsed.data.name;
}

/** 401 for anonymous (it might be allowed once signed in), 403 for a user the rule leaves out — as Verdaccio answers `npm view`. */
function refuseRead(user: VerdaccioRemoteUser, name: string): DashboardHttpError {
  if (!user.name) {
    return new DashboardHttpError(401, `authentication required to read ${name}`, { 'WWW-Authenticate': 'Bearer realm="registry"' });
  }
  return new DashboardHttpError(403, `user ${user.name} may not read ${name}`);
}

/** The body as parsed by Verdaccio's app-wide express.json, after the checks it does not do for us. */
function operationBody(req: Request): ConfigOperation {
  if (!req.is('application/json')) {
    throw new DashboardHttpError(415, 'content-type must be application/json');
  }
  const declared = Number(req.headers['content-length'] ?? Number.NaN);
  // With a Content-Length we know the wire size; chunked bodies are measured after parsing.
  const size = Number.isFinite(declared) ? declared : Buffer.byteLength(JSON.stringify(req.body) ?? '');
  if (size > MAX_BODY_BYTES) throw new DashboardHttpError(413, `body is too large (at most ${MAX_BODY_BYTES} bytes)`);
  const { ConfigOperation, describeIssues } = requestSchemas();
  const parsed = ConfigOperation.safeParse(req.body);
  if (!parsed.success) throw new DashboardHttpError(400, describeIssues(parsed.error));
  return parsed.data;
}

export function createDashboardHandler(options: RouteOptions): (req: Request, res: Response, next: NextFunction) => void {
  const { assets, service, admins, mountPath } = options;
  const headerCache = new Map<string, Record<string, string>>();
  const page = assets.get('/');
  if (!page) throw new Error('registry-dashboard: the page asset is missing');
  const loginPage = assets.get('/login');
  if (!loginPage) throw new Error('registry-dashboard: the login page asset is missing');

  const handle = async (req: Request, res: Response): Promise<void> => {
    const path = req.path;
    const method = req.method;

    if (path === '/' || path === '') {
      if (method !== 'GET' && method !== 'HEAD') throw methodNotAllowed('GET, HEAD');
      return serveAsset(req, res, page, securityHeaders(req.headers.host, headerCache), PAGE_CACHE);
    }
    if (LOGIN_PAGE_PATH.test(path)) {
      if (method !== 'GET' && method !== 'HEAD') throw methodNotAllowed('GET, HEAD');
      // no-store: the URL holds a login secret, nothing should keep the page under it
      return serveAsset(req, res, loginPage, securityHeaders(req.headers.host, headerCache), 'no-store');
    }
    if (path.startsWith('/assets/')) {
      const asset = assets.get(path);
      if (!asset) throw new DashboardHttpError(404, `no asset ${path.slice('/assets/'.length)}`);
      if (method !== 'GET' && method !== 'HEAD') throw methodNotAllowed('GET, HEAD');
      const versioned = req.query.v === asset.version;
      return serveAsset(req, res, asset, securityHeaders(req.headers.host, headerCache), versioned ? VERSIONED_CACHE : PAGE_CACHE);
    }
    switch (path) {
      case '/api/config': {
        if (method === 'GET' || method === 'HEAD') return sendJson(res, 200, service.current().json);
        if (method !== 'POST') throw methodNotAllowed('GET, POST');
        const session = requireAdmin(remoteUserOf(req), admins);
        const operation = operationBody(req);
        const rendered = await service.apply(operation, session.user ?? undefined);
        return sendJson(res, 200, rendered.json);
      }
      case '/api/packages': {
        if (method !== 'GET' && method !== 'HEAD') throw methodNotAllowed('GET');
        const page = await options.listPackages(remoteUserOf(req), listQuery(req));
        return sendJson(res, 200, JSON.stringify(page));
      }
      case '/api/package': {
        if (method !== 'GET' && method !== 'HEAD') throw methodNotAllowed('GET');
        const name = packageQueryName(req);
        if (name === undefined) throw new DashboardHttpError(400, 'name is required: /_dashboard/api/package?name=<package>');
        if (!isPackageName(name)) throw new DashboardHttpError(400, `${JSON.stringify(name)} is not a package name`);
        const user = remoteUserOf(req);
        // the access rule first, as for `npm view`: a refused caller learns nothing about existence
        if (!(await options.canAccess(name, user))) throw refuseRead(user, name);
        const view = await options.packageView(name);
        if (!view) throw new DashboardHttpError(404, `no package ${name}`);
        return sendJson(res, 200, JSON.stringify(view));
      }
      case '/api/activity': {
        if (method !== 'GET' && method !== 'HEAD') throw methodNotAllowed('GET');
        // counts and sizes only, no names: readable by anyone, like the config document
        return sendJson(res, 200, JSON.stringify(options.activity()));
      }
      case '/api/upstream': {
        if (method !== 'GET' && method !== 'HEAD') throw methodNotAllowed('GET');
        // like the config document, readable by anyone: URL, timings and sizes, no secrets
        return sendJson(res, 200, JSON.stringify(options.upstreamStatus()));
      }
      case '/api/env': {
        if (method !== 'GET' && method !== 'HEAD') throw methodNotAllowed('GET');
        const env = service.current().value.env;
        res.writeHead(200, {
          'Content-Type': 'text/plain; charset=utf-8',
          'Content-Length': String(Buffer.byteLength(env)),
          'Cache-Control': 'no-store',
          'X-Content-Type-Options': 'nosniff',
        });
        res.end(method === 'HEAD' ? undefined : env);
        return;
      }
      case '/api/session': {
        if (method !== 'GET' && method !== 'HEAD') throw methodNotAllowed('GET');
        const user = remoteUserOf(req);
        const session = sessionOf(user, admins);
        const document: SessionDocument = { ...session, accessGroups: session.user ? user.groups : [] };
        if (user.error) document.error = user.error;
        return sendJson(res, 200, JSON.stringify(document));
      }
      case '/api/audit': {
        if (method !== 'GET' && method !== 'HEAD') throw methodNotAllowed('GET');
        const user = remoteUserOf(req);
        const session = sessionOf(user, admins);
        if (!session.user) {
          throw new DashboardHttpError(401, 'authentication required: the audit trail is shown to signed-in users', { 'WWW-Authenticate': 'Bearer realm="registry"' });
        }
        const params = auditParams(req);
        const records = await visibleAudit(options, user, session, params);
        return sendJson(res, 200, JSON.stringify({ records, scope: session.admin ? 'all' : 'own and accessible packages' }));
      }
      case '/terminal':
      case '/terminal/':
        throw new DashboardHttpError(426, 'this is a WebSocket endpoint: connect with Upgrade: websocket', { Upgrade: 'websocket' });
      default:
        throw new DashboardHttpError(404, `no dashboard route ${mountPath}${path}`);
    }
  };

  return (req, res) => {
    handle(req, res).catch((error: unknown) => respondWithError(res, error, options.logger));
  };
}

export function respondWithError(res: ServerResponse, error: unknown, logger: DashboardLogger): void {
  if (error instanceof DashboardHttpError) return sendError(res, error.status, error.message, error.headers);
  if (error instanceof RegistryCoreError) {
    // the core names the field in its message; lock contention is ours to retry, not the client's fault
    if (error.code === 'ERR_LOCK_TIMEOUT') return sendError(res, 503, error.message, { 'Retry-After': '1' });
    // the client's input was wrong; anything else (a broken .env.local, a damaged file) is ours
    if (error.code === 'ERR_CONFIG_FIELD' || error.code === 'ERR_REGISTRY_URL') return sendError(res, 400, error.message);
    logger.error(`${error.code}: ${error.message}`);
    return sendError(res, 500, `${error.message}${error.hint ? ` (${error.hint})` : ''}`);
  }
  const bodyProblem = describeBodyParserError(error);
  if (bodyProblem) return sendError(res, bodyProblem.status, bodyProblem.message);
  logger.error(`unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  sendError(res, 500, 'internal error in the dashboard');
}

/**
 * Errors raised before our handler (Verdaccio's app-wide JSON parser: bad JSON, huge body,
 * bad charset) skip non-error middleware; this error-handling middleware turns them into the
 * same `{"error"}` answers for everything under the mount path.
 */
export function createDashboardErrorHandler(logger: DashboardLogger): (error: unknown, req: IncomingMessage, res: ServerResponse, next: NextFunction) => void {
  return (error, _req, res, _next) => respondWithError(res, error, logger);
}
