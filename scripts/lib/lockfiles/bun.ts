/**
 * bun.lock (the text lockfile of Bun 1.2+): JSON with trailing commas (JSONC). `packages` maps a
 * key to a tuple whose first item is the resolution `name@version` (or `name@workspace:…`,
 * `name@file:…`, `name@github:…` for non-registry sources) and, for registry packages, whose last
 * string item is the integrity.
 */
import { LockfileError, PackageSet, isObject, splitNameAt, type ParsedLockfile } from './types';

/** Removes // and /* comments and trailing commas outside strings, so JSON.parse reads JSONC. */
export function stripJsonc(text: string): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j + 1;
    } else if (c === '/' && text[i + 1] === '/') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (c === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      i = end === -1 ? text.length : end + 2;
    } else if (c === ',') {
      let j = i + 1;
      while (j < text.length && /\s/.test(text[j])) j++;
      if (text[j] !== '}' && text[j] !== ']') out += c;
      i++;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

export function parseBunLockfile(text: string): ParsedLockfile {
  let doc: unknown;
  try {
    doc = JSON.parse(stripJsonc(text));
  } catch (error) {
    throw new LockfileError(`bun.lock is not JSON(C): ${(error as Error).message}`);
  }
  if (!isObject(doc)) throw new LockfileError('bun.lock must be an object');
  if (typeof doc.lockfileVersion !== 'number') throw new LockfileError('bun.lock has no numeric "lockfileVersion" (a binary bun.lockb is not supported: run `bun install --save-text-lockfile`)');
  if (doc.packages === undefined) return new PackageSet().result('bun');
  if (!isObject(doc.packages)) throw new LockfileError('bun.lock "packages" must be an object');
  const set = new PackageSet();
  for (const [key, entry] of Object.entries(doc.packages)) {
    if (!Array.isArray(entry) || typeof entry[0] !== 'string') throw new LockfileError(`bun.lock packages["${key}"] must be an array starting with "name@version"`);
    const spec = splitNameAt(entry[0]);
    if (!spec) throw new LockfileError(`bun.lock packages["${key}"]: "${entry[0]}" is not name@version`);
    const source = /^([a-z+]+):/.exec(spec.rest);
    if (source) {
      set.skip(key, `${source[1]}: source, not a registry`);
      continue;
    }
    const last = entry[entry.length - 1];
    const integrity = entry.length >= 4 && typeof last === 'string' && /^sha\d+-/.test(last) ? last : undefined;
    set.add(key, { name: spec.name, version: spec.rest, ...(integrity ? { integrity } : {}) });
  }
  return set.result('bun');
}
