/**
 * `registry warm` end to end: a real registry, fixture packages published with npm, lockfiles
 * written by each real client, then the real command (bin/registry.js warm) against the registry;
 * the registry's own request log shows every named packument and tarball was fetched through it.
 *
 * Not here yet: "stop the upstream, the project still installs" — that needs the upstream proxy
 * (docs/upstream.md), which this branch does not have; see docs/offline-and-warm.md.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { NODE_BIN, PROJECT_ROOT, cleanEnv, run, startRegistry, type RunningRegistry } from '../harness/registry';
import { parseLockfile } from '../../scripts/lib/lockfiles/index';
import { WARM_USER_AGENT, progressBar, mapLimit, packumentPath } from '../../scripts/lib/warm';
import { LOCKFILE_CLIENTS, generateLockfile, publishFixtures, scratchDir } from './clients';
import fc from 'fast-check';
import { TmuxSession, tmuxUnavailable } from '../terminal/tmux-session';

const BIN = join(PROJECT_ROOT, 'bin', 'registry.js');
let registry: RunningRegistry;
const work = scratchDir('warm-e2e-');

before(async () => {
  registry = await startRegistry({
    // `http` level: Verdaccio logs one line per request with its method and path — the count we check
    editConfig: (config) => {
      config.log = { type: 'stdout', format: 'json', level: 'http' };
    },
  });
  await publishFixtures(registry, work);
});
after(async () => {
  await registry?.stop();
  rmSync(work, { recursive: true, force: true });
});

/** Requests of `registry warm` (by its user agent) the registry logged since `from` (an offset into its log), as `METHOD /path`. */
function requestsSince(from: number): string[] {
  const lines = registry.logs().slice(from).split('\n');
  const out: string[] = [];
  for (const line of lines) {
    // Verdaccio's one `requested 'GET /path'` line per request (its http lines come twice: on end and on close)
    const match = /"msg":"[^"]* requested '(\w+) ([^' ]+)'"/.exec(line);
    if (match && line.includes(`"user-agent":"${WARM_USER_AGENT}"`)) out.push(`${match[1]} ${match[2]}`);
  }
  return out;
}

function warm(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return run(NODE_BIN, [BIN, 'warm', ...args], { env: cleanEnv({ HOME: work }), timeoutMs: 60_000 });
}

for (const client of LOCKFILE_CLIENTS) {
  test(`registry warm <${client} lockfile> fetches every named packument and tarball through the registry`, async () => {
    const file = await generateLockfile(client, registry.url, work);
    const named = parseLockfile(file, readFileSync(file, 'utf8')).packages;
    const mark = registry.logs().length;
    const result = await warm([file, '--registry', registry.url, '--concurrency', '3']);
    assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`);
    assert.match(result.stdout, new RegExp(`${named.length} fetched, 0 already cached, 0 failed`));
    // not a TTY here: one plain line per package
    for (const p of named) assert.match(result.stdout, new RegExp(`^fetched +${p.name.replace('/', '\\/')}@${p.version.replace(/\./g, '\\.')}$`, 'm'));
    // give the log stream a moment to flush, bounded
    for (let i = 0; i < 50 && requestsSince(mark).filter((r) => r.endsWith('.tgz')).length < named.length; i++) await new Promise((r) => setTimeout(r, 20));
    const requests = requestsSince(mark);
    for (const p of named) {
      const base = p.name.split('/').pop();
      assert.ok(requests.includes(`GET /${p.name}/-/${base}-${p.version}.tgz`), `tarball of ${p.name}@${p.version} requested:\n${requests.join('\n')}`);
    }
    for (const name of new Set(named.map((p) => p.name))) {
      const hits = requests.filter((r) => r === `GET /${packumentPath(name)}` || r === `GET /${name}`);
      assert.equal(hits.length, 1, `one packument request for ${name}:\n${requests.join('\n')}`);
    }
  });
}

test('registry warm: a version the registry does not have fails with the reason and exit 1; the others are fetched', async () => {
  const file = join(work, 'package-lock.json');
  writeFileSync(file, JSON.stringify({
    lockfileVersion: 3,
    packages: {
      '': {},
      'node_modules/warm-leaf': { version: '2.0.0' },
      'node_modules/warm-mid': { version: '9.9.9' },
      'node_modules/no-such-package-here': { version: '1.0.0' },
    },
  }));
  const result = await warm([file, '--registry', registry.url]);
  assert.equal(result.code, 1, result.stdout);
  assert.match(result.stdout, /1 fetched, 0 already cached, 2 failed/);
  assert.match(result.stdout, /failed warm-mid@9\.9\.9: version 9\.9\.9 is not in the registry's packument/);
  assert.match(result.stdout, /failed no-such-package-here@1\.0\.0: packument: 404/);
});

test('registry warm: usage errors exit 2 and name the problem; a bad lockfile exits 1 naming it', async () => {
  const none = await warm([]);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /which lockfile\?/);
  const concurrency = await warm([join(work, 'x.lock'), '--concurrency', '0']);
  assert.equal(concurrency.code, 2);
  assert.match(concurrency.stderr, /--concurrency must be an integer 1\.\.64, got 0/);
  const missing = await warm([join(work, 'nope', 'yarn.lock'), '--registry', registry.url]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /cannot read .*yarn\.lock: ENOENT/);
  const bad = join(work, 'pnpm-lock.yaml');
  writeFileSync(bad, "lockfileVersion: '5.4'\n");
  const old = await warm([bad, '--registry', registry.url]);
  assert.equal(old.code, 1);
  assert.match(old.stderr, /lockfileVersion "5\.4" is not supported/);
  const down = await warm([join(work, 'package-lock.json'), '--registry', 'http://127.0.0.1:9']);
  assert.equal(down.code, 1);
  assert.match(down.stdout, /failed warm-leaf@2\.0\.0: packument: fetch failed/);
});

test('registry warm on a TTY draws a progress bar and ends with the summary', { skip: tmuxUnavailable() ?? false }, async () => {
  const file = await generateLockfile('npm', registry.url, work);
  const session = TmuxSession.start({ cwd: work, script: join(PROJECT_ROOT, 'build', 'scripts', 'warm.js'), args: [file, '--registry', registry.url], width: 100, height: 20 });
  try {
    const screen = await session.waitForText(/EXITED 0/, 30_000);
    assert.match(screen, /^\[#+\] 4\/4 \S+@\d/m, 'the bar, full, with the last package');
    assert.match(screen, /4 fetched, 0 already cached, 0 failed/);
    assert.doesNotMatch(screen, /^fetched /m, 'no plain per-package lines on a TTY');
  } finally {
    session.kill();
  }
});

test('property: mapLimit keeps order and never runs more than the limit at once', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(fc.nat(3), { maxLength: 40 }), fc.integer({ min: 1, max: 8 }), async (delays, limit) => {
      let running = 0;
      let peak = 0;
      const out = await mapLimit(delays, limit, async (d) => {
        peak = Math.max(peak, ++running);
        for (let i = 0; i < d; i++) await Promise.resolve();
        running--;
        return d * 2;
      });
      assert.deepEqual(out, delays.map((d) => d * 2));
      assert.ok(peak <= limit);
    }),
    { numRuns: 100 },
  );
});

test('property: the progress bar has the asked width and fills in proportion', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 5000 }), fc.integer({ min: 20, max: 120 }), fc.nat(), (total, width, raw) => {
      const done = raw % (total + 1);
      const bar = progressBar(done, total, width);
      assert.equal(bar.length, Math.max(width, String(total).length * 2 + 8));
      const filled = (bar.match(/#/g) ?? []).length;
      if (done === total) assert.doesNotMatch(bar, /\./);
      if (done === 0) assert.equal(filled, 0);
    }),
  );
});
