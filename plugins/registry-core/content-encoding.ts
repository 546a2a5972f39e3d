/**
 * The one Accept-Encoding negotiation of the project: `negotiator`'s `encoding(available,
 * preferred)` — the very call (and package version) Express's `compression()` makes in front of
 * every Verdaccio response, so a part that asks "what would compression() send?" gets the answer
 * compression() will give, and the dashboard's precompressed assets follow the same q-value rules
 * (highest q wins, `q=0` refuses, ties go to the first preferred coding). Memoised per header
 * value: clients send a handful of distinct ones.
 */
import Negotiator from 'negotiator';

/** compression()'s lists (Node has brotli). */
export const COMPRESSION_ENCODINGS = ['br', 'gzip', 'deflate', 'identity'] as const;
export const COMPRESSION_PREFERRED = ['br', 'gzip'] as const;

const memo = new Map<string, string>();
const MEMO_MAX = 256;

/** The coding to answer with among `available` (a coding named there), or undefined when none is acceptable. */
export function negotiateEncoding(header: string | undefined, available: readonly string[], preferred: readonly string[] = available): string | undefined {
  const key = `${available.join(',')}|${preferred.join(',')}|${header ?? ''}`;
  const known = memo.get(key);
  if (known !== undefined) return known === '' ? undefined : known;
  const headers = header === undefined ? {} : { 'accept-encoding': header };
  // negotiator 0.6.4 takes the preferred list as a second argument (compression() passes it); its types omit it
  const encoding = Negotiator.prototype.encoding as (this: Negotiator, available: string[], preferred: string[]) => string | undefined;
  const choice = encoding.call(new Negotiator({ headers }), [...available], [...preferred]);
  if (memo.size < MEMO_MAX) memo.set(key, choice ?? '');
  return choice;
}

/** compressionEncoding's own memo, by header alone: it runs on every cache-hit GET (no key string to build). */
const compressionMemo = new Map<string | undefined, string | undefined>();

/** What compression() will encode a compressible response with for this Accept-Encoding. */
export function compressionEncoding(header: string | undefined): string | undefined {
  if (compressionMemo.has(header)) return compressionMemo.get(header);
  const choice = negotiateEncoding(header, COMPRESSION_ENCODINGS, COMPRESSION_PREFERRED);
  if (compressionMemo.size < MEMO_MAX) compressionMemo.set(header, choice);
  return choice;
}
