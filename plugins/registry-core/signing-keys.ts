/**
 * The registry's own signing key (docs/signatures.md): ECDSA P-256, used for `dist.signatures`
 * and published at `GET /-/npm/v1/keys`. It belongs to the registry, not to the JWT issuer, so it
 * lives in the core (the storage part signs and serves; a shared backend would keep it here too).
 *
 * One JSON file per key in the keys folder (`<config dir>/signing-keys/key-<n>.json`, mode 0600; its own folder, `keys/` belongs to the auth plugin):
 * `{keyid, created, expires, privateKey}` (PKCS#8 PEM). A key signs only until `expires`; after
 * that it stays in the folder and in `/-/npm/v1/keys` so signatures made before still verify
 * (npm checks a signature's key against the version's publish time), and the next signing
 * generates key n+1. New files are created by link() (never replacing one), so two processes
 * starting at once end with one key, not two halves.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createFileOnceSync } from './atomic-file';
import { RegistryCoreError } from './errors';

export const SIGNING_KEY_TYPE = 'ecdsa-sha2-nistp256';
export const DEFAULT_SIGNING_KEY_DAYS = 365;
const DAY_MS = 86_400_000;
const FILE = /^key-(\d{1,9})\.json$/;
/** The key files of a signing-keys folder (the cluster shares exactly these, docs/cluster.md). */
export const SIGNING_KEY_FILE = FILE;

export interface SigningKey {
  keyid: string;
  created: number;
  expires: number;
  /** base64 SPKI DER, the `key` of `/-/npm/v1/keys` */
  publicKey: string;
  file: string;
  privateKey: KeyObject;
}

/** One entry of `GET /-/npm/v1/keys` (npm's registry format). */
export interface PublishedKey {
  keyid: string;
  keytype: typeof SIGNING_KEY_TYPE;
  scheme: typeof SIGNING_KEY_TYPE;
  key: string;
  expires: string | null;
}

export interface RegistrySignature {
  keyid: string;
  sig: string;
}

/** npm's key id: `SHA256:` + unpadded base64 of the sha256 of the SPKI DER. */
export function signingKeyId(spkiDer: Buffer): string {
  return `SHA256:${createHash('sha256').update(spkiDer).digest('base64').replace(/=+$/, '')}`;
}

/** Reads and checks one signing-key file (never writes): also used by `registry doctor`. */
export function keyFromFile(file: string): SigningKey {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new RegistryCoreError('ERR_CONFIG_FIELD', `${file}: not a readable signing key (${(error as Error).message})`, {
      hint: 'restore it from a backup, or move it aside: signatures made with it then no longer verify',
    });
  }
  const value = parsed as Record<string, unknown>;
  if (typeof value.privateKey !== 'string' || typeof value.created !== 'number' || typeof value.expires !== 'number') {
    throw new RegistryCoreError('ERR_CONFIG_FIELD', `${file}: a signing key needs privateKey, created and expires`);
  }
  const privateKey = createPrivateKey(value.privateKey);
  if (privateKey.asymmetricKeyType !== 'ec' || privateKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new RegistryCoreError('ERR_CONFIG_FIELD', `${file}: the signing key must be ECDSA P-256`);
  }
  const der = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
  return { keyid: signingKeyId(der), created: value.created, expires: value.expires, publicKey: der.toString('base64'), file, privateKey };
}

/** Writes `target` once (EEXIST: another writer won; false): the core's create-once rule. */
function createOnce(target: string, text: string): boolean {
  return createFileOnceSync(target, text, 0o600);
}

export interface SigningKeyRingOptions {
  /** how long a new key signs (docs/signatures.md: rotation) */
  keyDays?: number;
  /** frozen time in tests */
  now?: () => number;
}

export class SigningKeyRing {
  readonly dir: string;
  readonly keyDays: number;
  readonly #now: () => number;
  #keys: SigningKey[] = [];
  #stamp = '';

  private constructor(dir: string, options: SigningKeyRingOptions) {
    this.dir = dir;
    const days = options.keyDays ?? DEFAULT_SIGNING_KEY_DAYS;
    if (!Number.isFinite(days) || days <= 0 || days > 36_500) {
      throw new RegistryCoreError('ERR_CONFIG_FIELD', `signing key lifetime must be 1 to 36500 days (got ${JSON.stringify(options.keyDays)})`, { field: 'key_days' });
    }
    this.keyDays = days;
    this.#now = options.now ?? Date.now;
  }

  /** Loads every key of the folder (created 0700 if missing); generates one when none may sign. */
  static open(dir: string, options: SigningKeyRingOptions = {}): SigningKeyRing {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const ring = new SigningKeyRing(dir, options);
    ring.#reload();
    ring.active();
    return ring;
  }

  /** The keys folder's mtime changes whenever a key file is added or removed (by any process). */
  #reload(): void {
    const stat = statSync(this.dir, { bigint: true });
    const stamp = `${stat.ino}:${stat.mtimeNs}`;
    if (stamp === this.#stamp) return;
    const keys = readdirSync(this.dir)
      .filter((name) => FILE.test(name))
      .map((name) => keyFromFile(join(this.dir, name)));
    keys.sort((a, b) => a.created - b.created || a.file.localeCompare(b.file));
    this.#keys = keys;
    this.#stamp = stamp;
  }

  #nextFile(): string {
    let highest = 0;
    for (const name of readdirSync(this.dir)) {
      const match = FILE.exec(name);
      if (match) highest = Math.max(highest, Number(match[1]));
    }
    return join(this.dir, `key-${highest + 1}.json`);
  }

  /** The key that signs now (the newest unexpired one), generating a new one when the last expired. */
  active(): SigningKey {
    this.#reload();
    const now = this.#now();
    for (let i = this.#keys.length - 1; i >= 0; i--) if (this.#keys[i].expires > now) return this.#keys[i];
    for (let attempt = 0; attempt < 5; attempt++) {
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
      const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
      const text = `${JSON.stringify({ created: now, expires: now + Math.round(this.keyDays * DAY_MS), privateKey: pem }, null, 2)}\n`;
      createOnce(this.#nextFile(), text); // lost the race: the winner's key is read below
      this.#reload();
      for (let i = this.#keys.length - 1; i >= 0; i--) if (this.#keys[i].expires > now) return this.#keys[i];
    }
    throw new RegistryCoreError('ERR_CONFIG_FIELD', `${this.dir}: could not create a signing key that is valid now`);
  }

  /** Every key, old ones included (they verify what they signed while valid). */
  keys(): readonly SigningKey[] {
    this.#reload();
    return this.#keys;
  }

  /** ECDSA P-256 over SHA-256, DER, base64 — what npm's `dist.signatures[].sig` is. */
  sign(message: string): RegistrySignature {
    const key = this.active();
    return { keyid: key.keyid, sig: sign('sha256', Buffer.from(message, 'utf8'), key.privateKey).toString('base64') };
  }

  /** The body of `GET /-/npm/v1/keys`. */
  published(): { keys: PublishedKey[] } {
    return {
      keys: this.keys().map((key) => ({
        keyid: key.keyid,
        keytype: SIGNING_KEY_TYPE,
        scheme: SIGNING_KEY_TYPE,
        key: key.publicKey,
        expires: new Date(key.expires).toISOString(),
      })),
    };
  }
}

export function signingKeysDir(configDir: string, setting?: string): string {
  return setting === undefined ? join(configDir, 'signing-keys') : resolve(configDir, setting);
}

/**
 * The upstream part's seam (docs/signatures.md): proxied versions keep the upstream's own
 * `dist.signatures`, and a client verifies them with the keys of the registry it talks to — ours.
 * So `/-/npm/v1/keys` also lists what the provider registered here returns (the upstream's keys,
 * as its own `/-/npm/v1/keys` published them). One provider per registry.lockb.
 */
export type UpstreamKeysProvider = () => Promise<readonly PublishedKey[]> | readonly PublishedKey[];

const UPSTREAM_KEYS = Symbol.for('mycompany-registry:upstream-signing-keys');
type UpstreamHolder = { [UPSTREAM_KEYS]?: Map<string, UpstreamKeysProvider> };

export function registerUpstreamKeys(lockbPath: string, provider: UpstreamKeysProvider | null): void {
  const holder = globalThis as UpstreamHolder;
  const providers = (holder[UPSTREAM_KEYS] ??= new Map<string, UpstreamKeysProvider>());
  if (provider === null) providers.delete(resolve(lockbPath));
  else providers.set(resolve(lockbPath), provider);
}

export function upstreamKeysProvider(lockbPath: string): UpstreamKeysProvider | undefined {
  return (globalThis as UpstreamHolder)[UPSTREAM_KEYS]?.get(resolve(lockbPath));
}

/** Ours first; an upstream key is added unless its keyid is already listed (ours win). */
export function mergePublishedKeys(own: readonly PublishedKey[], upstream: readonly PublishedKey[]): PublishedKey[] {
  const seen = new Set(own.map((key) => key.keyid));
  const merged = [...own];
  for (const key of upstream) {
    if (typeof key?.keyid !== 'string' || typeof key.key !== 'string' || seen.has(key.keyid)) continue;
    seen.add(key.keyid);
    merged.push(key);
  }
  return merged;
}
