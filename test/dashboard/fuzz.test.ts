/**
 * Random malformed input against the real server, as an admin (so authorization is not what
 * stops it): every POST /_dashboard/api/config body that is not a valid operation gets a 4xx
 * JSON error, and after all of them registry.lockb is byte-identical. The same for random
 * WebSocket messages on an anonymous socket: each is answered, none closes the socket.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { defaultFields, FEATURE_FLAGS, normalizeRegistryUrl, withByte } from '../../plugins/registry-core/index';
import type { RunningRegistry } from '../harness/registry';
import { SocketClient, createUsers, lockbBytes, socketUrl, startDashboardRegistry } from './helpers';

const RUNS = Number(process.env.DASHBOARD_FUZZ_RUNS ?? 1200);

/** The oracle: would the server accept this body as an operation that changes the config? */
function isValidOperation(text: string): boolean {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return false;
  }
  if (!body || typeof body !== 'object' || Array.isArray(body)) return false;
  const record = body as Record<string, unknown>;
  const keys = Object.keys(record).sort().join(',');
  switch (record.op) {
    case 'setByte': {
      const { offset, value } = record;
      if (keys !== 'offset,op,value' || !Number.isInteger(offset) || !Number.isInteger(value)) return false;
      try {
        withByte(defaultFields(), offset as number, value as number);
        return true;
      } catch {
        return false;
      }
    }
    case 'toggleFeature':
      return keys === 'flag,op' && typeof record.flag === 'string' && Object.hasOwn(FEATURE_FLAGS, record.flag);
    case 'setRegistryUrl':
      if (keys !== 'op,url' || typeof record.url !== 'string' || record.url.length === 0 || record.url.length > 2048) return false;
      try {
        normalizeRegistryUrl(record.url);
        return true;
      } catch {
        return false;
      }
    default:
      return false;
  }
}

const anyScalar = fc.oneof(
  fc.integer({ min: -1000, max: 1000 }),
  fc.integer({ min: 4, max: 15 }),
  fc.integer({ min: 0, max: 300 }),
  fc.double({ noNaN: false }),
  fc.string({ maxLength: 20 }),
  fc.constantFrom('13', '0x0d', 'DEBUG', 'debug', 'PREMIUM_TYPES ', '', 'http://', 'javascript:alert(1)', '__proto__'),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.integer(), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 5 }), fc.integer(), { maxKeys: 2 }),
);

/** Bodies that look almost right: the known ops and keys with wrong, missing, extra or out-of-range members. */
const nearMiss = fc
  .record(
    {
      op: fc.oneof(fc.constantFrom('setByte', 'toggleFeature', 'setRegistryUrl', 'SetByte', 'toggle', 'set', ''), anyScalar),
      offset: anyScalar,
      value: anyScalar,
      flag: fc.oneof(fc.constantFrom('DEBUG', 'PREMIUM_TYPES', 'PRIVATE_REGISTRY', 'TURBO', 'debug', 'constructor'), anyScalar),
      url: fc.oneof(fc.constantFrom('ftp://x', 'not a url', 'http://', '', 'mailto:a@b.c'), fc.string({ maxLength: 30 }), fc.webUrl()),
      extra: anyScalar,
    },
    { requiredKeys: [] },
  )
  .map((body) => JSON.stringify(body));

const anyJson = fc.jsonValue({ maxDepth: 3 }).map((value) => JSON.stringify(value));
const notJson = fc.oneof(
  fc.string({ maxLength: 200 }),
  fc.constantFrom('{', '{"op":', '{"op":"toggleFeature","flag":"DEBUG"', "{'op':'toggleFeature'}", 'undefined', 'NaN', '\u0000', '{"a":1}}'),
  fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.from(bytes).toString('latin1')),
);
const oversized = fc
  .tuple(fc.constantFrom('DEBUG', 'TURBO'), fc.integer({ min: 4100, max: 20_000 }))
  .map(([flag, size]) => JSON.stringify({ op: 'toggleFeature', flag, pad: 'x'.repeat(size) }));

const contentType = fc.oneof(
  { weight: 6, arbitrary: fc.constant('application/json') },
  { weight: 1, arbitrary: fc.constantFrom('application/json; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=latin1', '') },
);

const request = fc.record({
  body: fc.oneof({ weight: 5, arbitrary: nearMiss }, { weight: 2, arbitrary: anyJson }, { weight: 2, arbitrary: notJson }, { weight: 1, arbitrary: oversized }),
  contentType,
});

describe('dashboard fuzz', () => {
  let registry: RunningRegistry;
  let admin: string;

  before(async () => {
    registry = await startDashboardRegistry();
    ({ admin } = await createUsers(registry));
  });
  after(async () => {
    await registry?.stop();
  });

  it(`${RUNS} random malformed POST bodies: all 4xx JSON, registry.lockb byte-identical`, async () => {
    const before = lockbBytes(registry);
    let sent = 0;
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(
        request.filter(({ body, contentType: type }) => !(isValidOperation(body) && /^application\/json/.test(type))),
        async ({ body, contentType: type }) => {
          const headers: Record<string, string> = { authorization: `Bearer ${admin}` };
          if (type) headers['content-type'] = type;
          const response = await fetch(`${registry.url}/_dashboard/api/config`, { method: 'POST', headers, body });
          const text = await response.text();
          sent++;
          statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
          assert.ok(response.status >= 400 && response.status < 500, `status ${response.status} for ${JSON.stringify(body.slice(0, 120))} (${type}): ${text}`);
          assert.match(response.headers.get('content-type') ?? '', /^application\/json/);
          const parsed = JSON.parse(text) as { error?: unknown };
          assert.equal(typeof parsed.error, 'string');
          assert.ok((parsed.error as string).length > 0);
        },
      ),
      { numRuns: RUNS },
    );
    assert.ok(sent >= Math.min(RUNS, 1000), `sent ${sent}`);
    console.log(`fuzz: ${sent} bodies, statuses ${JSON.stringify(Object.fromEntries(statuses))}`);
    assert.deepEqual(lockbBytes(registry), before, 'registry.lockb changed');
    const config = (await (await fetch(`${registry.url}/_dashboard/api/config`)).json()) as { hex: string; check: string };
    assert.equal(`${config.hex}${config.check}`, before.subarray(4, 17).toString('hex'));
  });

  it('300 random WebSocket messages on anonymous sockets: each answered, socket open, file unchanged', async () => {
    const before = lockbBytes(registry);
    const message = fc.oneof(
      anyJson,
      notJson,
      fc.record({ type: fc.constantFrom('command', 'auth', 'ping', 'nope'), line: fc.oneof(fc.constantFrom('toggle DEBUG', 'set 13 1', 'url http://x.example', 'get', 'help', 'repair'), fc.string({ maxLength: 40 })), token: fc.string({ maxLength: 20 }) }, { requiredKeys: ['type'] }).map((m) => JSON.stringify(m)),
    );
    const samples = fc.sample(message, { numRuns: 300, seed: 42 });
    // 50 per socket: within one socket's burst, so the rate limit (socket-limits.ts) never answers instead
    const perSocket = 50;
    for (let start = 0; start < samples.length; start += perSocket) {
      const client = await SocketClient.open(socketUrl(registry));
      await client.next((m) => m.type === 'config');
      await client.next((m) => m.type === 'history');
      for (const [offset, text] of samples.slice(start, start + perSocket).entries()) {
        const answersBefore = client.messages.length;
        client.ws.send(text);
        // every message gets exactly one answer (error, output, auth or pong); wait for it before the next
        const answer = await client.next(() => client.messages.length > answersBefore, 5000, `answer to message ${start + offset}: ${text.slice(0, 60)}`);
        assert.notEqual(answer.code, 'rate-limited');
      }
      assert.equal(client.ws.readyState, 1, 'socket still open');
      await client.close();
    }
    assert.deepEqual(lockbBytes(registry), before, 'registry.lockb changed');
  });
});
