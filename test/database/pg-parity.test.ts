/**
 * 14.8 files and PostgreSQL answer alike (docs/database.md: the backend is a storage choice, not a
 * behaviour): one random sequence of writes — publishes (new packages, new versions, a version
 * again, other tags), dist-tag adds and removals, deprecations, unpublishes of a version and of a
 * package — sent by raw HTTP to a registry on files and to one on PostgreSQL, and after every step
 * the same statuses and, for the packuments (full and abbreviated), tarballs, search and the
 * dashboard's list, the same content; on each side the dashboard's list (made from the index) says
 * what the packuments say.
 * What two independent registries cannot share is normalised away: times, revisions, signatures
 * (their keys differ) and nothing else; tarball URLs are made the same by one Host header.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, test } from 'node:test';
import fc from 'fast-check';
import { usePostgres } from '../harness/postgres';
import { answersAlike, basic, withFastPathOff } from '../storage/lib/answers-alike';
import { jsonRequestBody, rawRequest } from '../harness/raw-http';
import { addUser, startRegistry, type RunningRegistry } from '../harness/registry';
import { bareName, publishEach, publishRaw } from '../storage/lib/packages';

const running: RunningRegistry[] = [];
after(async () => {
  await Promise.all(running.map((registry) => registry.stop()));
});
const postgres = usePostgres();

const HOST = 'registry.test:4873';
const ABBREVIATED = 'application/vnd.npm.install-v1+json';
const NAMES = ['par-a', '@mycompany/par-b'] as const;
const VERSIONS = ['1.0.0', '1.1.0', '2.0.0-beta.1', '2.0.0'] as const;
const TAGS = ['latest', 'beta', 'next'] as const;

type Step =
  | { op: 'publish'; name: string; version: string; tag: string }
  | { op: 'tag'; name: string; version: string; tag: string }
  | { op: 'untag'; name: string; tag: string }
  | { op: 'deprecate'; name: string; version: string; message: string }
  | { op: 'unpublish-version'; name: string; version: string }
  | { op: 'unpublish-package'; name: string };

const name = fc.constantFrom(...NAMES);
const version = fc.constantFrom(...VERSIONS);
const tag = fc.constantFrom(...TAGS);
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('publish' as const), name, version, tag }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('tag' as const), name, version, tag }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('untag' as const), name, tag }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('deprecate' as const), name, version, message: fc.constantFrom('', 'use 2', 'old') }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('unpublish-version' as const), name, version }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('unpublish-package' as const), name }) },
);

interface Side {
  registry: RunningRegistry;
  token: string;
}

/** One request (raw: fetch would not send our Host header, and the tarball URLs are made from it). */
async function call(side: Side, method: string, path: string, body?: unknown, accept = 'application/json'): Promise<{ status: number; text: string; bytes: Buffer }> {
  const json = jsonRequestBody(body);
  const answer = await rawRequest(side.registry, { method, path, body: json.body, headers: { host: HOST, accept, authorization: `Bearer ${side.token}`, ...json.headers } });
  return { status: answer.status, text: answer.text, bytes: answer.body };
}

const encoded = (pkg: string): string => encodeURIComponent(pkg);

interface Packument {
  _rev: string;
  versions?: Record<string, Record<string, unknown>>;
  'dist-tags'?: Record<string, string>;
  [key: string]: unknown;
}

/** What `npm unpublish <name>@<version>` sends: the packument without the version, then the tarball's DELETE. */
async function unpublishVersion(side: Side, pkg: string, target: string): Promise<string> {
  const read = await call(side, 'GET', `/${encoded(pkg)}?write=true`);
  if (read.status !== 200) return `read ${read.status}`;
  const doc = JSON.parse(read.text) as Packument;
  if (doc.versions?.[target] === undefined) return 'no such version';
  const versions = Object.keys(doc.versions);
  if (versions.length === 1) return `last version: ${(await call(side, 'DELETE', `/${encoded(pkg)}/-rev/${doc._rev}`)).status}`;
  delete doc.versions[target];
  for (const [tagName, tagged] of Object.entries(doc['dist-tags'] ?? {})) if (tagged === target) delete doc['dist-tags']?.[tagName];
  delete doc._attachments;
  const written = await call(side, 'PUT', `/${encoded(pkg)}/-rev/${doc._rev}`, doc);
  if (written.status >= 300) return `put ${written.status}`;
  const again = JSON.parse((await call(side, 'GET', `/${encoded(pkg)}?write=true`)).text) as Packument;
  const file = `${bareName(pkg)}-${target}.tgz`;
  const removed = await call(side, 'DELETE', `/${pkg}/-/${file}/-rev/${again._rev}`);
  return `put ${written.status}, delete ${removed.status}`;
}

/** What `npm deprecate <name>@<version> <message>` sends: the packument with `deprecated` set (or removed for ''). */
async function deprecate(side: Side, pkg: string, target: string, message: string): Promise<string> {
  const read = await call(side, 'GET', `/${encoded(pkg)}?write=true`);
  if (read.status !== 200) return `read ${read.status}`;
  const doc = JSON.parse(read.text) as Packument;
  const entry = doc.versions?.[target];
  if (entry === undefined) return 'no such version';
  if (message === '') delete entry.deprecated;
  else entry.deprecated = message;
  delete doc._attachments;
  return `put ${(await call(side, 'PUT', `/${encoded(pkg)}/-rev/${doc._rev}`, doc)).status}`;
}

async function apply(side: Side, action: Step): Promise<string> {
  switch (action.op) {
    case 'publish':
      return String((await publishRaw(side.registry.url, side.token, action.name, action.version, { tag: action.tag, distTarball: `http://${HOST}/${action.name}/-/${bareName(action.name)}-${action.version}.tgz` })).status);
    case 'tag':
      return String((await call(side, 'PUT', `/-/package/${encoded(action.name)}/dist-tags/${action.tag}`, action.version)).status);
    case 'untag':
      return String((await call(side, 'DELETE', `/-/package/${encoded(action.name)}/dist-tags/${action.tag}`)).status);
    case 'deprecate':
      return deprecate(side, action.name, action.version, action.message);
    case 'unpublish-version':
      return unpublishVersion(side, action.name, action.version);
    case 'unpublish-package': {
      const read = await call(side, 'GET', `/${encoded(action.name)}?write=true`);
      if (read.status !== 200) return `read ${read.status}`;
      return String((await call(side, 'DELETE', `/${encoded(action.name)}/-rev/${(JSON.parse(read.text) as Packument)._rev}`)).status);
    }
  }
}

/** The packument without what two registries cannot share: times (`time`, the abbreviated `modified`), revisions, signatures. */
function comparable(text: string): unknown {
  return JSON.parse(text, (key, value: unknown) => {
    if (key === '_rev' || key === 'signatures' || (key === 'modified' && typeof value === 'string')) return undefined;
    if (key === 'time' && typeof value === 'object' && value !== null) return Object.keys(value).sort();
    return value;
  });
}

/** Everything a client can read of the packages: packuments (full, abbreviated) and every tarball they name. */
async function observe(side: Side): Promise<string[]> {
  const seen: string[] = [];
  for (const pkg of NAMES) {
    for (const accept of ['application/json', ABBREVIATED]) {
      const answer = await call(side, 'GET', `/${encoded(pkg)}`, undefined, accept);
      seen.push(`${pkg} ${accept}: ${answer.status} ${answer.status === 200 ? JSON.stringify(comparable(answer.text)) : ''}`);
    }
    for (const v of VERSIONS) {
      const tarball = await call(side, 'GET', `/${pkg}/-/${bareName(pkg)}-${v}.tgz`, undefined, '*/*');
      seen.push(`${pkg}@${v} tarball: ${tarball.status} ${tarball.status === 200 ? createHash('sha256').update(tarball.bytes).digest('hex') : ''}`);
    }
  }
  // the dashboard's list is made from the index (registry.lockb), not from the packuments: each
  // side's list must say what its packuments say, and the two sides' lists must agree
  const listed = await call(side, 'GET', '/_dashboard/api/packages');
  assert.equal(listed.status, 200, listed.text);
  const page = JSON.parse(listed.text) as { packages: { name: string; versions: string[]; distTags: Record<string, string>; source: string }[] };
  for (const pkg of NAMES) {
    const entry = page.packages.find((listedPackage) => listedPackage.name === pkg);
    const full = await call(side, 'GET', `/${encoded(pkg)}`);
    const doc = full.status === 200 ? (JSON.parse(full.text) as Packument) : null;
    const where = `${side.registry.dir}: ${pkg}`;
    assert.equal(entry !== undefined, doc !== null, `${where}: listed by the dashboard ⇔ its packument is served (${full.status})`);
    if (entry === undefined || doc === null) continue;
    assert.deepEqual([...entry.versions].sort(), Object.keys(doc.versions ?? {}).sort(), `${where}: the index's versions are the packument's`);
    assert.deepEqual(entry.distTags, doc['dist-tags'] ?? {}, `${where}: the index's dist-tags are the packument's`);
  }
  seen.push(`dashboard: ${JSON.stringify(page.packages.map(({ name: listedName, versions, distTags, source }) => ({ name: listedName, versions: [...versions].sort(), distTags, source })))}`);
  // search reads the package list and the index, not the packuments: what it finds must agree too
  const search = await call(side, 'GET', '/-/v1/search?text=par&size=20');
  const found = search.status === 200 ? (JSON.parse(search.text) as { objects: { package: { name: string; version: string } }[]; total: number }) : null;
  seen.push(`search: ${search.status} ${found === null ? '' : `${found.total} ${found.objects.map((hit) => `${hit.package.name}@${hit.package.version}`).sort().join(' ')}`}`);
  return seen;
}

test('14.8 one random sequence of writes on files and on PostgreSQL: the same statuses, packuments, tarballs, search and dashboard list after every step; each dashboard list (the index) agrees with its packuments (fast-check)', { timeout: 300_000 }, async (t) => {
  const pg = postgres();
  if (!pg.ok) return t.skip(pg.reason);
  const url = await pg.cluster.createDatabase('pg_parity');
  const [files, database] = await Promise.all([startRegistry(), startRegistry({ env: { REGISTRY_DATABASE_URL: url } })]);
  running.push(files, database);
  assert.match(database.logs(), /storage ready: PostgreSQL/);
  const sides: Side[] = [
    { registry: files, token: await addUser(files, 'alice', 'correct-horse-battery') },
    { registry: database, token: await addUser(database, 'alice', 'correct-horse-battery') },
  ];
  let steps = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 12 }), async (sequence) => {
      // the sides share nothing but the sequence: each run goes on from the state the last one left,
      // on both sides alike (a shrunk counterexample too)
      for (const action of sequence) {
        const [onFiles, onDatabase] = [await apply(sides[0], action), await apply(sides[1], action)];
        steps++;
        assert.equal(onDatabase, onFiles, `${JSON.stringify(action)}: files answered ${onFiles}, PostgreSQL ${onDatabase}`);
        const [readFiles, readDatabase] = [await observe(sides[0]), await observe(sides[1])];
        assert.deepEqual(readDatabase, readFiles, `after ${JSON.stringify(action)}`);
      }
    }),
    { numRuns: 12 },
  );
  assert.ok(steps >= 12, `${steps} steps`);
});

test('14.9 two nodes on one database, the fast path on one and off on the other: random requests answered alike (fast-check, the fast-path property of 17.10)', { timeout: 300_000 }, async (t) => {
  const pg = postgres();
  if (!pg.ok) return t.skip(pg.reason);
  const url = await pg.cluster.createDatabase('pg_fast_path');
  const on = await startRegistry({ env: { REGISTRY_DATABASE_URL: url } });
  running.push(on);
  const off = await startRegistry({ env: { REGISTRY_DATABASE_URL: url }, editConfig: withFastPathOff });
  running.push(off);
  // the first user is the admin; a cluster's users and signing keys are shared (docs/cluster.md)
  const alice = await addUser(on, 'alice', 'correct-horse-battery');
  const bob = await addUser(on, 'bob', 'correct-horse-battery');
  await publishEach(on.url, alice, [
    ['@mycompany/pg-prop', { description: 'fast path '.repeat(400) }],
    ['pg-small', {}],
  ]);
  const named: Record<string, string> = { alice: `Bearer ${alice}`, bob: `Bearer ${bob}`, 'alice basic': basic('alice', 'correct-horse-battery') };
  const paths = ['/@mycompany%2fpg-prop', '/@mycompany/pg-prop', '/pg-small', '/@mycompany/pg-prop/-/pg-prop-1.0.0.tgz', '/pg-small/-/pg-small-1.0.0.tgz', '/pg-small/-/pg-small-9.9.9.tgz', '/pg-missing', '/pg-small/1.0.0', '/-/whoami'];
  const hits = await answersAlike({ on, off, authorization: (_side, credential) => named[credential] ?? credential }, paths, 150);
  assert.ok(hits >= 10, `only ${hits} of the answers came from the fast path's cache`);
});
