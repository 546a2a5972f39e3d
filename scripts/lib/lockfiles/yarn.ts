/**
 * yarn.lock in both formats. Classic (v1, `# yarn lockfile v1`) is parsed by Yarn's own parser
 * (`@yarnpkg/lockfile`); Berry (Yarn 2+, a YAML document with `__metadata`) by js-yaml, where each
 * entry's `resolution` (`name@npm:1.2.3`) names the real package, aliases included.
 */
import { load } from 'js-yaml';
import { LockfileError, PackageSet, isObject, splitNameAt, type ParsedLockfile } from './types';

// Yarn's parser ships without type declarations; this is its whole surface we use.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const yarnLockfile = require('@yarnpkg/lockfile') as { parse(text: string): { type: string; object: unknown } };

export function isBerryLockfile(text: string): boolean {
  return /^__metadata:/m.test(text);
}

export function parseYarnLockfile(text: string): ParsedLockfile {
  return isBerryLockfile(text) ? parseBerry(text) : parseClassic(text);
}

function parseClassic(text: string): ParsedLockfile {
  let parsed: { type: string; object: unknown };
  try {
    parsed = yarnLockfile.parse(text);
  } catch (error) {
    throw new LockfileError(`yarn.lock (v1) does not parse: ${(error as Error).message}`);
  }
  if (parsed.type !== 'success') throw new LockfileError(`yarn.lock (v1) has merge conflict markers (${parsed.type}): resolve them first`);
  if (!isObject(parsed.object)) throw new LockfileError('yarn.lock (v1) must hold entries');
  const set = new PackageSet();
  for (const [key, entry] of Object.entries(parsed.object)) {
    if (!isObject(entry) || typeof entry.version !== 'string') throw new LockfileError(`yarn.lock (v1) entry "${key}" has no version`);
    const spec = splitNameAt(key);
    if (!spec) throw new LockfileError(`yarn.lock (v1) key "${key}" is not name@range`);
    let name = spec.name;
    // an alias `x@npm:real@^1`: the real name is after npm:
    if (spec.rest.startsWith('npm:')) name = splitNameAt(spec.rest.slice(4))?.name ?? spec.rest.slice(4);
    const resolved = typeof entry.resolved === 'string' ? entry.resolved : undefined;
    if (resolved === undefined || !/^https?:\/\//.test(resolved)) {
      set.skip(key, resolved === undefined ? 'no resolved URL' : `resolved from ${resolved.split(':')[0]}:, not a registry`);
      continue;
    }
    set.add(key, { name, version: entry.version, ...(typeof entry.integrity === 'string' ? { integrity: entry.integrity } : {}) });
  }
  return set.result('yarn-v1');
}

function parseBerry(text: string): ParsedLockfile {
  let doc: unknown;
  try {
    doc = load(text);
  } catch (error) {
    throw new LockfileError(`yarn.lock (berry) is not YAML: ${(error as Error).message.split('\n')[0]}`);
  }
  if (!isObject(doc) || !isObject(doc.__metadata)) throw new LockfileError('yarn.lock (berry) has no __metadata');
  const set = new PackageSet();
  for (const [key, entry] of Object.entries(doc)) {
    if (key === '__metadata') continue;
    if (!isObject(entry) || typeof entry.resolution !== 'string') throw new LockfileError(`yarn.lock (berry) entry "${key}" has no resolution`);
    const spec = splitNameAt(entry.resolution);
    if (!spec) throw new LockfileError(`yarn.lock (berry) resolution "${entry.resolution}" is not name@protocol:reference`);
    if (!spec.rest.startsWith('npm:')) {
      set.skip(key, `${spec.rest.split(':')[0]}: resolution, not the registry`);
      continue;
    }
    set.add(key, { name: spec.name, version: spec.rest.slice(4) });
  }
  return set.result('yarn-berry');
}
