/**
 * Cluster rows (issue 14 acceptance, issue 17 item 4; docs/cluster.md): ours only, three setups in
 * one run, one after the other (never two at once, so they do not share the 2 cores):
 *   - `files`: 1 node on its own folder (the default storage);
 *   - `pg`: 1 node on a private PostgreSQL (scripts/lib/postgres.ts);
 *   - `3×pg`: 3 nodes on one PostgreSQL behind HAProxy (scripts/lib/haproxy.ts, templates/haproxy.cfg).
 * Per setup: raw-`PUT` publish latency (sequential, one kept-alive connection: p50), publish rate
 * (new packages, keep-alive, concurrency 4 — scale-bench's publishBatch), packument GET req/s
 * (autocannon, 10 connections; through the balancer for 3×pg). On 3×pg also: config change via
 * node A's dashboard API → `config` message on node B's and C's /_dashboard/terminal sockets (p50),
 * and, as info, the config CLI on node B's registry.lockb → the event on A's and C's sockets.
 * PostgreSQL or HAProxy missing → one skip line saying why, no rows.
 */
import { watch } from 'node:fs';
import { Agent } from 'node:http';
import { join } from 'node:path';
import { haproxyBinary, startBalancer, type Balancer } from '../lib/haproxy';
import { postgresBinDir, startPostgres, type PostgresCluster } from '../lib/postgres';
import { currentDebug, openSocket, percentile, runCli } from './dashboard-bench';
import { cannon, emptyOutcome, type RowOutcome } from './http-bench';
import { makeRow, median } from './report';
import { publishBatch, type Started } from './scale-bench';
import {
  addUser,
  errorSummary,
  makeTarball,
  packageFiles,
  publishBody,
  putPublish,
  removeDir,
  startOurs,
  tempDir,
  type BenchServer,
  type Log,
} from './stock';

export interface ClusterSettings {
  label: string;
  /** sequential publishes timed for the latency row (after a few warm-up ones) */
  latencyPublishes: number;
  /** new packages published at concurrency 4 for the rate row */
  ratePublishes: number;
  getDurationSec: number;
  /** config changes via node A's API */
  apiChanges: number;
  /** config changes via the CLI on node B's file */
  cliChanges: number;
}

export const CLUSTER_SETTINGS: Record<'quick' | 'full', ClusterSettings> = {
  quick: { label: 'quick: 20 + 100 publishes, 2 s GETs, 20 API / 5 CLI changes', latencyPublishes: 20, ratePublishes: 100, getDurationSec: 2, apiChanges: 20, cliChanges: 5 },
  full: { label: '50 + 300 publishes, 5 s GETs, 60 API / 15 CLI changes', latencyPublishes: 50, ratePublishes: 300, getDurationSec: 5, apiChanges: 60, cliChanges: 15 },
};

const USER = 'cluster-bench';
const PASSWORD = 'cluster-bench-1';
const WARMUP_PUBLISHES = 5;
const CONCURRENCY = 4;
const SETUPS = ['1 node on files', '1 node on PostgreSQL', '3 nodes on PostgreSQL + HAProxy'] as const;
type Setup = (typeof SETUPS)[number];

/** Why the group cannot run here, or null. */
export function clusterSkipReason(): string | null {
  const bin = postgresBinDir();
  if ('reason' in bin) return bin.reason;
  if (haproxyBinary() === null) return 'haproxy is not installed (bash scripts/setup.sh --with-test-tools)';
  return null;
}

interface Running {
  /** where the load goes: the node, or the balancer */
  url: string;
  nodes: BenchServer[];
  dirs: string[];
  balancer?: Balancer;
}

async function startSetup(setup: Setup, pg: PostgresCluster | null, index: number): Promise<Running> {
  const count = setup.startsWith('3') ? 3 : 1;
  const env = setup === '1 node on files' ? undefined : { REGISTRY_DATABASE_URL: await pg!.createDatabase(`cluster_bench_${index}`) };
  const dirs = Array.from({ length: count }, (_, i) => tempDir(`cluster-${index}-${i}`));
  const started = await Promise.allSettled(dirs.map((dir) => startOurs(dir, { env, timeoutMs: 60_000 })));
  const nodes = started.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  const failed = started.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  const running: Running = { url: nodes[0]?.url ?? '', nodes, dirs };
  if (failed) {
    await stopSetup(running);
    throw failed.reason;
  }
  if (count > 1) {
    try {
      running.balancer = await startBalancer(nodes);
      running.url = running.balancer.url;
    } catch (error) {
      await stopSetup(running);
      throw error;
    }
  }
  return running;
}

async function stopSetup(running: Running): Promise<void> {
  await running.balancer?.stop();
  await Promise.all(running.nodes.map((node) => node.stop()));
  for (const dir of running.dirs) removeDir(dir);
}

interface Measured {
  publishP50: number;
  publishRate: number;
  getRps: number;
}

async function measure(running: Running, settings: ClusterSettings, index: number, log: Log, setup: Setup): Promise<Measured & { token: string }> {
  const token = await addUser(running.url, USER, PASSWORD);
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  try {
    // latency: one package, version after version, on one kept-alive connection (through the balancer for 3×pg)
    const name = `@mycompany/cluster-${index}`;
    const latencies: number[] = [];
    for (let i = 0; i < WARMUP_PUBLISHES + settings.latencyPublishes; i += 1) {
      const version = `1.0.${i}`;
      const { body } = publishBody(running.url, name, version, makeTarball(packageFiles(name, version)));
      const ms = await putPublish(running.url, agent, token, name, body);
      if (i >= WARMUP_PUBLISHES) latencies.push(ms);
    }
    // rate: new packages, concurrency 4, tarballs built before the clock starts
    const names = Array.from({ length: settings.ratePublishes }, (_, i) => `@mycompany/cluster-${index}-p${i}`);
    const tarballs = names.map((each) => makeTarball(packageFiles(each, '1.0.0')));
    const server = { url: running.url } as BenchServer;
    const target: Started = { server, token, agent };
    const rateMs = await publishBatch(target, names, tarballs, CONCURRENCY);
    // packument GET of the package with the versions above
    const get = await cannon(`${running.url}/${name.replace('/', '%2f')}`, { durationSec: settings.getDurationSec, connections: 10 });
    if (get.non2xx > 0 || get.errors > 0) throw new Error(`packument GET: ${get.non2xx} non-2xx, ${get.errors} errors`);
    const result = {
      publishP50: median(latencies),
      publishRate: (settings.ratePublishes / rateMs) * 1000,
      getRps: get.rps,
      token,
    };
    log(
      `  ${setup}: publish p50 ${result.publishP50.toFixed(1)} ms (p90 ${percentile(latencies, 90).toFixed(1)}), ` +
        `${result.publishRate.toFixed(0)} publishes/s at concurrency ${CONCURRENCY}, packument GET ${result.getRps.toFixed(0)} req/s (p50 ${get.p50} ms)`,
    );
    return result;
  } finally {
    agent.destroy();
  }
}

interface Propagation {
  api: Record<'B' | 'C', number[]>;
  cli: Record<'A' | 'C', number[]>;
}

/** Config change on one node → `config` message on the others' sockets. */
async function propagation(running: Running, token: string, settings: ClusterSettings): Promise<Propagation> {
  const [a, b] = running.nodes;
  const sockets = await Promise.all(running.nodes.map((node) => openSocket(node)));
  const result: Propagation = { api: { B: [], C: [] }, cli: { A: [], C: [] } };
  try {
    let debug = await currentDebug(a);
    const toggle = (): Promise<Response> =>
      fetch(`${a.url}/_dashboard/api/config`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: '{"op":"toggleFeature","flag":"DEBUG"}',
      });
    // one untimed change first: every node has seen one notification before the timed ones
    for (let i = 0; i < settings.apiChanges + 1; i += 1) {
      const expected = !debug;
      const arrivals = [sockets[1].nextDebug(expected, 10_000), sockets[2].nextDebug(expected, 10_000), sockets[0].nextDebug(expected, 10_000)];
      const started = Number(process.hrtime.bigint()) / 1e6;
      const response = await toggle();
      if (response.status !== 200) throw new Error(`POST /_dashboard/api/config on node A: ${response.status} ${await response.text()} (is the first user an admin?)`);
      await response.arrayBuffer();
      const [atB, atC] = await Promise.all(arrivals);
      if (i > 0) {
        result.api.B.push(atB - started);
        result.api.C.push(atC - started);
      }
      debug = expected;
    }
    // from the write of node B's file (its first change event; the CLI's exit if none came first),
    // as dashboard-bench measures the single-node row: Node's start-up is not the cluster's cost
    const lockbB = join(b.dir, 'registry.lockb');
    let changedAt: number | undefined;
    const watcher = watch(lockbB, { persistent: false }, () => {
      changedAt ??= Number(process.hrtime.bigint()) / 1e6;
    });
    try {
      for (let i = 0; i < settings.cliChanges; i += 1) {
        const expected = !debug;
        changedAt = undefined;
        const arrivals = [sockets[0].nextDebug(expected, 15_000), sockets[2].nextDebug(expected, 15_000), sockets[1].nextDebug(expected, 15_000)];
        const cli = runCli(['--file', lockbB, 'toggle', 'DEBUG']);
        const [[atA, atC], exit] = await Promise.all([Promise.all(arrivals), cli.exited]);
        if (exit.code !== 0) throw new Error(`config CLI on node B's file exited ${exit.code}: ${exit.output}`);
        const written = Math.min(changedAt ?? exit.at, exit.at);
        result.cli.A.push(Math.max(0, atA - written));
        result.cli.C.push(Math.max(0, atC - written));
        debug = expected;
      }
    } finally {
      watcher.close();
    }
  } finally {
    for (const socket of sockets) socket.close();
  }
  return result;
}

export const CLUSTER_ROWS = {
  publish: (setup: Setup) => `cluster: publish p50 (raw PUT, keep-alive), ${setup}`,
  rate: (setup: Setup) => `cluster: publish rate (raw PUT, concurrency ${CONCURRENCY}), ${setup}`,
  get: (setup: Setup) => `cluster: packument GET req/s, ${setup}`,
  apiB: 'cluster: config change via node A\'s API → WS event p50 on node B',
  apiC: 'cluster: config change via node A\'s API → WS event p50 on node C',
  cliA: 'cluster: config CLI on node B\'s file (from its write) → WS event p50 on node A',
  cliC: 'cluster: config CLI on node B\'s file (from its write) → WS event p50 on node C',
} as const;

export async function runClusterBench(settings: ClusterSettings, log: Log): Promise<RowOutcome> {
  const outcome = emptyOutcome();
  const skip = clusterSkipReason();
  if (skip !== null) {
    log(`  skipped: ${skip}`);
    return outcome;
  }
  let pg: PostgresCluster;
  try {
    pg = await startPostgres();
  } catch (error) {
    log(`  skipped: PostgreSQL could not be started: ${errorSummary(error)}`);
    return outcome;
  }
  try {
    for (const [index, setup] of SETUPS.entries()) {
      let running: Running | null = null;
      try {
        running = await startSetup(setup, pg, index);
        const measured = await measure(running, settings, index, log, setup);
        outcome.rows.push(
          makeRow(CLUSTER_ROWS.publish(setup), Number(measured.publishP50.toFixed(2)), null, 'ms', 'info'),
          makeRow(CLUSTER_ROWS.rate(setup), Number(measured.publishRate.toFixed(1)), null, 'publishes/s', 'info'),
          makeRow(CLUSTER_ROWS.get(setup), Math.round(measured.getRps), null, 'req/s', 'info'),
        );
        if (running.nodes.length === 3) {
          const spread = await propagation(running, measured.token, settings);
          const fmt = (values: number[]): string => `p50 ${median(values).toFixed(1)} ms, p90 ${percentile(values, 90).toFixed(1)} ms`;
          log(`  API on A → WS on B ${fmt(spread.api.B)}, on C ${fmt(spread.api.C)} (${settings.apiChanges} changes)`);
          log(`  CLI on B's file → WS on A ${fmt(spread.cli.A)}, on C ${fmt(spread.cli.C)} (${settings.cliChanges} changes, from the write of B's file)`);
          outcome.rows.push(
            makeRow(CLUSTER_ROWS.apiB, Number(median(spread.api.B).toFixed(2)), null, 'ms', 'p50 ≤ 100 ms'),
            makeRow(CLUSTER_ROWS.apiC, Number(median(spread.api.C).toFixed(2)), null, 'ms', 'p50 ≤ 100 ms'),
            makeRow(CLUSTER_ROWS.cliA, Number(median(spread.cli.A).toFixed(1)), null, 'ms', 'info'),
            makeRow(CLUSTER_ROWS.cliC, Number(median(spread.cli.C).toFixed(1)), null, 'ms', 'info'),
          );
        }
      } catch (error) {
        const message = errorSummary(error);
        log(`  ${setup} FAILED: ${message}`);
        const name = `cluster rows, ${setup}`;
        outcome.rows.push(makeRow(name, Number.NaN, null, '', 'failed'));
        outcome.notes[name] = [`ERROR ${message}`];
      } finally {
        if (running) await stopSetup(running);
      }
    }
  } finally {
    await pg.destroy();
  }
  return outcome;
}
