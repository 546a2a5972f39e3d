/**
 * Who may do what on the dashboard. Reads are open to whoever can reach the registry (the 13
 * bytes are not secret; packages honour the access rules separately). Writes need an admin:
 * a user the auth plugin put in the `registry-admin` group, or one listed in this plugin's
 * `admins:` option. The identity always comes from `req.remote_user`, set by the app-wide auth
 * middleware, so the dashboard never parses a token itself. Who is admin by default (the first
 * user ever created, recorded durably) is decided by the auth plugin alone; it is not re-derived
 * here from htpasswd or anything else.
 */
import type { VerdaccioRemoteUser } from './verdaccio-adapter';
import { DashboardHttpError } from './http-errors';

export const ADMIN_GROUP = 'registry-admin';

export interface Session {
  user: string | null;
  admin: boolean;
  /** the user's own groups (no `$all`-style pseudo groups) */
  groups: string[];
}

export function sessionOf(user: VerdaccioRemoteUser, admins: ReadonlySet<string>): Session {
  if (!user.name) return { user: null, admin: false, groups: [] };
  const admin = admins.has(user.name) || user.real_groups.includes(ADMIN_GROUP) || user.groups.includes(ADMIN_GROUP);
  return { user: user.name, admin, groups: [...user.real_groups] };
}

/** 401 for anonymous (or a token the auth middleware rejected), 403 for a non-admin. */
export function requireAdmin(user: VerdaccioRemoteUser, admins: ReadonlySet<string>): Session {
  const session = sessionOf(user, admins);
  if (!session.user) {
    const why = user.error ? `token rejected (${user.error})` : 'no token';
    throw new DashboardHttpError(401, `authentication required: ${why}; send Authorization: Bearer <token> of an admin`, {
      'WWW-Authenticate': 'Bearer realm="registry"',
    });
  }
  if (!session.admin) {
    throw new DashboardHttpError(403, `user ${session.user} is not a registry admin (needs group ${ADMIN_GROUP} or to be listed in the dashboard's admins)`);
  }
  return session;
}
