/**
 * The user store: an htpasswd-compatible file (`name:hash[:comment]` per line).
 *
 * New passwords are bcrypt (`$2b$`); existing `$2y$`/`$2a$` lines (Apache htpasswd, Verdaccio)
 * verify, and `{SHA}` lines verify read-only (a password change rewrites them as bcrypt). Other
 * hash formats are reported at load and never match. The file is re-read when its mtime/size
 * changes, so an edit with the `htpasswd` tool takes effect without a restart.
 *
 * Writes: an in-process queue serialises them within this process and the core file lock
 * (registry-core/lock.ts, `<htpasswd>.lock`) across processes (two registries on one folder, a
 * CLI); under the lock each write re-reads the file, applies one change and replaces the file
 * atomically (registry-core/atomic-file.ts), keeping every other line byte for byte.
 */
import bcrypt from 'bcryptjs';
import { createHash, timingSafeEqual } from 'node:crypto';
import { writeFileAtomicSync } from '../registry-core/atomic-file';
import { fileLockKey, withFileLockSync } from '../registry-core/lock';
import { userNameProblem } from '../registry-core/index';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { AuthError } from './errors';

export const DEFAULT_PASSWORD_MIN_LENGTH = 8;
/** bcrypt only looks at the first 72 bytes: longer passwords are refused instead of silently truncated. */
export const PASSWORD_MAX_BYTES = 72;

export interface UserStoreOptions {
  file: string;
  /** -1 = registration closed; otherwise the most users the file may hold */
  maxUsers: number;
  passwordMinLength: number;
  bcryptRounds: number;
}

export interface UserLine {
  name: string;
  hash: string;
}

type HashKind = 'bcrypt' | 'sha' | 'unsupported';

export function hashKind(hash: string): HashKind {
  if (/^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/.test(hash)) return 'bcrypt';
  if (hash.startsWith('{SHA}')) return 'sha';
  return 'unsupported';
}

/** npm's own rules plus what the htpasswd format cannot hold: the core's one rule (user-names.ts). */
export const usernameProblem = userNameProblem;

export function passwordProblem(password: unknown, minLength: number): string | undefined {
  if (typeof password !== 'string') return 'password must be a string';
  if (password.length < minLength) return `password must be at least ${minLength} characters`;
  if (Buffer.byteLength(password, 'utf8') > PASSWORD_MAX_BYTES) return `password must be at most ${PASSWORD_MAX_BYTES} bytes (bcrypt ignores the rest)`;
  if (/[\r\n]/.test(password)) return 'password may not contain line breaks';
  return undefined;
}

export function parseLines(file: string, text: string): UserLine[] {
  const users: UserLine[] = [];
  const seen = new Set<string>();
  text.split('\n').forEach((raw, index) => {
    const line = raw.replace(/\r$/, '');
    if (line.trim() === '' || line.startsWith('#')) return;
    const parts = line.split(':');
    if (parts.length < 2 || parts[0] === '' || parts[1] === '') {
      throw new AuthError('ERR_HTPASSWD', `${file}:${index + 1}: not an htpasswd line (expected name:hash)`);
    }
    const name = parts[0];
    if (seen.has(name)) throw new AuthError('ERR_HTPASSWD', `${file}:${index + 1}: user ${name} appears twice`);
    seen.add(name);
    users.push({ name, hash: parts[1] });
  });
  return users;
}


/**
 * A bcrypt hash (10 rounds) of 48 random hex characters nobody kept: comparing against it makes
 * an unknown user cost as much as a known one. A constant, so start-up pays no bcrypt.
 */
export const DUMMY_HASH = '$2b$10$1npLe2rbGK6gfEXD6IMpZe/njX4PJlW.M6sndaXB3y.uy4.lGe7dO';

/**
 * What the auth plugin needs of a user store: this htpasswd file (the default) or the PostgreSQL
 * table (users-pg.ts, docs/cluster.md). The sync reads are memory; verify reads the hash fresh.
 */
export interface Users {
  readonly file: string;
  readonly warnings: string[];
  readonly version: number;
  readonly size: number;
  readonly passwordMinLength: number;
  names(): string[];
  has(name: string): boolean;
  /** brings names/has/size up to date with every other node (null: the file is re-read on every call anyway) */
  sync(): Promise<void> | null;
  verify(name: string, password: string): Promise<boolean>;
  add(name: string, password: string): Promise<void>;
  changePassword(name: string, oldPassword: string, newPassword: string): Promise<void>;
  setPassword(name: string, newPassword: string): Promise<void>;
}

/** true when `password` matches `hash` (undefined: an unknown user, which costs as much as a known one). */
export async function verifyAgainst(hash: string | undefined, password: string): Promise<boolean> {
  if (hash === undefined) {
    await bcrypt.compare(password, DUMMY_HASH);
    return false;
  }
  switch (hashKind(hash)) {
    case 'bcrypt':
      return bcrypt.compare(password, hash);
    case 'sha': {
      const expected = Buffer.from(hash.slice(5), 'base64');
      const actual = createHash('sha1').update(password, 'utf8').digest();
      return expected.length === actual.length && timingSafeEqual(expected, actual);
    }
    default:
      await bcrypt.compare(password, DUMMY_HASH);
      return false;
  }
}

export class UserStore implements Users {
  readonly file: string;
  private readonly options: UserStoreOptions;
  private users = new Map<string, UserLine>();
  private order: string[] = [];
  private stamp = '';
  private writeQueue: Promise<unknown> = Promise.resolve();
  /** the real path the cross-process lock is taken on (the file itself may not exist yet) */
  private readonly lockPath: string;
  /** bumped whenever the file content changes: caches of successful logins key on it */
  private generation = 0;
  readonly warnings: string[] = [];

  constructor(options: UserStoreOptions) {
    this.options = options;
    this.file = options.file;
    mkdirSync(dirname(this.file), { recursive: true });
    this.lockPath = fileLockKey(this.file);
    this.refresh();
  }

  get version(): number {
    this.refresh();
    return this.generation;
  }

  /** User names in file order (the default admin is the recorded first user, first-user.ts — not this order). */
  names(): string[] {
    this.refresh();
    return [...this.order];
  }

  sync(): null {
    return null;
  }

  has(name: string): boolean {
    this.refresh();
    return this.users.has(name);
  }

  get size(): number {
    this.refresh();
    return this.users.size;
  }

  /** true when `password` is this user's password. Unknown users take as long as known ones. */
  async verify(name: string, password: string): Promise<boolean> {
    this.refresh();
    if (typeof password !== 'string') return false;
    return verifyAgainst(this.users.get(name)?.hash, password);
  }

  /** Registration. Throws ERR_USER_NAME, ERR_PASSWORD_POLICY, ERR_REGISTRATION_CLOSED, ERR_USER_EXISTS. */
  async add(name: string, password: string): Promise<void> {
    const nameProblem = usernameProblem(name);
    if (nameProblem) throw new AuthError('ERR_USER_NAME', nameProblem);
    const problem = passwordProblem(password, this.options.passwordMinLength);
    if (problem) throw new AuthError('ERR_PASSWORD_POLICY', problem);
    this.assertCanRegister(name);
    const hash = await bcrypt.hash(password, this.options.bcryptRounds);
    await this.serialised(() => {
      this.refresh();
      this.assertCanRegister(name);
      const current = existsSync(this.file) ? readFileSync(this.file, 'utf8') : '';
      const separator = current === '' || current.endsWith('\n') ? '' : '\n';
      writeFileAtomicSync(this.file, `${current}${separator}${name}:${hash}:autocreated ${new Date().toISOString()}\n`, 0o600);
      this.refresh(true);
    });
  }

  get passwordMinLength(): number {
    return this.options.passwordMinLength;
  }

  /** Replaces the password of an existing user after checking the old one (no rate limit: AuthService.changePassword is the route's path). */
  async changePassword(name: string, oldPassword: string, newPassword: string): Promise<void> {
    const problem = passwordProblem(newPassword, this.options.passwordMinLength);
    if (problem) throw new AuthError('ERR_PASSWORD_POLICY', problem);
    if (!(await this.verify(name, oldPassword))) throw new AuthError('ERR_BAD_CREDENTIALS', 'bad username or password');
    await this.setPassword(name, newPassword);
  }

  /** Writes a new password for an existing user; the caller has checked the old one. */
  async setPassword(name: string, newPassword: string): Promise<void> {
    const problem = passwordProblem(newPassword, this.options.passwordMinLength);
    if (problem) throw new AuthError('ERR_PASSWORD_POLICY', problem);
    const hash = await bcrypt.hash(newPassword, this.options.bcryptRounds);
    await this.serialised(() => {
      if (!existsSync(this.file)) throw new AuthError('ERR_BAD_CREDENTIALS', 'bad username or password');
      const lines = readFileSync(this.file, 'utf8').split('\n');
      let replaced = false;
      const next = lines.map((line) => {
        const parts = line.split(':');
        if (parts[0] !== name || parts.length < 2) return line;
        replaced = true;
        parts[1] = hash;
        return parts.join(':');
      });
      if (!replaced) throw new AuthError('ERR_BAD_CREDENTIALS', 'bad username or password');
      writeFileAtomicSync(this.file, next.join('\n'), 0o600);
      this.refresh(true);
    });
  }

  private assertCanRegister(name: string): void {
    if (this.users.has(name)) throw new AuthError('ERR_USER_EXISTS', `user ${name} already exists`);
    if (this.options.maxUsers < 0) throw new AuthError('ERR_REGISTRATION_CLOSED', 'registration is closed on this registry');
    if (this.users.size >= this.options.maxUsers) {
      throw new AuthError('ERR_REGISTRATION_CLOSED', `registration is closed: the registry already has ${this.options.maxUsers} users`);
    }
  }

  /** One write at a time: queued within this process, under the file lock across processes. */
  private serialised<T>(work: () => T): Promise<T> {
    const locked = () => withFileLockSync(this.lockPath, work);
    const run = this.writeQueue.then(locked, locked);
    this.writeQueue = run.catch(() => undefined);
    return run;
  }

  /** Re-reads the file when its (mtime, size, inode) changed. A missing file is an empty store. */
  private refresh(force = false): void {
    let stamp = 'missing';
    if (existsSync(this.file)) {
      const stats = statSync(this.file);
      stamp = `${stats.ino}:${stats.mtimeMs}:${stats.size}`;
    }
    if (!force && stamp === this.stamp) return;
    const lines = stamp === 'missing' ? [] : parseLines(this.file, readFileSync(this.file, 'utf8'));
    this.users = new Map(lines.map((line) => [line.name, line]));
    this.order = lines.map((line) => line.name);
    this.stamp = stamp;
    this.generation += 1;
    this.warnings.length = 0;
    for (const line of lines) {
      if (hashKind(line.hash) === 'unsupported') {
        this.warnings.push(`${this.file}: user ${line.name} has an unsupported hash format (only bcrypt and {SHA}); that user cannot log in`);
      }
    }
  }
}
