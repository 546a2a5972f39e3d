/**
 * `registry doctor`: read-only checks of a registry folder, one line each with a fix hint
 * (docs/backup.md, "doctor"). Writes nothing: registry.lockb is read, not opened for repair (a
 * torn last record is reported, not cut), writability is asked of the kernel (access W_OK), key
 * files are parsed, not generated.
 */
import { createPrivateKey } from 'node:crypto';
import { accessSync, constants, existsSync, readdirSync, readFileSync, statSync, statfsSync } from 'node:fs';
import { join } from 'node:path';
import {
  CURRENT_FORMAT_VERSION,
  LEGACY_FORMAT_VERSION,
  hasFeature,
  inspectConfigFile,
  keyFromFile,
  loadRegistrySettings,
  resolveUpstream,
  scanRecords,
} from '../../plugins/registry-core/index';
import { LOCKS_DIR, TEMP_PREFIX, UPSTREAM_CACHE_DIR, abandonedTempFiles, isAbandonedTemp, pidAlive, verifyStorage } from '../../plugins/verdaccio-registry-storage/offline-tools';
import type { StateLayout } from './state-layout';

export interface DoctorCheck {
  name: string;
  ok: boolean;
  /** what was found */
  detail: string;
  /** what to do about a failure */
  fix?: string;
}

export interface DoctorOptions {
  env?: Record<string, string | undefined>;
  /** upstream probe timeout (default 5 s) */
  upstreamTimeoutMs?: number;
  /** free space below this fails (default 1 GiB or 5 % of the file system, whichever is smaller) */
  minFreeBytes?: number;
}

/** The key files the auth part keeps in keys/ (one per algorithm; docs/identity.md). */
const AUTH_KEY_FILES = ['ed25519.private.jwk.json', 'rsa-2048.private.jwk.json'];
const SIGNING_KEY_FILE = /^key-\d{1,9}\.json$/;
/** a lock directory untouched this long belongs to nobody (the store's stale limit is 10 s, the core's 5 s) */
const STALE_LOCK_MS = 30_000;

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function configCheck(layout: StateLayout): { check: DoctorCheck; offline: boolean } {
  const result = inspectConfigFile(layout.lockbPath);
  if (!result.ok) {
    return {
      check: { name: 'config', ok: false, detail: result.error.message, fix: result.error.hint ?? 'run `registry config repair`' },
      offline: false,
    };
  }
  const { fields } = result;
  const offline = hasFeature(fields, 'OFFLINE');
  if (fields.version === LEGACY_FORMAT_VERSION) {
    return {
      check: { name: 'config', ok: false, detail: `registry.lockb is format version 0 (legacy): its index is not trusted`, fix: 'start the registry once: it migrates a version 0 file on open' },
      offline,
    };
  }
  if (fields.version !== CURRENT_FORMAT_VERSION) {
    return { check: { name: 'config', ok: false, detail: `registry.lockb format version ${fields.version} is unknown to this registry`, fix: 'run the registry version that wrote it' }, offline };
  }
  return { check: { name: 'config', ok: true, detail: `registry.lockb header verifies (magic, CRC-8 check byte; format version ${fields.version})` }, offline };
}

function indexChecks(layout: StateLayout): DoctorCheck[] {
  if (!existsSync(layout.lockbPath)) return [];
  let torn = false;
  const checks: DoctorCheck[] = [];
  try {
    const scan = scanRecords(readFileSync(layout.lockbPath), layout.lockbPath);
    torn = scan.tail !== null;
    checks.push(
      scan.tail
        ? { name: 'index', ok: false, detail: `registry.lockb ends in a damaged record: ${scan.tail.reason} (${scan.tail.droppedBytes} bytes)`, fix: 'start the registry (it cuts a torn last record), or run `registry config rebuild-index` with it stopped' }
        : { name: 'index', ok: true, detail: `${scan.records.length} index records verify` },
    );
  } catch (error) {
    return [{ name: 'index', ok: false, detail: message(error), fix: 'stop the registry and run `registry config rebuild-index`' }];
  }
  if (!existsSync(layout.storageDir)) {
    checks.push({ name: 'storage', ok: false, detail: `storage folder ${layout.storageDir} does not exist`, fix: 'check storage: in config.yaml, or restore a backup' });
    return checks;
  }
  // with a torn tail PackageIndex.open would cut it (a write): compare without the index then
  const problems = verifyStorage(layout.storageDir, torn ? undefined : layout.lockbPath);
  if (problems.length === 0) {
    checks.push({ name: 'storage', ok: true, detail: 'every version has its tarball with matching integrity; the index describes exactly what is stored' });
  } else {
    for (const problem of problems.slice(0, 50)) {
      checks.push({
        name: 'storage',
        ok: false,
        detail: problem,
        fix: /registry\.lockb/.test(problem)
          ? 'stop the registry and run `registry config rebuild-index` (start-up also rebuilds it)'
          : /tarball .* missing|tarball (sha512|sha1)/.test(problem)
            ? 'restore the package from a backup (`registry restore`), or unpublish that version'
            : /temp file/.test(problem)
              ? 'start the registry (it sweeps temp files of dead processes), or delete the file'
              : 'fix the package.json by hand or restore the package from a backup',
      });
    }
    if (problems.length > 50) checks.push({ name: 'storage', ok: false, detail: `… and ${problems.length - 50} more problems`, fix: 'restore from a backup' });
  }
  return checks;
}

function keyChecks(layout: StateLayout): DoctorCheck[] {
  const checks: DoctorCheck[] = [];
  const auth: string[] = [];
  const authProblems: string[] = [];
  for (const file of AUTH_KEY_FILES) {
    const path = join(layout.keysDir, file);
    if (!existsSync(path)) continue;
    try {
      const mode = statSync(path).mode & 0o777;
      if ((mode & 0o077) !== 0) throw new Error(`mode ${mode.toString(8).padStart(4, '0')}, must be 0600 (chmod 600 ${path})`);
      createPrivateKey({ key: JSON.parse(readFileSync(path, 'utf8')) as import('node:crypto').JsonWebKey, format: 'jwk' });
      auth.push(file);
    } catch (error) {
      authProblems.push(`${path}: ${message(error)}`);
    }
  }
  if (authProblems.length > 0) checks.push({ name: 'keys', ok: false, detail: authProblems.join('; '), fix: 'restore keys/ from a backup (a new key invalidates every token)' });
  else if (auth.length === 0) checks.push({ name: 'keys', ok: false, detail: `no token signing key in ${layout.keysDir}`, fix: 'start the registry (it generates them; outstanding tokens are then invalid) or restore keys/ from a backup' });
  else checks.push({ name: 'keys', ok: true, detail: `token keys load: ${auth.join(', ')}` });

  const signing = existsSync(layout.signingKeysDir) ? readdirSync(layout.signingKeysDir).filter((name) => SIGNING_KEY_FILE.test(name)) : [];
  const signingProblems: string[] = [];
  for (const file of signing) {
    try {
      keyFromFile(join(layout.signingKeysDir, file));
    } catch (error) {
      signingProblems.push(message(error));
    }
  }
  const signingOff = layout.mapping.signing === false;
  if (signingProblems.length > 0) checks.push({ name: 'signing-keys', ok: false, detail: signingProblems.join('; '), fix: 'restore signing-keys/ from a backup' });
  else if (signing.length === 0 && !signingOff) checks.push({ name: 'signing-keys', ok: false, detail: `no registry signing key in ${layout.signingKeysDir}`, fix: 'start the registry (it generates one) or restore signing-keys/ from a backup' });
  else checks.push({ name: 'signing-keys', ok: true, detail: signingOff ? 'signing: false (versions are served unsigned)' : `${signing.length} signing key(s) load` });
  return checks;
}

function writableCheck(layout: StateLayout): DoctorCheck {
  try {
    accessSync(layout.storageDir, constants.W_OK);
    accessSync(layout.lockbPath, constants.R_OK | constants.W_OK);
    return { name: 'writable', ok: true, detail: `${layout.storageDir} and registry.lockb are writable` };
  } catch (error) {
    return { name: 'writable', ok: false, detail: message(error), fix: 'give the registry user write access (chown/chmod), or remount read-write' };
  }
}

function diskCheck(layout: StateLayout, minFree?: number): DoctorCheck {
  try {
    const stats = statfsSync(existsSync(layout.storageDir) ? layout.storageDir : layout.configDir);
    const free = Number(stats.bavail) * Number(stats.bsize);
    const total = Number(stats.blocks) * Number(stats.bsize);
    const limit = minFree ?? Math.min(1024 ** 3, total * 0.05);
    const text = `${(free / 1024 ** 3).toFixed(2)} GiB free of ${(total / 1024 ** 3).toFixed(2)} GiB`;
    return free >= limit
      ? { name: 'disk', ok: true, detail: text }
      : { name: 'disk', ok: false, detail: `${text} (below ${(limit / 1024 ** 2).toFixed(0)} MiB)`, fix: 'free space on that file system: a full disk refuses publishes (507)' };
  } catch (error) {
    return { name: 'disk', ok: false, detail: message(error), fix: 'check the storage folder exists' };
  }
}

async function upstreamCheck(layout: StateLayout, offline: boolean, env: Record<string, string | undefined>, timeoutMs: number): Promise<DoctorCheck> {
  if (offline) return { name: 'upstream', ok: true, detail: 'OFFLINE flag set: not contacted' };
  let registryUrl: string | undefined;
  try {
    registryUrl = loadRegistrySettings({ configPath: layout.configPath, lockbPath: layout.lockbPath, env }).registryUrl;
  } catch {
    registryUrl = undefined;
  }
  const listen = typeof layout.mapping.listen === 'string' ? [layout.mapping.listen] : [];
  const resolution = await resolveUpstream({ config: layout.mapping, env, self: { registryUrl, listen }, cwd: layout.configDir });
  if (!resolution.ok) return { name: 'upstream', ok: false, detail: resolution.error, fix: 'fix uplinks: in config.yaml or REGISTRY_UPSTREAM_URL' };
  if (resolution.upstream === null) return { name: 'upstream', ok: true, detail: resolution.disabled };
  const { url, authorization } = resolution.upstream;
  try {
    const response = await fetch(`${url}/-/ping`, {
      headers: authorization ? { authorization } : {},
      signal: AbortSignal.timeout(timeoutMs),
    });
    await response.body?.cancel();
    // any HTTP answer means it is reachable; a registry without /-/ping says 404
    return response.status < 500
      ? { name: 'upstream', ok: true, detail: `${url} answers (${response.status})` }
      : { name: 'upstream', ok: false, detail: `${url} answers ${response.status}`, fix: 'the upstream is failing; cached packages are still served (stale)' };
  } catch (error) {
    const cause = (error as { cause?: unknown }).cause;
    return {
      name: 'upstream',
      ok: false,
      detail: `${url} is unreachable: ${message(cause ?? error)}`,
      fix: 'check the network / proxy, or set the OFFLINE flag (`registry config toggle OFFLINE`) to serve only the cache',
    };
  }
}

/** Lock directories nobody refreshes and temp files of dead processes. */
function strayCheck(layout: StateLayout): DoctorCheck {
  const strays: string[] = [];
  const now = Date.now();
  const locks = join(layout.storageDir, LOCKS_DIR);
  if (existsSync(locks)) {
    for (const entry of readdirSync(locks)) {
      if (!entry.endsWith('.lock')) continue;
      const full = join(locks, entry);
      let owner: number | undefined;
      try {
        owner = Number(readFileSync(full.replace(/\.lock$/, '.owner'), 'utf8').split('\n')[1]);
      } catch {
        owner = undefined;
      }
      const old = now - statSync(full).mtimeMs > STALE_LOCK_MS;
      if ((owner !== undefined && !pidAlive(owner)) || old) strays.push(full);
    }
  }
  const lockbLock = `${layout.lockbPath}.lock`;
  if (existsSync(lockbLock) && now - statSync(lockbLock).mtimeMs > STALE_LOCK_MS) strays.push(lockbLock);
  // temp files whose process is gone or older than an hour (the start-up sweep's rule), in the
  // storage and its upstream cache; backup/restore staging folders in the registry folder
  strays.push(...abandonedTempFiles(layout.storageDir), ...abandonedTempFiles(join(layout.storageDir, UPSTREAM_CACHE_DIR)));
  const top = existsSync(layout.configDir) ? readdirSync(layout.configDir) : [];
  for (const name of top) if (name.startsWith(TEMP_PREFIX) && isAbandonedTemp(join(layout.configDir, name))) strays.push(join(layout.configDir, name));
  if (strays.length === 0) return { name: 'strays', ok: true, detail: 'no stale lock or temp file' };
  return {
    name: 'strays',
    ok: false,
    detail: `${strays.length} left by dead processes: ${strays.slice(0, 5).join(', ')}${strays.length > 5 ? ', …' : ''}`,
    fix: 'start the registry (it sweeps temp files and takes over dead locks), or remove them with the registry stopped',
  };
}

export async function runDoctor(layout: StateLayout, options: DoctorOptions = {}): Promise<DoctorCheck[]> {
  const env = options.env ?? process.env;
  const checks: DoctorCheck[] = [];
  checks.push(
    layout.hasConfig
      ? { name: 'config.yaml', ok: true, detail: layout.configPath }
      : { name: 'config.yaml', ok: false, detail: `${layout.configPath} does not exist`, fix: 'run doctor in the registry folder or pass --config' },
  );
  const { check, offline } = configCheck(layout);
  checks.push(check);
  checks.push(...indexChecks(layout));
  checks.push(...keyChecks(layout));
  checks.push(writableCheck(layout));
  checks.push(await upstreamCheck(layout, offline, env, options.upstreamTimeoutMs ?? 5_000));
  checks.push(diskCheck(layout, options.minFreeBytes));
  checks.push(strayCheck(layout));
  return checks;
}

export function formatChecks(checks: DoctorCheck[]): string {
  const width = Math.max(...checks.map((c) => c.name.length));
  return checks
    .map((c) => `${c.ok ? 'PASS' : 'FAIL'}  ${c.name.padEnd(width)}  ${c.detail}${c.ok || !c.fix ? '' : `\n      ${' '.repeat(width)}  fix: ${c.fix}`}`)
    .join('\n');
}
