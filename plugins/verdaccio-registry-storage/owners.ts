/**
 * Package ownership, pure and Verdaccio-free. A package's owners are its packument's top-level
 * `maintainers` (`[{name, email?}]`, what `npm owner ls` prints). Rules:
 * - the first publisher of a package (the authenticated user, never a name from the body) is
 *   recorded as its first maintainer;
 * - once a package has maintainers, only they or an admin (a user whose groups contain
 *   `registry-admin`) may publish a new version, unpublish, deprecate, move dist-tags or change
 *   the owners;
 * - a package without maintainers (a folder adopted from stock Verdaccio, or published
 *   anonymously) keeps stock behaviour — whoever `packages:` allows to publish — until a
 *   maintainer is recorded: its next authenticated publisher, or an `npm owner add`.
 */

/** The group the auth plugin grants to admins: the core's (user-names.ts). */
import { ADMIN_GROUP, userNameProblem } from '../registry-core/index';

export { ADMIN_GROUP };

const MAX_MAINTAINERS = 100;
const MAX_FIELD = 214;

export interface Maintainer {
  name: string;
  email?: string;
}

/** Who asks: the authenticated user (null name = anonymous) and whether they are an admin. */
export interface Actor {
  name: string | null;
  admin: boolean;
}

export function actorOf(remoteUser: { name?: unknown; groups?: unknown } | null | undefined): Actor {
  const name = typeof remoteUser?.name === 'string' && remoteUser.name !== '' ? remoteUser.name : null;
  const groups = Array.isArray(remoteUser?.groups) ? remoteUser.groups : [];
  return { name, admin: name !== null && groups.includes(ADMIN_GROUP) };
}

/** npm's user-name rules (npm-user-validate), as the auth plugin applies them to new users. */
export function maintainerNameProblem(name: unknown): string | null {
  if (typeof name !== 'string' || name.length === 0) return 'a maintainer needs a non-empty "name"';
  if (userNameProblem(name) === undefined) return null; // the auth plugin's rule for new users (core user-names.ts)
  if (name.length > MAX_FIELD) return `maintainer name ${JSON.stringify(name.slice(0, 40))}… is longer than ${MAX_FIELD} characters`;
  return `maintainer name ${JSON.stringify(name.slice(0, 80))} is not a user name (lowercase, URL-safe, no leading ".")`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return Object.prototype.toString.call(value) === '[object Object]';
}

/** The owners a stored packument records (malformed entries are not owners). */
export function maintainersOf(manifest: object | null | undefined): Maintainer[] {
  const list = (manifest as { maintainers?: unknown } | null | undefined)?.maintainers;
  if (!Array.isArray(list)) return [];
  const result: Maintainer[] = [];
  for (const entry of list) {
    if (!isRecord(entry) || maintainerNameProblem(entry.name) !== null) continue;
    if (result.some((m) => m.name === entry.name)) continue;
    result.push(typeof entry.email === 'string' && entry.email !== '' ? { name: entry.name as string, email: entry.email } : { name: entry.name as string });
  }
  return result;
}

/**
 * Why `actor` may not change `pkg` whose owners are `maintainers`, or null when they may.
 * `what` completes "may not …" in the message.
 */
export function ownershipProblem(pkg: string, maintainers: readonly Maintainer[], actor: Actor, what: string): string | null {
  if (actor.admin || maintainers.length === 0) return null;
  if (actor.name !== null && maintainers.some((m) => m.name === actor.name)) return null;
  const names = maintainers.map((m) => m.name).join(', ');
  const who = actor.name === null ? 'an anonymous user' : `user ${JSON.stringify(actor.name)}`;
  return `${who} may not ${what} ${pkg}: only its maintainers (${names}) or an admin may; a maintainer can run \`npm owner add <user> ${pkg}\``;
}

/**
 * The body `npm owner add|rm` sends to `PUT /<name>/-rev/<rev>`: `{_id, _rev, maintainers}` and
 * nothing else that matters. Returns the new owner list or why it is refused.
 */
export function parseOwnersBody(pkg: string, body: Record<string, unknown>): { ok: true; maintainers: Maintainer[] } | { ok: false; error: string } {
  const refuse = (error: string) => ({ ok: false as const, error: `refused owners of ${pkg}: ${error}` });
  if (Object.prototype.hasOwnProperty.call(body, '_id') && body._id !== pkg) return refuse(`"_id" ${JSON.stringify(body._id)} does not match the package in the URL`);
  if (Object.prototype.hasOwnProperty.call(body, 'name') && body.name !== pkg) return refuse(`"name" ${JSON.stringify(body.name)} does not match the package in the URL`);
  const list = body.maintainers;
  if (!Array.isArray(list)) return refuse('"maintainers" must be a list of {name, email} objects');
  if (list.length === 0) return refuse('a package keeps at least one maintainer (add someone else first)');
  if (list.length > MAX_MAINTAINERS) return refuse(`at most ${MAX_MAINTAINERS} maintainers`);
  const maintainers: Maintainer[] = [];
  for (const entry of list) {
    if (!isRecord(entry)) return refuse(`each maintainer must be a {name, email} object (got ${JSON.stringify(entry)?.slice(0, 80)})`);
    const problem = maintainerNameProblem(entry.name);
    if (problem !== null) return refuse(problem);
    if (entry.email !== undefined && entry.email !== null && (typeof entry.email !== 'string' || entry.email.length > MAX_FIELD)) {
      return refuse(`maintainer ${JSON.stringify(entry.name)}: "email" must be a string of at most ${MAX_FIELD} characters`);
    }
    if (maintainers.some((m) => m.name === entry.name)) return refuse(`maintainer ${JSON.stringify(entry.name)} is listed twice`);
    maintainers.push(typeof entry.email === 'string' && entry.email !== '' ? { name: entry.name as string, email: entry.email } : { name: entry.name as string });
  }
  return { ok: true, maintainers };
}

/** An owner-change body: maintainers, no versions (a full document is an unpublish/deprecate), not a star. */
export function isOwnersBody(body: unknown): body is Record<string, unknown> {
  return isRecord(body) && Object.prototype.hasOwnProperty.call(body, 'maintainers') && !Object.prototype.hasOwnProperty.call(body, 'versions') && !isRecord(body.users);
}
