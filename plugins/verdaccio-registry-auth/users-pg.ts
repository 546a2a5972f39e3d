/**
 * Users and password hashes on PostgreSQL (docs/cluster.md "Users"): table `registry_users`, the
 * same rules and hash formats as the htpasswd store (users.ts). On the first start against an empty
 * table the node's htpasswd file is imported (a single-node registry becoming a cluster keeps its
 * users); from then on the table is the record and the file is no longer read.
 *
 * `verify` reads the user's hash from the database on every call (a password changed on another
 * node counts at once); names/has/size are memory, reloaded on every `registry_users` NOTIFY and
 * LISTEN reconnection. Registration takes a transaction-scoped advisory lock so `max_users` holds
 * across nodes.
 */
import bcrypt from 'bcryptjs';
import { existsSync, readFileSync } from 'node:fs';
import type { ClusterLink } from '../registry-core/database/cluster';
import { querySync } from '../registry-core/database/sync-query';
import { AuthError } from './errors';
import { hashKind, parseLines, passwordProblem, usernameProblem, verifyAgainst, type Users, type UserStoreOptions } from './users';

/** pg_advisory_xact_lock key of a registration: 'REGU' */
const REGISTRATION_LOCK_KEY = 0x52454755;

export class PgUserStore implements Users {
  readonly file: string;
  readonly warnings: string[] = [];
  readonly #options: UserStoreOptions;
  readonly #link: ClusterLink;
  #names: string[] = [];
  #known = new Set<string>();
  #generation = 0;

  constructor(options: UserStoreOptions, link: ClusterLink) {
    this.#options = options;
    this.#link = link;
    this.file = `${link.database.location} (registry_users)`;
    const imported = existsSync(options.file) ? parseLines(options.file, readFileSync(options.file, 'utf8')) : [];
    const statements = [
      { text: 'LOCK TABLE registry_users IN SHARE ROW EXCLUSIVE MODE' },
      ...imported.map((line) => ({
        text: "INSERT INTO registry_users (name, hash, comment) SELECT $1, $2, 'imported from htpasswd' WHERE NOT EXISTS (SELECT 1 FROM registry_users WHERE comment <> 'imported from htpasswd') ON CONFLICT DO NOTHING",
        values: [line.name, line.hash],
      })),
      { text: 'SELECT name, hash FROM registry_users ORDER BY position' },
    ];
    const rows = querySync(link.database.url, statements);
    this.#adopt(rows[rows.length - 1].map((row) => ({ name: String(row.name), hash: String(row.hash) })));
    link.on('registry_users', () => void this.#reload().catch(() => undefined));
    link.onConnect(() => void this.#reload().catch(() => undefined));
  }

  #adopt(users: Array<{ name: string; hash: string }>): void {
    const names = users.map((user) => user.name);
    const same = names.length === this.#names.length && names.every((name, index) => name === this.#names[index]);
    this.#names = names;
    this.#known = new Set(names);
    if (!same) this.#generation++;
    this.warnings.length = 0;
    for (const user of users) {
      if (hashKind(user.hash) === 'unsupported') this.warnings.push(`registry_users: user ${user.name} has an unsupported hash format (only bcrypt and {SHA}); that user cannot log in`);
    }
  }

  async #reload(): Promise<void> {
    const rows = await this.#link.database.query<{ name: string; hash: string }>('SELECT name, hash FROM registry_users ORDER BY position', [], 'registry-users-all');
    this.#adopt(rows);
    // a password change keeps the names: login caches keyed on version must still drop
    this.#generation++;
  }

  get version(): number {
    return this.#generation;
  }

  get size(): number {
    return this.#names.length;
  }

  get passwordMinLength(): number {
    return this.#options.passwordMinLength;
  }

  names(): string[] {
    return [...this.#names];
  }

  sync(): Promise<void> {
    return this.#reload();
  }

  has(name: string): boolean {
    return this.#known.has(name);
  }

  async verify(name: string, password: string): Promise<boolean> {
    if (typeof password !== 'string') return false;
    const rows = await this.#link.database.query<{ hash: string }>('SELECT hash FROM registry_users WHERE name = $1', [name], 'registry-user-hash');
    return verifyAgainst(rows[0]?.hash, password);
  }

  async add(name: string, password: string): Promise<void> {
    const nameProblem = usernameProblem(name);
    if (nameProblem) throw new AuthError('ERR_USER_NAME', nameProblem);
    const problem = passwordProblem(password, this.#options.passwordMinLength);
    if (problem) throw new AuthError('ERR_PASSWORD_POLICY', problem);
    if (this.#options.maxUsers < 0) throw new AuthError('ERR_REGISTRATION_CLOSED', 'registration is closed on this registry');
    const hash = await bcrypt.hash(password, this.#options.bcryptRounds);
    await this.#link.database.transaction(async (client) => {
      await client.query('SELECT pg_advisory_xact_lock($1)', [REGISTRATION_LOCK_KEY]);
      const exists = await client.query('SELECT 1 FROM registry_users WHERE name = $1', [name]);
      if (exists.rows.length > 0) throw new AuthError('ERR_USER_EXISTS', `user ${name} already exists`);
      const count = Number((await client.query<{ n: string }>('SELECT count(*)::text AS n FROM registry_users')).rows[0].n);
      if (count >= this.#options.maxUsers) {
        throw new AuthError('ERR_REGISTRATION_CLOSED', `registration is closed: the registry already has ${this.#options.maxUsers} users`);
      }
      await client.query('INSERT INTO registry_users (name, hash, comment) VALUES ($1, $2, $3)', [name, hash, `autocreated ${new Date().toISOString()}`]);
    });
    await this.#changed();
  }

  async changePassword(name: string, oldPassword: string, newPassword: string): Promise<void> {
    const problem = passwordProblem(newPassword, this.#options.passwordMinLength);
    if (problem) throw new AuthError('ERR_PASSWORD_POLICY', problem);
    if (!(await this.verify(name, oldPassword))) throw new AuthError('ERR_BAD_CREDENTIALS', 'bad username or password');
    await this.setPassword(name, newPassword);
  }

  async setPassword(name: string, newPassword: string): Promise<void> {
    const problem = passwordProblem(newPassword, this.#options.passwordMinLength);
    if (problem) throw new AuthError('ERR_PASSWORD_POLICY', problem);
    const hash = await bcrypt.hash(newPassword, this.#options.bcryptRounds);
    const rows = await this.#link.database.query('UPDATE registry_users SET hash = $2, updated_at = now() WHERE name = $1 RETURNING name', [name, hash]);
    if (rows.length === 0) throw new AuthError('ERR_BAD_CREDENTIALS', 'bad username or password');
    await this.#changed();
  }

  async #changed(): Promise<void> {
    await this.#reload();
    await this.#link.publish('registry_users', {}).catch(() => undefined);
  }
}
