/**
 * verdaccio-registry-auth — the `auth:` plugin: htpasswd users (bcrypt) and a real JWT issuer
 * (jose, EdDSA or RS256 by the PREMIUM_TYPES flag) whose issuer and audience follow the 13-byte
 * config. Verdaccio loads the default export; the named exports are the library functions the
 * names from docs/identity.md, bound to the instance Verdaccio constructed in this process.
 *
 * The constructor throws when it cannot initialise (bad keys folder, unreadable htpasswd,
 * invalid registry.lockb): Verdaccio then skips the plugin, and scripts/start.ts refuses to
 * serve because 'auth' never announced itself — instead of Verdaccio's silent fallback to an
 * htpasswd file with open registration.
 */
import { join } from 'node:path';
import {
  ConfigFile,
  bootMark,
  bootRegistry,
  getAudience,
  loadRegistrySettings,
  readRegistryUrl,
  registryEvents,
  registryUrlMatches,
  startAuditTrail,
} from '../registry-core/index';
import { announcePluginLoaded } from '../registry-core/plugin-presence';
import { LAST_USED_RESOLUTION_MS, TOKEN_STORE_FILE, TokenStore, type TokenRecords } from '../registry-core/token-store';
import { databaseSettingsOf } from '../registry-core/database/index';
import { clusterLink, type ClusterLink } from '../registry-core/database/cluster';
import { startClusterNode } from '../registry-core/database/cluster-node';
import { PgTokenStore } from '../registry-core/database/token-store-pg';
import { shareFolderSync } from '../registry-core/database/shared-files';
import { PgUserStore } from './users-pg';
import { PgLoginLimiter } from './rate-limit-pg';
import { registerTokenVerifier } from '../registry-core/token-verifier';
import { packageOwnersOf } from '../registry-core/package-owners';
import { OidcExchange } from './oidc-exchange';
import { TRUST_FILE, TrustRuleStore } from './trust-rules';
import { AuthService } from './auth-service';
import { AuthError } from './errors';
import { FirstUserRecord } from './first-user';
import { createAuthMiddleware, installLogoutUrlRedaction } from './http';
import { KEY_FILE_PATTERN, KeyRing, TOKEN_ALGORITHMS, type TokenAlgorithm } from './keys';
import { readPluginSettings, type AuthPluginSettings } from './plugin-config';
import { FailedLoginLimiter } from './rate-limit';
import { TokenIssuer, identityOf, type IssueOptions, type IssuedToken, type VerifiedToken } from './token-issuer';
import { UserStore, type Users } from './users';
import {
  adaptHelpers,
  adaptPackageRule,
  adaptPluginArguments,
  authErrorToVerdaccio,
  verdaccioErrors,
  type AccessCallback,
  type AddUserCallback,
  type AuthCallback,
  type Middleware,
  type PackageRule,
  type PluginLogger,
} from './verdaccio-adapter';
import { toRemoteUser, type VerdaccioRemoteUser } from '../verdaccio-boundary/index';

export type { IssueOptions, IssuedToken, VerifiedToken } from './token-issuer';
export type { TokenAlgorithm } from './keys';
export { ADMIN_GROUP } from './auth-service';

/** Callers of the plugin-interface methods have no client IP; their failures share this key. */
const PLUGIN_API_CLIENT = 'verdaccio-plugin-api';

let active: RegistryAuthPlugin | null = null;

function running(): RegistryAuthPlugin {
  if (!active) throw new AuthError('ERR_AUTH_CONFIG', 'the registry auth plugin is not loaded in this process');
  return active;
}

/** The issuer (docs/identity.md decision tree) for the config as it is now. */
export function currentIssuer(): { url: string; kind: 'private' | 'local' | 'public' } {
  return running().issuer.state().issuer;
}

/** EdDSA when PREMIUM_TYPES is set, else RS256 — what the next token will be signed with. */
export function currentTokenAlgorithm(): TokenAlgorithm {
  return running().issuer.state().alg;
}

/** Signs a token of this registry for `user` (not recorded in the token store). */
export function issueLocalToken(user: string, groups: readonly string[] = [], options: IssueOptions = {}): Promise<IssuedToken> {
  return running().issuer.issue(user, groups, options);
}

/** Verifies a token against the current issuer, audience, keys and revocations; throws ERR_TOKEN_INVALID. */
export function verifyToken(token: string): Promise<VerifiedToken> {
  return running().issuer.verify(token);
}

export default class RegistryAuthPlugin {
  readonly version = 1;
  readonly settings: AuthPluginSettings;
  readonly issuer: TokenIssuer;
  readonly service: AuthService;
  private readonly logger: PluginLogger;
  private middleware: Middleware | null = null;
  /** trusted publishing: rules and the id_token exchange (docs/trusted-publishing.md) */
  readonly trust: { rules: TrustRuleStore; exchange: OidcExchange; owners(name: string): Promise<string[] | null>; isAdmin(user: string): boolean };
  private readonly urlPrefix: string | undefined;

  constructor(config: unknown, options: unknown) {
    const { merged, configPath, logger, urlPrefix } = adaptPluginArguments(config, options);
    this.urlPrefix = urlPrefix;
    // The first of our plugins to load prepares registry.lockb/.env.local and arms the presence guard (idempotent).
    bootRegistry(merged, process.env, { configPath });
    this.logger = logger;
    const settings = readPluginSettings(merged, configPath);
    this.settings = settings;

    // files (default) or PostgreSQL shared by every node (docs/database.md, docs/cluster.md)
    const backend = databaseSettingsOf(merged, process.env);
    const report = (message: string): void => logger.warn({ message }, 'registry-auth: @{message}');
    const link: ClusterLink | null = backend.backend === 'postgres' ? clusterLink(backend.url, report) : null;
    const userOptions = {
      file: settings.htpasswdFile,
      maxUsers: settings.maxUsers,
      passwordMinLength: settings.passwordMinLength,
      bcryptRounds: settings.bcryptRounds,
    };
    const users: Users = link === null ? new UserStore(userOptions) : new PgUserStore(userOptions, link);
    for (const warning of users.warnings) logger.warn({ warning }, '@{warning}');
    const firstUser = new FirstUserRecord(settings.htpasswdFile);
    if (firstUser.recordedName === null && users.size > 0) {
      // an installation from before the record existed: its first line now is the first user, once
      const first = users.names()[0];
      firstUser.recordIfMissing(first, 'adopted');
      logger.warn({ user: first, file: firstUser.file }, 'first user recorded as @{user} in @{file} (the default admin from now on)');
    }

    // bootRegistry created and validated registry.lockb; an invalid one throws here.
    const configFile = ConfigFile.open(settings.lockbPath);
    const { envFile } = loadRegistrySettings({ configPath: settings.configPath, lockbPath: settings.lockbPath, env: {} });
    const tokens: TokenRecords = link === null ? TokenStore.open(join(settings.storageDir, TOKEN_STORE_FILE)) : PgTokenStore.open(link);
    if (link !== null) startClusterNode(link.database.url, settings.lockbPath, report);
    Promise.resolve()
      .then(() => tokens.prune())
      .catch((error: unknown) => logger.warn({ error: (error as Error).message }, 'could not prune expired tokens: @{error}'));
    // "last used" marks are kept in memory and written out together, at most once a minute (a
    // crash loses at most that minute of marks, never a token or a revocation)
    setInterval(() => {
      Promise.resolve()
        .then(() => tokens.flushLastUsed())
        .catch((error: unknown) => logger.warn({ error: (error as Error).message }, 'could not write token last-used marks: @{error}'));
    }, LAST_USED_RESOLUTION_MS).unref();
    let ring = KeyRing.open(settings.keysDir, { background: link === null });
    if (link !== null) {
      // every node signs and verifies with the same keys: the first node's win (docs/cluster.md "Keys")
      const shared = shareFolderSync(link.database.url, 'keys', settings.keysDir, KEY_FILE_PATTERN);
      if (shared.written.length > 0) ring = KeyRing.open(settings.keysDir);
    }
    // keys/ removed while running: written back from memory (a restart would invalidate every token)
    ring.watchOnDisk((event) => {
      if (event.kind === 'restored') logger.warn({ message: event.message }, 'auth keys: @{message}');
      else logger.error({ message: event.message }, 'auth keys: @{message}');
    });

    this.issuer = new TokenIssuer(
      ring,
      { fields: () => configFile.getConfig().fields, registryUrl: () => readRegistryUrl(envFile) },
      tokens,
      { defaultTtlSeconds: settings.tokenTtlSeconds },
    );
    this.service = new AuthService({
      users,
      firstUser,
      issuer: this.issuer,
      tokens,
      limiter:
        link === null ? new FailedLoginLimiter({ maxFailures: settings.loginMaxFailures }) : new PgLoginLimiter(link.database, { maxFailures: settings.loginMaxFailures }),
      events: registryEvents(settings.lockbPath),
      logger,
      admins: settings.admins,
      generatedTokenTtlSeconds: settings.generatedTokenTtlSeconds,
    });
    installLogoutUrlRedaction();
    // the one audit writer (idempotent: whichever of our plugins starts first opens it; docs/audit.md)
    startAuditTrail(settings.lockbPath, (text) => logger.error({ detail: text }, 'registry-auth: @{detail}'));

    const trustRules = new TrustRuleStore(join(settings.storageDir, TRUST_FILE));
    const service = this.service;
    const issuerForTrust = this.issuer;
    const owners = (name: string): Promise<string[] | null> => packageOwnersOf(settings.lockbPath, name);
    this.trust = {
      rules: trustRules,
      owners,
      isAdmin: (user) => service.isAdmin(user),
      exchange: new OidcExchange({
        settings: settings.trustedPublishing,
        registryUrl: () => issuerForTrust.state().registryUrl,
        rules: (name) => trustRules.list(name),
        owners,
        isAdmin: (user) => service.isAdmin(user),
        userExists: (user) => service.users.has(user),
        issue: async (user, trustedPackage, ttlSeconds) => {
          const issued = await issuerForTrust.issue(user, service.groupsOf(user), { ttlSeconds, trustedPackage });
          return { token: issued.token, expiresAt: issued.expiresAt };
        },
      }),
    };

    const state = this.issuer.state();
    const kids = TOKEN_ALGORITHMS.map((alg) => `${alg} kid ${ring.byAlg[alg]?.kid ?? '(generating in the background)'}`).join(', ');
    const generated = ring.created.length > 0 ? `generated ${ring.created.length} key file(s) in ${ring.dir}` : `from ${ring.dir}`;
    bootMark(`keys loaded (${state.alg} signs; ${kids}; ${generated})`);
    if (TOKEN_ALGORITHMS.some((alg) => !ring.byAlg[alg])) {
      ring.loaded.then(
        () => bootMark(`keys generated: ${TOKEN_ALGORITHMS.map((alg) => `${alg} kid ${ring.require(alg).kid}`).join(', ')} in ${ring.dir}`),
        (error: unknown) => {
          const message = error instanceof Error ? error.message : String(error);
          bootMark(`ERROR: ${message}`);
          logger.error({ message }, 'auth keys: @{message}');
        },
      );
    }
    bootMark(`issuer ${state.issuer.url} (${state.issuer.kind}), audience ${state.audience}`);
    if (!registryUrlMatches(configFile.getConfig().fields, state.registryUrl)) {
      bootMark(`WARNING: registry URL ${state.registryUrl} does not hash to registryHash ${getAudience(configFile.getConfig().fields).slice(9)}`);
    }
    let last = state;
    configFile.watchConfig(() => {
      const now = this.issuer.state();
      if (now.alg !== last.alg) logger.info({ alg: now.alg }, 'new tokens are now signed with @{alg}');
      if (now.audience !== last.audience || now.issuer.url !== last.issuer.url) {
        logger.warn({ iss: now.issuer.url, aud: now.audience }, 'issuer/audience changed to @{iss} / @{aud}: tokens issued before are no longer accepted');
      }
      last = now;
    });

    active = this;
    // the one token check for channels outside Verdaccio's HTTP pipeline (the dashboard's WebSocket)
    const issuer = this.issuer;
    registerTokenVerifier(settings.lockbPath, async (token, use) => identityOf(await issuer.check(token, use)));
    announcePluginLoaded('auth', `${state.alg}, issuer ${state.issuer.url}`);
  }

  getVersion(): number {
    return this.version;
  }

  // Verdaccio's arguments arrive untyped; verdaccio-adapter.ts narrows them.
  authenticate(user: string, password: string, cb: AuthCallback): void {
    if (typeof user !== 'string' || typeof password !== 'string' || user === '') {
      cb(verdaccioErrors.unauthorized('username and password are required'));
      return;
    }
    this.service.checkPassword(user, password, PLUGIN_API_CLIENT).then(
      (ok) => (ok ? cb(null, this.service.groupsOf(user)) : cb(verdaccioErrors.unauthorized('bad username or password'))),
      (error: unknown) => cb(authErrorToVerdaccio(error)),
    );
  }

  adduser(user: string, password: string, cb: AddUserCallback): void {
    this.service.addUser(user, password).then(
      () => cb(null, true),
      (error: unknown) => cb(authErrorToVerdaccio(error)),
    );
  }

  // Verdaccio's own password routes never reach here (http.ts serves or refuses them); any other
  // caller gets the same rule: rate limit, then every earlier token of the user invalidated.
  changePassword(user: string, password: string, newPassword: string, cb: AccessCallback): void {
    this.service.changePassword(user, password, newPassword, PLUGIN_API_CLIENT).then(
      () => cb(null, true),
      (error: unknown) => cb(authErrorToVerdaccio(error)),
    );
  }

  allow_access(user: unknown, pkg: unknown, cb: AccessCallback): void {
    this.allow('access', toRemoteUser(user), adaptPackageRule(pkg), cb);
  }

  allow_publish(user: unknown, pkg: unknown, cb: AccessCallback): void {
    this.allow('publish', toRemoteUser(user), adaptPackageRule(pkg), cb);
  }

  allow_unpublish(user: unknown, pkg: unknown, cb: AccessCallback): void {
    this.allow('unpublish', toRemoteUser(user), adaptPackageRule(pkg), cb);
  }

  apiJWTmiddleware(helpers: unknown): Middleware {
    // Verdaccio calls this twice (app level and API router): one middleware, one set of routes.
    this.middleware ??= createAuthMiddleware({
      service: this.service,
      issuer: this.issuer,
      helpers: adaptHelpers(helpers),
      logger: this.logger,
      maxGeneratedTtlSeconds: 365 * 86_400,
      trust: this.trust,
      urlPrefix: this.urlPrefix,
    });
    return this.middleware;
  }

  /** The `packages:` rule for the package: allowed when the user or one of its groups is listed. */
  private allow(action: 'access' | 'publish' | 'unpublish', user: VerdaccioRemoteUser, rule: PackageRule, cb: AccessCallback): void {
    let list: string[] | undefined;
    if (action === 'access') list = rule.access;
    else if (action === 'publish') list = rule.publish;
    else list = rule.unpublish === false || rule.unpublish === undefined || rule.unpublish.length === 0 ? rule.publish : rule.unpublish;
    const allowed = (list ?? []).some((entry) => entry === user.name || user.groups.includes(entry));
    if (allowed) {
      cb(null, true);
      return;
    }
    if (user.name) cb(verdaccioErrors.forbidden(`user ${user.name} is not allowed to ${action} package ${rule.name}`));
    else cb(verdaccioErrors.unauthorized(`authorization required to ${action} package ${rule.name}`));
  }
}
