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
