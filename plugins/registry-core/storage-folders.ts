/**
 * The one walk of a Verdaccio-layout storage folder: which folders can hold a package —
 * `<storage>/<name>/` and `<storage>/@scope/<name>/`, never a dot-file or dot-folder (`.locks`,
 * `.upstream`, temp files). Sorted by name. The core needs it only for `rebuild-index`; the
 * storage plugin's scans (scan.ts) are built on it, so both read the layout by the same rule.
 * A missing storage folder holds nothing; an unreadable scope folder is passed over.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { isErrno } from './fs-errors';

export interface PackageFolder {
  /** `name` or `@scope/name`, as the folders spell it */
  name: string;
  dir: string;
}

export function packageFolders(storageDir: string): PackageFolder[] {
  const visible = (dir: string) => readdirSync(dir, { withFileTypes: true }).filter((entry) => entry.isDirectory() && !entry.name.startsWith('.'));
  let top;
  try {
    top = visible(storageDir);
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return [];
    throw error;
  }
  const result: PackageFolder[] = [];
  for (const entry of top) {
    const dir = join(storageDir, entry.name);
    if (!entry.name.startsWith('@')) {
      result.push({ dir, name: entry.name });
      continue;
    }
    let inner;
    try {
      inner = visible(dir);
    } catch {
      continue; // a scope folder that vanished or cannot be read holds no package we can serve
    }
    for (const child of inner) result.push({ dir: join(dir, child.name), name: `${entry.name}/${child.name}` });
  }
  return result.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** The folders that hold a package: those with a `package.json` file. */
export function storedPackageFolders(storageDir: string): (PackageFolder & { mtimeMs: number })[] {
  const stored: (PackageFolder & { mtimeMs: number })[] = [];
  for (const folder of packageFolders(storageDir)) {
    const info = statSync(join(folder.dir, 'package.json'), { throwIfNoEntry: false });
    if (info?.isFile()) stored.push({ ...folder, mtimeMs: info.mtimeMs });
  }
  return stored;
}
