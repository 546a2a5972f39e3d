/** What the upstream cache folder holds at start-up (packages, tarball bytes) for the status getter. */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { scanPackagesSync } from '../scan';

export function heldInCache(root: string): { packages: number; bytes: number } {
  const names = scanPackagesSync(root);
  let bytes = 0;
  for (const name of names) {
    const dir = join(root, name);
    let files: string[];
    try {
      files = readdirSync(dir);
    } catch {
      continue;
    }
    for (const file of files) {
      if (!file.endsWith('.tgz') || file.startsWith('.')) continue;
      try {
        bytes += statSync(join(dir, file)).size;
      } catch {
        // removed meanwhile
      }
    }
  }
  return { packages: names.length, bytes };
}
