/**
 * Verdaccio middleware plugin `registry-dashboard` (config.yaml: `middlewares: { registry-dashboard: {} }`).
 * Owns `/_dashboard` and everything below it: the page, its JSON API and the WebSocket.
 * `/_auth/*` and the npm login/token routes belong to the auth plugin.
 *
 * Options (all optional):
 *   admins: [alice, bob]   users allowed to change the config, besides the `registry-admin` group
 *   socket_limits: {messages_per_second: 50, burst: 100, max_queued: 32}   per WebSocket (socket-limits.ts)
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import type { Server } from 'node:http';
import { Server as HttpsServer } from 'node:https';
import { stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { Application } from 'express';
import {
  bootMark,
  bootRegistry,
  ConfigFile,
  loadRegistrySettings,
  PackageIndex,
  type IndexRecord,
  outsideRequest,
  registryEvents,
  registryMetrics,
  startAuditTrail,
  type AuditLog,
  type RegistryEvent,
} from '../registry-core/index';
import { announcePluginLoaded } from '../registry-core/plugin-presence';
import { loadAssets, type Asset } from './assets';
import { ConfigService } from './config-service';
import { ActivityRecorder, activityTotalsFrom, StorageMeter, type ActivityDocument } from './activity';
import { buildPackageView, storedTarballFiles, type PackageView } from './package-view';
import { PackageCatalog } from './packages';
import { createDashboardErrorHandler, createDashboardHandler } from './routes';
import { rejectUpgrade, TerminalSockets } from './terminal-socket';
import { parseSocketLimits, type SocketLimits } from './socket-limits';
import { createSocketTokenCheck } from './token-check';
import { readUpstreamStatus } from './upstream-status-access';
import {
  adaptAuth,
  adaptPluginHost,
  adaptStorage,
  clientAddressOf,
  serverServesApp,
  type DashboardLogger,
  type PluginHost,
} from './verdaccio-adapter';

export const MOUNT_PATH = '/_dashboard';
export const TERMINAL_PATH = `${MOUNT_PATH}/terminal`;
/** how often the activity counters are sampled and pushed to open sockets */
export const ACTIVITY_TICK_MS = 5000;
/** the upstream cache folder inside the storage folder (docs/upstream.md) */
const UPSTREAM_CACHE_DIR = '.upstream';
/** build/plugins/verdaccio-registry-dashboard/ → plugins/verdaccio-registry-dashboard/public */
export const PUBLIC_DIR = resolve(__dirname, '..', '..', '..', 'plugins', 'verdaccio-registry-dashboard', 'public');

const LISTEN_START = 'tracing:net.server.listen:asyncStart';
const LISTEN_END = 'tracing:net.server.listen:asyncEnd';

export interface DashboardOptions {
  admins: ReadonlySet<string>;
  socketLimits: SocketLimits;
}

export function parseDashboardOptions(pluginConfig: unknown): DashboardOptions {
  const config = pluginConfig as { admins?: unknown; socket_limits?: unknown } | undefined;
  const socketLimits = parseSocketLimits(config?.socket_limits);
  const admins = config?.admins;
  if (admins === undefined || admins === null) return { admins: new Set(), socketLimits };
  if (!Array.isArray(admins) || !admins.every((name) => typeof name === 'string' && name.length > 0)) {
    throw new Error('registry-dashboard: `admins` must be a list of user names');
  }
  return { admins: new Set(admins as string[]), socketLimits };
}

function httpUrl(server: Server, path: string, scheme: 'http' | 'ws'): string | undefined {
  const address = server.address();
  if (!address || typeof address === 'string') return undefined;
  const secure = server instanceof HttpsServer;
  const host = address.address === '0.0.0.0' || address.address === '::' ? 'localhost' : address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `${scheme}${secure ? 's' : ''}://${host}:${address.port}${path}`;
}

export default class RegistryDashboard {
  readonly #host: PluginHost;
  readonly #logger: DashboardLogger;
  readonly #options: DashboardOptions;
  readonly #config: ConfigFile;
  readonly #service: ConfigService;
  readonly #assets: Map<string, Asset>;
  readonly #events: ReturnType<typeof registryEvents>;
  readonly #lockbPath: string;
  readonly #audit: AuditLog;
  readonly #attached = new WeakSet<Server>();
  #app: Application | undefined;
  #sockets: TerminalSockets | undefined;
  /** opened on the first package list (the storage plugin may still be preparing the file at construction) */
  #index: PackageIndex | undefined;

  constructor(pluginConfig: unknown, options: unknown) {
    this.#host = adaptPluginHost(options);
    // The first of our plugins to load prepares registry.lockb/.env.local and arms the presence guard (idempotent).
    bootRegistry((options as { config?: unknown } | undefined)?.config, process.env, { configPath: this.#host.configPath });
    this.#logger = this.#host.logger;
    this.#options = parseDashboardOptions(pluginConfig);
    const configDir = dirname(resolve(this.#host.configPath));
    const settings = loadRegistrySettings({
      configPath: this.#host.configPath,
      lockbPath: this.#host.lockbSetting === undefined ? undefined : resolve(configDir, this.#host.lockbSetting),
      env: process.env,
    });
    // Throws on a missing or damaged file: the plugin then does not load and start-up refuses to serve.
    this.#config = ConfigFile.open(settings.lockbPath);
    this.#service = new ConfigService(this.#config, settings.envFile);
    this.#assets = loadAssets(PUBLIC_DIR, MOUNT_PATH);
    this.#events = registryEvents(settings.lockbPath);
    this.#lockbPath = settings.lockbPath;
    // the one audit writer (idempotent: whichever of our plugins starts first opens it; docs/audit.md)
    this.#audit = startAuditTrail(settings.lockbPath, (text) => this.#logger.error(text));

    // The plugin API never hands us the http.Server; Node announces every server that starts
    // listening, and ours is the one whose request listener is the app we get below. Attaching
    // at listen time (not on a first HTTP request) lets a WebSocket be the very first request.
    diagnosticsChannel.subscribe(LISTEN_START, this.#onListenStart);
    diagnosticsChannel.subscribe(LISTEN_END, this.#onListenEnd);

    announcePluginLoaded('dashboard', `${MOUNT_PATH} (${this.#assets.size} assets, ${settings.lockbPath})`);
  }

  register_middlewares(app: Application, auth: unknown, storage: unknown): void {
    this.#app = app;
    const access = adaptAuth(auth);
    const source = adaptStorage(storage);
    const records = (): IndexRecord[] => (this.#index ??= PackageIndex.open(this.#lockbPath)).readAll();
    const catalog = new PackageCatalog(records, access);
    const storageDir = this.#host.storageDir;
    const tarballSizes = async (name: string, files: Map<string, string>, cached: boolean): Promise<Map<string, number>> => {
      const sizes = new Map<string, number>();
      // the storage plugin's layout (Verdaccio local-storage): <storage>/<name>/<file>, the upstream cache under .upstream/
      const folder = cached ? join(storageDir, UPSTREAM_CACHE_DIR, name) : join(storageDir, name);
      await Promise.all(
        [...files].slice(0, 500).map(async ([version, file]) => {
          try {
            sizes.set(version, (await stat(join(folder, file))).size);
          } catch {
            // not stored here (a cached package's version that was never downloaded)
          }
        }),
      );
      return sizes;
    };
    const packageView = async (name: string): Promise<PackageView | undefined> => {
      const packument = await source.readPackage(name);
      if (!packument) return undefined;
      const kind = catalog.find(name)?.source ?? 'local';
      return buildPackageView(packument, kind, await tarballSizes(name, storedTarballFiles(packument), kind === 'cached'));
    };

    const metrics = registryMetrics(this.#lockbPath);
    const recorder = new ActivityRecorder(activityTotalsFrom(metrics));
    // the first walk starts with the first read of the activity (API or socket), not at start-up:
    // on 3,000 packages a readdir + lstat of every file competed with start-up for ≈ 0.2–0.6 s of
    // CPU and held its results in memory when the registry was asked to be ready
    const meter = new StorageMeter(storageDir);
    const activity = (): ActivityDocument => {
      void meter.refresh();
      return recorder.document(meter.current);
    };

    const sockets = new TerminalSockets({
      path: TERMINAL_PATH,
      service: this.#service,
      access,
      listPackages: (user) => catalog.summaries(user),
      verifyToken: createSocketTokenCheck(this.#lockbPath, this.#options.admins),
      peerAddress: (req) => clientAddressOf(app, req),
      limits: this.#options.socketLimits,
      logger: this.#logger,
    });
    this.#sockets = sockets;
    // the ops part renders it on GET /-/metrics (docs/operations.md)
    metrics.gaugeSource('registry_websocket_clients', () => sockets.clientCount);
    // the activity chart: sampled on a timer (minute boundaries), pushed to open sockets; soon after a publish too
    const pushActivity = (): void => {
      if (sockets.clientCount > 0) sockets.broadcastMessage(JSON.stringify({ type: 'activity', ...activity() }));
    };
    const tick = setInterval(() => {
      recorder.sample();
      pushActivity();
    }, ACTIVITY_TICK_MS);
    tick.unref();
    let soon: NodeJS.Timeout | undefined;
    const pushSoon = (storageChanged: boolean): void => {
      if (storageChanged) meter.markStale();
      if (soon !== undefined) return;
      soon = setTimeout(() => {
        soon = undefined;
        // nobody to push to: the size stays marked stale and the next reader's activity() walks.
        // Walking anyway cost every publish of a bulk import a readdir + lstat of the whole
        // storage folder every 200 ms (issue 18: ≈ 0.5 ms main thread per publish at 200 packages, growing with them)
        if (sockets.clientCount === 0) return;
        // the new size first when a walk is due, then the counts (a walk never delays them long: it is bounded by the folder)
        void meter.refresh().finally(pushActivity);
      }, 200);
      soon.unref();
    };
    this.#service.watch((rendered, change) => {
      sockets.broadcastConfig(rendered, change);
      // into the audit trail (docs/audit.md); the dashboard's own listener below skips config events
      const event: RegistryEvent = { kind: 'config', time: Date.now(), detail: change.user === undefined ? `${change.detail} (by another process)` : change.detail };
      if (change.user !== undefined) event.actor = change.user;
      if (change.address !== undefined) event.address = change.address;
      if (change.tokenId !== undefined) event.tokenId = change.tokenId;
      // another process's change: the watcher's timer may carry the context of an old request, which did not do it
      if (change.user === undefined) outsideRequest(() => this.#events.emit(event));
      else this.#events.emit(event);
    });
    this.#events.on((event: RegistryEvent) => {
      // config events come from watching the file itself (every source, this process or not)
      // addresses and token ids stay in the audit API (docs/audit.md), they are not broadcast
      if (event.kind !== 'config') {
        const { address: _address, tokenId: _tokenId, ...shown } = event;
        void _address;
        void _tokenId;
        sockets.broadcastEvent(shown);
        if (event.kind === 'publish' || event.kind === 'unpublish' || event.kind === 'cache') pushSoon(true);
      }
    });

    app.use(
      MOUNT_PATH,
      createDashboardHandler({
        mountPath: MOUNT_PATH,
        assets: this.#assets,
        service: this.#service,
        admins: this.#options.admins,
        listPackages: (user, query) => catalog.page(user, query),
        packageView,
        activity,
        upstreamStatus: () => readUpstreamStatus(this.#lockbPath),
        audit: this.#audit,
        canAccess: (name, user) => access.canAccess(name, user),
        logger: this.#logger,
      }),
    );
    app.use(MOUNT_PATH, createDashboardErrorHandler(this.#logger));
  }

  readonly #onListenStart = (message: unknown): void => {
    const server = (message as { server?: Server }).server;
    if (!server || !this.#app || !this.#sockets || this.#attached.has(server) || !serverServesApp(server, this.#app)) return;
    this.#attached.add(server);
    const sockets = this.#sockets;
    server.on('upgrade', (req, socket, head) => {
      // Node removes its own 'error' listener from an upgraded socket: a client resetting the
      // connection would otherwise be an uncaught error that ends the process.
      socket.on('error', () => socket.destroy());
      if (sockets.handleUpgrade(req, socket, head)) return;
      // nobody else listens for upgrades on this server: answer instead of leaving the client hanging
      if (server.listenerCount('upgrade') === 1) rejectUpgrade(socket, 404, `no WebSocket endpoint at ${req.url ?? ''}; use ${TERMINAL_PATH}`);
    });
    // Upgraded sockets keep a server from closing; a graceful close must end them too.
    const close = server.close.bind(server);
    server.close = ((callback?: (error?: Error) => void) => {
      sockets.close();
      return close(callback);
    }) as Server['close'];
  };

  readonly #onListenEnd = (message: unknown): void => {
    const server = (message as { server?: Server }).server;
    if (!server || !this.#attached.has(server)) return;
    const page = httpUrl(server, MOUNT_PATH, 'http');
    const terminal = httpUrl(server, TERMINAL_PATH, 'ws');
    if (page) bootMark(`dashboard ${page}`);
    if (terminal) bootMark(`terminal endpoint ${terminal}`);
  };
}
