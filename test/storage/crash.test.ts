/**
 * Crash safety: the registry is killed with SIGKILL at random moments of a publish loop, then
 * restarted on the same folder. Every version acknowledged with 2xx must be served
 * byte-identical, a temp file must never be served (checked while the loop runs), packuments
 * are never torn, and registry.lockb's index verifies (or was repaired on open, with a log line).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { PackageIndex, summarizeIndex } from '../../plugins/registry-core/index';
import { addUser, startRegistry, type RunningRegistry } from '../harness/registry';
import { getBytes, getJson, publishRaw, tarballUrl, useOurStorage } from './lib/packages';

const ROUNDS = 12;
const PACKAGES = ['@acme/crash', 'crash-plain'];

function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function tempFiles(storageDir: string): string[] {
  try {
    return readdirSync(storageDir, { recursive: true, encoding: 'utf8' }).filter((path) => path.split('/').pop()!.startsWith('.tmp-'));
  } catch {
    return [];
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

test(`SIGKILL at random moments of a publish loop (${ROUNDS} rounds): acknowledged versions survive byte-identical`, async () => {
  const seed = Number(process.env.CRASH_SEED ?? Date.now() % 1_000_000);
  console.log(`crash test seed ${seed} (rerun with CRASH_SEED=${seed})`);
  const random = mulberry32(seed);
  let registry: RunningRegistry = await startRegistry({ editConfig: useOurStorage });
  const token = await addUser(registry, 'crasher', 'correct-horse-battery');
  const acked = new Map<string, Buffer>(); // "name@version" → tarball bytes
  const violations: string[] = [];
  let servedTemps = 0;
  let repairedLogs = 0;
  let rebuilds = 0;
  let counter = 0;

  try {
    for (let round = 0; round < ROUNDS; round += 1) {
      const url = registry.url;
      let running = true;
      const publishers = [0, 1, 2].map(async (worker) => {
        while (running) {
          const name = PACKAGES[(counter + worker) % PACKAGES.length];
          const version = `${round + 1}.${worker}.${counter++}`;
          try {
            const result = await publishRaw(url, token, name, version);
            if (result.status === 201) acked.set(`${name}@${version}`, result.tarball);
            else if (running) violations.push(`round ${round}: ${name}@${version} got ${result.status} ${result.text}`);
          } catch {
            return; // the server died under this request: not acknowledged
          }
        }
      });
      // Meanwhile: whatever temp file exists must not be servable, and packuments never torn.
      const watcher = (async () => {
        while (running) {
          for (const temp of tempFiles(registry.storageDir)) {
            const parts = temp.split('/');
            const file = parts.pop()!;
            const name = parts.join('/');
            if (!PACKAGES.includes(name)) continue;
            try {
              const response = await getBytes(`${url}/${name}/-/${file}`);
              if (response.status < 400) violations.push(`temp file ${temp} served with ${response.status}`);
              servedTemps += 1;
            } catch {
              // server gone
            }
          }
          for (const name of PACKAGES) {
            try {
              const response = await fetch(`${url}/${name.replace('/', '%2f')}`);
              const text = await response.text();
              if (response.status === 200) JSON.parse(text);
              else if (response.status !== 404) violations.push(`packument ${name}: ${response.status}`);
            } catch (error) {
              if (error instanceof SyntaxError) violations.push(`packument ${name} was not valid JSON`);
            }
          }
          await sleep(3);
        }
      })();

      await sleep(100 + random() * 1100);
      await registry.stop('SIGKILL');
      running = false;
      await Promise.all([...publishers, watcher]);

      registry = await startRegistry({ dir: registry.dir });
      if (/torn last record/.test(registry.logs())) repairedLogs += 1;
      if (/rebuilt the index from storage/.test(registry.logs())) rebuilds += 1;

      for (const name of PACKAGES) {
        const expected = [...acked.keys()].filter((key) => key.startsWith(`${name}@`)).map((key) => key.slice(name.length + 1));
        if (expected.length === 0) continue;
        const { status, json } = await getJson(`${registry.url}/${name.replace('/', '%2f')}`);
        assert.equal(status, 200, `round ${round}: packument ${name}`);
        const served = json.versions as Record<string, { dist: { integrity: string } }>;
        for (const version of expected) {
          assert.ok(served[version], `round ${round}: acknowledged ${name}@${version} is missing`);
          const bytes = acked.get(`${name}@${version}`)!;
          const tgz = await getBytes(tarballUrl(registry.url, name, version));
          assert.equal(tgz.status, 200, `round ${round}: tarball of ${name}@${version}`);
          assert.ok(tgz.bytes.equals(bytes), `round ${round}: ${name}@${version} is not byte-identical`);
          assert.equal(served[version].dist.integrity, `sha512-${createHash('sha512').update(bytes).digest('base64')}`);
        }
      }
      const index = PackageIndex.open(registry.lockbPath); // throws ERR_INDEX_CORRUPT if it does not verify
      const summary = summarizeIndex(index.readAll());
      index.close();
      for (const name of PACKAGES) {
        const { status, json } = await getJson(`${registry.url}/${name.replace('/', '%2f')}`);
        const stored = status === 200 ? Object.keys(json.versions as object).sort() : [];
        const indexed = [...(summary.find((item) => item.name === name)?.versions ?? [])].sort();
        assert.deepEqual(indexed, stored, `round ${round}: the index does not describe what ${name} stores`);
      }
      for (const key of acked.keys()) {
        const at = key.lastIndexOf('@');
        const entry = summary.find((item) => item.name === key.slice(0, at));
        assert.ok(entry?.versions.includes(key.slice(at + 1)), `round ${round}: ${key} has no publish record in registry.lockb`);
      }
      const leftovers = tempFiles(registry.storageDir).map((file) => relative(registry.storageDir, join(registry.storageDir, file)));
      assert.deepEqual(leftovers, [], `round ${round}: temp files of the killed process were not swept`);
    }
  } finally {
    await registry.stop();
  }
  console.log(`crash test: ${acked.size} acknowledged versions over ${ROUNDS} kills; ${servedTemps} temp-file GETs refused; ${repairedLogs} index repair(s) logged, ${rebuilds} rebuild(s) after a kill between package.json and its record`);
  assert.deepEqual(violations, []);
  assert.ok(acked.size >= ROUNDS, `only ${acked.size} versions were acknowledged: the loop did not exercise publishing`);
});
