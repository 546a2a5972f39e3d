/**
 * package-lock.json / npm-shrinkwrap.json, lockfileVersion 2 and 3: the `packages` map, keyed by
 * install path (`node_modules/a/node_modules/@s/b`). Version 1 has no `packages` map and is refused
 * with the fix (`npm install` rewrites it as v3).
 */
import { LockfileError, PackageSet, isObject, type ParsedLockfile } from './types';

const LAST_NODE_MODULES = 'node_modules/';

export function parseNpmLockfile(text: string): ParsedLockfile {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (error) {
    throw new LockfileError(`package-lock.json is not JSON: ${(error as Error).message}`);
  }
  if (!isObject(doc)) throw new LockfileError('package-lock.json must be a JSON object');
  const version = doc.lockfileVersion;
  if (version !== 2 && version !== 3) {
    throw new LockfileError(
      `package-lock.json lockfileVersion ${JSON.stringify(version)} is not supported (2 or 3; run \`npm install\` once to upgrade a v1 lockfile)`,
    );
  }
  if (!isObject(doc.packages)) throw new LockfileError('package-lock.json has no "packages" object');
  const set = new PackageSet();
  for (const [path, entry] of Object.entries(doc.packages)) {
    if (path === '') continue; // the project itself
    if (!isObject(entry)) throw new LockfileError(`package-lock.json packages["${path}"] must be an object`);
    const at = path.lastIndexOf(LAST_NODE_MODULES);
    if (at === -1) {
      set.skip(path, 'a workspace folder, not a registry package');
      continue;
    }
    if (entry.link === true) {
      set.skip(path, 'a link to a local folder');
      continue;
    }
    // an alias (`"x": "npm:y@1"`) keeps the real name in `name`; otherwise the folder is the name
    const name = typeof entry.name === 'string' ? entry.name : path.slice(at + LAST_NODE_MODULES.length);
    if (typeof entry.version !== 'string') {
      set.skip(path, 'no version');
      continue;
    }
    const resolved = typeof entry.resolved === 'string' ? entry.resolved : undefined;
    if (resolved !== undefined && !/^https?:\/\//.test(resolved)) {
      set.skip(path, `resolved from ${resolved.split(':')[0]}:, not a registry`);
      continue;
    }
    set.add(path, { name, version: entry.version, ...(typeof entry.integrity === 'string' ? { integrity: entry.integrity } : {}) });
  }
  return set.result('npm');
}
