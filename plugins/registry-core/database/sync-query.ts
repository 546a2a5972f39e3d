/**
 * Synchronous PostgreSQL access for the few things Verdaccio's synchronous plugin constructors
 * must know before they return (docs/cluster.md "Start-up"): the users and tokens a node starts
 * with, the shared key files. `querySync` runs the statements in a child Node process (the same
 * `pg` client and migrations, one transaction) and blocks until it answers; everything after
 * start-up is asynchronous on the shared pool. Values cross as JSON: bytea as hex via encode().
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { RegistryCoreError } from '../errors';

export interface SyncStatement {
  text: string;
  values?: unknown[];
}

export const SYNC_QUERY_TIMEOUT_MS = 60_000;

/** Rows of each statement, in order. Throws ERR_DATABASE when the database cannot be reached or a statement fails. */
export function querySync(url: string, statements: SyncStatement[]): Array<Array<Record<string, unknown>>> {
  const child = spawnSync(process.execPath, [join(__dirname, 'sync-query-child.js')], {
    input: JSON.stringify({ url, statements }),
    encoding: 'utf8',
    timeout: SYNC_QUERY_TIMEOUT_MS,
    maxBuffer: 256 * 1024 * 1024,
    env: process.env,
  });
  if (child.error) throw new RegistryCoreError('ERR_DATABASE', `database query at start-up failed: ${child.error.message}`, { cause: child.error });
  let answer: { ok: true; rows: Array<Array<Record<string, unknown>>> } | { ok: false; message: string; code?: string } | undefined;
  try {
    answer = JSON.parse(child.stdout) as typeof answer;
  } catch {
    answer = undefined;
  }
  if (!answer) throw new RegistryCoreError('ERR_DATABASE', `database query at start-up failed (exit ${child.status}): ${child.stderr.trim().slice(0, 500)}`);
  if (!answer.ok) throw new RegistryCoreError(answer.code === 'ERR_DATABASE_SCHEMA' ? 'ERR_DATABASE_SCHEMA' : 'ERR_DATABASE', answer.message);
  return answer.rows;
}
