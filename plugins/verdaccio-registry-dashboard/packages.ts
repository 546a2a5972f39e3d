/**
 * The package list of the dashboard, from the registry.lockb package index alone (issue 15.7,
 * #17: a list never reads a packument). The index already holds what a row shows — versions in
 * publish order, dist-tags, the time of the last change, local or cached — so the folded list is
 * computed once per index state and every request only filters it by name, by the caller's
 * access rule (Verdaccio's `allow_access`, exactly what `npm view` asks) and cuts out a page.
 */
import { summarizeIndex, type IndexRecord, type PackageSummary } from '../registry-core/index';
import { indexSources, withSources, type ListedPackage } from './package-sources';
import type { AccessChecker, Packument, VerdaccioRemoteUser } from './verdaccio-adapter';

/** Versions in publish order (oldest first); the packument's `time` has one entry per version. */
export function summarizePackument(packument: Omit<Packument, 'document'>): PackageSummary {
  const versions = Object.keys(packument.versions);
  const published = (version: string): number => Date.parse(packument.time[version] ?? '') || 0;
  versions.sort((a, b) => published(a) - published(b) || a.localeCompare(b));
  const times = versions.map(published).filter((time) => time > 0);
  const modified = Date.parse(packument.time.modified ?? '') || 0;
  const last = Math.max(modified, ...times, 0);
  const distTags: Record<string, string> = {};
  for (const [tag, version] of Object.entries(packument['dist-tags'])) {
    if (typeof version === 'string') distTags[tag] = version;
  }
  return { name: packument.name, versions, distTags, time: last > 0 ? new Date(last).toISOString() : '' };
}

export function matchesFilter(name: string, filter: string | undefined): boolean {
  return !filter || name.toLowerCase().includes(filter.toLowerCase());
}

/** Every package the index knows (local ones with at least one version, then the cached-only ones), sorted by name. */
export function listFromIndex(records: readonly IndexRecord[]): ListedPackage[] {
  const sources = indexSources(records);
  const local = summarizeIndex(records as IndexRecord[]).filter((entry) => entry.versions.length > 0);
  return withSources(local, sources, new Set(sources.cached.keys()));
}

export interface ListQuery {
  filter?: string;
  offset: number;
  /** undefined: every matching package (the list before pagination; scripts and the `packages` command use it) */
  limit?: number;
}

/** The wire format of GET /_dashboard/api/packages (docs/http-api.md). */
export interface ListPage {
  packages: ListedPackage[];
  /** matching packages the caller may read, over all pages */
  total: number;
  offset: number;
  limit: number | null;
  /** of `total`: how many are local and how many cached from the upstream */
  local: number;
  cached: number;
}

export { MAX_PAGE_SIZE } from './request-limits';
/**
 * A caller's access decisions for the list are reused (a user paging or searching asks for the
 * same names again). Verdaccio's `allow_access` costs ~15 µs a name (it matches the `packages:`
 * patterns anew each time): ~45 ms of a 3,000-package list. The key is the caller's name and groups
 * as the auth middleware set them, so a revoked token (anonymous) or a group change is a new key at
 * once; `packages:` rules change only with a restart. Decisions older than ACCESS_MEMO_MS are still
 * answered but asked again in the background (the next request sees the new answers); a caller not
 * seen for ACCESS_MEMO_DROP_MS starts afresh. The package view and every package read always ask.
 */
export const ACCESS_MEMO_MS = 10_000;
export const ACCESS_MEMO_DROP_MS = 5 * 60_000;
const ACCESS_MEMO_USERS = 64;
/** names re-checked per event-loop turn in the background */
const REFRESH_SLICE = 256;

export class PackageCatalog {
  readonly #records: () => readonly IndexRecord[];
  readonly #access: AccessChecker;
  #memo: { length: number; last: IndexRecord | undefined; list: ListedPackage[]; byName: Map<string, ListedPackage> } | undefined;

  readonly #now: () => number;
  readonly #decisions = new Map<string, { at: number; seen: number; allowed: Map<string, boolean>; refresh: Promise<void> | undefined }>();

  constructor(records: () => readonly IndexRecord[], access: AccessChecker, now: () => number = Date.now) {
    this.#records = records;
    this.#access = access;
    this.#now = now;
  }

  /** Resolves when no background re-check of access decisions is running (tests). */
  async settled(): Promise<void> {
    await Promise.all([...this.#decisions.values()].map((memo) => memo.refresh));
  }

  /** The caller's decisions, asking `allow_access` only for names not decided yet (see ACCESS_MEMO_MS). */
  async #allowed(user: VerdaccioRemoteUser, names: readonly ListedPackage[]): Promise<boolean[]> {
    const key = JSON.stringify([user.name ?? null, [...user.groups].sort(), user.error ?? null]);
    const now = this.#now();
    // callers who did not come back leave nothing behind
    for (const [other, entry] of this.#decisions) if (now - entry.seen > ACCESS_MEMO_DROP_MS || now < entry.at) this.#decisions.delete(other);
    let memo = this.#decisions.get(key);
    if (!memo) {
      memo = { at: now, seen: now, allowed: new Map(), refresh: undefined };
      if (this.#decisions.size >= ACCESS_MEMO_USERS) this.#decisions.delete(this.#decisions.keys().next().value as string);
      this.#decisions.set(key, memo);
    } else if (now - memo.at > ACCESS_MEMO_MS && memo.refresh === undefined) {
      const entry = memo;
      const known = [...entry.allowed.keys()];
      entry.refresh = (async () => {
        // after this answer, in slices: the re-check never holds up a request (allow_access is synchronous work)
        for (let from = 0; from < known.length; from += REFRESH_SLICE) {
          await new Promise<void>((resolve) => setImmediate(resolve));
          const slice = known.slice(from, from + REFRESH_SLICE);
          const fresh = await Promise.all(slice.map((name) => this.#access.canAccess(name, user)));
          slice.forEach((name, i) => entry.allowed.set(name, fresh[i]));
        }
        entry.at = this.#now();
      })()
        .catch(() => entry.allowed.clear()) // an access check that failed: ask again on the next request
        .finally(() => {
          entry.refresh = undefined;
        });
    }
    memo.seen = now;
    const allowed = memo.allowed;
    return Promise.all(
      names.map(async ({ name }) => {
        const known = allowed.get(name);
        if (known !== undefined) return known;
        const decision = await this.#access.canAccess(name, user);
        allowed.set(name, decision);
        return decision;
      }),
    );
  }

  /** The folded list; recomputed only when the index changed (the index is append-only, a rebuild re-reads every record). */
  all(): ListedPackage[] {
    const records = this.#records();
    const last = records[records.length - 1];
    const memo = this.#memo;
    if (memo && memo.length === records.length && memo.last === last) return memo.list;
    const list = listFromIndex(records);
    this.#memo = { length: records.length, last, list, byName: new Map(list.map((entry) => [entry.name, entry])) };
    return list;
  }

  /** The index row of one package (no access check: the caller checks). */
  find(name: string): ListedPackage | undefined {
    this.all();
    return this.#memo?.byName.get(name);
  }

  async page(user: VerdaccioRemoteUser, query: ListQuery): Promise<ListPage> {
    const filter = query.filter?.toLowerCase();
    const candidates = filter ? this.all().filter((entry) => entry.name.toLowerCase().includes(filter)) : this.all();
    const allowed = await this.#allowed(user, candidates);
    const readable = candidates.filter((_, i) => allowed[i]);
    const cached = readable.reduce((count, entry) => count + (entry.source === 'cached' ? 1 : 0), 0);
    const end = query.limit === undefined ? readable.length : query.offset + query.limit;
    return {
      packages: readable.slice(query.offset, end),
      total: readable.length,
      offset: query.offset,
      limit: query.limit ?? null,
      local: readable.length - cached,
      cached,
    };
  }

  /** The list the `packages` command prints (every readable package, no paging). */
  async summaries(user: VerdaccioRemoteUser, filter?: string): Promise<ListedPackage[]> {
    return (await this.page(user, { offset: 0, ...(filter === undefined ? {} : { filter }) })).packages;
  }
}
