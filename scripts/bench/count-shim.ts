/**
 * `PROFILE_SERVER_NODE_OPTIONS="--require build/scripts/bench/count-shim.js" node build/scripts/bench/publish-profile.js …`
 *
 * Counts, by call site, the calls that walk a whole large document: `JSON.parse` of > 100 KB,
 * `JSON.stringify` to > 50 KB, `Object.entries` / `Object.keys` of > 300 entries (one walk of
 * every version or attachment of a large packument), and every `structuredClone`. Independent of
 * the box's load, unlike timings (bench README, "Third pass"). Each thread writes
 * `$COUNT_OUT.<threadId>` (default /tmp/count-out.txt.<threadId>) at exit: count, kind, call site.
 * `COUNT_DEPTH` frames per site (default 9). A bench tool only: never loaded by the product.
 */
import { writeFileSync } from 'node:fs';
import { threadId } from 'node:worker_threads';

const counts = new Map<string, number>();
const depth = Number(process.env.COUNT_DEPTH ?? 9);

function note(kind: string): void {
  const frames = (new Error().stack ?? '').split('\n').slice(3, depth);
  const site = frames.map((line) => line.trim().replace(/^at /, '').replace(/\(.*\/(node_modules|build)\//, '(')).join(' < ');
  const key = `${kind} | ${site}`;
  counts.set(key, (counts.get(key) ?? 0) + 1);
}

const parse = JSON.parse;
const stringify = JSON.stringify;
const entries = Object.entries;
const keys = Object.keys;
const clone = globalThis.structuredClone;

JSON.parse = function countedParse(text: string, reviver?: (this: unknown, key: string, value: unknown) => unknown): unknown {
  if (typeof text === 'string' && text.length > 100_000) note('parse');
  return parse(text, reviver);
} as typeof JSON.parse;
JSON.stringify = function countedStringify(value: unknown, replacer?: unknown, space?: string | number): string {
  const out = stringify(value, replacer as (this: unknown, key: string, value: unknown) => unknown, space);
  if (typeof out === 'string' && out.length > 50_000) note(space ? 'stringify(indent)' : 'stringify');
  return out;
} as typeof JSON.stringify;
Object.entries = function countedEntries(object: object): Array<[string, unknown]> {
  const result = entries(object);
  if (result.length > 300) note('entries');
  return result;
} as typeof Object.entries;
Object.keys = function countedKeys(object: object): string[] {
  const result = keys(object);
  if (result.length > 300) note('keys');
  return result;
};
globalThis.structuredClone = function countedClone<T>(value: T, options?: StructuredSerializeOptions): T {
  note('structuredClone');
  return clone(value, options);
};

process.on('exit', () => {
  const rows = [...counts.entries()].sort((a, b) => b[1] - a[1]);
  writeFileSync(`${process.env.COUNT_OUT ?? '/tmp/count-out.txt'}.${threadId}`, rows.map(([key, count]) => `${count}\t${key}`).join('\n') + '\n');
});
