/** Picks the parser by file name (and, for yarn.lock, by content). Contract: docs/offline-and-warm.md. */
import { basename } from 'node:path';
import { parseBunLockfile } from './bun';
import { parseNpmLockfile } from './npm';
import { parsePnpmLockfile } from './pnpm';
import { parseYarnLockfile } from './yarn';
import { LockfileError, type ParsedLockfile } from './types';

export { LockfileError, type LockedPackage, type ParsedLockfile, type LockfileFormat } from './types';
export { parseBunLockfile, parseNpmLockfile, parsePnpmLockfile, parseYarnLockfile };

export const LOCKFILE_NAMES = ['package-lock.json', 'npm-shrinkwrap.json', 'bun.lock', 'pnpm-lock.yaml', 'yarn.lock'] as const;

export function parseLockfile(fileName: string, text: string): ParsedLockfile {
  switch (basename(fileName)) {
    case 'package-lock.json':
    case 'npm-shrinkwrap.json':
      return parseNpmLockfile(text);
    case 'bun.lock':
      return parseBunLockfile(text);
    case 'pnpm-lock.yaml':
      return parsePnpmLockfile(text);
    case 'yarn.lock':
      return parseYarnLockfile(text);
    default:
      throw new LockfileError(`${basename(fileName)} is not a lockfile this command reads (one of ${LOCKFILE_NAMES.join(', ')})`);
  }
}
