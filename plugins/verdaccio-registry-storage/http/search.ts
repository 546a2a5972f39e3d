/**
 * `GET /-/v1/search` in npm's result shape. Verdaccio 6.10.4's own route wraps its storage's
 * search item (`dist-tags`, `versions: {<latest>: 'latest'}`, `time.modified`) as `package`
 * without `version` or `date` — npm 11 then prints `Version undefined published prehistoric by ???`
 * — and counts `total` per page. Here: pure parsing, matching, scoring and rendering; the
 * handler (search-source.ts) reads the packuments and asks the access rules.
 */

export const DEFAULT_SIZE = 20;
export const MAX_SIZE = 250;
export const MAX_FROM = 10_000;
export const MAX_TEXT = 1024;

export interface SearchQuery {
  /** lowercase plain terms: each must match the name, description or a keyword */
  terms: string[];
  author: string[];
  maintainer: string[];
  keywords: string[];
  scope: string | undefined;
  size: number;
  from: number;
}

export type ParsedSearch = { ok: true; query: SearchQuery } | { ok: false; error: string };

/** npm-registry flags npm may put in `text` that say nothing about which packages match here. */
const IGNORED_QUALIFIERS = new Set(['is', 'not', 'boost-exact']);

function integerParam(raw: unknown, name: string, fallback: number, min: number, max: number): number | string {
  if (raw === undefined || raw === '') return fallback;
  if (typeof raw !== 'string' || !/^\d{1,6}$/.test(raw)) return `${name} must be a whole number from ${min} to ${max} (got ${JSON.stringify(raw)})`;
  const value = Number(raw);
  if (value < min || value > max) return `${name} must be a whole number from ${min} to ${max} (got ${value})`;
  return value;
}

/** The query string as express parsed it (values may be strings, arrays or objects). */
export function parseSearchQuery(query: Readonly<Record<string, unknown>>): ParsedSearch {
  const text = query.text ?? '';
  if (typeof text !== 'string') return { ok: false, error: 'text must be given once, as a string' };
  if (text.length > MAX_TEXT) return { ok: false, error: `text is longer than ${MAX_TEXT} characters` };
  const size = integerParam(query.size, 'size', DEFAULT_SIZE, 1, MAX_SIZE);
  if (typeof size === 'string') return { ok: false, error: size };
  const from = integerParam(query.from, 'from', 0, 0, MAX_FROM);
  if (typeof from === 'string') return { ok: false, error: from };
  const parsed: SearchQuery = { terms: [], author: [], maintainer: [], keywords: [], scope: undefined, size, from };
  for (const word of text.toLowerCase().split(/\s+/)) {
    if (word === '') continue;
    const colon = word.indexOf(':');
    const qualifier = colon > 0 ? word.slice(0, colon) : '';
    const value = colon > 0 ? word.slice(colon + 1) : word;
    if (qualifier === 'author') parsed.author.push(value);
    else if (qualifier === 'maintainer') parsed.maintainer.push(value);
    else if (qualifier === 'keywords') parsed.keywords.push(...value.split(',').filter((k) => k !== ''));
    else if (qualifier === 'scope') parsed.scope = value.replace(/^@/, '');
    else if (IGNORED_QUALIFIERS.has(qualifier)) continue;
    else parsed.terms.push(word);
  }
  return { ok: true, query: parsed };
}

export interface SearchPerson {
  username: string;
  email?: string;
}

/** One `objects[].package` of npm's search API. */
export interface SearchPackage {
  name: string;
  scope: string;
  version: string;
  description: string;
  keywords: string[];
  date: string | undefined;
  links: Record<string, string>;
  author?: { name: string; email?: string; username?: string };
  publisher?: SearchPerson;
  maintainers: SearchPerson[];
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function person(value: unknown): SearchPerson | undefined {
  if (typeof value === 'string') {
    const match = /^\s*([^<(]+?)\s*(?:<([^>]*)>)?\s*(?:\([^)]*\))?\s*$/.exec(value);
    return match ? { username: match[1], ...(match[2] ? { email: match[2] } : {}) } : undefined;
  }
  if (!isRecord(value)) return undefined;
  const username = text(value.username) ?? text(value.name);
  if (username === undefined) return undefined;
  const email = text(value.email);
  return email === undefined ? { username } : { username, email };
}

function urlOf(value: unknown): string | undefined {
  const raw = typeof value === 'string' ? value : isRecord(value) ? value.url : undefined;
  if (typeof raw !== 'string') return undefined;
  const cleaned = raw.replace(/^git\+/, '').replace(/\.git$/, '');
  return /^https?:\/\//.test(cleaned) ? cleaned : undefined;
}

/** The search entry of a packument: its `latest` version (else the newest by time), or null when it has no version. */
export function searchEntryOf(packument: unknown): SearchPackage | null {
  if (!isRecord(packument) || typeof packument.name !== 'string' || !isRecord(packument.versions)) return null;
  const versions = packument.versions;
  const tags = isRecord(packument['dist-tags']) ? packument['dist-tags'] : {};
  const time = isRecord(packument.time) ? packument.time : {};
  let version = typeof tags.latest === 'string' && isRecord(versions[tags.latest]) ? tags.latest : undefined;
  if (version === undefined) {
    const known = Object.keys(versions).filter((v) => isRecord(versions[v]));
    known.sort((a, b) => String(time[a] ?? '').localeCompare(String(time[b] ?? '')));
    version = known.at(-1);
  }
  if (version === undefined) return null;
  const manifest = versions[version] as Record<string, unknown>;
  const name = packument.name;
  const keywords = Array.isArray(manifest.keywords)
    ? manifest.keywords.filter((k): k is string => typeof k === 'string')
    : typeof manifest.keywords === 'string'
      ? manifest.keywords.split(/[,\s]+/).filter((k) => k !== '')
      : [];
  const rawMaintainers = Array.isArray(packument.maintainers) && packument.maintainers.length > 0 ? packument.maintainers : manifest.maintainers;
  const maintainers = (Array.isArray(rawMaintainers) ? rawMaintainers : []).map(person).filter((p): p is SearchPerson => p !== undefined);
  const author = person(manifest.author);
  const publisher = person(manifest._npmUser) ?? maintainers[0];
  const rawDate = text(time[version]) ?? text(time.modified);
  const date = rawDate !== undefined && !Number.isNaN(Date.parse(rawDate)) ? new Date(rawDate).toISOString() : undefined;
  const links: Record<string, string> = {};
  const homepage = urlOf(manifest.homepage);
  const repository = urlOf(manifest.repository);
  const bugs = urlOf(manifest.bugs);
  if (homepage) links.homepage = homepage;
  if (repository) links.repository = repository;
  if (bugs) links.bugs = bugs;
  return {
    name,
    scope: name.startsWith('@') ? name.slice(1, name.indexOf('/')) : 'unscoped',
    version,
    description: text(manifest.description) ?? text(packument.description) ?? '',
    keywords,
    date,
    links,
    ...(author ? { author: { name: author.username, ...(author.email ? { email: author.email } : {}) } } : {}),
    ...(publisher ? { publisher } : {}),
    maintainers,
  };
}

/**
 * How well the entry matches: null when a term or qualifier does not match; else a score in
 * (0, 1] — an exact name beats a name prefix, beats a name part, beats a keyword, beats the
 * description. An empty query matches everything with 1.
 */
export function scoreEntry(entry: SearchPackage, query: SearchQuery): number | null {
  const name = entry.name.toLowerCase();
  const bare = name.slice(name.indexOf('/') + 1);
  const description = entry.description.toLowerCase();
  const keywords = entry.keywords.map((k) => k.toLowerCase());
  const people = (list: SearchPerson[]): string[] => list.flatMap((p) => [p.username.toLowerCase(), ...(p.email ? [p.email.toLowerCase()] : [])]);
  if (query.scope !== undefined && entry.scope.toLowerCase() !== query.scope) return null;
  const authors = people([...(entry.author ? [{ username: entry.author.name, email: entry.author.email }] : []), ...(entry.publisher ? [entry.publisher] : [])]);
  if (!query.author.every((a) => authors.some((p) => p.includes(a)))) return null;
  const maintainers = people(entry.maintainers);
  if (!query.maintainer.every((m) => maintainers.some((p) => p.includes(m)))) return null;
  if (!query.keywords.every((k) => keywords.includes(k))) return null;
  if (query.terms.length === 0) return 1;
  let total = 0;
  for (const term of query.terms) {
    let best = 0;
    if (name === term || bare === term) best = 1;
    else if (name.startsWith(term) || bare.startsWith(term)) best = 0.8;
    else if (name.includes(term)) best = 0.6;
    else if (keywords.includes(term)) best = 0.5;
    else if (keywords.some((k) => k.includes(term))) best = 0.4;
    else if (description.includes(term)) best = 0.3;
    if (best === 0) return null;
    total += best;
  }
  return total / query.terms.length;
}

export interface SearchObject {
  package: SearchPackage;
  score: { final: number; detail: { quality: number; popularity: number; maintenance: number } };
  searchScore: number;
}

export interface SearchResult {
  objects: SearchObject[];
  total: number;
  time: string;
}

/** Best first (then by name); `total` counts every match, `objects` is the page [from, from + size). */
export function renderSearch(matches: { entry: SearchPackage; score: number }[], query: SearchQuery, now: Date): SearchResult {
  const sorted = [...matches].sort((a, b) => b.score - a.score || (a.entry.name < b.entry.name ? -1 : a.entry.name > b.entry.name ? 1 : 0));
  return {
    objects: sorted.slice(query.from, query.from + query.size).map(({ entry, score }) => ({
      package: entry,
      score: { final: score, detail: { quality: 1, popularity: 1, maintenance: 1 } },
      searchScore: score,
    })),
    total: sorted.length,
    time: now.toUTCString(),
  };
}
