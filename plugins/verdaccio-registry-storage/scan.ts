/**
 * Which packages a storage folder holds: every `<name>/package.json` and
 * `@scope/<name>/package.json`. Dot-folders (`.locks`, temp files) are never packages.
 */
import { readdirSync, statSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { isErrno } from './errors';

export interface StoredPackage {
  name: string;
  path: string;
  mtimeMs: number;
}

function byName(a: StoredPackage, b: StoredPackage): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

export async function scanPackages(root: string): Promise<StoredPackage[]> {
  const found: StoredPackage[] = [];
  const consider = async (name: string, path: string): Promise<void> => {
    try {
      const info = await stat(join(path, 'package.json'));
      if (info.isFile()) found.push({ name, path, mtimeMs: info.mtimeMs });
    } catch {
      // a folder without package.json is not a package (empty scope, upload in flight)
    }
  };
  let top;
  try {
    top = await readdir(root, { withFileTypes: true });
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return found;
    throw error;
  }
  for (const entry of top) {
    if (!entry.isDirectory() || entry.name.startsWith('.')) continue;
    const path = join(root, entry.name);
    if (!entry.name.startsWith('@')) {
      await consider(entry.name, path);
      continue;
    }
    let inner;
    try {
      inner = await readdir(path, { withFileTypes: true });
    } catch {
      continue;
    }
    for (const child of inner) {
      if (child.isDirectory() && !child.name.startsWith('.')) await consider(`${entry.name}/${child.name}`, join(path, child.name));
    }
  }
  return found.sort(byName);
}

/** Names only, synchronously (plugin constructor). */
export function scanPackagesSync(root: string): string[] {
  const names: string[] = [];
  const has = (path: string): boolean => {
    try {
      return statSync(join(path, 'package.json')).isFile();
    } catch {
      return false;
    }
  };
  let top;
  try {
    top = readdirSync(root, { withFileTypes: true });
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return names;
    throw error;
  }
  for (const entry of top) {
    if (!entry.isDirectory() || entry.name.startsWith('.')) continue;
    const path = join(root, entry.name);
    if (!entry.name.startsWith('@')) {
      if (has(path)) names.push(entry.name);
      continue;
    }
    for (const child of readdirSync(path, { withFileTypes: true })) {
      if (child.isDirectory() && !child.name.startsWith('.') && has(join(path, child.name))) names.push(`${entry.name}/${child.name}`);
    }
  }
  return names.sort();
}
