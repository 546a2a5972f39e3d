/**
 * Who a user may be, for every part that names users: the admin group the auth plugin grants and
 * the storage and dashboard check, and npm's user-name rules (npm-user-validate) plus what the
 * htpasswd format cannot hold. The auth plugin refuses such names at registration; the storage
 * plugin refuses them as package maintainers.
 */

/** The group of registry admins (docs/identity.md). */
export const ADMIN_GROUP = 'registry-admin';

/** Why `name` cannot be a user name, or undefined when it can. */
export function userNameProblem(name: unknown): string | undefined {
  if (typeof name !== 'string' || name.length === 0) return 'username must be a non-empty string';
  if (name.length > 214) return 'username must be at most 214 characters';
  if (name !== name.toLowerCase()) return 'username must be lowercase';
  if (name !== encodeURIComponent(name)) return 'username may only contain URL-safe characters';
  if (name.startsWith('.')) return 'username may not start with "."';
  if (name.includes("'")) return 'username may not contain "\'"';
  return undefined;
}
