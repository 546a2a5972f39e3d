/**
 * Issue 11 item 10 — routes by another spelling, against a REAL registry.
 *
 * Verdaccio's routers are Express 4 defaults: paths match case-insensitively with one optional
 * trailing slash, on the raw path, parameters decoded afterwards. Every auth route must therefore
 * be served by OUR handler in every spelling Express would route to Verdaccio's — or be answered
 * 404 — and never reach Verdaccio's (legacy tokens, never-expiring token records, password
 * changes that keep old sessions, one web-login bucket for every address).
 *
 * Which spellings Express routes is decided here by Express's own matcher (path-to-regexp 0.1,
 * as Express 4.22 compiles Verdaccio's route strings), not by a copy of our rules.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { jsonRequestBody, rawRequest } from '../harness/raw-http';
import { startRegistry, type RunningRegistry } from '../harness/registry';
import { couchPut, http, login, useAuthPlugin, whoami } from './helpers';

const PASSWORD = 'correct-horse-battery';
type PathToRegexp = (path: string, keys: { name: string | number }[], options: { sensitive: boolean; strict: boolean; end: boolean }) => RegExp;
// Express's own path compiler (a dependency of express 4), used with the options Verdaccio's routers have
// eslint-disable-next-line @typescript-eslint/no-require-imports
const pathToRegexp = require('path-to-regexp') as PathToRegexp;

interface Raw {
  status: number;
  text: string;
  body: Record<string, unknown>;
}

/** A request with the path sent byte for byte (fetch would normalise it). */
async function raw(registry: RunningRegistry, method: string, path: string, options: { token?: string; body?: unknown; from?: string } = {}): Promise<Raw> {
  const json = jsonRequestBody(options.body);
  const headers: Record<string, string> = { ...(json.headers as Record<string, string>) };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (options.from) headers['x-forwarded-for'] = options.from;
  const { status, text } = await rawRequest(registry, { method, path, headers, body: json.body });
  let body: Record<string, unknown> = {};
  try {
    body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    body = {};
  }
  return { status, text, body };
}

const fastAuth = (config: Record<string, unknown>): void => {
  useAuthPlugin({ bcrypt_rounds: 4, max_users: 10_000 })(config);
  config.server = { ...(config.server as Record<string, unknown> | undefined), trustProxy: 'loopback' };
};

describe('11.10 routes by another spelling (real registry)', () => {
  let registry: RunningRegistry;

  before(async () => {
    registry = await startRegistry({ editConfig: fastAuth });
    assert.equal((await couchPut(registry, 'alice', PASSWORD)).status, 201);
  });
  after(async () => {
    await registry?.stop();
  });

  const storedRecords = (): { key: string; expiresAt: number | null }[] =>
    (JSON.parse(readFileSync(join(registry.storageDir, '.registry-tokens.json'), 'utf8')) as { tokens: { key: string; expiresAt: number | null }[] }).tokens;

  test('11.10 PUT /-/USER/org.couchdb.user:… registers with a token of our issuer, never a legacy one', async () => {
    const result = await raw(registry, 'PUT', '/-/USER/org.couchdb.user:upper-bob', { body: { name: 'upper-bob', password: PASSWORD } });
    assert.equal(result.status, 201, result.text);
    assert.equal(await whoami(registry, result.body.token as string), 'upper-bob', 'a token of ours (a legacy token would be anonymous)');
  });

  test('11.10 POST /-/npm/v1/TOKENS creates our token with an expiry, no never-expiring record', async () => {
    const session = await login(registry, 'alice', PASSWORD);
    const result = await raw(registry, 'POST', '/-/npm/v1/TOKENS', { token: session, body: { password: PASSWORD } });
    assert.equal(result.status, 201, result.text);
    assert.equal(await whoami(registry, result.body.token as string), 'alice');
    assert.ok(!storedRecords().some((record) => record.expiresAt === null), 'no record without an expiry');
  });

  test('11.10 the web login (/-/verdaccio/sec/login, any spelling) is limited per address and user, and answers with our token', async () => {
    assert.equal((await couchPut(registry, 'wendy', PASSWORD)).status, 201);
    for (let i = 0; i < 5; i++) {
      const wrong = await raw(registry, 'POST', '/-/verdaccio/sec/login', { body: { username: 'wendy', password: `wrong-${i}-password` }, from: '10.7.0.1' });
      assert.equal(wrong.status, 401, wrong.text);
    }
    const locked = await raw(registry, 'POST', '/-/VERDACCIO/sec/LOGIN/', { body: { username: 'wendy', password: PASSWORD }, from: '10.7.0.1' });
    assert.equal(locked.status, 429, `the failing address is locked out, in any spelling: ${locked.text}`);
    const other = await raw(registry, 'POST', '/-/verdaccio/sec/login', { body: { username: 'wendy', password: PASSWORD }, from: '10.7.0.2' });
    assert.equal(other.status, 200, `another address is not locked out: ${other.text}`);
    assert.equal(other.body.username, 'wendy');
    assert.equal(await whoami(registry, other.body.token as string), 'wendy', 'a token of our issuer');
  });

  test('11.10 property: every spelling of every auth route hits our handler or gets 404, never Verdaccio\'s (≥ 300 requests)', async (t) => {
    let counter = 0;
    const unique = (prefix: string): string => `${prefix}-${(counter++).toString(36)}`;
    const served = { ours: 0, notFound: 0, other: 0 };

    interface Ctx {
      user: string;
      token: string;
      extra: string;
    }
    interface Route {
      name: string;
      method: string;
      /** the route as Verdaccio declares it, and a check of its params (Verdaccio's app.param rules) */
      verdaccio: { path: string; params?: (params: string[]) => boolean };
      /** the canonical path: literal parts and parameter parts */
      parts: (ctx: Ctx) => { text: string; param: boolean }[];
      setup: () => Promise<Ctx>;
      body?: (ctx: Ctx) => unknown;
      auth?: boolean;
      /** true = our handler served it (its effect is there); throws on a sign of Verdaccio's handler */
      ours: (result: Raw, ctx: Ctx) => Promise<boolean>;
    }
    const couchParam = (params: string[]): boolean => params[0].startsWith('org.couchdb.user:') && (params[1] === undefined || params[1] === '-rev');
    const freshUser = async (): Promise<Ctx> => {
      const user = unique('sp');
      const token = (await couchPut(registry, user, PASSWORD)).body.token as string;
      return { user, token, extra: '' };
    };
    const tokenIsOurs = async (result: Raw, user: string): Promise<boolean> => {
      if (typeof result.body.token !== 'string') return false;
      assert.equal(await whoami(registry, result.body.token), user, `a token that is not ours came back: ${result.text}`);
      return true;
    };
    const routes: Route[] = [
      {
        name: 'couch PUT (npm adduser/login)',
        method: 'PUT',
        verdaccio: { path: '/-/user/:org_couchdb_user/:_rev?/:revision?', params: couchParam },
        parts: (ctx) => [{ text: '/-/user/', param: false }, { text: `org.couchdb.user:${ctx.user}`, param: true }],
        setup: async () => ({ user: unique('new'), token: '', extra: '' }),
        body: (ctx) => ({ name: ctx.user, password: PASSWORD }),
        ours: async (result, ctx) => (result.status === 201 ? tokenIsOurs(result, ctx.user) : false),
      },
      {
        name: 'couch GET',
        method: 'GET',
        verdaccio: { path: '/-/user/:org_couchdb_user', params: couchParam },
        parts: () => [{ text: '/-/user/', param: false }, { text: 'org.couchdb.user:alice', param: true }],
        setup: async () => ({ user: 'alice', token: '', extra: '' }),
        ours: async (result) => {
          if (result.status !== 200) return false;
          assert.equal(result.body._id, 'org.couchdb.user:alice', `Verdaccio's couch GET answered: ${result.text}`);
          return true;
        },
      },
      {
        name: 'npm logout',
        method: 'DELETE',
        verdaccio: { path: '/-/user/token/*' },
        parts: (ctx) => [{ text: '/-/user/token/', param: false }, { text: ctx.extra, param: true }],
        setup: async () => ({ user: 'alice', token: '', extra: await login(registry, 'alice', PASSWORD) }),
        ours: async (result, ctx) => {
          const revoked = (await whoami(registry, ctx.extra)) === undefined;
          if (result.status >= 200 && result.status < 300) assert.ok(revoked, `logout answered ${result.status} but the token still works (Verdaccio's logout)`);
          return result.status === 200 && revoked;
        },
      },
      {
        name: 'npm token list',
        method: 'GET',
        verdaccio: { path: '/-/npm/v1/tokens' },
        parts: () => [{ text: '/-/npm/v1/tokens', param: false }],
        setup: async () => ({ user: 'alice', token: await login(registry, 'alice', PASSWORD), extra: '' }),
        auth: true,
        ours: async (result) => {
          if (result.status !== 200) return false;
          assert.equal(typeof result.body.total, 'number', `Verdaccio's token list answered: ${result.text.slice(0, 200)}`);
          return true;
        },
      },
      {
        name: 'npm token create',
        method: 'POST',
        verdaccio: { path: '/-/npm/v1/tokens' },
        parts: () => [{ text: '/-/npm/v1/tokens', param: false }],
        setup: async () => ({ user: 'alice', token: await login(registry, 'alice', PASSWORD), extra: '' }),
        body: () => ({ password: PASSWORD }),
        auth: true,
        ours: async (result, ctx) => (result.status === 201 ? tokenIsOurs(result, ctx.user) : false),
      },
      {
        name: 'npm token revoke',
        method: 'DELETE',
        verdaccio: { path: '/-/npm/v1/tokens/token/:tokenKey' },
        parts: (ctx) => [{ text: '/-/npm/v1/tokens/token/', param: false }, { text: ctx.extra, param: true }],
        setup: async () => {
          const token = await login(registry, 'alice', PASSWORD);
          const created = await http(registry, 'POST', '/-/npm/v1/tokens', { token, body: { password: PASSWORD } });
          return { user: 'alice', token, extra: created.body.key as string };
        },
        auth: true,
        ours: async (result, ctx) => result.status === 200 && !storedRecords().some((record) => record.key === ctx.extra),
      },
      {
        name: 'npm profile set password',
        method: 'POST',
        verdaccio: { path: '/-/npm/v1/user' },
        parts: () => [{ text: '/-/npm/v1/user', param: false }],
        setup: freshUser,
        body: () => ({ password: { old: PASSWORD, new: 'the-next-password' } }),
        auth: true,
        ours: async (result, ctx) => {
          const oldTokenDead = (await whoami(registry, ctx.token)) === undefined;
          if (result.status >= 200 && result.status < 300) assert.ok(oldTokenDead, `password changed but the old session still works (Verdaccio's profile route): ${result.text}`);
          return result.status === 200 && oldTokenDead;
        },
      },
      {
        name: 'web login',
        method: 'POST',
        verdaccio: { path: '/-/verdaccio/sec/login' },
        parts: () => [{ text: '/-/verdaccio/sec/login', param: false }],
        setup: async () => ({ user: 'alice', token: '', extra: '' }),
        body: () => ({ username: 'alice', password: PASSWORD }),
        ours: async (result, ctx) => (result.status === 200 ? tokenIsOurs(result, ctx.user) : false),
      },
    ];

    type Op = 'keep' | 'flip' | 'encode' | 'encode-lower' | 'double';
    interface Spelling {
      route: number;
      alias: boolean;
      ops: Op[];
      paramOps: Op[];
      trailing: boolean;
      query: boolean;
    }
    const spelling: fc.Arbitrary<Spelling> = fc.record({
      route: fc.integer({ min: 0, max: routes.length - 1 }),
      /** alias = only what Express itself treats as the same route: letter case, a trailing slash, escapes inside parameters */
      alias: fc.boolean(),
      ops: fc.array(fc.constantFrom<Op>('keep', 'keep', 'keep', 'flip', 'flip', 'encode', 'encode-lower', 'double'), { minLength: 80, maxLength: 80 }),
      paramOps: fc.array(fc.constantFrom<Op>('keep', 'keep', 'keep', 'keep', 'encode', 'encode-lower'), { minLength: 400, maxLength: 400 }),
      trailing: fc.boolean(),
      query: fc.boolean(),
    });
    const escape = (char: string, lower: boolean): string => {
      const hex = `%${char.charCodeAt(0).toString(16).padStart(2, '0')}`;
      return lower ? hex.toLowerCase() : hex.toUpperCase();
    };
    const spell = (parts: { text: string; param: boolean }[], value: Spelling): string => {
      let i = 0;
      let j = 0;
      let out = '';
      for (const part of parts) {
        for (const char of part.text) {
          if (part.param) {
            // parameters: escapes only (Express decodes them); their letter case is data
            const op = value.paramOps[j++ % value.paramOps.length];
            out += op === 'encode' || op === 'encode-lower' ? escape(char, op === 'encode-lower') : char;
            continue;
          }
          let op = value.ops[i++ % value.ops.length];
          // the leading slash stays: without it the request target is invalid and Node's parser answers 400
          if (out === '') op = 'keep';
          if (value.alias && (op === 'encode' || op === 'encode-lower' || op === 'double')) op = 'keep';
          if (op === 'flip') out += char === char.toLowerCase() ? char.toUpperCase() : char.toLowerCase();
          else if (op === 'encode' || op === 'encode-lower') out += escape(char, op === 'encode-lower');
          else if (op === 'double' && char === '/') out += '//';
          else out += char;
        }
      }
      if (value.trailing) out += '/';
      if (value.query) out += '?spelling=1';
      return out;
    };
    const expressRoutes = (route: Route, path: string): boolean => {
      const pathname = path.split('?')[0];
      const keys: { name: string | number }[] = [];
      const match = pathToRegexp(route.verdaccio.path, keys, { sensitive: false, strict: false, end: true }).exec(pathname);
      if (!match) return false;
      let params: string[];
      try {
        params = match.slice(1).map((value) => (value === undefined ? (undefined as unknown as string) : decodeURIComponent(value)));
      } catch {
        return false; // Express answers 400 "Failed to decode param" before any handler
      }
      return route.verdaccio.params ? route.verdaccio.params(params) : true;
    };

    let runs = 0;
    const otherStatuses = new Set<string>();
    await fc.assert(
      fc.asyncProperty(spelling, async (value) => {
        runs += 1;
        const route = routes[value.route];
        const ctx = await route.setup();
        const path = spell(route.parts(ctx), value);
        const routed = expressRoutes(route, path);
        if (value.alias) assert.ok(routed, `sanity: Express routes the alias ${path} to Verdaccio's ${route.verdaccio.path}`);
        const result = await raw(registry, route.method, path, { token: route.auth ? ctx.token : undefined, body: route.body?.(ctx) });
        const where = `${route.name}: ${route.method} ${path} → ${result.status} ${result.text.slice(0, 200)}`;
        assert.ok(result.status < 500, `never a 5xx: ${where}`);
        const ours = await route.ours(result, ctx);
        if (ours) served.ours += 1;
        else if (result.status === 404) served.notFound += 1;
        else {
          served.other += 1;
          otherStatuses.add(`${result.status} ${route.name}${routed ? ' (routed)' : ''}`);
        }
        if (routed) assert.ok(ours || result.status === 404, `Express routes this to Verdaccio's handler; ours must serve it or 404: ${where}`);
        if (value.alias) assert.ok(ours, `an alias Express serves must be served by ours: ${where}`);
        if (!routed) assert.ok(ours || result.status === 404 || (result.status >= 400 && result.status < 500), `a spelling Express does not route: ${where}`);
      }),
      { numRuns: 320, endOnFailure: true },
    );
    assert.ok(runs >= 300);
    t.diagnostic(`served by ours ${served.ours}, 404 ${served.notFound}, other 4xx ${served.other} (${[...otherStatuses].join('; ')})`);
    assert.ok(served.ours > 100, `ours served a good share: ${JSON.stringify(served)}`);
    assert.ok(!storedRecords().some((record) => record.expiresAt === null), 'no never-expiring record was written by any spelling');
  });
});
