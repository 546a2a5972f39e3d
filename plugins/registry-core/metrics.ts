/**
 * The registry's metrics, as plain numbers: any plugin increments them through this module (plugins
 * never import each other), the ops part (`plugins/verdaccio-registry-ops`) renders them with
 * prom-client on `GET /-/metrics`. No prom-client here: loading it costs ~40 ms, which the ops
 * part pays on the first scrape, not at start-up. The contract is in docs/operations.md.
 *
 * Every metric is declared in METRIC_DEFINITIONS (name, help, type, label names): an unknown
 * name or label is a programming error and throws. Label VALUES are the caller's to keep bounded
 * (route patterns, never raw paths); as a second line of defence a metric holds at most
 * MAX_SERIES label sets, later ones are counted under every label = "overflow".
 *
 * State: one table per resolved registry.lockb path, on `globalThis` under a `Symbol.for` key, so
 * two copies of this module (plugins built apart) still share it, and two registries in one
 * process never mix their numbers.
 */
import { resolve } from 'node:path';

export type MetricType = 'counter' | 'gauge' | 'histogram';

export interface MetricDefinition {
  readonly type: MetricType;
  readonly help: string;
  readonly labelNames: readonly string[];
  /** histograms only: upper bounds in seconds, ascending */
  readonly buckets?: readonly number[];
}

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

export const METRIC_DEFINITIONS = {
  registry_http_requests_total: { type: 'counter', help: 'HTTP requests answered, by method, route pattern and status', labelNames: ['method', 'route', 'status'] },
  registry_http_request_duration_seconds: { type: 'histogram', help: 'HTTP request latency (headers in to response finished), by method and route pattern', labelNames: ['method', 'route'], buckets: LATENCY_BUCKETS },
  registry_publishes_total: { type: 'counter', help: 'Versions published (index records of kind publish written by this process)', labelNames: [] },
  registry_packument_cache_requests_total: { type: 'counter', help: 'Packument response cache lookups (storage-http), by outcome hit|miss', labelNames: ['outcome'] },
  registry_upstream_requests_total: { type: 'counter', help: 'Upstream lookups, by kind (packument|tarball|audit) and outcome (hit = served from the local cache, fetched, stale, error)', labelNames: ['kind', 'outcome'] },
  registry_lock_waits_total: { type: 'counter', help: 'Storage lock acquisitions that had to wait for another holder, by lock', labelNames: ['lock'] },
  registry_lock_wait_seconds: { type: 'histogram', help: 'Time spent waiting for a contended storage lock, by lock', labelNames: ['lock'], buckets: LATENCY_BUCKETS },
  registry_websocket_clients: { type: 'gauge', help: 'Open dashboard WebSocket connections', labelNames: [] },
  registry_index_records: { type: 'gauge', help: 'Records in the registry.lockb package index', labelNames: [] },
  registry_index_bytes: { type: 'gauge', help: 'Bytes of the registry.lockb package index (file size minus the 17-byte header)', labelNames: [] },
} as const satisfies Record<string, MetricDefinition>;

export type MetricName = keyof typeof METRIC_DEFINITIONS;
type NamesOf<T extends MetricType> = { [K in MetricName]: (typeof METRIC_DEFINITIONS)[K]['type'] extends T ? K : never }[MetricName];
export type CounterName = NamesOf<'counter'>;
export type GaugeName = NamesOf<'gauge'>;
export type HistogramName = NamesOf<'histogram'>;
export type Labels = Readonly<Record<string, string>>;

export const MAX_SERIES = 2000;
const OVERFLOW = 'overflow';

/** One value of a snapshot, in the shape prom-client's `Registry.getMetricsAsJSON()` uses. */
export interface MetricValue {
  value: number;
  labels: Record<string, string | number>;
  /** histograms: `<name>_bucket` / `_sum` / `_count` */
  metricName?: string;
}

export interface MetricSnapshot {
  name: MetricName;
  help: string;
  type: MetricType;
  values: MetricValue[];
  /** for prom-client's AggregatorRegistry.aggregate (one source: any aggregator would do) */
  aggregator: 'sum';
}

interface HistogramSeries {
  counts: number[];
  sum: number;
  count: number;
}

interface MetricState {
  definition: MetricDefinition;
  /** key: JSON of the label values in labelNames order */
  series: Map<string, number | HistogramSeries>;
  /** gauges: read at snapshot time, replaces stored values */
  source?: () => number;
}

export interface RegistryMetrics {
  inc(name: CounterName, labels?: Labels, by?: number): void;
  /** gauges: set to a value */
  set(name: GaugeName, value: number, labels?: Labels): void;
  /** gauges: add (negative to subtract) */
  add(name: GaugeName, delta: number, labels?: Labels): void;
  observe(name: HistogramName, value: number, labels?: Labels): void;
  /** a gauge whose value is read when the metrics are rendered (e.g. the index size); returns an unregister function */
  gaugeSource(name: GaugeName, read: () => number): () => void;
  snapshot(): MetricSnapshot[];
  /** a counter summed over its label sets (only those `match` accepts, when given): what a live chart needs, without a full snapshot */
  total(name: CounterName, match?: (labels: Readonly<Record<string, string>>) => boolean): number;
  /**
   * One label set of a counter, resolved once: `inc()` on it is `inc(name, labels)` without the
   * label checks and key building (hot paths: every request counts).
   */
  counter(name: CounterName, labels?: Labels): BoundCounter;
  /** One label set of a histogram, resolved once (as `counter`). */
  histogram(name: HistogramName, labels?: Labels): BoundHistogram;
}

export interface BoundCounter {
  inc(by?: number): void;
}

export interface BoundHistogram {
  observe(value: number): void;
}

const TABLE_KEY = Symbol.for('mycompany-registry:metrics');
type TableHolder = { [TABLE_KEY]?: Map<string, Map<MetricName, MetricState>> };

function tableOf(lockbPath: string): Map<MetricName, MetricState> {
  const holder = globalThis as TableHolder;
  holder[TABLE_KEY] ??= new Map();
  const key = resolve(lockbPath);
  let table = holder[TABLE_KEY].get(key);
  if (!table) {
    table = new Map();
    for (const [name, definition] of Object.entries(METRIC_DEFINITIONS) as [MetricName, MetricDefinition][]) {
      table.set(name, { definition, series: new Map() });
    }
    holder[TABLE_KEY].set(key, table);
  }
  return table;
}

function stateOf(table: Map<MetricName, MetricState>, name: MetricName, type: MetricType): MetricState {
  const state = table.get(name);
  if (!state) throw new TypeError(`registry-core metrics: unknown metric ${JSON.stringify(name)}`);
  if (state.definition.type !== type) throw new TypeError(`registry-core metrics: ${name} is a ${state.definition.type}, not a ${type}`);
  return state;
}

function seriesKey(state: MetricState, name: string, labels: Labels): string {
  const names = state.definition.labelNames;
  for (const key of Object.keys(labels)) {
    if (!names.includes(key)) throw new TypeError(`registry-core metrics: ${name} has no label ${JSON.stringify(key)} (labels: ${names.join(', ') || 'none'})`);
  }
  const key = JSON.stringify(names.map((label) => String(labels[label] ?? '')));
  if (state.series.has(key) || state.series.size < MAX_SERIES) return key;
  return JSON.stringify(names.map(() => OVERFLOW));
}

/** A bound series' key at use: its own, or overflow when the metric filled up before it first counted. */
function boundKey(state: MetricState, key: string, overflow: string): string {
  return state.series.has(key) || state.series.size < MAX_SERIES ? key : overflow;
}

function observeInto(state: MetricState, name: string, key: string, value: number): void {
  const buckets = state.definition.buckets ?? [];
  let series = state.series.get(key) as HistogramSeries | undefined;
  if (!series) {
    series = { counts: buckets.map(() => 0), sum: 0, count: 0 };
    state.series.set(key, series);
  }
  finite(name, value);
  // cumulative, like Prometheus buckets: every bound ≥ value counts it
  for (let i = 0; i < buckets.length; i++) if (value <= buckets[i]) series.counts[i]++;
  series.sum += value;
  series.count++;
}

function labelObject(state: MetricState, key: string): Record<string, string> {
  const values = JSON.parse(key) as string[];
  return Object.fromEntries(state.definition.labelNames.map((label, i) => [label, values[i]]));
}

function finite(name: string, value: number): number {
  if (!Number.isFinite(value)) throw new RangeError(`registry-core metrics: ${name} needs a finite number, got ${value}`);
  return value;
}

/** The metrics of the registry whose index is `lockbPath` (any path spelling of the same file). */
export function registryMetrics(lockbPath: string): RegistryMetrics {
  const table = tableOf(lockbPath);
  return {
    inc(name, labels = {}, by = 1) {
      if (finite(name, by) < 0) throw new RangeError(`registry-core metrics: counter ${name} cannot decrease (by ${by})`);
      const state = stateOf(table, name, 'counter');
      const key = seriesKey(state, name, labels);
      state.series.set(key, ((state.series.get(key) as number | undefined) ?? 0) + by);
    },
    set(name, value, labels = {}) {
      const state = stateOf(table, name, 'gauge');
      state.series.set(seriesKey(state, name, labels), finite(name, value));
    },
    add(name, delta, labels = {}) {
      const state = stateOf(table, name, 'gauge');
      const key = seriesKey(state, name, labels);
      state.series.set(key, ((state.series.get(key) as number | undefined) ?? 0) + finite(name, delta));
    },
    observe(name, value, labels = {}) {
      const state = stateOf(table, name, 'histogram');
      observeInto(state, name, seriesKey(state, name, labels), value);
    },
    counter(name, labels = {}) {
      const state = stateOf(table, name, 'counter');
      const own = seriesKey({ ...state, series: new Map() }, name, labels); // checks the labels; the key whatever the fill
      const overflow = JSON.stringify(state.definition.labelNames.map(() => OVERFLOW));
      return {
        inc(by = 1) {
          if (finite(name, by) < 0) throw new RangeError(`registry-core metrics: counter ${name} cannot decrease (by ${by})`);
          const key = boundKey(state, own, overflow);
          state.series.set(key, ((state.series.get(key) as number | undefined) ?? 0) + by);
        },
      };
    },
    histogram(name, labels = {}) {
      const state = stateOf(table, name, 'histogram');
      const own = seriesKey({ ...state, series: new Map() }, name, labels);
      const overflow = JSON.stringify(state.definition.labelNames.map(() => OVERFLOW));
      return { observe: (value) => observeInto(state, name, boundKey(state, own, overflow), value) };
    },
    total(name, match) {
      const state = stateOf(table, name, 'counter');
      let sum = 0;
      for (const [key, value] of state.series) {
        if (match === undefined || match(labelObject(state, key))) sum += value as number;
      }
      return sum;
    },
    gaugeSource(name, read) {
      const state = stateOf(table, name, 'gauge');
      state.source = read;
      return () => {
        if (state.source === read) state.source = undefined;
      };
    },
    snapshot() {
      const out: MetricSnapshot[] = [];
      for (const [name, state] of table) {
        const values: MetricValue[] = [];
        if (state.source) {
          let value: number | undefined;
          try {
            value = state.source();
          } catch {
            value = undefined; // a failing source shows no value rather than failing the whole scrape
          }
          if (value !== undefined && Number.isFinite(value)) values.push({ value, labels: {} });
        } else if (state.definition.type === 'histogram') {
          const buckets = state.definition.buckets ?? [];
          for (const [key, raw] of state.series) {
            const series = raw as HistogramSeries;
            const labels = labelObject(state, key);
            buckets.forEach((bound, i) => values.push({ value: series.counts[i], labels: { ...labels, le: bound }, metricName: `${name}_bucket` }));
            values.push({ value: series.count, labels: { ...labels, le: '+Inf' }, metricName: `${name}_bucket` });
            values.push({ value: series.sum, labels, metricName: `${name}_sum` });
            values.push({ value: series.count, labels, metricName: `${name}_count` });
          }
        } else {
          for (const [key, value] of state.series) values.push({ value: value as number, labels: labelObject(state, key) });
          // an unlabelled counter/gauge shows 0 before its first change (Prometheus expects the series to exist)
          if (values.length === 0 && state.definition.labelNames.length === 0) values.push({ value: 0, labels: {} });
        }
        out.push({ name, help: state.definition.help, type: state.definition.type, values, aggregator: 'sum' });
      }
      return out;
    },
  };
}

// ---------------------------------------------------------------- readiness checks

export interface ReadyCheckResult {
  ok: boolean;
  /** short state text, e.g. 'writable', 'loaded', 'not configured', or what failed */
  state: string;
}

export type ReadyCheck = () => ReadyCheckResult | Promise<ReadyCheckResult>;

const CHECKS_KEY = Symbol.for('mycompany-registry:ready-checks');
type ChecksHolder = { [CHECKS_KEY]?: Map<string, Map<string, ReadyCheck>> };

function checksOf(lockbPath: string): Map<string, ReadyCheck> {
  const holder = globalThis as ChecksHolder;
  holder[CHECKS_KEY] ??= new Map();
  const key = resolve(lockbPath);
  let checks = holder[CHECKS_KEY].get(key);
  if (!checks) {
    checks = new Map();
    holder[CHECKS_KEY].set(key, checks);
  }
  return checks;
}

/**
 * Adds (or replaces) a named check of `GET /-/ready` — e.g. the upstream part registers
 * `upstream`. Returns an unregister function. A check that throws counts as failed.
 */
export function registerReadyCheck(lockbPath: string, name: string, check: ReadyCheck): () => void {
  if (!/^[a-z][a-z0-9-]{0,31}$/.test(name)) throw new TypeError(`registry-core: ready check name ${JSON.stringify(name)} must be lowercase letters, digits, '-'`);
  const checks = checksOf(lockbPath);
  checks.set(name, check);
  return () => {
    if (checks.get(name) === check) checks.delete(name);
  };
}

/** Runs every registered check (in registration order). */
export async function runReadyChecks(lockbPath: string): Promise<{ ready: boolean; checks: Record<string, ReadyCheckResult> }> {
  const entries = [...checksOf(lockbPath)];
  const results = await Promise.all(
    entries.map(async ([name, check]): Promise<[string, ReadyCheckResult]> => {
      try {
        const result = await check();
        return [name, { ok: result.ok === true, state: String(result.state) }];
      } catch (error) {
        return [name, { ok: false, state: error instanceof Error ? error.message : String(error) }];
      }
    }),
  );
  return { ready: results.every(([, result]) => result.ok), checks: Object.fromEntries(results) };
}
