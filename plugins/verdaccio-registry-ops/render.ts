/**
 * Prometheus text of the registry's metrics, rendered with prom-client. prom-client costs ~40 ms
 * to load, so it is required on the first scrape, never at start-up. The core keeps plain
 * numbers in the shape of prom-client's `getMetricsAsJSON()`; `AggregatorRegistry.aggregate`
 * turns them into a registry (one source: nothing is really aggregated), merged with
 * prom-client's default process metrics (CPU, memory, event-loop lag, GC).
 */
import type * as PromClient from 'prom-client';
import type { MetricSnapshot } from '../registry-core/index';

let client: typeof PromClient | undefined;
let defaults: PromClient.Registry | undefined;

function promClient(): typeof PromClient {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  client ??= require('prom-client') as typeof PromClient;
  return client;
}

export async function renderMetrics(snapshot: MetricSnapshot[]): Promise<{ contentType: string; text: string }> {
  const prom = promClient();
  if (!defaults) {
    defaults = new prom.Registry();
    prom.collectDefaultMetrics({ register: defaults });
  }
  // prom-client's JSON metric type; the core's snapshot has exactly that shape
  const ours = prom.AggregatorRegistry.aggregate([snapshot as unknown as PromClient.MetricObjectWithValues<PromClient.MetricValue<string>>[]]);
  const merged = prom.Registry.merge([defaults, ours as PromClient.Registry]);
  return { contentType: merged.contentType, text: await merged.metrics() };
}

/** Whether prom-client has been loaded in this process (start-up must not load it). */
export function promClientLoaded(): boolean {
  return client !== undefined;
}
