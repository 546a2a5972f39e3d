/**
 * Focused measurement of #17's row "dashboard GET /_dashboard/api/packages with 3,000 packages
 * ≤ 50 ms" (issue 15.7), lighter than `npm run bench -- --only scale` (ours only, no stock side):
 *
 *   node build/test/dashboard/measure-list.js [packages=3000] [rounds=20] [keep-dir]
 *
 * Seeds N packages with raw PUTs (the body npm sends, 4 in flight), then times the full list, a
 * page (limit=50), a search page and the package view, each one untimed then `rounds` timed.
 * Wall-clock medians AND the server's CPU per request (/proc utime+stime of the registry process
 * over the timed rounds) — the CPU figure is the one to trust on a loaded box.
 * Not a test (no `.test` in the name): run it by hand.
 */
import { readFileSync } from 'node:fs';
import { startDashboardRegistry, createUsers } from './helpers';
import { publishRaw } from '../storage/lib/packages';

function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  // utime and stime are fields 14 and 15 of the whole line; after "pid (comm) " they are 12 and 13 (1-based: state is 1)
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

async function main(): Promise<void> {
  const count = Number(process.argv[2] ?? 3000);
  const rounds = Number(process.argv[3] ?? 20);
  const dir = process.argv[4];
  const registry = await startDashboardRegistry(dir ? { dir } : {});
  try {
    let token: string;
    try {
      ({ admin: token } = await createUsers(registry));
    } catch {
      const response = await fetch(`${registry.url}/_auth/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'alice', password: 'alice-secret-1' }) });
      token = ((await response.json()) as { token: string }).token;
    }
    const listed = async (): Promise<number> => {
      const response = await fetch(`${registry.url}/_dashboard/api/packages?limit=1`, { headers: { authorization: `Bearer ${token}` } });
      return ((await response.json()) as { total: number }).total;
    };
    const coldStart = performance.now();
    let have = await listed();
    console.log(`# first list request after start (index open + fold + every access decision): ${(performance.now() - coldStart).toFixed(1)} ms wall`);
    const seedStart = performance.now();
    let next = have;
    const worker = async (): Promise<void> => {
      while (next < count) {
        const i = next++;
        const answer = await publishRaw(registry.url, token, `scale-pkg-${String(i).padStart(5, '0')}`, '1.0.0');
        if (answer.status !== 201 && answer.status !== 200) throw new Error(`publish ${i}: ${answer.status} ${answer.text}`);
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
    const seeded = count - have;
    have = await listed();
    console.log(`# seeded ${seeded} packages in ${((performance.now() - seedStart) / 1000).toFixed(1)} s; the list has ${have}; dir ${registry.dir}`);

    const pid = registry.process.pid as number;
    const measure = async (label: string, path: string, check: (body: unknown) => void): Promise<void> => {
      const get = async (): Promise<{ ms: number; body: unknown }> => {
        const t0 = performance.now();
        const response = await fetch(`${registry.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
        const text = await response.text();
        const ms = performance.now() - t0;
        if (response.status !== 200) throw new Error(`${path}: ${response.status} ${text.slice(0, 200)}`);
        return { ms, body: JSON.parse(text) };
      };
      const first = await get();
      check(first.body);
      const times: number[] = [];
      const cpu0 = cpuMs(pid);
      for (let i = 0; i < rounds; i++) times.push((await get()).ms);
      const cpu = (cpuMs(pid) - cpu0) / rounds;
      console.log(`${label.padEnd(44)} first ${first.ms.toFixed(2)} ms · then wall median ${median(times).toFixed(2)} ms (min ${Math.min(...times).toFixed(2)}) · server CPU ${cpu.toFixed(2)} ms/request`);
    };
    // past ACCESS_MEMO_MS: the first request is answered from the memo and re-asks in the background
    await new Promise((resolve) => setTimeout(resolve, 10_500));
    await measure(`full list (${have} packages)`, '/_dashboard/api/packages', (body) => {
      const n = (body as { packages: unknown[] }).packages.length;
      if (n !== have) throw new Error(`full list has ${n}, expected ${have}`);
    });
    await new Promise((resolve) => setTimeout(resolve, 10_500));
    await measure('page ?offset=1500&limit=50', '/_dashboard/api/packages?offset=1500&limit=50', (body) => {
      if ((body as { packages: unknown[] }).packages.length !== Math.min(50, Math.max(0, have - 1500))) throw new Error('page size');
    });
    await measure('search ?q=pkg-029&limit=50', '/_dashboard/api/packages?q=pkg-029&limit=50', () => undefined);
    await measure('package view ?name=scale-pkg-00042', '/_dashboard/api/package?name=scale-pkg-00042', () => undefined);
    await measure('activity', '/_dashboard/api/activity', () => undefined);
    console.log(`# load: ${readFileSync('/proc/loadavg', 'utf8').trim()} (2 cores shared)`);
  } finally {
    await registry.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
