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
import diagnosticsChannel from 'node:diagnostics_channel';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, statSync, watch, type FSWatcher } from 'node:fs';
import { LISTEN_END_CHANNEL } from '../registry-core/server-channels';
import { createFileOnceSync } from '../registry-core/atomic-file';
import { basename, dirname, join } from 'node:path';
import { AuthError } from './errors';

import type { TokenAlgorithm } from '../registry-core/index';

export type { TokenAlgorithm };
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

/** The key files of the folder (the cluster shares exactly these, docs/cluster.md "Keys"). */
export const KEY_FILE_PATTERN = /^(ed25519|rsa-2048)\.private\.jwk\.json$/;

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

/** The private key files in the keys folder, one per algorithm. */
export const KEY_FILE_NAMES: readonly string[] = SPECS.map((spec) => spec.file);

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
  return createFileOnceSync(path, text, 0o600);
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

function loadKey(spec: KeySpec, dir: string): SigningKey & { fileText: string } {
  const file = join(dir, spec.file);
  const privateJwk = readKeyFile(spec, file);
  // what goes back to disk if the file disappears while we run (see KeyRing.checkOnDisk)
  const fileText = `${JSON.stringify(privateJwk)}\n`;
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
    fileText,
  };
}

/** What `KeyRing.checkOnDisk` found and did. */
export interface KeyDiskEvent {
  kind: 'restored' | 'conflict' | 'error';
  alg: TokenAlgorithm;
  file: string;
  message: string;
}

/** Background mode: when nothing has started the RSA generation (no server listened, nothing asked), it starts after this long. */
export const GENERATION_FALLBACK_MS = 2000;

/** How often the key files are checked besides the folder watch (which misses a removed folder). */
export const KEY_CHECK_INTERVAL_MS = 5000;

/**
 * Both key pairs of the issuer. A key still being generated (first start, background mode) is
 * missing from `byAlg` until `loaded` settles; `signingKey(alg)` waits for it.
 *
 * In background mode the RSA generation (10–120 ms CPU on the thread pool) starts once the server
 * listens, not in the plugin constructor: on a first start it then no longer competes with the
 * rest of start-up for the cores (issue 17: first start). Whatever needs the key before that
 * (`signingKey`, `jwks`, `ready`) starts it at once; a process that never listens starts it
 * after GENERATION_FALLBACK_MS.
 */
export class KeyRing {
  readonly dir: string;
  readonly byAlg: Partial<Record<TokenAlgorithm, SigningKey>> = {};
  readonly byKid = new Map<string, SigningKey>();
  /** files generated so far (empty when every key already existed) */
  readonly created: string[] = [];
  /** settles when every key is loaded; rejects (ERR_KEY_FILE) when a background generation failed. Starts nothing. */
  readonly loaded: Promise<void>;
  /** starts a pending background generation (idempotent) */
  readonly #startGeneration: () => void;
  /** The key files as loaded: what is written back when one goes missing while running. */
  readonly #fileTexts = new Map<TokenAlgorithm, string>();
  /** Conflicts already reported (reported once each, not every check). */
  readonly #reported = new Set<string>();

  private constructor(dir: string, background: boolean) {
    this.dir = dir;
    const pending: Promise<void>[] = [];
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    this.#startGeneration = open;
    for (const spec of SPECS) {
      const file = join(dir, spec.file);
      if (existsSync(file)) {
        this.add(loadKey(spec, dir));
      } else if (background && spec.generateAsync) {
        const generateAsync = spec.generateAsync;
        pending.push(
          gate.then(generateAsync).then(
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
    this.loaded = Promise.all(pending).then(() => undefined);
    this.loaded.catch(() => undefined); // handled by whoever awaits it; never an unhandled rejection
    if (pending.length === 0) return;
    const onListen = (): void => open();
    diagnosticsChannel.subscribe(LISTEN_END_CHANNEL, onListen);
    const fallback = setTimeout(open, GENERATION_FALLBACK_MS);
    fallback.unref();
    void gate.then(() => {
      diagnosticsChannel.unsubscribe(LISTEN_END_CHANNEL, onListen);
      clearTimeout(fallback);
    });
  }

  /** `loaded`, starting a pending background generation now. */
  get ready(): Promise<void> {
    this.#startGeneration();
    return this.loaded;
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

  private add(key: SigningKey & { fileText: string }): void {
    const { fileText, ...signing } = key;
    this.#fileTexts.set(key.alg, fileText);
    this.byAlg[key.alg] = signing;
    this.byKid.set(key.kid, signing);
  }

  /**
   * The keys this process signs with must stay on disk, or the next start generates new ones and
   * every token issued meanwhile stops verifying (issue 11.11). A missing file (or folder) is
   * written back from memory, mode 0600 in a 0700 folder, with link(2) so a key another process
   * just published is never replaced. A file that now holds a different or unreadable key, or
   * one readable by others, is not touched — an operator put it there — but reported: the next
   * start would sign with it.
   */
  checkOnDisk(): KeyDiskEvent[] {
    const events: KeyDiskEvent[] = [];
    for (const spec of SPECS) {
      const text = this.#fileTexts.get(spec.alg);
      if (text === undefined) continue; // still being generated
      const file = join(this.dir, spec.file);
      if (!existsSync(file)) {
        try {
          mkdirSync(this.dir, { recursive: true, mode: 0o700 });
          if (publishOnce(file, text)) {
            fsyncFolder(this.dir);
            this.#reported.delete(file);
            events.push({ kind: 'restored', alg: spec.alg, file, message: `${file} was removed while running; written back from memory (kid ${this.byAlg[spec.alg]?.kid})` });
            continue;
          }
        } catch (error) {
          const message = `${file} was removed while running and cannot be written back: ${(error as Error).message}`;
          if (!this.#reported.has(message)) {
            this.#reported.add(message);
            events.push({ kind: 'error', alg: spec.alg, file, message });
          }
          continue;
        }
      }
      let problem: string | undefined;
      try {
        const jwk = readKeyFile(spec, file);
        if (`${JSON.stringify(jwk)}\n` !== text && jwkThumbprint(jwk) !== this.byAlg[spec.alg]?.kid) {
          problem = `${file} now holds another ${spec.alg} key (kid ${jwkThumbprint(jwk)}) than this process signs with (kid ${this.byAlg[spec.alg]?.kid}); left as it is — after a restart every token signed by the old key stops verifying`;
        }
      } catch (error) {
        problem = `${(error as Error).message}; left as it is — a restart would refuse to start`;
      }
      if (problem === undefined) this.#reported.delete(file);
      else if (!this.#reported.has(file)) {
        this.#reported.add(file);
        events.push({ kind: 'conflict', alg: spec.alg, file, message: problem });
      }
    }
    return events;
  }

  /**
   * Checks the key files whenever the folder (or its entry in the parent folder) changes
   * (fs.watch) and every `intervalMs` as a fallback; returns the function that stops all of it.
   * Watchers and timers never keep the process alive.
   */
  watchOnDisk(onEvent: (event: KeyDiskEvent) => void, intervalMs = KEY_CHECK_INTERVAL_MS): () => void {
    let watcher: FSWatcher | null = null;
    let stopped = false;
    let pending: NodeJS.Timeout | null = null;
    const run = (): void => {
      pending = null;
      if (stopped) return;
      for (const event of this.checkOnDisk()) onEvent(event);
      arm();
    };
    const soon = (): void => {
      if (pending === null && !stopped) pending = setTimeout(run, 20); // one check per burst of events
      pending?.unref();
    };
    const arm = (): void => {
      if (watcher !== null || stopped) return;
      try {
        watcher = watch(this.dir, { persistent: false }, soon);
        watcher.on('error', () => {
          watcher?.close();
          watcher = null;
          soon();
        });
      } catch {
        watcher = null; // the folder is gone: the next check writes it back and watches again
      }
    };
    arm();
    // the folder itself removed: its own watch just ends, the parent's reports the name
    let parentWatcher: FSWatcher | null = null;
    try {
      parentWatcher = watch(dirname(this.dir), { persistent: false }, (_event, name) => {
        if (name === null || name === basename(this.dir)) soon();
      });
      parentWatcher.on('error', () => parentWatcher?.close());
    } catch {
      parentWatcher = null; // the interval still checks
    }
    const timer = setInterval(() => {
      if (watcher !== null && !existsSync(this.dir)) {
        watcher.close();
        watcher = null;
      }
      run();
    }, intervalMs);
    timer.unref();
    return () => {
      stopped = true;
      clearInterval(timer);
      if (pending) clearTimeout(pending);
      watcher?.close();
      parentWatcher?.close();
    };
  }
}

/** Synchronous: both key pairs loaded or generated before it returns. */
export function loadKeyRing(dir: string): KeyRing {
  return KeyRing.open(dir);
}
