/**
 * Which packages a storage folder holds: every `<name>/package.json` and
 * `@scope/<name>/package.json`, by the core's one walk of the layout (registry-core/storage-folders.ts,
 * also what `rebuild-index` reads). Dot-folders (`.locks`, temp files) are never packages.
 */
import { storedPackageFolders } from '../registry-core/storage-folders';

export interface StoredPackage {
  name: string;
  path: string;
  mtimeMs: number;
}

/** Name, folder and package.json mtime of every stored package, sorted by name. */
export async function scanPackages(root: string): Promise<StoredPackage[]> {
  return storedPackageFolders(root).map((folder) => ({ name: folder.name, path: folder.dir, mtimeMs: folder.mtimeMs }));
}

/** Names only, synchronously (plugin constructor). */
export function scanPackagesSync(root: string): string[] {
  return storedPackageFolders(root).map((folder) => folder.name);
}
