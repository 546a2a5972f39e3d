/**
 * Package and tarball names are the only user input that becomes a path, so every path this
 * plugin touches is derived here, validated, and checked to stay inside the storage root.
 */
import { isAbsolute, relative, resolve, sep } from 'node:path';
import semver from 'semver';
import { ClearingMemo } from '../registry-core/bounded-cache';
import { StorageError } from './errors';

const MAX_NAME_LENGTH = 214;
// npm's rules for a name segment: URL-safe, no leading dot or underscore. Uppercase is only
// accepted when reading (old packages adopted from an existing storage may have it).
const SEGMENT_WRITE = /^[a-z0-9~-][a-z0-9._~-]*$/;
const SEGMENT_READ = /^[a-zA-Z0-9~-][a-zA-Z0-9._~-]*$/;
const RESERVED = new Set(['node_modules', 'favicon.ico', '__proto__', 'constructor', 'prototype']);
// the shape of a version inside a stored tarball name (read side: adopted folders keep theirs)
const STORED_VERSION = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$/;

export interface ParsedName {
  name: string;
  scope: string | null; // '@scope' or null
  bare: string; // the unscoped part, which also prefixes tarball names
}

export type NameMode = 'read' | 'write';

function badName(name: string, why: string): StorageError {
  return new StorageError('ERR_BAD_NAME', `invalid package name ${JSON.stringify(name)}: ${why}`);
}

export function parsePackageName(name: unknown, mode: NameMode = 'write'): ParsedName {
  if (typeof name !== 'string' || name.length === 0) throw badName(String(name), 'empty');
  if (name.length > MAX_NAME_LENGTH) throw badName(name.slice(0, 40) + '…', `longer than ${MAX_NAME_LENGTH} characters`);
  const segment = mode === 'write' ? SEGMENT_WRITE : SEGMENT_READ;
  const parts = name.split('/');
  let scope: string | null = null;
  let bare: string;
  if (parts.length === 1) {
    bare = parts[0];
  } else if (parts.length === 2 && parts[0].startsWith('@')) {
    scope = parts[0];
    bare = parts[1];
    const scopeName = scope.slice(1);
    if (!segment.test(scopeName) || RESERVED.has(scopeName.toLowerCase())) throw badName(name, 'bad scope');
  } else {
    throw badName(name, parts.length > 2 ? 'too many "/"' : 'only a scope may precede "/"');
  }
  if (!segment.test(bare)) {
    throw badName(name, mode === 'write' ? 'use lowercase letters, digits, "-", ".", "_", "~"; no leading "." or "_"' : 'illegal characters');
  }
  if (RESERVED.has(bare.toLowerCase())) throw badName(name, 'reserved name');
  return { name, scope, bare };
}

/** Valid read-mode parses by name (a pure function of the text): bounded, rebuilt when full. */
const readParses = new ClearingMemo<string, ParsedName>(10_000);

/**
 * parsePackageName(name, 'read'), remembered for valid names: every cache-hit GET parses its
 * package's name for the stamp (≈ 1 µs of split and regex tests per hit; issue 17). Frozen, as it
 * is shared; an invalid name throws every time, exactly as parsePackageName does.
 */
export function parseReadName(name: string): ParsedName {
  const known = readParses.get(name);
  if (known !== undefined) return known;
  const parsed = Object.freeze(parsePackageName(name, 'read'));
  readParses.set(name, parsed);
  return parsed;
}

const MAX_VERSION_LENGTH = 256;

/**
 * A version that may be published: valid semver in its own canonical form (`semver.valid(v) === v`),
 * so no build metadata, no `v`/`=` prefix, no spaces. npm's libnpmpublish sends
 * `semver.clean(version)`, i.e. `npm publish` of `1.0.1+b` publishes `1.0.1`; a body that still
 * carries `+b` is refused (400), never stripped here: the attachment name, the tarball URL and
 * the dist-tags all name the version, and rewriting them would store something the client did
 * not send. Verdaccio itself asserts `isNameValid("<name>-1.0.1+b.tgz")` inside a storage
 * callback, which ended the process.
 */
export function isValidVersion(version: unknown): version is string {
  return typeof version === 'string' && version.length <= MAX_VERSION_LENGTH && semver.valid(version) === version;
}

/** Why `version` cannot be published, or null when it can (the message names the canonical form). */
export function versionProblem(version: unknown): string | null {
  if (isValidVersion(version)) return null;
  if (typeof version !== 'string' || version.length > MAX_VERSION_LENGTH) return `${JSON.stringify(version)?.slice(0, 80)} is not a semver version`;
  const canonical = semver.valid(version);
  const shown = JSON.stringify(version.length > 80 ? `${version.slice(0, 80)}…` : version);
  if (canonical === null) return `${shown} is not a semver version`;
  if (semver.parse(version)?.build.length) {
    return `${shown} carries build metadata, which is not part of a published version (npm strips it: publish ${JSON.stringify(canonical)})`;
  }
  return `${shown} is not in canonical semver form (publish ${JSON.stringify(canonical)})`;
}

/** Anything semver can read as a version (with build metadata, a `v` prefix…): never a dist-tag name. */
export function readsAsVersion(text: string): boolean {
  return semver.valid(text) !== null;
}

/** `<unscoped-name>-<semver>.tgz` and nothing else: temp files (`.tmp-…`) can never pass. */
export function parseTarballName(pkg: ParsedName, fileName: unknown): { fileName: string; version: string } {
  if (typeof fileName !== 'string' || !fileName.endsWith('.tgz') || !fileName.startsWith(`${pkg.bare}-`)) {
    throw new StorageError('ERR_BAD_NAME', `invalid tarball name ${JSON.stringify(fileName)} for ${pkg.name}: expected ${pkg.bare}-<version>.tgz`);
  }
  const version = fileName.slice(pkg.bare.length + 1, -'.tgz'.length);
  if (version.length > MAX_VERSION_LENGTH || !STORED_VERSION.test(version)) {
    throw new StorageError('ERR_BAD_NAME', `invalid tarball name ${JSON.stringify(fileName)}: ${JSON.stringify(version)} is not a semver version`);
  }
  return { fileName, version };
}

// the one rule for the file a `dist.tarball` URL names lives in the core (the dashboard needs it too)
export { tarballFileOf } from '../registry-core/index';

/** An absolute http(s) URL: Verdaccio's packument route calls `new URL()` on every stored dist.tarball inside a storage callback. */
export function isAbsoluteHttpUrl(url: string): boolean {
  try {
    const { protocol } = new URL(url);
    return protocol === 'http:' || protocol === 'https:';
  } catch {
    return false;
  }
}

export function tarballNameFor(pkg: ParsedName, version: string): string {
  return `${pkg.bare}-${version}.tgz`;
}

/** Resolves segments under root and refuses anything that would land outside it. */
export function insideRoot(root: string, ...segments: string[]): string {
  const target = resolve(root, ...segments);
  const rel = relative(root, target);
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel) || rel.split(sep).includes('..')) {
    throw new StorageError('ERR_BAD_NAME', `path ${JSON.stringify(segments.join('/'))} leaves the storage folder`);
  }
  return target;
}

export function packageDirOf(root: string, pkg: ParsedName): string {
  return pkg.scope ? insideRoot(root, pkg.scope, pkg.bare) : insideRoot(root, pkg.bare);
}
