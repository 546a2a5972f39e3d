/**
 * `npm access` reads (libnpmaccess), answered from what exists (docs/trusted-publishing.md):
 *
 *   GET /-/user/:user/package          `npm access list packages [<user>]` → {"<pkg>": "read-write"|"read-only"}
 *   GET /-/org/:org/package            404 (no organisations here; npm then asks /-/user/…)
 *   GET /-/package/:pkg/collaborators  `npm access list collaborators <pkg>` → {"<maintainer>": "read-write"}
 *   GET /-/package/:pkg/visibility     `npm access get status <pkg>` → {"public": bool}
 *
 * A package is listed only when the ASKING user may `access` it (the same rule as every
 * packument GET), so these routes never reveal a package the asker cannot see. Maintainers
 * (the owner records of our store) have read-write; when the asker lists their own packages and
 * `packages:` no longer lets them publish one, it shows read-only. Public = the `packages:`
 * rule lets an anonymous user access it.
 */
import type { Application, Request, Response } from 'express';
import { asAnonymous, type StorageHttpHost } from '../verdaccio-adapter';

const BATCH = 32;

function ask(host: StorageHttpHost, action: 'access' | 'publish', name: string, req: Request): Promise<boolean> {
  return new Promise((resolve) => host.allowed(action, name, req, resolve));
}

export function addAccessRoutes(app: Application, deps: { storage: unknown; host: StorageHttpHost; warn(message: string): void }): void {
  const { host, warn } = deps;
  const failed = (res: Response, what: string) => (error: unknown) => {
    warn(`${what} failed: ${error instanceof Error ? error.message : String(error)}`);
    if (!res.headersSent) res.status(503).json({ error: `${what}: the package data could not be read; try again` });
  };
  const ownerStore = host.ownerStore;

  app.get('/-/org/:org/package', (req, res) => {
    res.status(404).json({ error: `no organization ${req.params.org} on this registry (packages belong to users)` });
  });

  app.get('/-/user/:user/package', (req, res) => {
    const user = req.params.user;
    const listNames = host.listNames;
    if (ownerStore === null || listNames === null) {
      res.status(501).json({ error: `access: package owners are not kept by this store (${host.storeProblem})` });
      return;
    }
    const self = host.actor(req).name === user;
    const run = async (): Promise<void> => {
      const names = await listNames();
      const result: Record<string, string> = {};
      for (let i = 0; i < names.length; i += BATCH) {
        const batch = names.slice(i, i + BATCH);
        await Promise.all(
          batch.map(async (name) => {
            if (!(await ask(host, 'access', name, req))) return;
            const owners = await ownerStore.owners(name);
            if (!owners?.some((m) => m.name === user)) return;
            result[name] = self && !(await ask(host, 'publish', name, req)) ? 'read-only' : 'read-write';
          }),
        );
      }
      res.status(200).json(result);
    };
    run().catch(failed(res, 'access list packages'));
  });

  /** The package's maintainers when the asker may see it; null after answering 404. */
  const visibleOwners = async (req: Request, res: Response): Promise<string[] | null> => {
    const name = req.params.pkg;
    const owners = ownerStore === null ? null : await ownerStore.owners(name);
    if (owners === null || !(await ask(host, 'access', name, req))) {
      res.status(404).json({ error: `package ${name} not found` });
      return null;
    }
    return owners.map((m) => m.name);
  };

  app.get('/-/package/:pkg/collaborators', (req, res) => {
    if (ownerStore === null) {
      res.status(501).json({ error: `access: package owners are not kept by this store (${host.storeProblem})` });
      return;
    }
    visibleOwners(req, res)
      .then((owners) => {
        if (owners !== null) res.status(200).json(Object.fromEntries(owners.map((name) => [name, 'read-write'])));
      })
      .catch(failed(res, 'access list collaborators'));
  });

  app.get('/-/package/:pkg/visibility', (req, res) => {
    if (ownerStore === null) {
      res.status(501).json({ error: `access: package owners are not kept by this store (${host.storeProblem})` });
      return;
    }
    visibleOwners(req, res)
      .then(async (owners) => {
        if (owners !== null) res.status(200).json({ public: await ask(host, 'access', req.params.pkg, asAnonymous(req)) });
      })
      .catch(failed(res, 'access get status'));
  });
}
