/**
 * Test harness for issue 14 (docs/cluster.md): REAL registry nodes (test/harness/registry.ts, each
 * its own process and folder) on one REAL PostgreSQL (test/harness/postgres.ts, a private cluster
 * in a temp folder), behind a REAL HAProxy started from templates/haproxy.cfg.
 */
import { startRegistry, type RunningRegistry, type StartOptions } from './registry';

export { HAPROXY_TEMPLATE, haproxyBinary, renderHaproxyConfig, startBalancer, type Balancer } from '../../scripts/lib/haproxy';
export { freePort } from '../../scripts/lib/ports';

/** `count` nodes on the database `databaseUrl`, started at once (they race for the first keys and config). */
export async function startNodes(databaseUrl: string, count: number, options: StartOptions = {}): Promise<RunningRegistry[]> {
  const env = { ...options.env, REGISTRY_DATABASE_URL: databaseUrl };
  const started = await Promise.allSettled(Array.from({ length: count }, () => startRegistry({ ...options, env, timeoutMs: options.timeoutMs ?? 60_000 })));
  const nodes = started.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  const failed = started.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failed) {
    await Promise.all(nodes.map((node) => node.stop()));
    throw failed.reason;
  }
  return nodes;
}
