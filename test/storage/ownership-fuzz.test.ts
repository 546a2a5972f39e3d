/**
 * Issue 11 acceptance, storage side: ≥ 2,000 generated publish / dist-tag / owner / change /
 * unpublish requests (fast-check) against a real registry over raw keep-alive HTTP, as the
 * owner, another user, an admin and anonymous. Random versions (build metadata, prerelease, garbage),
 * names and their percent-encodings, attachment names, dist-tag bodies, maintainer lists.
 * Never a 5xx, never a dropped connection or process; a non-owner's mutation never succeeds
 * on a package that has maintainers; afterwards the store verifies (every tarball matches its
 * packument's integrity, every dist-tag names a version, the index describes the storage).
 */
import assert from 'node:assert/strict';
import { Agent } from 'node:http';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { verifyStorage } from '../../plugins/verdaccio-registry-storage/verify';
import { jsonRequestBody, rawRequest } from '../harness/raw-http';
import { addUser, startRegistry, type RunningRegistry } from '../harness/registry';
import { makeTarball, publishRaw, sha1Hex, sha512Base64, useOurStorage } from './lib/packages';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
type ActorName = 'owner' | 'other' | 'admin' | 'anonymous';

const PASSWORD = 'correct-horse-battery';
const USERS: Record<Exclude<ActorName, 'anonymous'>, string> = { owner: 'fz-alice', other: 'fz-bob', admin: 'fz-root' };
const NAMES = ['@fz/owned', 'fz-plain', '@fz/bobs', 'fz-new', '@fz/new-scoped'];
const RUNS = { publish: 800, tags: 600, owners: 350, changes: 350 }; // 2,100 requests

interface FuzzRequest {
  actor: ActorName;
  method: string;
  path: string;
  body: unknown;
  /** the package the request addresses ('' when the path does not name one of ours) */
  pkg: string;
  /** a star changes only the caller's own entry: anyone allowed to publish may */
  star?: boolean;
}

function isOwnerBody(body: unknown): boolean {
  return typeof body === 'object' && body !== null && 'maintainers' in body;
}

function bare(name: string): string {
  return name.slice(name.lastIndexOf('/') + 1);
}

/** Every spelling Verdaccio's router accepts for a package segment (and a few it does not). */
function spelling(name: string): fc.Arbitrary<string> {
  if (!name.startsWith('@')) return fc.constantFrom(name, name, encodeURIComponent(name), name.replace(/-/g, '%2D'), name.toUpperCase());
  const [scope, rest] = name.split('/');
  return fc.constantFrom(encodeURIComponent(name), encodeURIComponent(name), `${scope}/${rest}`, `${scope}%2F${rest}`, `%40${scope.slice(1)}%2f${rest}`, `%40${scope.slice(1)}/${rest}`, `${scope}%2f${rest}`.replace('%2f', '%2F%2F'));
}

const actor: fc.Arbitrary<ActorName> = fc.constantFrom('owner', 'owner', 'other', 'other', 'anonymous', 'admin');
const name = fc.constantFrom(...NAMES);
const version = fc.oneof(
  { arbitrary: fc.tuple(fc.nat(3), fc.nat(20), fc.nat(50)).map(([a, b, c]) => `${a}.${b}.${c}`), weight: 5 },
  fc.tuple(fc.nat(3), fc.nat(20), fc.constantFrom('alpha', 'beta.1', 'rc.0', '0', 'x-y')).map(([a, b, pre]) => `${a}.${b}.0-${pre}`),
  fc.tuple(fc.nat(3), fc.nat(20), fc.constantFrom('b', 'build.7', 'sha.abc', '001')).map(([a, b, build]) => `${a}.${b}.1+${build}`),
  fc.constantFrom('v1.2.3', '=1.2.3', '01.2.3', '1.2', '1.2.3-01', ' 1.2.3', '__proto__', '../1.0.0', '1.0.0/..', '1.0.0%2f', 'latest', '', '9'.repeat(300) + '.0.0'),
  fc.string({ maxLength: 12 }),
);
const tag = fc.oneof({ arbitrary: fc.constantFrom('latest', 'beta', 'next', '1.0.0', 'v1', 'a%2Fb', '__proto__', '-rev', '%E0%A4%A', 'LATEST'), weight: 3 }, fc.string({ minLength: 1, maxLength: 8 }).map(encodeURIComponent));

function publishRequest(registryUrl: string): fc.Arbitrary<FuzzRequest> {
  return fc
    .record({ actor, pkg: name, version, attachment: fc.oneof(fc.constantFrom(0, 0, 0, 1, 1), fc.nat(5)), tags: fc.oneof(fc.constant(0), fc.nat(6)), integrity: fc.nat(9), deprecated: fc.boolean(), garbage: fc.jsonValue({ maxDepth: 2 }) })
    .chain((r) => spelling(r.pkg).map((path) => ({ ...r, path })))
    .map((r) => {
      const tarball = makeTarball(r.pkg, typeof r.version === 'string' ? r.version : '0.0.0');
      const file = `${bare(r.pkg)}-${r.version}.tgz`;
      const attachment = [file, `${r.pkg}-${r.version}.tgz`, encodeURIComponent(file), `../${file}`, `${bare(r.pkg)}-1.0.0.tgz`, `a/${file}`][r.attachment];
      const distTags = [{ latest: r.version }, { beta: r.version }, { latest: '1.0.0' }, {}, r.garbage, { latest: r.version, next: r.version }, { 'a b': r.version }][r.tags];
      const body = {
        _id: r.pkg,
        name: r.pkg,
        'dist-tags': distTags,
        versions: {
          [r.version]: {
            name: r.pkg,
            version: r.version,
            _id: `${r.pkg}@${r.version}`,
            _npmUser: { name: 'fz-alice' }, // always forged: the registry must ignore it
            ...(r.deprecated ? { deprecated: 'fuzzed' } : {}),
            dist: {
              integrity: r.integrity === 0 ? 'sha512-AAAA' : `sha512-${sha512Base64(tarball)}`,
              shasum: r.integrity === 1 ? '0'.repeat(40) : sha1Hex(tarball),
              tarball: `${registryUrl}/${r.pkg}/-/${file}`,
            },
          },
        },
        _attachments: { [attachment]: { content_type: 'application/octet-stream', data: tarball.toString('base64'), length: tarball.length } },
      };
      return { actor: r.actor, method: 'PUT', path: `/${r.path}`, body, pkg: r.pkg };
    });
}

function tagRequest(): fc.Arbitrary<FuzzRequest> {
  const value = fc.oneof({ arbitrary: fc.constantFrom('1.0.0', '1.1.0', '9.9.9', '1.0.1+b', 'v1.0.0'), weight: 4 }, version, fc.jsonValue({ maxDepth: 2 }));
  return fc
    .record({ actor, pkg: name, tag, value, form: fc.nat(4), object: fc.dictionary(fc.constantFrom('latest', 'beta', 'x y', '__proto__'), fc.oneof(fc.constant(null), value), { maxKeys: 3 }) })
    .chain((r) => spelling(r.pkg).map((path) => ({ ...r, path })))
    .map((r) => {
      switch (r.form) {
        case 0:
          return { actor: r.actor, method: 'PUT', path: `/-/package/${r.path}/dist-tags/${r.tag}`, body: r.value, pkg: r.pkg };
        case 1:
          return { actor: r.actor, method: 'POST', path: `/-/package/${r.path}/dist-tags/${r.tag}`, body: r.value, pkg: r.pkg };
        case 2:
          return { actor: r.actor, method: 'DELETE', path: `/-/package/${r.path}/dist-tags/${r.tag}`, body: undefined, pkg: r.pkg };
        case 3:
          return { actor: r.actor, method: 'POST', path: `/-/package/${r.path}/dist-tags`, body: r.object, pkg: r.pkg };
        default:
          return { actor: r.actor, method: 'PUT', path: `/${r.path}/${r.tag}`, body: r.value, pkg: r.pkg };
      }
    });
}

function ownerRequest(): fc.Arbitrary<FuzzRequest> {
  const maintainer = fc.oneof(
    fc.record({ name: fc.constantFrom('fz-alice', 'fz-alice', 'fz-bob', 'fz-root', 'Zed', '', '.dot', 'x'.repeat(300), '__proto__'), email: fc.option(fc.oneof(fc.emailAddress(), fc.jsonValue({ maxDepth: 1 })), { nil: undefined }) }),
    fc.jsonValue({ maxDepth: 1 }),
  );
  return fc
    .record({ actor, pkg: name, maintainers: fc.oneof(
        { arbitrary: fc.constantFrom([{ name: 'fz-alice' }], [{ name: 'fz-alice' }, { name: 'fz-bob', email: 'bob@example.com' }], [{ name: 'fz-bob' }, { name: 'fz-alice' }]), weight: 3 },
        fc.array(maintainer, { maxLength: 4 }),
        fc.jsonValue({ maxDepth: 2 }),
      ), rev: fc.constantFrom('1-abc', '99-ffff', '%E0%A4%A', 'x'), withName: fc.boolean(), star: fc.nat(5) })
    .chain((r) => spelling(r.pkg).map((path) => ({ ...r, path })))
    .map((r) => {
      if (r.star === 0) return { actor: r.actor, method: 'PUT', path: `/${r.path}/-rev/${r.rev}`, body: { _id: r.pkg, _rev: r.rev, users: { [USERS.other]: true } }, pkg: r.pkg, star: true };
      const body: Json = { _id: r.pkg, _rev: r.rev, maintainers: r.maintainers };
      if (r.withName) body.name = r.pkg;
      return { actor: r.actor, method: 'PUT', path: `/${r.path}/-rev/${r.rev}`, body, pkg: r.pkg };
    });
}

/** Unpublish / deprecate / re-tag documents (as npm builds them, then bent) and DELETEs. */
function changeRequest(): fc.Arbitrary<FuzzRequest> {
  return fc
    .record({ actor, pkg: name, keep: fc.oneof(fc.constant<string[]>(['1.0.0', '1.1.0']), fc.constant<string[]>(['1.0.0']), fc.subarray(['1.0.0', '1.1.0', '2.0.0', '9.9.9'])), latest: fc.constantFrom('1.0.0', '1.0.0', '1.1.0', '9.9.9', 'nope'), deprecated: fc.option(fc.oneof(fc.string({ maxLength: 10 }), fc.jsonValue({ maxDepth: 1 })), { nil: undefined }), form: fc.nat(9) })
    .chain((r) => spelling(r.pkg).map((path) => ({ ...r, path })))
    .map((r) => {
      if (r.form === 0) return { actor: r.actor, method: 'DELETE', path: `/${r.path}/-rev/1-abc`, body: undefined, pkg: r.pkg };
      if (r.form === 1) return { actor: r.actor, method: 'DELETE', path: `/${r.path}/-/${bare(r.pkg)}-${r.keep[0] ?? '1.0.0'}.tgz/-rev/1-abc`, body: undefined, pkg: r.pkg };
      const versions: Json = {};
      for (const v of r.keep) versions[v] = { name: r.pkg, version: v, ...(r.deprecated === undefined ? {} : { deprecated: r.deprecated }) };
      const body = { _id: r.pkg, name: r.pkg, _rev: '1-abc', 'dist-tags': { latest: r.latest }, versions };
      return { actor: r.actor, method: 'PUT', path: r.form === 2 ? `/${r.path}` : `/${r.path}/-rev/1-abc`, body, pkg: r.pkg };
    });
}

describe('2,000+ generated publish / dist-tag / owner requests against a real registry', () => {
  let registry: RunningRegistry;
  const tokens: Partial<Record<ActorName, string>> = {};
  const agent = new Agent({ keepAlive: true, maxSockets: 2 });
  const statuses = new Map<number, number>();
  const violations: string[] = [];
  const accepted = new Map<string, number>(); // 2xx per route shape: the generators reach the success paths too
  let sent = 0;

  before(async () => {
    registry = await startRegistry({ editConfig: useOurStorage });
    tokens.admin = await addUser(registry, USERS.admin, PASSWORD); // the first user ever created is the admin
    tokens.owner = await addUser(registry, USERS.owner, PASSWORD);
    tokens.other = await addUser(registry, USERS.other, PASSWORD);
    for (const [pkg, who] of [['@fz/owned', 'owner'], ['fz-plain', 'owner'], ['@fz/bobs', 'other']] as const) {
      for (const v of ['1.0.0', '1.1.0']) {
        const seeded = await publishRaw(registry.url, tokens[who]!, pkg, v);
        assert.equal(seeded.status, 201, seeded.text);
      }
    }
  });
  after(async () => {
    agent.destroy();
    console.log(`${sent} requests; statuses: ${JSON.stringify(Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0])))}; 2xx by route: ${JSON.stringify(Object.fromEntries(accepted))}`);
    await registry?.stop();
  });

  async function send(method: string, path: string, body: unknown, who: ActorName): Promise<{ status: number; text: string }> {
    const token = tokens[who];
    const json = jsonRequestBody(body);
    const { status, text } = await rawRequest(registry, { method, path, agent, body: json.body, headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...json.headers } });
    return { status, text };
  }

  /** The owners of pkg right now (null: no such package). */
  async function ownersOf(pkg: string): Promise<string[] | null> {
    const answer = await send('GET', `/${encodeURIComponent(pkg)}`, undefined, 'owner');
    if (answer.status === 404) return null;
    assert.equal(answer.status, 200, answer.text);
    return ((JSON.parse(answer.text) as Json).maintainers ?? []).map((m: Json) => m.name);
  }

  async function check(item: FuzzRequest): Promise<void> {
    const user = item.actor === 'anonymous' ? null : USERS[item.actor];
    const owners = item.star ? undefined : await ownersOf(item.pkg);
    let answer: { status: number; text: string };
    try {
      answer = await send(item.method, item.path, item.body, item.actor);
    } catch (error) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.fail(`${item.method} ${item.path}: connection dropped (${String(error)}); exit code ${registry.process.exitCode}\n${registry.logs().slice(-2000)}`);
    }
    sent += 1;
    statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
    if (answer.status < 300) {
      const shape = `${item.method} ${item.path.includes('/dist-tags') ? 'dist-tags' : item.path.includes('/-rev/') ? (item.star ? 'star' : isOwnerBody(item.body) ? 'owners' : '-rev') : 'package'}`;
      accepted.set(shape, (accepted.get(shape) ?? 0) + 1);
    }
    const label = `${item.actor} ${item.method} ${item.path} ${JSON.stringify(item.body)?.slice(0, 300)} → ${answer.status} ${answer.text.slice(0, 300)}`;
    assert.ok(answer.status < 500, label);
    if (answer.status >= 400) {
      let error: unknown;
      try {
        error = (JSON.parse(answer.text) as Json).error;
      } catch {
        error = undefined;
      }
      assert.equal(typeof error, 'string', `no JSON error: ${label}`);
    }
    // ownership: a mutation by a non-owner of a package with maintainers never succeeds
    if (owners && owners.length > 0 && answer.status < 300 && item.actor !== 'admin' && !(user !== null && owners.includes(user))) {
      violations.push(`${label} (owners: ${owners.join(', ')})`);
    }
  }

  test('publish bodies: random versions, names, encodings, attachments, dist-tags, actors', async () => {
    await fc.assert(fc.asyncProperty(publishRequest(registry.url), check), { numRuns: RUNS.publish });
  });

  test('dist-tag writes and removals in every route form', async () => {
    await fc.assert(fc.asyncProperty(tagRequest(), check), { numRuns: RUNS.tags });
  });

  test('owner changes (npm owner add|rm bodies, bent) and stars', async () => {
    await fc.assert(fc.asyncProperty(ownerRequest(), check), { numRuns: RUNS.owners });
  });

  test('unpublish / deprecate / re-tag documents and DELETEs', async () => {
    await fc.assert(fc.asyncProperty(changeRequest(), check), { numRuns: RUNS.changes });
  });

  test('afterwards: ≥ 2,000 requests, no ownership violation, the process lives and the store verifies', async () => {
    assert.ok(sent >= 2000, `only ${sent} requests were sent`);
    assert.deepEqual(violations, []);
    assert.equal((await fetch(`${registry.url}/-/ping`)).status, 200);
    assert.equal(registry.process.exitCode, null);
    assert.deepEqual(verifyStorage(registry.storageDir, registry.lockbPath), []);
    // a restart adopts the folder without a rebuild: the live index already described it
    registry = await registry.restart();
    assert.doesNotMatch(registry.logs(), /rebuilt the index/);
    assert.deepEqual(verifyStorage(registry.storageDir, registry.lockbPath), []);
  });
});
