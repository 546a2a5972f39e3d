/**
 * Test side of the private PostgreSQL cluster: the starter lives in scripts/lib/postgres.ts (the
 * bench uses it too; scripts may not import from test/) and is re-exported here, plus `usePostgres`
 * (node:test before/after hooks).
 */
import { after, before } from 'node:test';
import { tryStartPostgres, type PostgresStart } from '../../scripts/lib/postgres';

export * from '../../scripts/lib/postgres';

/**
 * One private cluster for the calling test file: started in `before`, destroyed in `after`
 * (registered here). Returns a getter for tests: `const pg = usePostgres(); … if (!pg().ok) return t.skip(pg().reason)`.
 */
export function usePostgres(): () => PostgresStart {
  let started: PostgresStart = { ok: false, reason: 'PostgreSQL was not started (before() has not run)' };
  before(async () => {
    started = await tryStartPostgres();
  });
  after(async () => {
    if (started.ok) await started.cluster.destroy();
  });
  return () => started;
}
