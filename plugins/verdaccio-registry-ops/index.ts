/**
 * Verdaccio middleware plugin `registry-ops` (config.yaml: `middlewares: { registry-ops: {} }`):
 * `GET /-/metrics` (Prometheus text), `GET /-/ready`, and the DEBUG request lines. Contract:
 * docs/operations.md.
 *
 * Requests are observed on Node's `http.server.request.start` diagnostics channel (for the
 * server Verdaccio built around this app only), so every answer counts — also those the auth
 * plugin or storage-http give before Verdaccio's routers run.
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Application, Request, Response } from 'express';
import {
  bootMark,
  bootRegistry,
  debugEnabled,
  formatDebugLine,
  redactUrl,
  registerReadyCheck,
  registryEvents,
  registryLayoutOf,
  registryMetrics,
  runReadyChecks,
  type BoundCounter,
  type BoundHistogram,
  type RegistryMetrics,
} from '../registry-core/index';
import { ClearingMemo } from '../registry-core/bounded-cache';
import { announcePluginLoaded } from '../registry-core/plugin-presence';
import { IndexSizeReader } from './index-size';
import { metricsRefusal, parseOpsOptions, type OpsOptions } from './options';
import { cachedStorageCheck, notificationsCheck, configCheck, keysCheck, upstreamCheck } from './readiness';
import { databaseSettingsOf } from '../registry-core/database/index';
import { clusterLink } from '../registry-core/database/cluster';
import { renderMetrics } from './render';
import { methodLabel, routeLabel } from './route-label';
import { originalUrlOf, pluginHostOf, remoteUserOf } from '../verdaccio-boundary/index';

export const METRICS_PATH = '/-/metrics';
export const READY_PATH = '/-/ready';
const REQUEST_START = 'http.server.request.start';

function sendJson(res: Response, status: number, body: unknown): void {
  res.status(status).set('cache-control', 'no-store').type('application/json').send(JSON.stringify(body));
}

/** Request targets whose route label is remembered (bounded; the memo starts over when full). */
const ROUTE_MEMO_ENTRIES = 4096;

/** The two series a request updates. */
interface Series {
  count: BoundCounter;
  duration: BoundHistogram;
}

export default class RegistryOps {
  readonly options: OpsOptions;
  readonly lockbPath: string;
  readonly #metrics: RegistryMetrics;
  readonly #uplinks: unknown;
  #app: Application | undefined;

  constructor(pluginConfig: unknown, options: unknown) {
    const { config, uplinks } = pluginHostOf(pluginConfig, options);
    // The first of our plugins to load prepares registry.lockb/.env.local and arms the presence guard (idempotent).
    const state = bootRegistry(config, process.env);
    this.options = parseOpsOptions(pluginConfig, process.env);
    this.lockbPath = state.lockbPath;
    this.#uplinks = uplinks;
    this.#metrics = registryMetrics(state.lockbPath);
    const layout = registryLayoutOf(config);

    registerReadyCheck(state.lockbPath, 'storage', cachedStorageCheck(layout.storageDir));
    registerReadyCheck(state.lockbPath, 'keys', () => keysCheck(state.lockbPath));
    registerReadyCheck(state.lockbPath, 'config', () => configCheck(state.lockbPath));
    // several nodes on one PostgreSQL (docs/cluster.md): a node that lost its database is not ready
    const backend = databaseSettingsOf(config, process.env);
    if (backend.backend === 'postgres') {
      const link = clusterLink(backend.url);
      registerReadyCheck(state.lockbPath, 'notifications', () => notificationsCheck(() => link.status()));
    }

    const index = new IndexSizeReader(state.lockbPath);
    let lastRead: { records: number; bytes: number } | null = null;
    this.#metrics.gaugeSource('registry_index_records', () => (lastRead = index.read()).records);
    // read right after the records gauge in the same snapshot (definition order)
    this.#metrics.gaugeSource('registry_index_bytes', () => (lastRead ?? index.read()).bytes);

    registryEvents(state.lockbPath).on((event) => {
      // a version record; dist-tag, deprecate and self-reference events carry a detail
      if (event.kind === 'publish' && event.version !== undefined && event.detail === undefined) this.#metrics.inc('registry_publishes_total');
    });
    diagnosticsChannel.subscribe(REQUEST_START, this.#onRequest);
    announcePluginLoaded('ops', `metrics: ${this.options.metrics.kind}`);
  }

  register_middlewares(app: Application): void {
    this.#app = app;
    app.get(METRICS_PATH, (req: Request, res: Response) => {
      const refusal = metricsRefusal(this.options.metrics, { peerAddress: req.socket.remoteAddress, headers: req.headers });
      if (refusal) {
        if (refusal.status === 401) res.set('www-authenticate', 'Bearer realm="metrics"');
        sendJson(res, refusal.status, { error: refusal.error });
        return;
      }
      renderMetrics(this.#metrics.snapshot()).then(
        // exactly prom-client's content type (Express's res.type would reorder its parameters)
        ({ contentType, text }) => {
          res.statusCode = 200;
          res.setHeader('cache-control', 'no-store');
          res.setHeader('content-type', contentType);
          res.end(text);
        },
        (error: unknown) => sendJson(res, 500, { error: `metrics could not be rendered: ${error instanceof Error ? error.message : String(error)}` }),
      );
    });
    app.get(READY_PATH, (_req: Request, res: Response) => {
      runReadyChecks(this.lockbPath).then(
        ({ ready, checks }) => {
          if (checks.upstream === undefined) checks.upstream = upstreamCheck(this.lockbPath, this.#uplinks);
          const failing = Object.entries(checks).filter(([, check]) => !check.ok).map(([name]) => name);
          const states = Object.fromEntries(Object.entries(checks).map(([name, check]) => [name, check.state]));
          if (ready && failing.length === 0) sendJson(res, 200, { ready: true, checks: states });
          else sendJson(res, 503, { ready: false, error: `not ready: ${failing.map((name) => `${name} (${checks[name].state})`).join(', ')}`, failing, checks: states });
        },
        (error: unknown) => sendJson(res, 503, { ready: false, error: `not ready: ${error instanceof Error ? error.message : String(error)}` }),
      );
    });
    const access = this.options.metrics.kind === 'loopback' ? 'loopback only' : this.options.metrics.kind === 'token' ? 'bearer token' : 'public';
    bootMark(`ops: GET ${METRICS_PATH} (${access}), GET ${READY_PATH}; DEBUG request lines ${debugEnabled(this.lockbPath) ? 'on' : 'off'}`);
  }

  /** Whether a server is the one built around this app, by its 'request' listener count (listeners() copies the array on every request). */
  readonly #servers = new WeakMap<Server, { listeners: number; ours: boolean }>();

  #isOurServer(server: Server): boolean {
    if (!this.#app) return false;
    const listeners = server.listenerCount('request');
    const known = this.#servers.get(server);
    if (known !== undefined && known.listeners === listeners) return known.ours;
    const ours = server.listeners('request').includes(this.#app as never);
    this.#servers.set(server, { listeners, ours });
    return ours;
  }

  readonly #onRequest = (message: unknown): void => {
    const { request, response, server } = message as { request: IncomingMessage; response: ServerResponse; server: Server };
    if (!this.#isOurServer(server)) return;
    const started = process.hrtime.bigint();
    // `on`, not `once`: a response finishes once, and once's wrapper and its removal were ≈ 1 µs per request (issue 17)
    response.on('finish', () => this.#observe(request, response, started));
  };

  /**
   * Route labels by request target (bounded in entries and in target length), and the series of
   * each (route, method, status) — resolved once, not per request. Plain maps: the per-request
   * lookups were lru-cache gets (recency bookkeeping, ≈ 1 µs for the two; issue 17), and nothing
   * here needs least-recently-used order. The series are kept by route label, a bounded set
   * (ROUTE_LABELS), so targets that share a label share them.
   */
  readonly #routes = new ClearingMemo<string, string>(ROUTE_MEMO_ENTRIES);
  readonly #series = new Map<string, Map<string, Series>>();

  #routeOf(url: string): string {
    let route = this.#routes.get(url);
    if (route === undefined) {
      route = routeLabel(url);
      if (url.length <= 512) this.#routes.set(url, route); // long targets are labelled each time
    }
    return route;
  }

  #seriesOf(route: string, rawMethod: string | undefined, statusCode: number): Series {
    let byRoute = this.#series.get(route);
    if (byRoute === undefined) {
      byRoute = new Map();
      this.#series.set(route, byRoute);
    }
    // the raw method: Node's parser admits only its known methods, so the key set stays small
    const key = `${rawMethod ?? ''} ${statusCode}`;
    let series = byRoute.get(key);
    if (series === undefined) {
      const method = methodLabel(rawMethod);
      series = {
        count: this.#metrics.counter('registry_http_requests_total', { method, route, status: String(statusCode) }),
        duration: this.#metrics.histogram('registry_http_request_duration_seconds', { method, route }),
      };
      // the label values are bounded (methods, ROUTE_LABELS, statuses); the metric caps its series itself
      byRoute.set(key, series);
    }
    return series;
  }

  #observe(request: IncomingMessage, response: ServerResponse, started: bigint): void {
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const url = originalUrlOf(request);
    const route = this.#routeOf(url);
    const series = this.#seriesOf(route, request.method, response.statusCode);
    series.count.inc();
    series.duration.observe(seconds);
    if (debugEnabled(this.lockbPath)) {
      process.stdout.write(
        formatDebugLine('http', `${request.method ?? '?'} ${redactUrl(url)} ${response.statusCode} ${(seconds * 1000).toFixed(1)} ms`, {
          user: remoteUserOf(request).name ?? '-',
          route,
        }),
      );
    }
  }
}
