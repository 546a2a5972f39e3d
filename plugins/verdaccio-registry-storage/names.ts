/**
 * Package and tarball names are the only user input that becomes a path, so every path this
 * plugin touches is derived here, validated, and checked to stay inside the storage root.
 */
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { StorageError } from './errors';

const MAX_NAME_LENGTH = 214;
// npm's rules for a name segment: URL-safe, no leading dot or underscore. Uppercase is only
// accepted when reading (old packages adopted from an existing storage may have it).
const SEGMENT_WRITE = /^[a-z0-9~-][a-z0-9._~-]*$/;
const SEGMENT_READ = /^[a-zA-Z0-9~-][a-zA-Z0-9._~-]*$/;
const RESERVED = new Set(['node_modules', 'favicon.ico', '__proto__', 'constructor', 'prototype']);
// semver 2.0 (no leading zeros enforcement beyond what npm itself writes; no 'v' prefix)
const SEMVER = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$/;

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

export function isValidVersion(version: unknown): version is string {
  return typeof version === 'string' && version.length <= 256 && SEMVER.test(version);
}

/** `<unscoped-name>-<semver>.tgz` and nothing else: temp files (`.tmp-…`) can never pass. */
export function parseTarballName(pkg: ParsedName, fileName: unknown): { fileName: string; version: string } {
  if (typeof fileName !== 'string' || !fileName.endsWith('.tgz') || !fileName.startsWith(`${pkg.bare}-`)) {
    throw new StorageError('ERR_BAD_NAME', `invalid tarball name ${JSON.stringify(fileName)} for ${pkg.name}: expected ${pkg.bare}-<version>.tgz`);
  }
  const version = fileName.slice(pkg.bare.length + 1, -'.tgz'.length);
  if (!isValidVersion(version)) {
    throw new StorageError('ERR_BAD_NAME', `invalid tarball name ${JSON.stringify(fileName)}: ${JSON.stringify(version)} is not a semver version`);
  }
  return { fileName, version };
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
