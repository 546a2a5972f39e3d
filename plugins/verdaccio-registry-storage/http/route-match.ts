/**
 * Which package a request path addresses, matched exactly as Verdaccio's API router would:
 * its `encodeScopePackage` rewrite first (`/@scope/name…` → `/@scope%2Fname…`), then the
 * express 4 route patterns (path-to-regexp 0.1: case-insensitive, optional trailing slash),
 * then express's decodeURIComponent of the parameter. Anything this does not recognise is
 * left to Verdaccio, so the two can never disagree about a request we act on.
 */

/** @verdaccio/middleware encodeScopePackage, applied to the path only (the query never routes). */
export function encodeScope(path: string): string {
  return path.replace(/\/%40/, '/@').replace(/(\/@[^/%]+)\/(?!$)/, '$1%2F');
}

// '/:package/:version?' restricted to the packument form (no version segment)
const PACKUMENT_ROUTE = /^\/(?:([^/]+?))\/?$/i;
// '/:package/:_rev?/:revision?' — Verdaccio's publish route
const PUBLISH_ROUTE = /^\/(?:([^/]+?))(?:\/([^/]+?))?(?:\/([^/]+?))?\/?$/i;

function decodeParam(raw: string): string | null {
  try {
    return decodeURIComponent(raw);
  } catch {
    return null; // express answers 400 for it; not ours to handle
  }
}

/** `GET /:package` → the package name, or null when the path is anything else. */
export function matchPackumentPath(path: string): string | null {
  const match = PACKUMENT_ROUTE.exec(encodeScope(path));
  return match ? decodeParam(match[1]) : null;
}

export interface PublishRoute {
  name: string;
  /** `/:package/-rev/:revision`: a change of an existing package (unpublish, deprecate, star). */
  viaRevisionPath: boolean;
}

/** `PUT /:package[/-rev[/:revision]]` → the package and the form, or null. */
export function matchPublishPath(path: string): PublishRoute | null {
  const match = PUBLISH_ROUTE.exec(encodeScope(path));
  if (!match) return null;
  const rev = match[2] === undefined ? undefined : decodeParam(match[2]);
  // Verdaccio's `_rev` param must be exactly "-rev" (case-sensitive); other forms are other routes
  if (rev !== undefined && rev !== '-rev') return null;
  if (rev === undefined && match[3] !== undefined) return null;
  const name = decodeParam(match[1]);
  return name === null ? null : { name, viaRevisionPath: rev === '-rev' };
}

// '/-/package/:package/dist-tags/:tag?' — Verdaccio's dist-tag routes
const DIST_TAGS_ROUTE = /^\/-\/package\/(?:([^/]+?))\/dist-tags(?:\/([^/]+?))?\/?$/i;
// '/:package/:tag' — Verdaccio's short dist-tag route (PUT), registered before the publish route
const SHORT_TAG_ROUTE = /^\/(?:([^/]+?))\/(?:([^/]+?))\/?$/i;

export interface DistTagRoute {
  name: string;
  /** null: the whole-object form (`POST /-/package/:package/dist-tags`). */
  tag: string | null;
}

/** A dist-tag write (PUT/POST) Verdaccio hands to mergeTags, or null. */
export function matchDistTagPath(method: string, path: string): DistTagRoute | null {
  const encoded = encodeScope(path);
  const long = DIST_TAGS_ROUTE.exec(encoded);
  if (long) {
    const name = decodeParam(long[1]);
    const tag = long[2] === undefined ? null : decodeParam(long[2]);
    if (name === null || (long[2] !== undefined && tag === null)) return null;
    if (tag === null && method !== 'POST') return null;
    return { name, tag };
  }
  if (method !== 'PUT') return null;
  const short = SHORT_TAG_ROUTE.exec(encoded);
  if (!short) return null;
  const name = decodeParam(short[1]);
  const tag = decodeParam(short[2]);
  // `/:package/-rev` is the publish route's (a change without revision) unless the body is a string
  if (name === null || tag === null || tag === '-rev') return null;
  return { name, tag };
}

// '/:package/-rev/*' (whole-package unpublish) and '/:package/-/:filename/-rev/:revision' (one tarball)
const UNPUBLISH_ROUTE = /^\/(?:([^/]+?))\/-rev\/(.*)\/?$/i;
const REMOVE_TARBALL_ROUTE = /^\/(?:([^/]+?))\/-\/(?:([^/]+?))\/-rev\/(?:([^/]+?))\/?$/i;

export interface DeleteRoute {
  name: string;
  /** unpublish: the package or one tarball; dist-tag: `DELETE /-/package/:package/dist-tags/:tag`. */
  kind: 'unpublish' | 'dist-tag';
}

/** A DELETE Verdaccio's publish / dist-tag routers would run, or null. */
export function matchDeletePath(path: string): DeleteRoute | null {
  const encoded = encodeScope(path);
  const tags = DIST_TAGS_ROUTE.exec(encoded);
  if (tags) {
    if (tags[2] === undefined) return null;
    const name = decodeParam(tags[1]);
    return name === null || decodeParam(tags[2]) === null ? null : { name, kind: 'dist-tag' };
  }
  const match = REMOVE_TARBALL_ROUTE.exec(encoded) ?? UNPUBLISH_ROUTE.exec(encoded);
  if (!match) return null;
  const name = decodeParam(match[1]);
  return name === null ? null : { name, kind: 'unpublish' };
}

// '/:package/-/:filename' — Verdaccio's tarball route
const TARBALL_ROUTE = /^\/(?:([^/]+?))\/-\/(?:([^/]+?))\/?$/i;

/** `GET /:package/-/:filename` → package and file, or null. */
export function matchTarballPath(path: string): { name: string; fileName: string } | null {
  const match = TARBALL_ROUTE.exec(encodeScope(path));
  if (!match) return null;
  const name = decodeParam(match[1]);
  const fileName = decodeParam(match[2]);
  return name === null || fileName === null ? null : { name, fileName };
}

// '/:package/:version' (Verdaccio's get_package_by_version with a version or tag segment)
const VERSION_ROUTE = /^\/(?:([^/]+?))\/(?:([^/]+?))\/?$/i;

/** `GET /:package/:version` → the package name (the version is Verdaccio's business), or null. */
export function matchPackageVersionPath(path: string): string | null {
  const match = VERSION_ROUTE.exec(encodeScope(path));
  // `/-/…` are Verdaccio's own routes (ping, whoami, user, …), `/name/-` a tarball folder
  if (!match || match[2] === '-' || match[1].startsWith('-') || match[1].startsWith('_')) return null;
  return decodeParam(match[1]);
}
