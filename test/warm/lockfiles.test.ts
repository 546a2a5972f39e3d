/**
 * The lockfile parsers: on real lockfiles written by npm, bun, pnpm, Yarn classic and Yarn Berry
 * against a real registry, and as fast-check properties (what a format says round-trips; any
 * text either parses or fails with a LockfileError, never anything else).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import fc from 'fast-check';
import { dump } from 'js-yaml';
import { startRegistry, type RunningRegistry } from '../harness/registry';
import {
  LockfileError,
  parseBunLockfile,
  parseLockfile,
  parseNpmLockfile,
  parsePnpmLockfile,
  parseYarnLockfile,
  type LockedPackage,
} from '../../scripts/lib/lockfiles/index';
import { stripJsonc } from '../../scripts/lib/lockfiles/bun';
import { FIXTURE_EXPECTED, LOCKFILE_CLIENTS, generateLockfile, publishFixtures, scratchDir } from './clients';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const yarnLockfile = require('@yarnpkg/lockfile') as { stringify(object: unknown): string };

const ids = (packages: LockedPackage[]): string[] => packages.map((p) => `${p.name}@${p.version}`).sort();

let registry: RunningRegistry;
const work = scratchDir('warm-lockfiles-');
before(async () => {
  registry = await startRegistry();
  await publishFixtures(registry, work);
});
after(async () => {
  await registry?.stop();
  rmSync(work, { recursive: true, force: true });
});

for (const client of LOCKFILE_CLIENTS) {
  test(`a real ${client} lockfile names exactly the packages the client resolved`, async () => {
    const file = await generateLockfile(client, registry.url, work);
    const parsed = parseLockfile(file, readFileSync(file, 'utf8'));
    assert.deepEqual(ids(parsed.packages), FIXTURE_EXPECTED, readFileSync(file, 'utf8'));
    assert.equal(parsed.format, client);
    if (client === 'yarn-berry') assert.deepEqual(parsed.skipped.map((s) => s.entry), ['warm-fixture@workspace:.']);
    else assert.deepEqual(parsed.skipped, []);
  });
}

// --- properties -------------------------------------------------------------------------------

const segment = fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,12}$/);
const packageName = fc.tuple(fc.option(segment, { nil: undefined }), segment).map(([scope, name]) => (scope ? `@${scope}/${name}` : name));
const version = fc
  .tuple(fc.nat(99), fc.nat(99), fc.nat(99), fc.option(fc.stringMatching(/^[a-z0-9]{1,6}$/), { nil: undefined }))
  .map(([a, b, c, pre]) => `${a}.${b}.${c}${pre ? `-${pre}` : ''}`);
const integrity = fc.uint8Array({ minLength: 64, maxLength: 64 }).map((b) => `sha512-${Buffer.from(b).toString('base64')}`);
const lockedSet = fc.uniqueArray(fc.record({ name: packageName, version, integrity }), {
  selector: (p) => `${p.name}@${p.version}`,
  maxLength: 25,
});

const tarball = (p: LockedPackage): string => `http://127.0.0.1:1/${p.name}/-/${p.name.split('/').pop()}-${p.version}.tgz`;

/** Each case renders a set of packages the way its client lays them out. */
const writers: [string, (packages: LockedPackage[]) => string, (text: string) => LockedPackage[]][] = [
  [
    'package-lock.json (nested install paths)',
    (packages) => {
      const entries: Record<string, unknown> = { '': { name: 'root', version: '1.0.0' } };
      packages.forEach((p, i) => {
        // a second copy of a name nests under another package, as npm does for conflicting versions
        const path = `node_modules/${i % 3 === 2 ? `x${i}/node_modules/` : ''}${p.name}`;
        entries[entries[path] ? `node_modules/n${i}/node_modules/${p.name}` : path] = { version: p.version, resolved: tarball(p), integrity: p.integrity };
      });
      return JSON.stringify({ name: 'root', lockfileVersion: 3, requires: true, packages: entries }, null, 2);
    },
    (text) => parseNpmLockfile(text).packages,
  ],
  [
    'bun.lock (JSONC, trailing commas)',
    (packages) => {
      const lines = packages.map((p, i) => `    "k${i}/${p.name}": ["${p.name}@${p.version}", "", {}, "${p.integrity}"],\n`);
      return `{\n  "lockfileVersion": 1,\n  "workspaces": { "": { "name": "root", }, },\n  "packages": {\n${lines.join('\n')}  },\n}\n`;
    },
    (text) => parseBunLockfile(text).packages,
  ],
  [
    'pnpm-lock.yaml v9',
    (packages) =>
      dump({
        lockfileVersion: '9.0',
        importers: { '.': {} },
        packages: Object.fromEntries(packages.map((p) => [`${p.name}@${p.version}`, { resolution: { integrity: p.integrity } }])),
      }),
    (text) => parsePnpmLockfile(text).packages,
  ],
  [
    'yarn.lock v1 (Yarn’s own stringify)',
    (packages) =>
      yarnLockfile.stringify(Object.fromEntries(packages.map((p) => [`${p.name}@^${p.version}`, { version: p.version, resolved: tarball(p), integrity: p.integrity }]))),
    (text) => parseYarnLockfile(text).packages,
  ],
  [
    'yarn.lock Berry',
    (packages) =>
      dump({
        __metadata: { version: 8, cacheKey: '10c0' },
        ...Object.fromEntries(packages.map((p) => [`${p.name}@npm:^${p.version}`, { version: p.version, resolution: `${p.name}@npm:${p.version}`, linkType: 'hard' }])),
      }),
    (text) => parseYarnLockfile(text).packages,
  ],
];

for (const [label, write, parse] of writers) {
  test(`property: ${label} round-trips every name@version`, () => {
    fc.assert(
      fc.property(lockedSet, (packages) => {
        assert.deepEqual(ids(parse(write(packages))), ids(packages));
      }),
      { numRuns: 150 },
    );
  });
}

test('property: any text either parses or is refused with a LockfileError (every format)', () => {
  const files = ['package-lock.json', 'bun.lock', 'pnpm-lock.yaml', 'yarn.lock'];
  const text = fc.oneof(
    fc.string(),
    fc.json(),
    fc.jsonValue().map((v) => JSON.stringify({ lockfileVersion: 3, packages: v })),
    fc.jsonValue().map((v) => JSON.stringify({ lockfileVersion: 1, packages: { k: v } })),
    fc.jsonValue().map((v) => dump({ lockfileVersion: '9.0', packages: { 'a@1.0.0': v } })),
    fc.jsonValue().map((v) => dump({ __metadata: { version: 8 }, 'a@npm:1': v })),
  );
  fc.assert(
    fc.property(fc.constantFrom(...files), text, (file, body) => {
      try {
        const parsed = parseLockfile(file, body);
        for (const p of parsed.packages) assert.ok(p.name.length > 0 && /^\d+\.\d+\.\d+/.test(p.version), JSON.stringify(p));
      } catch (error) {
        if (!(error instanceof LockfileError)) throw error;
      }
    }),
    { numRuns: 400 },
  );
});

test('property: stripJsonc leaves strings alone and makes trailing-comma JSON parse', () => {
  fc.assert(
    fc.property(fc.jsonValue(), (value) => {
      const strict = JSON.stringify(value, null, 1);
      assert.deepEqual(JSON.parse(stripJsonc(strict)), JSON.parse(strict));
      const loose = strict.replace(/\n(\s*)([}\]])/g, ',\n$1$2').replace(/([[{]),\n/g, '$1\n');
      assert.deepEqual(JSON.parse(stripJsonc(loose)), JSON.parse(strict), loose);
    }),
    { numRuns: 300 },
  );
});

test('unsupported and broken lockfiles are refused with the fix, never read as empty', () => {
  assert.throws(() => parseLockfile('package-lock.json', JSON.stringify({ lockfileVersion: 1, dependencies: {} })), /lockfileVersion 1 is not supported .*npm install/);
  assert.throws(() => parseLockfile('pnpm-lock.yaml', "lockfileVersion: '6.0'\n"), /lockfileVersion "6.0" is not supported/);
  assert.throws(() => parseLockfile('bun.lockb', 'x'), /bun\.lockb is not a lockfile this command reads/);
  assert.throws(() => parseLockfile('bun.lock', '{"packages":{}}'), /no numeric "lockfileVersion"/);
  assert.throws(() => parseLockfile('yarn.lock', 'a@^1:\n  version "1"\n<<<<<<< HEAD\n'), LockfileError);
  assert.throws(() => parseLockfile('package-lock.json', '{'), /not JSON/);
});

test('non-registry entries are skipped with a reason (links, workspaces, file:, git, tarball URLs)', () => {
  const npm = parseNpmLockfile(JSON.stringify({
    lockfileVersion: 3,
    packages: {
      '': {},
      'packages/app': { version: '1.0.0' },
      'node_modules/app': { link: true, resolved: 'packages/app' },
      'node_modules/g': { version: '1.0.0', resolved: 'git+ssh://git@example.invalid/g.git#abc' },
      'node_modules/ok': { version: '1.0.0', resolved: 'http://127.0.0.1:1/ok/-/ok-1.0.0.tgz' },
    },
  }));
  assert.deepEqual(ids(npm.packages), ['ok@1.0.0']);
  assert.equal(npm.skipped.length, 3);
  const bun = parseBunLockfile('{"lockfileVersion":1,"packages":{"w":["w@workspace:packages/w"],"f":["f@file:../f",{}],"ok":["ok@1.0.0","",{},"sha512-x"]}}');
  assert.deepEqual(ids(bun.packages), ['ok@1.0.0']);
  assert.deepEqual(bun.skipped.map((s) => s.entry), ['w', 'f']);
  const pnpm = parsePnpmLockfile(dump({ lockfileVersion: '9.0', packages: { 't@1.0.0': { resolution: { tarball: 'http://127.0.0.1:1/t.tgz' } }, 'ok@1.0.0(peer@2.0.0)': { resolution: { integrity: 'sha512-x' } } } }));
  assert.deepEqual(ids(pnpm.packages), ['ok@1.0.0']);
});
