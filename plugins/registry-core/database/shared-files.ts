/**
 * Key folders every node must hold byte for byte (docs/cluster.md "Keys"): the JWT issuer's
 * `keys/` and the registry's `signing-keys/`. Table `registry_shared_files (folder, name, bytes)`.
 *
 * `shareFolderSync` offers every local file of the folder (INSERT … ON CONFLICT DO NOTHING: the
 * first node to offer a name wins, a later offer never replaces it), then writes every shared file
 * this node does not hold byte for byte (atomic, mode 0600). Two nodes starting at once on an empty
 * database each generate keys, offer them, and both end with the winners. Synchronous (querySync):
 * the key rings are opened in Verdaccio's synchronous plugin constructors.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomicSync } from '../atomic-file';
import { querySync } from './sync-query';

export interface ShareResult {
  /** names this node's offer won (new in the database) */
  offered: string[];
  /** local files written (missing, or replaced by the cluster's bytes) */
  written: string[];
}

export function shareFolderSync(url: string, folder: string, dir: string, pattern: RegExp): ShareResult {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const local = new Map<string, Buffer>();
  for (const name of readdirSync(dir)) if (pattern.test(name)) local.set(name, readFileSync(join(dir, name)));
  const statements = [...local].map(([name, bytes]) => ({
    text: "INSERT INTO registry_shared_files (folder, name, bytes) VALUES ($1, $2, decode($3, 'hex')) ON CONFLICT DO NOTHING RETURNING name",
    values: [folder, name, bytes.toString('hex')],
  }));
  statements.push({ text: "SELECT name, encode(bytes, 'hex') AS hex FROM registry_shared_files WHERE folder = $1 ORDER BY name", values: [folder] });
  const results = querySync(url, statements);
  const offered = results.slice(0, -1).flatMap((rows) => rows.map((row) => String(row.name)));
  const written: string[] = [];
  for (const row of results[results.length - 1]) {
    const name = String(row.name);
    if (!pattern.test(name) || name.includes('/')) continue;
    const bytes = Buffer.from(String(row.hex), 'hex');
    const mine = local.get(name);
    if (mine !== undefined && mine.equals(bytes)) continue;
    writeFileAtomicSync(join(dir, name), bytes.toString('utf8'), 0o600);
    written.push(name);
  }
  return { offered, written };
}

/** true when `dir` holds every name in `names` */
export function holdsAll(dir: string, names: readonly string[]): boolean {
  return names.every((name) => existsSync(join(dir, name)));
}
