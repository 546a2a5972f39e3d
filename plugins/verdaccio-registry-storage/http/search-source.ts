/**
 * The `GET /-/v1/search` handler: the local package list (our store plugin's, through the
 * folder's store seam store-port.ts — never Verdaccio's internal `localStorage`), the
 * access rule per name (auth.allow_access for req.remote_user, as every packument GET asks),
 * then each readable packument through Verdaccio's own `storage.getPackage` with
 * `uplinksLook: false` (filters applied, no upstream contact) — so a package the user may not
 * `access` is never listed, and what is listed is what a packument GET would show.
 * Verdaccio's storage object is narrowed here by shape (typeof checks), not typed as any.
 */
import type { Request, RequestHandler, Response } from 'express';
import type { StorageHttpHost } from '../verdaccio-adapter';
import { parseSearchQuery, renderSearch, scoreEntry, searchEntryOf, type SearchPackage } from './search';

type Callback = (error: unknown, value?: unknown) => void;

interface VerdaccioStorageShape {
  getPackage(options: { name: string; uplinksLook: boolean; keepUpLinkData: boolean; req: Request; callback: Callback }): void;
}

function hasMethod(value: unknown, name: string): boolean {
  return typeof value === 'object' && value !== null && typeof (value as Record<string, unknown>)[name] === 'function';
}

/** Verdaccio's public Storage API (getPackage), narrowed by shape. */
export function isVerdaccioStorage(storage: unknown): storage is VerdaccioStorageShape {
  return hasMethod(storage, 'getPackage');
}

/** Access checks and packument reads run this many at a time. */
const BATCH = 32;

function readPackument(storage: VerdaccioStorageShape, name: string, req: Request): Promise<unknown> {
  return new Promise((resolve) => {
    try {
      // a package that vanished meanwhile (404) or fails to read is simply not a hit
      storage.getPackage({ name, uplinksLook: false, keepUpLinkData: false, req, callback: (error, manifest) => resolve(error ? null : manifest) });
    } catch {
      resolve(null);
    }
  });
}

export function createSearchHandler(deps: { storage: unknown; host: StorageHttpHost; warn(message: string): void }): RequestHandler {
  const { storage, host, warn } = deps;
  return function search(req: Request, res: Response): void {
    const parsed = parseSearchQuery(req.query as Record<string, unknown>);
    if (!parsed.ok) {
      res.status(400).json({ error: `search: ${parsed.error}` });
      return;
    }
    const listNames = host.listNames;
    if (!isVerdaccioStorage(storage) || listNames === null) {
      res.status(501).json({ error: `search: this Verdaccio storage has no local package list to search (${host.storeProblem || 'no getPackage'})` });
      return;
    }
    const query = parsed.query;
    const run = async (): Promise<void> => {
      const names = await listNames();
      const matches: { entry: SearchPackage; score: number }[] = [];
      for (let i = 0; i < names.length; i += BATCH) {
        const batch = names.slice(i, i + BATCH);
        const allowed = await Promise.all(batch.map((name) => new Promise<boolean>((resolve) => host.allowed('access', name, req, resolve))));
        const packuments = await Promise.all(batch.map((name, j) => (allowed[j] ? readPackument(storage, name, req) : Promise.resolve(null))));
        for (const packument of packuments) {
          const entry = searchEntryOf(packument);
          if (entry === null) continue;
          const score = scoreEntry(entry, query);
          if (score !== null) matches.push({ entry, score });
        }
      }
      res.status(200).json(renderSearch(matches, query, new Date()));
    };
    run().catch((error: unknown) => {
      warn(`search failed: ${error instanceof Error ? error.message : String(error)}`);
      if (!res.headersSent) res.status(503).json({ error: 'search: the package list could not be read; try again' });
    });
  };
}
