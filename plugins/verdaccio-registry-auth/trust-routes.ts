/**
 * Routes of trusted publishing (docs/trusted-publishing.md), added to the auth plugin's router:
 *
 *   POST   /-/npm/v1/oidc/token/exchange/package/:name   id_token (Bearer) → {token}
 *   GET    /-/package/:name/trust                        `npm trust list`
 *   POST   /-/package/:name/trust                        `npm trust github|gitlab` (a list of configs)
 *   DELETE /-/package/:name/trust/:id                    `npm trust revoke --id`
 *
 * Managing rules needs a user token (not a package-limited one) of a maintainer of the package
 * or an admin; maintainers come from the storage part through the core seam
 * (registry-core/package-owners.ts). Every refusal is a 4xx JSON `{"error"}` and changes nothing.
 */
import type { Request, Response, Router } from 'express';
import { OwnersUnavailableError } from '../registry-core/package-owners';
import { AuthError } from './errors';
import type { OidcExchange } from './oidc-exchange';
import { parseTrustConfig, trustRuleView, type TrustRuleStore } from './trust-rules';
import type { AuthRequest, PluginLogger } from './verdaccio-adapter';

export interface TrustRouteDependencies {
  exchange: OidcExchange;
  rules: TrustRuleStore;
  owners(name: string): Promise<string[] | null>;
  isAdmin(user: string): boolean;
  /** true when the request's credential is a package-limited (trusted-publishing) token */
  isPackageLimited(req: Request): boolean;
  logger: PluginLogger;
  sendError(res: Response, error: unknown): void;
}

function bearerOf(req: Request): string {
  const header = req.headers.authorization ?? '';
  const match = /^bearer\s+(.+)$/i.exec(header.trim());
  return match ? match[1].trim() : '';
}

export function addTrustRoutes(router: Router, deps: TrustRouteDependencies): void {
  const { exchange, rules, logger } = deps;

  router.post('/-/npm/v1/oidc/token/exchange/package/:name', (req: AuthRequest, res) => {
    const name = req.params.name;
    const idToken = bearerOf(req);
    if (!idToken) {
      res.status(401).json({ error: 'trusted publishing: send the CI provider id_token as Authorization: Bearer <id_token>' });
      return;
    }
    exchange.exchange(name, idToken).then(
      (result) => {
        logger.info({ pkg: name, user: result.rule.createdBy, rule: result.rule.id }, 'trusted publishing: token for @{pkg} issued (rule @{rule} of @{user})');
        res.set('cache-control', 'no-store');
        res.status(201).json({ token: result.token, expires: new Date(result.expiresAt).toISOString() });
      },
      (error: unknown) => {
        logger.warn({ pkg: name, reason: error instanceof Error ? error.message : String(error) }, 'trusted publishing refused for @{pkg}: @{reason}');
        deps.sendError(res, error);
      },
    );
  });

  /** The user who may manage the package's rules, or an AuthError. */
  const manager = async (req: AuthRequest): Promise<string> => {
    const user = req.remote_user?.name;
    if (!user) throw new AuthError('ERR_TOKEN_INVALID', req.remote_user?.error ?? 'authentication required to manage trusted publishers');
    if (deps.isPackageLimited(req)) throw new AuthError('ERR_FORBIDDEN', 'a package-limited token cannot manage trusted publishers');
    const name = req.params.name;
    let owners: string[] | null;
    try {
      owners = await deps.owners(name);
    } catch (error) {
      // never "allowed" when the maintainers cannot be read; the store's detail goes to the log only
      if (!(error instanceof OwnersUnavailableError)) logger.warn({ pkg: name, reason: error instanceof Error ? error.message : String(error) }, 'trust rules: owners of @{pkg} unreadable: @{reason}');
      throw new AuthError('ERR_UNAVAILABLE', error instanceof OwnersUnavailableError ? error.message : `the maintainers of ${name} could not be read; try again`);
    }
    if (owners === null) throw new AuthError('ERR_NOT_FOUND', `package ${name} does not exist`);
    if (!owners.includes(user) && !deps.isAdmin(user)) throw new AuthError('ERR_FORBIDDEN', `only maintainers of ${name} (or admins) manage its trusted publishers`);
    return user;
  };

  router.get('/-/package/:name/trust', (req: AuthRequest, res) => {
    manager(req).then(
      () => res.status(200).json(rules.list(req.params.name).map(trustRuleView)),
      (error: unknown) => deps.sendError(res, error),
    );
  });

  router.post('/-/package/:name/trust', (req: AuthRequest, res) => {
    manager(req)
      .then((user) => {
        const body: unknown = req.body;
        const list = Array.isArray(body) ? body : [body];
        if (list.length === 0) throw new AuthError('ERR_BAD_REQUEST', 'expected a list of trust configurations');
        const configs = list.map((item) => parseTrustConfig(item));
        const added = rules.add(req.params.name, configs, user);
        logger.info({ pkg: req.params.name, user, count: added.length }, 'trusted publishing: @{user} added @{count} rule(s) to @{pkg}');
        res.status(201).json(added.map(trustRuleView));
      })
      .catch((error: unknown) => deps.sendError(res, error));
  });

  router.delete('/-/package/:name/trust/:id', (req: AuthRequest, res) => {
    manager(req)
      .then((user) => {
        if (!rules.remove(req.params.name, req.params.id)) throw new AuthError('ERR_NOT_FOUND', `package ${req.params.name} has no trust configuration ${req.params.id}`);
        logger.info({ pkg: req.params.name, user, id: req.params.id }, 'trusted publishing: @{user} revoked rule @{id} of @{pkg}');
        res.status(200).json({});
      })
      .catch((error: unknown) => deps.sendError(res, error));
  });
}
