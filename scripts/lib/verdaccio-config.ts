import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { configuredParts, type RegistryPart } from '../../plugins/registry-core/plugin-presence';
import { lockbPathFor, storageDirFor } from '../../plugins/registry-core/layout';

/**
 * js-yaml's ESM build: the copy Verdaccio's own config parser (`@verdaccio/config`, ESM) imports.
 * `npm start` reads config.yaml before Verdaccio does, and `import { load } from 'js-yaml'` here
 * would load the package's CommonJS build as a second copy (≈ 4 ms CPU and its memory at every
 * start, issue 17). Resolved next to the CommonJS entry: the package exports no subpath for it.
 */
const yaml = ((): typeof import('js-yaml') => {
  try {
    return require(join(dirname(require.resolve('js-yaml')), 'js-yaml.mjs')) as typeof import('js-yaml');
  } catch (error) {
    // Node 22.0–22.11 cannot require() an ES module (ERR_REQUIRE_ESM): the CommonJS build, the same parser
    if ((error as NodeJS.ErrnoException).code !== 'ERR_REQUIRE_ESM') throw error;
    return require('js-yaml') as typeof import('js-yaml');
  }
})();

/** YAML text → value (js-yaml's `load`, the copy Verdaccio uses). */
export function loadYaml(text: string): unknown {
  return yaml.load(text);
}

/** The few keys of a Verdaccio config.yaml our scripts need, with paths resolved against its folder. */
export interface VerdaccioConfigSummary {
  configPath: string;
  configDir: string;
  storageDir: string;
  /** `registry_lockb:` resolved, else registry.lockb next to config.yaml (core lockbPathFor) */
  lockbPath: string;
  authPlugins: string[];
  storePlugins: string[];
  middlewarePlugins: string[];
  /** The parsed YAML mapping itself (what the core's bootRegistry reads, as the plugins do from Verdaccio). */
  mapping: Record<string, unknown>;
}

function sectionKeys(section: unknown): string[] {
  return section && typeof section === 'object' ? Object.keys(section) : [];
}

export function readVerdaccioConfig(configPath: string): VerdaccioConfigSummary {
  const parsed = loadYaml(readFileSync(configPath, 'utf8'));
  if (!parsed || typeof parsed !== 'object') throw new Error(`${configPath} is not a YAML mapping`);
  const yaml = parsed as Record<string, unknown>;
  const configDir = dirname(resolve(configPath));
  return {
    configPath: resolve(configPath),
    configDir,
    storageDir: storageDirFor(configDir, yaml.storage),
    lockbPath: lockbPathFor(configDir, yaml.registry_lockb),
    authPlugins: sectionKeys(yaml.auth),
    storePlugins: sectionKeys(yaml.store),
    middlewarePlugins: sectionKeys(yaml.middlewares),
    mapping: yaml,
  };
}

/** Which of our parts config.yaml asks for (the core's table: one rule, one place). */
export function requiredParts(config: VerdaccioConfigSummary): RegistryPart[] {
  return configuredParts(config.mapping).map((entry) => entry.part);
}
