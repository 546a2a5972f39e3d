/**
 * (Moved from the storage plugin's names.ts in issue 15.7: the dashboard's package view needs it
 * too, and plugins never import each other.)
 *
 * The one rule for the file a `dist.tarball` URL names, as Verdaccio reads it (@verdaccio/core
 * extractTarballFromUrl): the last segment of the URL's path, NOT percent-decoded (query and
 * fragment are not part of it). A relative URL is read against a placeholder base (stored
 * packuments adopted from elsewhere may hold one); null for anything that is not a URL at all.
 * Whether the URL must also be absolute http(s) is the caller's rule (isAbsoluteHttpUrl).
 */
export function tarballFileOf(url: unknown): string | null {
  if (typeof url !== 'string' || url === '') return null;
  let parsed: URL;
  try {
    parsed = new URL(url, 'http://relative.invalid/');
  } catch {
    return null;
  }
  return parsed.pathname.replace(/^.*\//, '');
}

