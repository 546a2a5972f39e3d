/**
 * The first user ever created, recorded durably beside the htpasswd file
 * (`<htpasswd>.first-user`, JSON, written atomically, mode 0600).
 *
 * Without `admins:` in the config the first user is the admin. Reading that from "the first line
 * of htpasswd" made admin follow the file: delete the line and the next user became admin. The
 * record is written once — at the first registration, or at the first start that finds users
 * but no record (an installation from before the record existed adopts its first line then) —
 * and never follows the file again. When the recorded user's line is deleted nobody is admin by
 * default; registering that name again does not bring it back (the record is retired first), so
 * a deleted admin's name cannot be taken over by self-registration.
 */
import { existsSync, readFileSync } from 'node:fs';
import { writeFileAtomicSync } from '../registry-core/atomic-file';
import { AuthError } from './errors';

interface RecordShape {
  user: string;
  /** ISO time the record was written */
  recorded: string;
  /** how the name was learnt: the first registration, or adopted from an existing file */
  source: 'registration' | 'adopted';
  /** set when the recorded user was deleted and the name registered again */
  retired?: string;
}

export class FirstUserRecord {
  readonly file: string;
  private record: RecordShape | null = null;

  constructor(htpasswdFile: string) {
    this.file = `${htpasswdFile}.first-user`;
    if (existsSync(this.file)) this.record = FirstUserRecord.parse(this.file, readFileSync(this.file, 'utf8'));
  }

  private static parse(file: string, text: string): RecordShape {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      throw new AuthError('ERR_HTPASSWD', `${file} is not valid JSON (${(error as Error).message}); fix or remove it`);
    }
    const shape = parsed as Partial<RecordShape> | null;
    if (
      !shape ||
      typeof shape !== 'object' ||
      typeof shape.user !== 'string' ||
      shape.user.length === 0 ||
      typeof shape.recorded !== 'string' ||
      (shape.source !== 'registration' && shape.source !== 'adopted') ||
      (shape.retired !== undefined && typeof shape.retired !== 'string')
    ) {
      throw new AuthError('ERR_HTPASSWD', `${file} is not a first-user record (expected {"user","recorded","source"})`);
    }
    const clean: RecordShape = { user: shape.user, recorded: shape.recorded, source: shape.source };
    if (shape.retired !== undefined) clean.retired = shape.retired;
    return clean;
  }

  /** The recorded first user while it still counts as the default admin; null otherwise. */
  get user(): string | null {
    return this.record && this.record.retired === undefined ? this.record.user : null;
  }

  /** The recorded name, retired or not (null when nothing was recorded yet). */
  get recordedName(): string | null {
    return this.record?.user ?? null;
  }

  /** Writes the record once; later calls change nothing. */
  recordIfMissing(user: string, source: RecordShape['source']): void {
    if (this.record) return;
    const record: RecordShape = { user, recorded: new Date().toISOString(), source };
    writeFileAtomicSync(this.file, `${JSON.stringify(record)}\n`, 0o600);
    this.record = record;
  }

  /** The recorded user is gone and its name is being registered again: it stops being the default admin. */
  retire(): void {
    if (!this.record || this.record.retired !== undefined) return;
    const record: RecordShape = { ...this.record, retired: new Date().toISOString() };
    writeFileAtomicSync(this.file, `${JSON.stringify(record)}\n`, 0o600);
    this.record = record;
  }
}
