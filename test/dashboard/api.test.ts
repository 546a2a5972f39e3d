/**
 * The dashboard HTTP API against a real registry process: shapes of docs/http-api.md, who may write,
 * what a write does to registry.lockb and .env.local, and that every malformed request is a
 * 4xx JSON error that leaves the file as it was.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { gunzipSync, brotliDecompressSync } from 'node:zlib';
import { addUser, createClientDir, writePackage, type RunningRegistry } from '../harness/registry';
import { ADMIN, READER, configHexOnDisk, createUsers, lockbBytes, postConfig, request, startDashboardRegistry } from './helpers';

const SPEC_ENV =
  'BUN_CONFIG_VERSION=1\nBUN_REGISTRY_URL=http://localhost:4873\nBUN_FEATURE_PRIVATE_REGISTRY=1\nBUN_FEATURE_PREMIUM_TYPES=1\n' +
  'BUN_FEATURE_DEBUG=0\nBUN_FEATURE_OFFLINE=0\nBUN_TERMINAL_MODE=raw\nBUN_TERMINAL_ROWS=24\nBUN_TERMINAL_COLS=80\n';

describe('dashboard API', () => {
  let registry: RunningRegistry;
  let admin: string;
  let reader: string;

  before(async () => {
    registry = await startDashboardRegistry();
    ({ admin, reader } = await createUsers(registry));
  });
  after(async () => {
    await registry?.stop();
  });

  it('GET /api/config returns the docs/http-api.md document for the file as it is', async () => {
    const answer = await request(registry, '/_dashboard/api/config');
    assert.equal(answer.status, 200);
    assert.match(answer.headers.get('content-type') ?? '', /^application\/json/);
    const body = answer.body as Record<string, unknown>;
    assert.equal(body.hex, '010a96b6ce03000000021850');
    assert.equal(body.check, '36');
    assert.equal(`${body.hex}${body.check}`, configHexOnDisk(registry));
    assert.deepEqual(body.fields, { version: 1, registryHash: '0xceb6960a', featureFlags: 3, terminalMode: 'raw', rows: 24, cols: 80 });
    assert.deepEqual(body.flags, { PREMIUM_TYPES: true, PRIVATE_REGISTRY: true, DEBUG: false, OFFLINE: false });
    assert.deepEqual(body.issuer, { url: 'http://localhost:4873/_auth', alg: 'EdDSA', kind: 'private' });
    assert.equal(body.env, SPEC_ENV);
    assert.equal(body.registryUrl, 'http://localhost:4873');
    assert.equal(body.urlMatchesHash, true);
  });

  it('GET /api/env is the nine BUN_* lines as text', async () => {
    const answer = await request(registry, '/_dashboard/api/env');
    assert.equal(answer.status, 200);
    assert.match(answer.headers.get('content-type') ?? '', /^text\/plain/);
    assert.equal(answer.text, SPEC_ENV);
  });

  it('GET /api/session tells who the token belongs to and whether they are admin', async () => {
    assert.deepEqual((await request(registry, '/_dashboard/api/session')).body, { user: null, admin: false, groups: [], accessGroups: [] });
    const asAdmin = (await request(registry, '/_dashboard/api/session', { token: admin })).body as Record<string, unknown>;
    assert.equal(asAdmin.user, 'alice');
    assert.equal(asAdmin.admin, true);
    const asReader = (await request(registry, '/_dashboard/api/session', { token: reader })).body as Record<string, unknown>;
    assert.equal(asReader.user, 'bob');
    assert.equal(asReader.admin, false);
  });

  it('POST needs a token (401) of an admin (403); neither changes the file', async () => {
    const before = lockbBytes(registry);
    const anonymous = await postConfig(registry, { op: 'toggleFeature', flag: 'DEBUG' });
    assert.equal(anonymous.status, 401);
    assert.match((anonymous.body as { error: string }).error, /authentication required/);
    const forged = await postConfig(registry, { op: 'toggleFeature', flag: 'DEBUG' }, 'not-a-real-token');
    assert.equal(forged.status, 401);
    const nonAdmin = await postConfig(registry, { op: 'toggleFeature', flag: 'DEBUG' }, reader);
    assert.equal(nonAdmin.status, 403);
    assert.match((nonAdmin.body as { error: string }).error, /bob is not a registry admin/);
    assert.deepEqual(lockbBytes(registry), before);
  });

  it('an admin toggles a flag, sets a byte and changes the URL; the file follows', async () => {
    const toggled = await postConfig(registry, { op: 'toggleFeature', flag: 'DEBUG' }, admin);
    assert.equal(toggled.status, 200, toggled.text);
    const toggledBody = toggled.body as { hex: string; check: string; flags: { DEBUG: boolean } };
    assert.equal(toggledBody.flags.DEBUG, true);
    assert.equal(configHexOnDisk(registry), `${toggledBody.hex}${toggledBody.check}`);
    assert.equal(configHexOnDisk(registry).slice(10, 18), '07000000');

    // 12.6 OFFLINE is a flag like the others: on and off again, live, from the dashboard API.
    const offline = await postConfig(registry, { op: 'toggleFeature', flag: 'OFFLINE' }, admin);
    assert.equal(offline.status, 200, offline.text);
    assert.equal((offline.body as { flags: { OFFLINE: boolean } }).flags.OFFLINE, true);
    assert.equal(lockbBytes(registry)[9], 0x0f);
    const online = await postConfig(registry, { op: 'toggleFeature', flag: 'OFFLINE' }, admin);
    assert.equal((online.body as { flags: { OFFLINE: boolean } }).flags.OFFLINE, false);
    assert.equal(lockbBytes(registry)[9], 0x07);

    const mode = await postConfig(registry, { op: 'setByte', offset: 13, value: 1 }, admin);
    assert.equal(mode.status, 200, mode.text);
    assert.equal((mode.body as { fields: { terminalMode: string } }).fields.terminalMode, 'cooked');
    assert.equal(lockbBytes(registry)[13], 1);

    const url = await postConfig(registry, { op: 'setRegistryUrl', url: 'https://registry.mycompany.com/' }, admin);
    assert.equal(url.status, 200, url.text);
    const urlBody = url.body as { registryUrl: string; fields: { registryHash: string }; urlMatchesHash: boolean; issuer: { url: string } };
    assert.equal(urlBody.registryUrl, 'https://registry.mycompany.com');
    assert.equal(urlBody.fields.registryHash, '0x4469efac');
    assert.equal(urlBody.urlMatchesHash, true);
    assert.equal(urlBody.issuer.url, 'https://registry.mycompany.com/_auth');
    assert.equal(lockbBytes(registry).readUInt32LE(5), 0x4469efac);
    assert.match(readFileSync(registry.envFile, 'utf8'), /^BUN_REGISTRY_URL=https:\/\/registry\.mycompany\.com$/m);

    // The new issuer/audience invalidates every token (docs/identity.md): log in again to undo, and again after.
    admin = await addUser(registry, ADMIN.name, ADMIN.password);
    const back = await postConfig(registry, { op: 'setRegistryUrl', url: 'http://localhost:4873' }, admin);
    assert.equal(back.status, 200, back.text);
    admin = await addUser(registry, ADMIN.name, ADMIN.password);
    for (const operation of [
      { op: 'setByte', offset: 13, value: 2 },
      { op: 'toggleFeature', flag: 'DEBUG' },
    ]) {
      const undone = await postConfig(registry, operation, admin);
      assert.equal(undone.status, 200, undone.text);
    }
    assert.equal(configHexOnDisk(registry), '010a96b6ce0300000002185036');
    reader = await addUser(registry, READER.name, READER.password);
  });

  it('every malformed request is a 4xx JSON error naming the problem, and the file is unchanged', async () => {
    const before = lockbBytes(registry);
    const cases: { body: string; contentType?: string | null; status: number; error: RegExp }[] = [
      { body: '{"op":"setByte","offset":3,"value":1}', status: 400, error: /offset must be an integer 4\.\.15.*got 3/ },
      { body: '{"op":"setByte","offset":16,"value":1}', status: 400, error: /offset .*got 16/ },
      { body: '{"op":"setByte","offset":13,"value":3}', status: 400, error: /terminalMode/ },
      { body: '{"op":"setByte","offset":14,"value":0}', status: 400, error: /rows/ },
      { body: '{"op":"setByte","offset":4,"value":2}', status: 400, error: /version/ },
      { body: '{"op":"setByte","offset":9,"value":16}', status: 400, error: /featureFlags/ },
      { body: '{"op":"setByte","offset":4,"value":256}', status: 400, error: /value must be an integer 0\.\.255.*got 256/ },
      { body: '{"op":"setByte","offset":4,"value":-1}', status: 400, error: /value/ },
      { body: '{"op":"setByte","offset":4.5,"value":1}', status: 400, error: /offset/ },
      { body: '{"op":"setByte","offset":"13","value":1}', status: 400, error: /offset .*got "13"/ },
      { body: '{"op":"setByte","offset":13}', status: 400, error: /value is required/ },
      { body: '{"op":"setByte","offset":13,"value":1,"extra":true}', status: 400, error: /unknown key "extra"/ },
      { body: '{"op":"toggleFeature","flag":"TURBO"}', status: 400, error: /flag must be one of PREMIUM_TYPES, PRIVATE_REGISTRY, DEBUG/ },
      { body: '{"op":"toggleFeature","flags":"DEBUG"}', status: 400, error: /flag|unknown key/ },
      { body: '{"op":"explode"}', status: 400, error: /op must be one of setByte, toggleFeature, setRegistryUrl/ },
      { body: '{}', status: 400, error: /op must be one of/ },
      { body: '[]', status: 400, error: /JSON object|op/ },
      { body: '"toggle DEBUG"', status: 400, error: /JSON object/ },
      { body: 'null', status: 400, error: /JSON object|op/ },
      { body: '42', status: 400, error: /JSON object/ },
      { body: '{"op":"setRegistryUrl","url":"not a url"}', status: 400, error: /url|URL/ },
      { body: '{"op":"setRegistryUrl","url":"ftp://x.example"}', status: 400, error: /url|URL|protocol/ },
      { body: '{"op":"setRegistryUrl","url":""}', status: 400, error: /url must not be empty/ },
      { body: `{"op":"setRegistryUrl","url":"https://${'a'.repeat(3000)}.example"}`, status: 400, error: /url must be at most/ },
      { body: '{"op":"toggleFeature",', status: 400, error: /not valid JSON/ },
      { body: 'op=toggleFeature&flag=DEBUG', status: 400, error: /not valid JSON/ },
      { body: 'op=toggleFeature&flag=DEBUG', contentType: 'application/x-www-form-urlencoded', status: 415, error: /application\/json/ },
      { body: '{"op":"toggleFeature","flag":"DEBUG"}', contentType: 'text/plain', status: 415, error: /application\/json/ },
      { body: '{"op":"toggleFeature","flag":"DEBUG"}', contentType: null, status: 415, error: /application\/json/ },
      { body: JSON.stringify({ op: 'toggleFeature', flag: 'DEBUG', pad: 'x'.repeat(5000) }), status: 413, error: /too large/ },
    ];
    for (const testCase of cases) {
      const answer = await request(registry, '/_dashboard/api/config', {
        method: 'POST',
        token: admin,
        body: testCase.body,
        contentType: testCase.contentType,
      });
      const label = `${testCase.contentType ?? 'application/json'} ${testCase.body.slice(0, 80)}`;
      assert.equal(answer.status, testCase.status, `${label} → ${answer.status} ${answer.text}`);
      assert.match(answer.headers.get('content-type') ?? '', /^application\/json/, label);
      const error = (answer.body as { error?: unknown } | undefined)?.error;
      assert.equal(typeof error, 'string', `${label}: ${answer.text}`);
      assert.match(error as string, testCase.error, label);
    }
    assert.deepEqual(lockbBytes(registry), before);
  });

  it('a body over Verdaccio max_body_size is a JSON 413 too', async () => {
    const before = lockbBytes(registry);
    // 51 MB > max_body_size 50mb: rejected by the app-wide parser before our handler runs
    const huge = `{"op":"toggleFeature","flag":"DEBUG","pad":"${'x'.repeat(51 * 1024 * 1024)}"}`;
    const answer = await request(registry, '/_dashboard/api/config', { method: 'POST', token: admin, body: huge });
    assert.equal(answer.status, 413, answer.text);
    assert.match((answer.body as { error: string }).error, /too large/);
    assert.deepEqual(lockbBytes(registry), before);
  });

  it('unknown routes and methods are JSON 404/405; the socket path without upgrade is 426', async () => {
    const missing = await request(registry, '/_dashboard/api/nope');
    assert.equal(missing.status, 404);
    assert.match((missing.body as { error: string }).error, /no dashboard route/);
    const wrongMethod = await request(registry, '/_dashboard/api/config', { method: 'DELETE', token: admin });
    assert.equal(wrongMethod.status, 405);
    assert.equal(wrongMethod.headers.get('allow'), 'GET, POST');
    const plain = await request(registry, '/_dashboard/terminal');
    assert.equal(plain.status, 426);
  });

  it('GET /_dashboard is served from memory: strong ETag, brotli/gzip by Accept-Encoding, 304, strict CSP', async () => {
    const brotli = await fetch(`${registry.url}/_dashboard`, { headers: { 'accept-encoding': 'gzip, br' } });
    assert.equal(brotli.status, 200);
    // fetch decodes transparently; read the raw encoding from the header
    assert.equal(brotli.headers.get('content-encoding'), 'br');
    const etag = brotli.headers.get('etag') ?? '';
    assert.match(etag, /^"[\w-]+-br"$/);
    assert.match(brotli.headers.get('content-security-policy') ?? '', /default-src 'self'/);
    assert.match(brotli.headers.get('content-security-policy') ?? '', /connect-src 'self' ws:\/\/127\.0\.0\.1:\d+/);
    const html = await brotli.text();
    assert.match(html, /<title>Registry dashboard<\/title>/);
    assert.doesNotMatch(html, /(?:src|href|action)="(?![/#])/, 'every reference of the page is same-origin (root-relative)');

    const notModified = await fetch(`${registry.url}/_dashboard`, { headers: { 'accept-encoding': 'br', 'if-none-match': etag } });
    assert.equal(notModified.status, 304);

    const raw = await rawGet(registry, '/_dashboard', { 'accept-encoding': 'gzip' });
    assert.equal(raw.headers['content-encoding'], 'gzip');
    assert.equal(gunzipSync(raw.body).toString('utf8'), html);
    const rawBr = await rawGet(registry, '/_dashboard', { 'accept-encoding': 'br' });
    assert.equal(brotliDecompressSync(rawBr.body).toString('utf8'), html);
    const identity = await rawGet(registry, '/_dashboard', {});
    assert.equal(identity.headers['content-encoding'], undefined);
    assert.equal(identity.body.toString('utf8'), html);

    const script = /src="(\/_dashboard\/assets\/app\.js\?v=[\w-]+)"/.exec(html)?.[1];
    assert.ok(script, 'page references its script');
    const asset = await fetch(`${registry.url}${script}`);
    assert.equal(asset.status, 200);
    assert.match(asset.headers.get('cache-control') ?? '', /immutable/);
    assert.match(asset.headers.get('content-type') ?? '', /javascript/);
  });

  it('the package list shows what npm published, honouring access rules', async () => {
    const client = createClientDir(registry, { token: admin });
    for (const spec of [
      { name: 'dash-public', version: '1.0.0' },
      { name: 'dash-public', version: '1.1.0' },
      { name: 'secret-thing', version: '0.1.0' },
    ]) {
      const dir = writePackage(client.dir, spec);
      const published = await client.npm(['publish'], { cwd: dir });
      assert.equal(published.code, 0, `${published.stdout}\n${published.stderr}`);
    }
    const tagged = await client.npm(['dist-tag', 'add', 'dash-public@1.0.0', 'stable']);
    assert.equal(tagged.code, 0, tagged.stderr);

    type Listing = { packages: { name: string; versions: string[]; distTags: Record<string, string>; time: string; source: string }[] };
    const anonymous = (await request(registry, '/_dashboard/api/packages')).body as Listing;
    assert.deepEqual(anonymous.packages.map((p) => p.name), ['dash-public']);
    assert.equal(anonymous.packages[0].source, 'local', '12.8: published here, so marked local');
    const pub = anonymous.packages[0];
    assert.deepEqual(pub.versions, ['1.0.0', '1.1.0']);
    assert.deepEqual(pub.distTags, { latest: '1.1.0', stable: '1.0.0' });
    assert.ok(Date.parse(pub.time) > Date.now() - 10 * 60_000, `publish time ${pub.time}`);

    const asReader = (await request(registry, '/_dashboard/api/packages', { token: reader })).body as Listing;
    assert.deepEqual(asReader.packages.map((p) => p.name), ['dash-public', 'secret-thing']);
    const filtered = (await request(registry, '/_dashboard/api/packages?q=SECRET', { token: reader })).body as Listing;
    assert.deepEqual(filtered.packages.map((p) => p.name), ['secret-thing']);
    const badFilter = await request(registry, '/_dashboard/api/packages?q=a&q=b');
    assert.equal(badFilter.status, 400);
  });

  it('12.8 GET /api/upstream: the upstream status (the harness runs with the upstream off: url null)', async () => {
    const answer = await request(registry, '/_dashboard/api/upstream');
    assert.equal(answer.status, 200, answer.text);
    const body = answer.body as { available: boolean; url?: unknown };
    assert.equal(body.available, true, answer.text);
    for (const key of ['url', 'offline', 'lastSuccess', 'lastFailure', 'latencyMs', 'cachedPackages', 'cachedBytes']) assert.ok(key in body, `${key} in ${answer.text}`);
    assert.equal(body.url, null, 'REGISTRY_UPSTREAM_URL=off in the harness');
    const post = await request(registry, '/_dashboard/api/upstream', { method: 'POST', body: '{}' });
    assert.equal(post.status, 405);
  });
});


function rawGet(registry: RunningRegistry, path: string, headers: Record<string, string>): Promise<{ headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${registry.url}${path}`, { headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}
