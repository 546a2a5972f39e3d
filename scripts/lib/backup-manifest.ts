/**
 * The manifest of a backup archive (`manifest.json`, the archive's first entry; docs/backup.md):
 * what the archive holds and the sha512 of every file. `parseManifest` is the one reader — restore
 * trusts nothing in an archive it has not checked against it. Pure.
 */

export const MANIFEST_NAME = 'manifest.json';
export const MANIFEST_FORMAT = 'mycompany-registry-backup';
export const MANIFEST_VERSION = 1;
/** every state file sits below this folder in the archive */
export const DATA_DIR = 'data';

/** What a backup may hold: folders (any files below) and single files, by the name they have in a default layout. */
export const ROLES = {
  storage: 'dir',
  keys: 'dir',
  'signing-keys': 'dir',
  'registry.lockb': 'file',
  htpasswd: 'file',
  'htpasswd.first-user': 'file',
  'audit.log': 'file',
  '.env.local': 'file',
  'config.yaml': 'file',
} as const;
export type Role = keyof typeof ROLES;
/** restore refuses an archive without these */
export const REQUIRED_ROLES: readonly Role[] = ['storage', 'registry.lockb'];

export interface ManifestFile {
  /** archive path, `data/<role>[/…]`, `/`-separated */
  path: string;
  size: number;
  /** 128 lowercase hex */
  sha512: string;
}

export interface BackupManifest {
  format: typeof MANIFEST_FORMAT;
  formatVersion: typeof MANIFEST_VERSION;
  /** ISO time the snapshot was taken */
  created: string;
  /** `<package name>@<version>` of the tool that wrote it */
  writtenBy: string;
  /** whether `storage/.upstream/` (the upstream cache) is in it */
  upstreamCache: boolean;
  /** local packages and versions in the snapshot */
  packages: number;
  versions: number;
  /** the roles present (a folder role may hold no file, e.g. an empty keys folder) */
  roles: Role[];
  files: ManifestFile[];
}

export class ManifestError extends Error {
  constructor(message: string) {
    super(`backup manifest: ${message}`);
    this.name = 'ManifestError';
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isRole(value: unknown): value is Role {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(ROLES, value);
}

const SHA512_HEX = /^[0-9a-f]{128}$/;
// no control characters, no backslash (a Windows separator), no NUL
const SAFE_SEGMENT = /^[^\u0000-\u001f\u007f\\/]+$/;

/** The role of an archive path, or why the path is not one a backup may contain. */
export function roleOfPath(path: string): { role: Role } | { problem: string } {
  if (typeof path !== 'string' || path === '') return { problem: 'empty path' };
  if (path.length > 4096) return { problem: 'path longer than 4096 characters' };
  const parts = path.split('/');
  if (parts[0] !== DATA_DIR) return { problem: `${JSON.stringify(path.slice(0, 200))} is not below ${DATA_DIR}/` };
  for (const part of parts) {
    if (part === '' || part === '.' || part === '..' || !SAFE_SEGMENT.test(part)) return { problem: `${JSON.stringify(path.slice(0, 200))} has an unsafe segment` };
  }
  const role = parts[1];
  if (!isRole(role)) return { problem: `${JSON.stringify(path.slice(0, 200))}: unknown role ${JSON.stringify(role)}` };
  if (ROLES[role] === 'file' && parts.length !== 2) return { problem: `${JSON.stringify(path.slice(0, 200))}: ${role} is a single file` };
  if (ROLES[role] === 'dir' && parts.length < 3) return { problem: `${JSON.stringify(path.slice(0, 200))}: ${role} is a folder, a file must be inside it` };
  return { role };
}

/** Parses and checks a manifest's text; throws ManifestError saying what is wrong. */
export function parseManifest(text: string): BackupManifest {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new ManifestError(`not JSON (${(error as Error).message})`);
  }
  if (!isRecord(raw)) throw new ManifestError('not a JSON object');
  if (raw.format !== MANIFEST_FORMAT) throw new ManifestError(`format is ${JSON.stringify(raw.format)}, expected ${JSON.stringify(MANIFEST_FORMAT)}: not a registry backup`);
  if (raw.formatVersion !== MANIFEST_VERSION) {
    throw new ManifestError(`formatVersion ${JSON.stringify(raw.formatVersion)} is not supported (this tool reads ${MANIFEST_VERSION}): use the registry version that wrote it`);
  }
  if (typeof raw.created !== 'string' || !Number.isFinite(Date.parse(raw.created))) throw new ManifestError('created must be an ISO time');
  if (typeof raw.writtenBy !== 'string' || raw.writtenBy.length > 300) throw new ManifestError('writtenBy must be a short string');
  if (typeof raw.upstreamCache !== 'boolean') throw new ManifestError('upstreamCache must be true or false');
  for (const key of ['packages', 'versions'] as const) {
    if (!Number.isSafeInteger(raw[key]) || (raw[key] as number) < 0) throw new ManifestError(`${key} must be a whole number ≥ 0`);
  }
  if (!Array.isArray(raw.roles) || !raw.roles.every(isRole)) throw new ManifestError(`roles must list roles among ${Object.keys(ROLES).join(', ')}`);
  const roles = raw.roles as Role[];
  if (new Set(roles).size !== roles.length) throw new ManifestError('roles lists a role twice');
  for (const role of REQUIRED_ROLES) if (!roles.includes(role)) throw new ManifestError(`the backup has no ${role}`);
  if (!Array.isArray(raw.files)) throw new ManifestError('files must be an array');
  const files: ManifestFile[] = [];
  const seen = new Set<string>();
  const fileRoles = new Map<Role, number>();
  for (const [i, entry] of raw.files.entries()) {
    if (!isRecord(entry)) throw new ManifestError(`files[${i}] is not an object`);
    const { path, size, sha512 } = entry;
    if (typeof path !== 'string') throw new ManifestError(`files[${i}].path must be a string`);
    const role = roleOfPath(path);
    if ('problem' in role) throw new ManifestError(`files[${i}]: ${role.problem}`);
    if (!roles.includes(role.role)) throw new ManifestError(`files[${i}] ${path} belongs to ${role.role}, which roles does not list`);
    if (!Number.isSafeInteger(size) || (size as number) < 0) throw new ManifestError(`files[${i}].size must be a whole number ≥ 0`);
    if (typeof sha512 !== 'string' || !SHA512_HEX.test(sha512)) throw new ManifestError(`files[${i}].sha512 must be 128 lowercase hex digits`);
    if (seen.has(path)) throw new ManifestError(`${path} is listed twice`);
    seen.add(path);
    fileRoles.set(role.role, (fileRoles.get(role.role) ?? 0) + 1);
    files.push({ path, size: size as number, sha512 });
  }
  // a path may not be both a file and the folder of another file
  for (const path of seen) {
    for (let cut = path.lastIndexOf('/'); cut > 0; cut = path.lastIndexOf('/', cut - 1)) {
      if (seen.has(path.slice(0, cut))) throw new ManifestError(`${path.slice(0, cut)} is listed as a file and as a folder`);
    }
  }
  for (const role of roles) {
    if (ROLES[role] === 'file' && fileRoles.get(role) !== 1) throw new ManifestError(`roles lists ${role} but files has no ${DATA_DIR}/${role}`);
  }
  return {
    format: MANIFEST_FORMAT,
    formatVersion: MANIFEST_VERSION,
    created: raw.created,
    writtenBy: raw.writtenBy,
    upstreamCache: raw.upstreamCache,
    packages: raw.packages as number,
    versions: raw.versions as number,
    roles,
    files,
  };
}

/** The manifest's text (stable key order, one file per line: diffable). */
export function formatManifest(manifest: BackupManifest): string {
  const head = { ...manifest, files: undefined };
  const lines = manifest.files.map((file) => `  ${JSON.stringify({ path: file.path, size: file.size, sha512: file.sha512 })}`);
  const json = JSON.stringify(head, null, 1).replace(/\n}$/, '');
  return `${json},\n "files": [\n${lines.join(',\n')}\n ]\n}\n`;
}
