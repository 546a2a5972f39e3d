/**
 * What every lockfile parser returns: the registry packages a lockfile names, one entry per
 * name@version. Parsers are pure (text in, list out) and throw LockfileError on input they cannot
 * read — never a silent empty list. Contract: docs/offline-and-warm.md.
 */

export interface LockedPackage {
  name: string;
  version: string;
  /** sha512/sha1 SRI string when the lockfile records one (informational: the registry verifies). */
  integrity?: string;
}

export type LockfileFormat = 'npm' | 'bun' | 'pnpm' | 'yarn-v1' | 'yarn-berry';

export interface ParsedLockfile {
  format: LockfileFormat;
  packages: LockedPackage[];
  /** Entries the lockfile names that are not registry packages (workspace, file:, git, patch…), with why. */
  skipped: { entry: string; reason: string }[];
}

export class LockfileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LockfileError';
  }
}

/** npm's package name rules that matter for building a URL: optional @scope/, no spaces, no leading dot. */
const NAME = /^(?:@[a-z0-9~][a-z0-9._~-]*\/)?[a-z0-9~][a-z0-9._~-]*$/i;
/** A plain semver version (build metadata and prerelease allowed); ranges and URLs are not versions. */
const VERSION = /^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$/;

export function isPackageName(name: string): boolean {
  return name.length <= 214 && NAME.test(name);
}

export function isVersion(version: string): boolean {
  return version.length <= 256 && VERSION.test(version);
}

/** Splits `name@version` (`@scope/name@version` too) at the last `@` that is not the first character. */
export function splitNameAt(spec: string): { name: string; rest: string } | undefined {
  const at = spec.indexOf('@', 1);
  if (at <= 0) return undefined;
  return { name: spec.slice(0, at), rest: spec.slice(at + 1) };
}

/** Keeps the first of each name@version, in order. */
export class PackageSet {
  private readonly seen = new Map<string, LockedPackage>();
  readonly skipped: { entry: string; reason: string }[] = [];

  add(entry: string, pkg: LockedPackage): void {
    if (!isPackageName(pkg.name)) return this.skip(entry, `"${pkg.name}" is not a package name`);
    if (!isVersion(pkg.version)) return this.skip(entry, `"${pkg.version}" is not a registry version`);
    const key = `${pkg.name}@${pkg.version}`;
    if (!this.seen.has(key)) this.seen.set(key, pkg.integrity ? pkg : { name: pkg.name, version: pkg.version });
  }

  skip(entry: string, reason: string): void {
    this.skipped.push({ entry, reason });
  }

  result(format: LockfileFormat): ParsedLockfile {
    return { format, packages: [...this.seen.values()], skipped: this.skipped };
  }
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
