/**
 * Auth micro-benchmarks (docs/targets.md: token issue + verify ≤ 1.2× bare jose sign + verify, EdDSA and
 * RS256, in the same run).
 *
 * "Ours" is the plugin's TokenIssuer exactly as the server runs it: live config from a real
 * registry.lockb and .env.local (issuer/audience/algorithm decided per call), claims checks,
 * revocation lookup, verified-token cache insert. "Bare jose" is SignJWT + jwtVerify of a token
 * with the same claims, the same keys (the issuer's own CryptoKeys) and the same verify options.
 * Every token is fresh, so each verify of ours is a cache miss: the full cost is measured. Batches
 * of the two alternate so machine noise hits both alike; figures are medians of batch rates.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT, jwtVerify } from 'jose';
import { ConfigFile, createConfigFile, defaultFields, readRegistryUrl, setEnvFileValue, type ConfigFields } from '../../plugins/registry-core/index';
import { TokenStore } from '../../plugins/registry-core/token-store';
import { loadKeyRing, type TokenAlgorithm } from '../../plugins/verdaccio-registry-auth/keys';
import { TokenIssuer } from '../../plugins/verdaccio-registry-auth/token-issuer';
import { formatTable, makeRow, median } from './report';
import type { BenchRow } from './types';

const FLAGS: Record<TokenAlgorithm, number> = { EdDSA: 3, RS256: 2 };
const GROUPS = ['bench', 'registry-admin'];

async function opsPerSecond(count: number, body: (i: number) => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint();
  for (let i = 0; i < count; i++) await body(i);
  return count / (Number(process.hrtime.bigint() - start) / 1e9);
}

export async function runAuthBench(options: { quick: boolean }): Promise<BenchRow[]> {
  const dir = mkdtempSync(join(tmpdir(), 'auth-bench-'));
  const lockb = join(dir, 'registry.lockb');
  const envFile = join(dir, '.env.local');
  createConfigFile(lockb, defaultFields('http://localhost:4873'));
  setEnvFileValue(envFile, 'BUN_REGISTRY_URL', 'http://localhost:4873');
  const config = ConfigFile.open(lockb);
  const store = TokenStore.open(join(dir, 'storage', '.registry-tokens.json'));
  const ring = loadKeyRing(join(dir, 'keys'));
  const issuer = new TokenIssuer(ring, { fields: () => config.getConfig().fields, registryUrl: () => readRegistryUrl(envFile) }, store, {
    defaultTtlSeconds: 3600,
  });
  const rows: BenchRow[] = [];
  try {
    for (const alg of ['EdDSA', 'RS256'] as const) {
      await config.update((fields: ConfigFields) => ({ ...fields, featureFlags: FLAGS[alg] }));
      const state = issuer.state();
      if (state.alg !== alg) throw new Error(`auth bench: expected ${alg} after setting the flags, issuer says ${state.alg}`);
      const key = ring.require(alg);

      const ours = async (i: number): Promise<void> => {
        const { token } = await issuer.issue('bench', GROUPS);
        const verified = await issuer.verify(token);
        if (verified.user !== 'bench') throw new Error(`auth bench: round ${i} verified as ${verified.user}`);
      };
      const bare = async (i: number): Promise<void> => {
        const now = Math.floor(Date.now() / 1000);
        const token = await new SignJWT({ groups: GROUPS })
          .setProtectedHeader({ alg, kid: key.kid, typ: 'JWT' })
          .setSubject('bench')
          .setIssuer(state.issuer.url)
          .setAudience(state.audience)
          .setIssuedAt(now)
          .setExpirationTime(now + 3600)
          .setJti(`bench-${i}-${now}`)
          .sign(key.privateKey as CryptoKey);
        const { payload } = await jwtVerify(token, key.publicKey as CryptoKey, {
          algorithms: [alg],
          issuer: state.issuer.url,
          audience: state.audience,
        });
        if (payload.sub !== 'bench') throw new Error('auth bench: bare jose verified the wrong subject');
      };

      const perBatch = alg === 'EdDSA' ? 150 : 40;
      const batches = options.quick ? 8 : 30;
      await opsPerSecond(perBatch, ours); // warm-up both paths (JIT, key caches)
      await opsPerSecond(perBatch, bare);
      const oursRates: number[] = [];
      const bareRates: number[] = [];
      for (let b = 0; b < batches; b++) {
        if (b % 2 === 0) {
          oursRates.push(await opsPerSecond(perBatch, ours));
          bareRates.push(await opsPerSecond(perBatch, bare));
        } else {
          bareRates.push(await opsPerSecond(perBatch, bare));
          oursRates.push(await opsPerSecond(perBatch, ours));
        }
      }
      rows.push(
        makeRow(`auth: token issue + verify, ${alg} (vs bare jose sign + verify)`, median(oursRates), median(bareRates), 'ops/s', '≥ 0.83× bare jose ops/s (= ≤ 1.2× its time)'),
      );

      // The per-request path of an API call with a token the server has seen before.
      const { token } = await issuer.issue('bench', GROUPS);
      await issuer.verify(token);
      const cachedRates: number[] = [];
      for (let b = 0; b < batches; b++) cachedRates.push(await opsPerSecond(2000, () => issuer.verify(token)));
      rows.push(makeRow(`auth: verify a seen ${alg} token (cache hit, re-checked)`, median(cachedRates), null, 'ops/s', 'info'));
    }
    return rows;
  } finally {
    config.close();
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module) {
  runAuthBench({ quick: process.argv.includes('--quick') }).then(
    (rows) => process.stdout.write(`${formatTable(rows)}\n`),
    (error: unknown) => {
      process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exit(1);
    },
  );
}
