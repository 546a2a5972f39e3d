/**
 * Issue 11 acceptance: ≥ 2,000 generated WebSocket messages (fast-check) to a real registry —
 * random JSON, random message types, random command lines (valid, near-valid, garbage), binary
 * frames, oversized messages and frames, invalid UTF-8 — on sockets that are anonymous or signed
 * in (admin, non-admin, read-only, garbage tokens, and `auth` messages mid-conversation).
 *
 * Properties: every message that does not end the socket gets exactly one answer; no answer is an
 * internal error (the socket's 5xx); an oversized frame or invalid UTF-8 ends the socket with the
 * protocol's code (1009, 1007); the registry process never exits and keeps answering HTTP < 500;
 * registry.lockb changes only right after a write command an admin socket was told succeeded
 * (`DASHBOARD_SOCKET_PROPERTY_RUNS` sets the number of sockets).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { parseCommand } from '../../plugins/registry-core/index';
import { http } from '../auth/helpers';
import type { RunningRegistry } from '../harness/registry';
import { ADMIN, SocketClient, createUsers, lockbBytes, postConfig, socketUrl, startDashboardRegistry, type SocketMessage } from './helpers';

const RUNS = Number(process.env.DASHBOARD_SOCKET_PROPERTY_RUNS ?? 110);
const MIN_MESSAGES = 2000;
const ANSWER_TYPES = new Set(['error', 'output', 'auth', 'pong']);

type Outgoing =
  | { kind: 'text'; text: string }
  | { kind: 'auth'; who: TokenName }
  | { kind: 'binary'; bytes: Uint8Array }
  /** a text frame larger than the server's frame limit: the socket is closed with 1009 */
  | { kind: 'huge-frame'; size: number }
  /** a text frame that is not UTF-8: the socket is closed with 1007 */
  | { kind: 'bad-utf8' };

type TokenName = 'none' | 'admin' | 'reader' | 'readonly' | 'garbage';

/** Writes an admin socket may be allowed to run here: none of them changes issuer or audience (the tokens of later runs stay valid). */
function harmlessForAdmin(line: string): boolean {
  let command;
  try {
    command = parseCommand(line);
  } catch {
    return true;
  }
  if (command.name === 'toggle') return command.flag === 'DEBUG' || command.flag === 'PREMIUM_TYPES';
  if (command.name === 'set') return command.offset >= 13;
  return command.name !== 'url';
}

const verbs = ['get', 'set', 'toggle', 'url', 'env', 'packages', 'help', 'watch', 'repair', 'rebuild-index', 'SET', 'Toggle', 'nope'];
const argument = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.integer({ min: -300, max: 70_000 }).map(String),
  fc.constantFrom('0x10', '0xff', 'DEBUG', 'PRIVATE_REGISTRY', 'PREMIUM_TYPES', 'debug', '0', '255', '256', '-1', '1e3', 'NaN', 'http://attacker.example', 'https://registry.mycompany.com', 'javascript:alert(1)'),
);
const commandLine = fc.oneof(
  fc.constantFrom(
    'get',
    'help',
    'env',
    'packages',
    'packages a',
    'toggle DEBUG',
    'toggle PREMIUM_TYPES',
    'toggle PRIVATE_REGISTRY',
    'set 13 1',
    'set 14 30',
    'set 15 100',
    'set 14 0',
    'set 5 0',
    'set 9 0',
    'set 16 1',
    'set 3 0',
    'url http://attacker.example',
    'url https://registry.mycompany.com',
    'repair',
    'watch',
    'rebuild-index',
  ),
  fc.tuple(fc.constantFrom(...verbs), fc.array(argument, { maxLength: 3 })).map(([verb, args]) => [verb, ...args].join(' ')),
  fc.string({ maxLength: 60 }),
  fc.string({ unit: 'grapheme', maxLength: 30 }),
);
const requestId = fc.option(fc.oneof(fc.string({ maxLength: 70 }), fc.integer(), fc.double(), fc.constant(null)), { nil: undefined });
const text = (value: string): Outgoing => ({ kind: 'text', text: value });

const outgoing: fc.Arbitrary<Outgoing> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ type: fc.constant('command'), line: commandLine, id: requestId }, { requiredKeys: ['type', 'line'] }).map((m) => text(JSON.stringify(m))) },
  { weight: 2, arbitrary: fc.record({ type: fc.constant('ping'), id: requestId }, { requiredKeys: ['type'] }).map((m) => text(JSON.stringify(m))) },
  {
    weight: 3,
    arbitrary: fc
      .record(
        {
          type: fc.oneof(fc.constantFrom('auth', 'command', 'ping', 'nope', '', 'AUTH', 'config'), fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 1 })),
          line: fc.oneof(commandLine, fc.jsonValue({ maxDepth: 1 })),
          token: fc.oneof(fc.string({ maxLength: 40 }), fc.jsonValue({ maxDepth: 1 })),
          id: fc.jsonValue({ maxDepth: 1 }),
          extra: fc.jsonValue({ maxDepth: 2 }),
        },
        { requiredKeys: [] },
      )
      .map((m) => text(JSON.stringify(m))),
  },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => text(JSON.stringify(v))) },
  { weight: 2, arbitrary: fc.string({ maxLength: 100 }).map(text) },
  { weight: 2, arbitrary: fc.constantFrom<TokenName>('none', 'admin', 'reader', 'readonly', 'garbage').map((who): Outgoing => ({ kind: 'auth', who })) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((bytes): Outgoing => ({ kind: 'binary', bytes })) },
  // larger than a message may be (4096 bytes) but a legal frame: answered with an error
  { weight: 1, arbitrary: fc.integer({ min: 4097, max: 8000 }).map((size) => text(JSON.stringify({ type: 'command', line: `get ${'x'.repeat(size)}` }))) },
);
/** Ends the socket (protocol violations): at most one, as the last message of a socket. */
const closer: fc.Arbitrary<Outgoing> = fc.oneof(
  fc.integer({ min: 8193, max: 70_000 }).map((size): Outgoing => ({ kind: 'huge-frame', size })),
  fc.constant<Outgoing>({ kind: 'bad-utf8' }),
);

describe('dashboard WebSocket property test (real registry)', { timeout: 180_000 }, () => {
  let registry: RunningRegistry;
  const tokens: Record<TokenName, string> = { none: '', admin: '', reader: '', readonly: '', garbage: 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9.' };

  before(async () => {
    registry = await startDashboardRegistry();
    const users = await createUsers(registry);
    tokens.admin = users.admin;
    tokens.reader = users.reader;
    const readonly = await http(registry, 'POST', '/-/npm/v1/tokens', { token: users.admin, body: { password: ADMIN.password, packages_and_scopes_permission: 'read-only' } });
    assert.equal(readonly.status, 201, readonly.text);
    tokens.readonly = readonly.body.token as string;
  });
  after(async () => {
    await registry?.stop();
  });

  test(`≥ ${MIN_MESSAGES} generated socket messages: always answered, never an internal error, the process stays up, registry.lockb changes only by admin writes`, async () => {
    const baseline = lockbBytes(registry);
    let sent = 0;
    let adminWrites = 0;
    const closes = new Map<number, number>();

    const restoreBaseline = async (): Promise<void> => {
      const now = lockbBytes(registry);
      if (now.equals(baseline)) return;
      for (let offset = 4; offset <= 15; offset++) {
        if (now[offset] === baseline[offset]) continue;
        const answer = await postConfig(registry, { op: 'setByte', offset, value: baseline[offset] }, tokens.admin);
        assert.equal(answer.status, 200, answer.text);
      }
      assert.deepEqual(lockbBytes(registry), baseline, 'restored');
    };

    await fc.assert(
      fc.asyncProperty(fc.constantFrom<TokenName>('none', 'admin', 'reader', 'readonly', 'garbage'), fc.array(outgoing, { minLength: 15, maxLength: 30 }), fc.option(closer, { freq: 4, nil: undefined }), async (first, messages, last) => {
        const client = await SocketClient.open(socketUrl(registry));
        const closed = new Promise<number>((resolve) => client.ws.once('close', (code) => resolve(code)));
        let closeCode: number | undefined;
        void closed.then((code) => (closeCode = code));
        await client.next((m) => m.type === 'history', 5000, 'history');
        // whether this socket may write: its last accepted `auth` was the admin's full token (not the read-only one)
        let writer = false;
        const answers = (): SocketMessage[] => client.messages.filter((m) => ANSWER_TYPES.has(m.type));
        const ask = async (frame: () => void, what: string): Promise<SocketMessage | undefined> => {
          const before = answers().length;
          frame();
          sent += 1;
          return Promise.race([client.next(() => answers().length > before, 5000, `answer to ${what}`).then(() => answers()[before]), closed.then(() => undefined)]);
        };
        const all: Outgoing[] = [...(first === 'none' ? [] : [{ kind: 'auth', who: first } as const]), ...messages, ...(last ? [last] : [])];
        try {
          for (const message of all) {
            if (closeCode !== undefined) break;
            const lockbBefore = lockbBytes(registry);
            let answer: SocketMessage | undefined;
            let line: string | undefined;
            switch (message.kind) {
              case 'auth': {
                const token = message.who === 'none' ? 'x' : tokens[message.who];
                answer = await ask(() => client.send({ type: 'auth', token }), `auth as ${message.who}`);
                assert.equal(answer?.type, 'auth');
                assert.equal(answer.ok, message.who === 'admin' || message.who === 'reader' || message.who === 'readonly', `auth ${message.who}: ${JSON.stringify(answer)}`);
                writer = message.who === 'admin';
                break;
              }
              case 'text': {
                let payload = message.text;
                try {
                  const parsed = JSON.parse(payload) as { type?: unknown; line?: unknown };
                  if (parsed && parsed.type === 'command' && typeof parsed.line === 'string') {
                    line = parsed.line;
                    // an admin would really change issuer or audience here: keep later tokens valid
                    if (writer && !harmlessForAdmin(line)) {
                      line = 'get';
                      payload = JSON.stringify({ type: 'command', line });
                    }
                  }
                } catch {
                  // not JSON: sent as it is
                }
                answer = await ask(() => client.ws.send(payload), payload.slice(0, 80));
                assert.ok(answer, `the socket closed (${closeCode}) after ${payload.slice(0, 80)}`);
                break;
              }
              case 'binary':
                answer = await ask(() => client.ws.send(Buffer.from(message.bytes), { binary: true }), 'binary frame');
                assert.equal(answer?.type, 'error');
                break;
              case 'huge-frame':
                answer = await ask(() => client.ws.send(`"${'y'.repeat(message.size)}"`), `frame of ${message.size} bytes`);
                assert.equal(answer, undefined, 'no answer to a frame over the limit');
                assert.equal(await closed, 1009);
                break;
              case 'bad-utf8':
                answer = await ask(() => client.ws.send(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), { binary: false }), 'invalid UTF-8');
                assert.equal(answer, undefined, 'no answer to invalid UTF-8');
                assert.equal(await closed, 1007);
                break;
            }
            if (answer) {
              assert.ok(!/internal error/i.test(JSON.stringify(answer)), `internal error: ${JSON.stringify(answer)}`);
              // any other `auth` here carries a generated token: the socket is anonymous after it
              if (answer.type === 'auth' && message.kind !== 'auth') writer = false;
            }
            const wrote = answer?.type === 'output' && answer.ok === true && line !== undefined && /^\s*(set|toggle|url)\b/i.test(line);
            if (wrote) adminWrites += 1;
            if (!lockbBytes(registry).equals(lockbBefore)) {
              assert.ok(writer && wrote, `registry.lockb changed without a successful admin write: ${JSON.stringify(message).slice(0, 200)} → ${JSON.stringify(answer)}`);
            }
            if (answer?.type === 'output' && answer.ok === true && line !== undefined && /^\s*(set|toggle|url)\b/i.test(line)) {
              assert.ok(writer, `a write succeeded on a socket without the admin's full token: ${line}`);
            }
          }
        } finally {
          if (closeCode === undefined) await client.close();
          else closes.set(closeCode, (closes.get(closeCode) ?? 0) + 1);
        }
        assert.equal(registry.process.exitCode, null, 'the registry process is running');
        const ping = await fetch(`${registry.url}/-/ping`);
        assert.ok(ping.status < 500, `/-/ping answered ${ping.status}`);
        await restoreBaseline();
      }),
      { numRuns: RUNS },
    );
    console.log(`socket property: ${sent} messages on ${RUNS} sockets, ${adminWrites} admin writes, closes ${JSON.stringify(Object.fromEntries(closes))}`);
    if (process.env.DASHBOARD_SOCKET_PROPERTY_RUNS === undefined) assert.ok(sent >= MIN_MESSAGES, `sent ${sent} messages (need ≥ ${MIN_MESSAGES})`);
    assert.equal((await fetch(`${registry.url}/-/ping`)).status, 200);
    const config = (await (await fetch(`${registry.url}/_dashboard/api/config`)).json()) as { hex: string; check: string };
    assert.equal(`${config.hex}${config.check}`, baseline.subarray(4, 17).toString('hex'));
    assert.deepEqual(lockbBytes(registry), baseline);
  });
});
