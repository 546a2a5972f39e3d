/**
 * The issuer's two signing key pairs: Ed25519 (EdDSA) and RSA-2048 (RS256).
 *
 * Both are generated on first start and kept as private JWK files, mode 0600, in a 0700 folder.
 * A key file readable by anyone else is refused (like ssh does), so a leaked mode is noticed
 * instead of silently used. `kid` is the RFC 7638 thumbprint of the public key, so it names the
 * key itself rather than a file. First writer wins: a file is published with link(2), which
 * never replaces an existing key, so two processes starting at once end up with the same keys.
 *
 * Everything here is synchronous because Verdaccio constructs plugins synchronously; the keys
 * are turned into WebCrypto CryptoKeys once (KeyObject#toCryptoKey), which is what jose signs
 * and verifies with fastest.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPair,
  generateKeyPairSync,
  type JsonWebKey,
  type KeyObject,
  type webcrypto,
} from 'node:crypto';
import { closeSync, existsSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { AuthError } from './errors';

export type TokenAlgorithm = 'EdDSA' | 'RS256';
export const TOKEN_ALGORITHMS: readonly TokenAlgorithm[] = ['EdDSA', 'RS256'];

export interface PublicJwk {
  kty: string;
  kid: string;
  alg: TokenAlgorithm;
  use: 'sig';
  crv?: string;
  x?: string;
  n?: string;
  e?: string;
}

export interface SigningKey {
  alg: TokenAlgorithm;
  kid: string;
  file: string;
  privateKey: webcrypto.CryptoKey;
  publicKey: webcrypto.CryptoKey;
  publicJwk: PublicJwk;
}


interface KeySpec {
  alg: TokenAlgorithm;
  file: string;
  generate(): KeyObject;
  generateAsync?(): Promise<KeyObject>;
  check(jwk: JsonWebKey): string | undefined;
  webCrypto: { sign: webcrypto.AlgorithmIdentifier | webcrypto.RsaHashedImportParams; verify: webcrypto.AlgorithmIdentifier | webcrypto.RsaHashedImportParams };
}

const RSA_BITS = 2048;

const SPECS: readonly KeySpec[] = [
  {
    alg: 'EdDSA',
    file: 'ed25519.private.jwk.json',
    generate: () => generateKeyPairSync('ed25519').privateKey,
    check: (jwk) => (jwk.kty === 'OKP' && jwk.crv === 'Ed25519' && typeof jwk.d === 'string' ? undefined : 'expected an Ed25519 private JWK'),
    webCrypto: { sign: { name: 'Ed25519' }, verify: { name: 'Ed25519' } },
  },
  {
    alg: 'RS256',
    file: 'rsa-2048.private.jwk.json',
    generate: () => generateKeyPairSync('rsa', { modulusLength: RSA_BITS, publicExponent: 0x10001 }).privateKey,
    // RSA key generation takes 50–300 ms of CPU: off the main thread, a first start need not wait for it
    generateAsync: () =>
      new Promise((resolve, reject) =>
        generateKeyPair('rsa', { modulusLength: RSA_BITS, publicExponent: 0x10001 }, (error, _publicKey, privateKey) =>
          error ? reject(error) : resolve(privateKey),
        ),
      ),
    check: (jwk) => {
      if (jwk.kty !== 'RSA' || typeof jwk.n !== 'string' || typeof jwk.d !== 'string') return 'expected an RSA private JWK';
      const bits = Buffer.from(jwk.n, 'base64url').length * 8;
      return bits >= RSA_BITS ? undefined : `RSA key has ${bits} bits, at least ${RSA_BITS} required`;
    },
    webCrypto: {
      sign: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
      verify: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
    },
  },
];

/** RFC 7638: SHA-256 over the required members, in lexicographic order, no whitespace. */
export function jwkThumbprint(jwk: JsonWebKey): string {
  let canonical: string;
  if (jwk.kty === 'OKP') canonical = JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x });
  else if (jwk.kty === 'RSA') canonical = JSON.stringify({ e: jwk.e, kty: jwk.kty, n: jwk.n });
  else if (jwk.kty === 'EC') canonical = JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y });
  else throw new AuthError('ERR_KEY_FILE', `no thumbprint rule for key type ${String(jwk.kty)}`);
  return createHash('sha256').update(canonical).digest('base64url');
}

function fsyncFolder(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Writes `text` to `path` with mode 0600 unless `path` already exists (then the existing file wins). */
function publishOnce(path: string, text: string): boolean {
  const temp = `${path}.${process.pid}.${Date.now()}.tmp`;
  const fd = openSync(temp, 'wx', 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(temp, path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  } finally {
    unlinkSync(temp);
  }
}

function readKeyFile(spec: KeySpec, path: string): JsonWebKey {
  const stats = statSync(path);
  if (!stats.isFile()) throw new AuthError('ERR_KEY_FILE', `${path} is not a file`);
  if ((stats.mode & 0o077) !== 0) {
    throw new AuthError(
      'ERR_KEY_FILE',
      `${path} has mode ${(stats.mode & 0o777).toString(8).padStart(4, '0')}: a private key must be readable by its owner only (chmod 600 ${path})`,
    );
  }
  let jwk: JsonWebKey;
  try {
    jwk = JSON.parse(readFileSync(path, 'utf8')) as JsonWebKey;
  } catch (error) {
    throw new AuthError('ERR_KEY_FILE', `${path} is not a JSON Web Key (${(error as Error).message})`, { cause: error });
  }
  const problem = jwk && typeof jwk === 'object' ? spec.check(jwk) : 'not a JSON object';
  if (problem) throw new AuthError('ERR_KEY_FILE', `${path}: ${problem}`);
  return jwk;
}

/** Publishes a freshly generated key unless another process published one first. */
function publishGenerated(spec: KeySpec, dir: string, key: KeyObject, created: string[]): void {
  if (publishOnce(join(dir, spec.file), `${JSON.stringify(key.export({ format: 'jwk' }))}\n`)) {
    fsyncFolder(dir);
    created.push(join(dir, spec.file));
  }
}

function loadKey(spec: KeySpec, dir: string): SigningKey {
  const file = join(dir, spec.file);
  const privateJwk = readKeyFile(spec, file);
  let privateObject: KeyObject;
  try {
    privateObject = createPrivateKey({ key: privateJwk, format: 'jwk' });
  } catch (error) {
    throw new AuthError('ERR_KEY_FILE', `${file}: not a usable private key (${(error as Error).message})`, { cause: error });
  }
  const publicObject = createPublicKey(privateObject);
  const publicJwkRaw = publicObject.export({ format: 'jwk' });
  const kid = jwkThumbprint(publicJwkRaw);
  const publicJwk: PublicJwk = { ...(publicJwkRaw as Omit<PublicJwk, 'kid' | 'alg' | 'use'>), kid, alg: spec.alg, use: 'sig' };
  return {
    alg: spec.alg,
    kid,
    file,
    privateKey: privateObject.toCryptoKey(spec.webCrypto.sign, false, ['sign']),
    publicKey: publicObject.toCryptoKey(spec.webCrypto.verify, true, ['verify']),
    publicJwk,
  };
}

/**
 * Both key pairs of the issuer. A key still being generated (first start, background mode) is
 * missing from `byAlg` until `ready` settles; `signingKey(alg)` waits for it.
 */
export class KeyRing {
  readonly dir: string;
  readonly byAlg: Partial<Record<TokenAlgorithm, SigningKey>> = {};
  readonly byKid = new Map<string, SigningKey>();
  /** files generated so far (empty when every key already existed) */
  readonly created: string[] = [];
  /** settles when every key is loaded; rejects (ERR_KEY_FILE) when a background generation failed */
  readonly ready: Promise<void>;

  private constructor(dir: string, background: boolean) {
    this.dir = dir;
    const pending: Promise<void>[] = [];
    for (const spec of SPECS) {
      const file = join(dir, spec.file);
      if (existsSync(file)) {
        this.add(loadKey(spec, dir));
      } else if (background && spec.generateAsync) {
        pending.push(
          spec.generateAsync().then(
            (key) => {
              publishGenerated(spec, dir, key, this.created);
              this.add(loadKey(spec, dir));
            },
            (error: unknown) => {
              throw new AuthError('ERR_KEY_FILE', `generating the ${spec.alg} key for ${file} failed: ${(error as Error).message}`, { cause: error });
            },
          ),
        );
      } else {
        publishGenerated(spec, dir, spec.generate(), this.created);
        this.add(loadKey(spec, dir));
      }
    }
    this.ready = Promise.all(pending).then(() => undefined);
    this.ready.catch(() => undefined); // handled by whoever awaits it; never an unhandled rejection
  }

  /**
   * Loads both key pairs from `dir`, generating what is missing. Throws ERR_KEY_FILE naming the
   * file. With `background`, a missing RSA key is generated off the main thread (see `ready`).
   */
  static open(dir: string, options: { background?: boolean } = {}): KeyRing {
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
    } catch (error) {
      throw new AuthError('ERR_KEY_FILE', `cannot create the keys folder ${dir}: ${(error as Error).message}`, { cause: error });
    }
    if (!statSync(dir).isDirectory()) throw new AuthError('ERR_KEY_FILE', `${dir} is not a folder`);
    return new KeyRing(dir, options.background === true);
  }

  /** The key for `alg`, which must be loaded already (tests, benches, the synchronous path). */
  require(alg: TokenAlgorithm): SigningKey {
    const key = this.byAlg[alg];
    if (!key) throw new AuthError('ERR_KEY_FILE', `the ${alg} key is not loaded yet`);
    return key;
  }

  /** The key for `alg`, waiting for a background generation if needed. */
  async signingKey(alg: TokenAlgorithm): Promise<SigningKey> {
    const key = this.byAlg[alg];
    if (key) return key;
    await this.ready;
    return this.require(alg);
  }

  /** The JWKS document: both public keys, each with its alg, use and kid (waits for pending keys). */
  async jwks(): Promise<{ keys: PublicJwk[] }> {
    await this.ready;
    return { keys: TOKEN_ALGORITHMS.map((alg) => this.require(alg).publicJwk) };
  }

  private add(key: SigningKey): void {
    this.byAlg[key.alg] = key;
    this.byKid.set(key.kid, key);
  }
}

/** Synchronous: both key pairs loaded or generated before it returns. */
export function loadKeyRing(dir: string): KeyRing {
  return KeyRing.open(dir);
}
