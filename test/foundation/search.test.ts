/**
 * Issue 19.2: `npm search` against our registry prints what a user expects — name, version,
 * description, date, publisher — and never lists a package the user may not `access`.
 * Real registry (harness), real npm 11; the pure parser and scorer also get fast-check properties.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import {
  MAX_FROM,
  MAX_SIZE,
  parseSearchQuery,
  scoreEntry,
  searchEntryOf,
} from '../../plugins/verdaccio-registry-storage/http/search';
import { addUser, createClientDir, startRegistry, writePackage, type RunningRegistry } from '../harness/registry';

interface SearchBody {
  objects: {
    package: {
      name: string;
      version: string;
      description: string;
      date: string;
      keywords: string[];
      links: Record<string, string>;
      publisher?: { username: string };
      maintainers: { username: string }[];
    };
    score: { final: number };
    searchScore: number;
  }[];
  total: number;
  time: string;
}

describe('19.2 npm search', () => {
  let registry: RunningRegistry;
  let aliceToken: string;
  let bobToken: string;
  /** the day the registry recorded for the publishes (not the test's clock: a run may cross midnight) */
  let today = '';

  before(async () => {
    registry = await startRegistry({
      editConfig: (config) => {
        const packages = config.packages as Record<string, unknown>;
        // only alice may read @secret/*; everything else as in config.yaml
        config.packages = { '@secret/*': { access: 'alice', publish: 'alice', unpublish: 'alice' }, ...packages };
      },
    });
    aliceToken = await addUser(registry, 'alice', 'alice-password-1');
    bobToken = await addUser(registry, 'bob', 'bob-password-1');
    const alice = createClientDir(registry, { token: aliceToken });
    // 11.9 stamps _npmUser from the authenticated user; these package.json files name that same
    // user, so the publisher is alice whether the stamp comes from the body or from the token.
    const alsoAlice = { _npmUser: { name: 'alice', email: 'alice@example.com' }, maintainers: [{ name: 'alice', email: 'alice@example.com' }] };
    const specs = [
      { name: '@mycompany/findable-widget', version: '1.2.3', extra: { description: 'Renders a findable widget', keywords: ['widget', 'ui'], homepage: 'https://example.com/widget', ...alsoAlice } },
      { name: '@mycompany/other-thing', version: '0.1.0', extra: { description: 'Nothing to see', keywords: ['misc'], ...alsoAlice } },
      { name: 'findable-plain', version: '2.0.0', extra: { description: 'An unscoped findable package', ...alsoAlice } },
      { name: '@secret/findable-hidden', version: '3.0.0', extra: { description: 'Only alice may read this findable one', ...alsoAlice } },
    ];
    for (const spec of specs) {
      const published = await alice.npm(['publish'], { cwd: writePackage(alice.dir, spec) });
      assert.equal(published.code, 0, `${spec.name}: ${published.stderr}`);
    }
    const packument = (await (await fetch(`${registry.url}/@mycompany%2ffindable-widget`)).json()) as { time: Record<string, string> };
    today = packument.time['1.2.3'].slice(0, 10);
  });
  after(async () => {
    await registry?.stop();
  });

  test('19.2 search prints "Version undefined published prehistoric by ???": npm 11 now shows name, version, description, date and publisher', async () => {
    const alice = createClientDir(registry, { token: aliceToken });
    const found = await alice.npm(['search', 'widget', '--color=false']);
    assert.equal(found.code, 0, found.stderr);
    assert.match(found.stdout, /@mycompany\/findable-widget/);
    assert.match(found.stdout, /Renders a findable widget/);
    assert.match(found.stdout, new RegExp(`Version 1\\.2\\.3 published ${today} by alice`));
    assert.match(found.stdout, /Maintainers: alice/);
    assert.doesNotMatch(found.stdout, /undefined|prehistoric|\?\?\?/);
    assert.doesNotMatch(found.stdout, /other-thing/);

    const json = await alice.npm(['search', 'findable', '--json']);
    assert.equal(json.code, 0, json.stderr);
    const rows = JSON.parse(json.stdout) as { name: string; version: string; date: string; publisher: { username: string } }[];
    assert.deepEqual(rows.map((row) => row.name).sort(), ['@mycompany/findable-widget', '@secret/findable-hidden', 'findable-plain']);
    for (const row of rows) {
      assert.match(row.version, /^\d+\.\d+\.\d+$/);
      assert.equal(row.date.slice(0, 10), today);
      assert.equal(row.publisher.username, 'alice');
    }
  });

  test('19.2 search honours access rules: a package the user may not access is not listed (anonymous, another user)', async () => {
    const anonymous = createClientDir(registry);
    const seenByAnonymous = await anonymous.npm(['search', 'findable', '--json']);
    assert.equal(seenByAnonymous.code, 0, seenByAnonymous.stderr);
    const anonymousNames = (JSON.parse(seenByAnonymous.stdout) as { name: string }[]).map((row) => row.name).sort();
    assert.deepEqual(anonymousNames, ['@mycompany/findable-widget', 'findable-plain']);

    const asBob = await fetch(`${registry.url}/-/v1/search?text=findable`, { headers: { authorization: `Bearer ${bobToken}` } });
    const bobBody = (await asBob.json()) as SearchBody;
    assert.equal(bobBody.total, 2, 'total counts only what bob may access');
    assert.ok(!bobBody.objects.some((object) => object.package.name.startsWith('@secret/')));
    const asAlice = (await (await fetch(`${registry.url}/-/v1/search?text=findable`, { headers: { authorization: `Bearer ${aliceToken}` } })).json()) as SearchBody;
    assert.equal(asAlice.total, 3);
  });

  test('19.2 the HTTP answer has npm\'s result shape; paging keeps total; bad parameters are a 400 JSON error', async () => {
    const response = await fetch(`${registry.url}/-/v1/search?text=findable-widget&size=20&from=0&quality=0.65&popularity=0.98&maintenance=0.5`);
    assert.equal(response.status, 200);
    const body = (await response.json()) as SearchBody;
    assert.equal(body.total, 1);
    assert.ok(!Number.isNaN(Date.parse(body.time)));
    const [hit] = body.objects;
    assert.equal(hit.package.name, '@mycompany/findable-widget');
    assert.equal(hit.package.version, '1.2.3');
    assert.equal(hit.package.description, 'Renders a findable widget');
    assert.equal(hit.package.date.slice(0, 10), today);
    assert.deepEqual(hit.package.keywords, ['widget', 'ui']);
    assert.equal(hit.package.links.homepage, 'https://example.com/widget');
    assert.equal(hit.package.publisher?.username, 'alice');
    assert.deepEqual(hit.package.maintainers.map((m) => m.username), ['alice']);
    assert.equal(typeof hit.score.final, 'number');
    assert.equal(typeof hit.searchScore, 'number');

    const page = (await (await fetch(`${registry.url}/-/v1/search?text=findable&size=1&from=1`)).json()) as SearchBody;
    assert.equal(page.total, 2);
    assert.equal(page.objects.length, 1);

    for (const bad of ['size=0', 'size=abc', `size=${MAX_SIZE + 1}`, 'from=-1', `from=${MAX_FROM + 1}`, 'text=a&text=b']) {
      const refused = await fetch(`${registry.url}/-/v1/search?${bad}`);
      assert.equal(refused.status, 400, bad);
      const error = (await refused.json()) as { error: string };
      assert.match(error.error, /^search: /, bad);
    }
  });

  test('19.2 300 random query strings: every answer is a 200 result or a 400 JSON error, never a 5xx', async () => {
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 200 }), async (raw) => {
        const response = await fetch(`${registry.url}/-/v1/search?${raw.replace(/#/g, '%23')}`);
        statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
        const body = (await response.json()) as { objects?: unknown[]; error?: string };
        if (response.status === 200) assert.ok(Array.isArray(body.objects));
        else {
          assert.equal(response.status, 400, raw);
          assert.equal(typeof body.error, 'string');
        }
      }),
      { numRuns: 300 },
    );
    assert.ok((statuses.get(200) ?? 0) > 0);
  });
});

describe('19.2 search query and matching (properties)', () => {
  test('parseSearchQuery never throws; what it accepts is within bounds', () => {
    const value = fc.oneof(fc.string(), fc.array(fc.string(), { maxLength: 3 }), fc.constant(undefined), fc.dictionary(fc.string(), fc.string()));
    fc.assert(
      fc.property(fc.record({ text: value, size: value, from: value }, { requiredKeys: [] }), (query) => {
        const parsed = parseSearchQuery(query);
        if (!parsed.ok) {
          assert.equal(typeof parsed.error, 'string');
          return;
        }
        assert.ok(Number.isInteger(parsed.query.size) && parsed.query.size >= 1 && parsed.query.size <= MAX_SIZE);
        assert.ok(Number.isInteger(parsed.query.from) && parsed.query.from >= 0 && parsed.query.from <= MAX_FROM);
        for (const term of parsed.query.terms) assert.equal(term, term.toLowerCase());
      }),
      { numRuns: 2000 },
    );
  });

  test('a package always matches its own name, best score, and never a term it does not contain', () => {
    const word = fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/);
    fc.assert(
      fc.property(word, word, fc.option(word, { nil: undefined }), (name, description, scope) => {
        const full = scope === undefined ? name : `@${scope}/${name}`;
        const entry = searchEntryOf({ name: full, 'dist-tags': { latest: '1.0.0' }, versions: { '1.0.0': { description } }, time: { '1.0.0': new Date(0).toISOString() } });
        assert.ok(entry);
        const own = parseSearchQuery({ text: name });
        assert.ok(own.ok);
        assert.equal(scoreEntry(entry, own.query), 1);
        const absent = `${name}${description}zz9`;
        const other = parseSearchQuery({ text: absent });
        assert.ok(other.ok);
        if (!full.includes(absent) && !description.includes(absent)) assert.equal(scoreEntry(entry, other.query), null);
      }),
      { numRuns: 500 },
    );
  });

  test('searchEntryOf takes the latest version, its publish date and publisher; a packument without versions is no entry', () => {
    const entry = searchEntryOf({
      name: 'x',
      'dist-tags': { latest: '2.0.0' },
      versions: { '1.0.0': {}, '2.0.0': { description: 'two', _npmUser: { name: 'carol', email: 'c@example.com' }, repository: { url: 'git+https://example.com/x.git' } } },
      time: { '1.0.0': '2020-01-01T00:00:00.000Z', '2.0.0': '2021-02-03T04:05:06.000Z' },
    });
    assert.deepEqual(
      { version: entry?.version, date: entry?.date, publisher: entry?.publisher, repository: entry?.links.repository },
      { version: '2.0.0', date: '2021-02-03T04:05:06.000Z', publisher: { username: 'carol', email: 'c@example.com' }, repository: 'https://example.com/x' },
    );
    assert.equal(searchEntryOf({ name: 'y', versions: {} }), null);
    assert.equal(searchEntryOf('not a packument'), null);
  });
});
