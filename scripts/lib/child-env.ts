import { join, resolve } from 'node:path';

/** The repository (or installed package) root: build/scripts/lib → three levels up. */
export const PROJECT_ROOT = resolve(__dirname, '..', '..', '..');
/** The pinned Node (npm package `node`), never the system one. */
export const NODE_BIN = join(PROJECT_ROOT, 'node_modules', '.bin', 'node');

/**
 * Environment for a child process (registry, npm, bun) with nothing inherited from an enclosing
 * `npm run` (its npm_config_* would redirect the child's registry, cache and userconfig) or from
 * our own BUN_* settings (they would override the child's registry.lockb at start-up).
 */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    const lower = key.toLowerCase();
    if (lower.startsWith('npm_') || key.startsWith('BUN_') || key === 'NODE_OPTIONS' || key === 'NO_COLOR') continue;
    env[key] = value;
  }
  env.PATH = `${join(PROJECT_ROOT, 'node_modules', '.bin')}:${process.env.PATH ?? ''}`;
  return { ...env, ...extra };
}
