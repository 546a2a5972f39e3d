/**
 * pnpm-lock.yaml, lockfileVersion 9 (pnpm 9 and later): `packages` keyed by `name@version`
 * (`@scope/name@version`), each with `resolution.integrity` for registry packages. Peer-dependency
 * suffixes live in `snapshots`, not here; a v6-style leading `/` is tolerated.
 */
import { load } from 'js-yaml';
import { LockfileError, PackageSet, isObject, splitNameAt, type ParsedLockfile } from './types';

export function parsePnpmLockfile(text: string): ParsedLockfile {
  let doc: unknown;
  try {
    doc = load(text);
  } catch (error) {
    throw new LockfileError(`pnpm-lock.yaml is not YAML: ${(error as Error).message.split('\n')[0]}`);
  }
  if (!isObject(doc)) throw new LockfileError('pnpm-lock.yaml must be a YAML mapping');
  const major = Number.parseInt(String(doc.lockfileVersion ?? ''), 10);
  if (!(major >= 9)) {
    throw new LockfileError(`pnpm-lock.yaml lockfileVersion ${JSON.stringify(doc.lockfileVersion)} is not supported (9 or later; pnpm 9+ writes it)`);
  }
  const set = new PackageSet();
  if (doc.packages === undefined || doc.packages === null) return set.result('pnpm');
  if (!isObject(doc.packages)) throw new LockfileError('pnpm-lock.yaml "packages" must be a mapping');
  for (const [rawKey, entry] of Object.entries(doc.packages)) {
    const key = rawKey.replace(/^\//, '').replace(/\(.*\)$/, '');
    const spec = splitNameAt(key);
    if (!spec) throw new LockfileError(`pnpm-lock.yaml packages key "${rawKey}" is not name@version`);
    const resolution = isObject(entry) && isObject(entry.resolution) ? entry.resolution : undefined;
    if (resolution && (typeof resolution.type === 'string' || typeof resolution.tarball === 'string')) {
      set.skip(rawKey, `resolved from a ${String(resolution.type ?? 'tarball URL')}, not the registry`);
      continue;
    }
    const integrity = resolution && typeof resolution.integrity === 'string' ? resolution.integrity : undefined;
    set.add(rawKey, { name: spec.name, version: spec.rest, ...(integrity ? { integrity } : {}) });
  }
  return set.result('pnpm');
}
