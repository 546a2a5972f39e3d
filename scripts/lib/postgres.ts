/**
 * A REAL, private PostgreSQL cluster per test run: `initdb` into a temp folder, the server on a
 * free 127.0.0.1 port with its unix socket in that folder, nothing assumed about a server already
 * running. As root, initdb and postgres run as the `postgres` user (`runuser -u postgres --`; the
 * temp folder is handed to that user) because PostgreSQL refuses to run as root.
 *
 * Every wait is bounded. When PostgreSQL cannot be started, `tryStartPostgres` says why (and
 * prints it once) so a test can `t.skip(reason)` and a bench group can print a skip line — never skip silently.
 * Shared by test/harness/postgres.ts (which re-exports it) and scripts/bench/cluster-bench.ts.
 *
 * Test-only settings: `fsync=off` (a killed server keeps everything it acknowledged: the kernel
 * still has the pages; only a machine crash would lose them), small shared buffers, no logging
 * collector. Binaries: `/usr/lib/postgresql/<newest>/bin` (Debian's layout; scripts/setup.sh
 * --with-test-tools installs `postgresql` when they are missing), else `initdb` on PATH.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { freePort } from './ports';

export interface PostgresCluster {
  /** postgres://registry@127.0.0.1:<port>/registry (trust auth on this private cluster) */
  url: string;
  port: number;
  /** the temp folder: data/ and the unix socket */
  dir: string;
  /** A new, empty database on this cluster → its URL (one per test keeps tests independent). */
  createDatabase(name: string): Promise<string>;
  /** Fast shutdown (SIGINT), bounded; SIGKILL if it does not stop in time. */
  stop(): Promise<void>;
  /** Starts the server again on the same port and data folder (after stop or kill). */
  restart(): Promise<void>;
  /** SIGKILL of the postmaster and every backend: a crashed server. */
  kill(): Promise<void>;
  /** stop + remove the temp folder */
  destroy(): Promise<void>;
  logs(): string;
}

export type PostgresStart = { ok: true; cluster: PostgresCluster } | { ok: false; reason: string };

const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;
const SUPERUSER = 'registry';

/** The folder holding initdb and postgres, or the reason there is none. */
export function postgresBinDir(): { dir: string } | { reason: string } {
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const majors = readdirSync(root)
      .filter((entry) => /^\d+$/.test(entry) && existsSync(join(root, entry, 'bin', 'initdb')) && existsSync(join(root, entry, 'bin', 'postgres')))
      .sort((a, b) => Number(b) - Number(a));
    if (majors.length > 0) return { dir: join(root, majors[0], 'bin') };
  }
  const which = spawnSync('sh', ['-c', 'command -v initdb'], { encoding: 'utf8' });
  const found = which.status === 0 ? which.stdout.trim() : '';
  if (found !== '') return { dir: join(found, '..') };
  return { reason: 'PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb, no initdb on PATH): run `bash scripts/setup.sh --with-test-tools`' };
}

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

function postgresUser(): { uid: number; gid: number } | null {
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((entry) => entry.startsWith('postgres:'));
  if (!line) return null;
  const fields = line.split(':');
  return { uid: Number(fields[2]), gid: Number(fields[3]) };
}

/** argv as the user PostgreSQL runs as. */
function asServerUser(command: string, args: string[]): [string, string[]] {
  return isRoot ? ['runuser', ['-u', 'postgres', '--', command, ...args]] : [command, args];
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolveSleep) => setTimeout(resolveSleep, ms));
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Children of pid (the postmaster's backends), from /proc. */
function childrenOf(pid: number): number[] {
  const result: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) result.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return result;
}

async function waitUntil(what: string, deadlineMs: number, check: () => Promise<boolean> | boolean): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  for (let attempt = 0; Date.now() < deadline && attempt < 100_000; attempt += 1) {
    if (await check()) return;
    await sleep(50);
  }
  throw new Error(`${what} within ${deadlineMs} ms`);
}

async function canConnect(url: string): Promise<boolean> {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

function run(command: string, args: string[], cwd: string): { ok: boolean; output: string } {
  const [bin, argv] = asServerUser(command, args);
  const result = spawnSync(bin, argv, { cwd, encoding: 'utf8', timeout: 60_000, env: { ...process.env, LC_ALL: 'C', LANG: 'C' } });
  const output = `${result.stdout ?? ''}${result.stderr ?? ''}${result.error ? String(result.error) : ''}`;
  return { ok: result.status === 0, output };
}

export async function startPostgres(): Promise<PostgresCluster> {
  const bin = postgresBinDir();
  if ('reason' in bin) throw new Error(bin.reason);
  const dir = mkdtempSync(join(tmpdir(), 'registry-pg-'));
  const data = join(dir, 'data');
  if (isRoot) {
    const user = postgresUser();
    if (user === null) throw new Error('running as root but there is no `postgres` user to run PostgreSQL as (Debian’s postgresql package creates it)');
    chownSync(dir, user.uid, user.gid);
  }
  const init = run(join(bin.dir, 'initdb'), ['-D', data, '-U', SUPERUSER, '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync'], dir);
  if (!init.ok) throw new Error(`initdb failed:\n${init.output.slice(-2000)}`);

  let output = '';
  let port = 0;

  const postmasterPid = (): number | null => {
    try {
      const pid = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
      return Number.isInteger(pid) && pid > 0 ? pid : null;
    } catch {
      return null;
    }
  };

  const launch = async (): Promise<void> => {
    const [command, args] = asServerUser(join(bin.dir, 'postgres'), [
      '-D', data, '-p', String(port), '-k', dir,
      '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off', '-c', 'shared_buffers=32MB',
      '-c', 'max_connections=200', '-c', 'logging_collector=off', '-c', 'log_min_messages=warning',
    ]);
    const started = spawn(command, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C', LANG: 'C' } });
    started.stdout?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    started.stderr?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    started.on('error', (error) => (output += `spawn failed: ${error.message}\n`));
    const url = `postgres://${SUPERUSER}@127.0.0.1:${port}/postgres`;
    await waitUntil('PostgreSQL did not accept connections', START_TIMEOUT_MS, async () => {
      if (started.exitCode !== null) throw new Error(`postgres exited (code ${started.exitCode}) before accepting connections:\n${output.slice(-2000)}`);
      return canConnect(url);
    });
  };

  const waitGone = async (pids: number[]): Promise<void> => {
    await waitUntil('PostgreSQL processes did not exit', STOP_TIMEOUT_MS, () => pids.every((pid) => !pidAlive(pid)));
  };

  const stop = async (): Promise<void> => {
    const pid = postmasterPid();
    if (pid === null || !pidAlive(pid)) return;
    const backends = childrenOf(pid);
    process.kill(pid, 'SIGINT'); // fast shutdown: roll back open transactions, checkpoint, exit
    try {
      await waitGone([pid, ...backends]);
    } catch {
      await kill();
    }
  };

  const kill = async (): Promise<void> => {
    const pid = postmasterPid();
    if (pid === null || !pidAlive(pid)) return;
    const backends = childrenOf(pid);
    for (const target of [pid, ...backends]) {
      try {
        process.kill(target, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await waitGone([pid, ...backends]);
  };

  // a port taken between freePort() and bind: try another, a bounded number of times
  for (let attempt = 1; ; attempt += 1) {
    port = await freePort();
    try {
      await launch();
      break;
    } catch (error) {
      await kill().catch(() => undefined);
      if (attempt >= 3 || !/could not bind|address already in use/i.test(output)) {
        rmSync(dir, { recursive: true, force: true });
        throw error;
      }
    }
  }

  const admin = async <T>(fn: (client: Client) => Promise<T>): Promise<T> => {
    const client = new Client({ connectionString: `postgres://${SUPERUSER}@127.0.0.1:${port}/postgres`, connectionTimeoutMillis: 5000 });
    await client.connect();
    try {
      return await fn(client);
    } finally {
      await client.end();
    }
  };
  const urlOf = (database: string): string => `postgres://${SUPERUSER}@127.0.0.1:${port}/${database}`;
  await admin((client) => client.query('CREATE DATABASE registry'));

  const cluster: PostgresCluster = {
    url: urlOf('registry'),
    port,
    dir,
    createDatabase: async (name) => {
      if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`database name ${JSON.stringify(name)}: lower-case letters, digits, _`);
      await admin((client) => client.query(`CREATE DATABASE ${name}`));
      return urlOf(name);
    },
    stop,
    restart: async () => {
      await stop();
      await launch();
    },
    kill,
    destroy: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
    logs: () => output,
  };
  return cluster;
}

let reported = false;

/** startPostgres, or the reason it cannot run (printed once on stderr) for `t.skip(reason)`. */
export async function tryStartPostgres(): Promise<PostgresStart> {
  try {
    return { ok: true, cluster: await startPostgres() };
  } catch (error) {
    const reason = `PostgreSQL could not be started: ${(error as Error).message}`;
    if (!reported) process.stderr.write(`${reason}\n`);
    reported = true;
    return { ok: false, reason };
  }
}
