import diagnosticsChannel from 'node:diagnostics_channel';
import { existsSync, readFileSync } from 'node:fs';
import type { Server } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { bootMark } from './timeline';

/**
 * Verdaccio only logs a plugin that fails to load and starts anyway (for auth it even falls
 * back to htpasswd with open registration). Our plugins announce themselves here once fully
 * initialised; the presence guard (armed by the first of our plugins to load, or by
 * scripts/start.ts before Verdaccio starts) refuses to let the server listen unless every part
 * config.yaml configures did. diagnostics_channel is Node's own process-wide pub/sub, so no
 * module state of ours is shared between copies of this module.
 */
export type RegistryPart = 'auth' | 'storage' | 'storage-http' | 'dashboard' | 'audit' | 'ops';

/** Where each part is configured in config.yaml: `<section>: { <id>: {...} }`, loaded from the package `<prefix>-<id>`. */
export const PART_PLUGINS: readonly { part: RegistryPart; section: 'auth' | 'store' | 'middlewares'; id: string }[] = [
  { part: 'auth', section: 'auth', id: 'registry-auth' },
  { part: 'storage', section: 'store', id: 'registry-storage' },
  { part: 'storage-http', section: 'middlewares', id: 'registry-storage-http' },
  { part: 'dashboard', section: 'middlewares', id: 'registry-dashboard' },
  { part: 'audit', section: 'middlewares', id: 'registry-audit' },
  { part: 'ops', section: 'middlewares', id: 'registry-ops' },
];

export interface ConfiguredPart {
  part: RegistryPart;
  section: 'auth' | 'store' | 'middlewares';
  id: string;
}

const CHANNEL_NAME = 'mycompany-registry:plugin-loaded';

export interface PluginAnnouncement {
  part: RegistryPart;
  detail: string;
}

export function announcePluginLoaded(part: RegistryPart, detail = ''): void {
  diagnosticsChannel.channel(CHANNEL_NAME).publish({ part, detail } satisfies PluginAnnouncement);
}

export function onPluginLoaded(listener: (announcement: PluginAnnouncement) => void): () => void {
  const handler = (message: unknown): void => listener(message as PluginAnnouncement);
  diagnosticsChannel.subscribe(CHANNEL_NAME, handler);
  return () => diagnosticsChannel.unsubscribe(CHANNEL_NAME, handler);
}

function sectionKeys(section: unknown): string[] {
  return section && typeof section === 'object' ? Object.keys(section) : [];
}

/** Which of our parts a config.yaml mapping configures (its `auth:`, `store:` and `middlewares:` keys). */
export function configuredParts(config: { auth?: unknown; store?: unknown; middlewares?: unknown }): ConfiguredPart[] {
  const keys = { auth: sectionKeys(config.auth), store: sectionKeys(config.store), middlewares: sectionKeys(config.middlewares) };
  return PART_PLUGINS.filter((entry) => keys[entry.section].includes(entry.id)).map((entry) => ({ ...entry }));
}

export interface PresencePlan {
  configPath: string;
  expected: ConfiguredPart[];
  /** The `plugins:` folder, resolved; undefined when config.yaml has none (plugins come from node_modules). */
  pluginsDir: string | undefined;
  /** `server.pluginPrefix`, default `verdaccio`. */
  pluginPrefix: string;
}

interface GuardState {
  plan: PresencePlan;
  loaded: Set<RegistryPart>;
  problems: string[];
  refuse: (message: string) => void;
}

// One guard per process, whichever copy of this module armed it (start.ts or a plugin).
const GUARD_KEY = Symbol.for('mycompany-registry:presence-guard');
type GuardHolder = { [GUARD_KEY]?: GuardState };

function guardState(): GuardState | undefined {
  return (globalThis as GuardHolder)[GUARD_KEY];
}

/**
 * Why a configured part did not announce itself, and what to run. A missing build (the
 * package.json `main` names a file that does not exist) is told apart from a plugin that was
 * found but failed while initialising (its error is in Verdaccio's log).
 */
export function explainMissingPart(plan: PresencePlan, entry: ConfiguredPart): string {
  const where = `${entry.section}.${entry.id} in ${plan.configPath}`;
  if (plan.pluginsDir === undefined) {
    return `${entry.part} (${where}): config.yaml has no \`plugins:\` folder and ${plan.pluginPrefix}-${entry.id} did not load from node_modules — set \`plugins: ./plugins\``;
  }
  const folder = join(plan.pluginsDir, `${plan.pluginPrefix}-${entry.id}`);
  const manifestPath = join(folder, 'package.json');
  if (!existsSync(manifestPath)) {
    return `${entry.part} (${where}): no plugin at ${folder} — check \`plugins:\` in config.yaml, or run \`npm install\``;
  }
  let main = 'index.js';
  try {
    const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as { main?: unknown };
    if (typeof manifest.main === 'string' && manifest.main !== '') main = manifest.main;
  } catch (error) {
    return `${entry.part} (${where}): ${manifestPath} is not valid JSON (${error instanceof Error ? error.message : String(error)})`;
  }
  const entryFile = resolve(folder, main);
  if (![entryFile, `${entryFile}.js`, join(entryFile, 'index.js')].some((candidate) => existsSync(candidate))) {
    return `${entry.part} (${where}): its build is missing (${entryFile} does not exist) — run \`npm run build\` (or \`npm start\`, which builds first)`;
  }
  return `${entry.part} (${where}): found at ${folder} but it failed while loading — its error is in the Verdaccio log above`;
}

/** The refusal text: every configured part that did not announce itself, and the recorded start-up problems. */
export function presenceProblem(plan: PresencePlan, loaded: ReadonlySet<RegistryPart>, problems: readonly string[]): string | undefined {
  const missing = plan.expected.filter((entry) => !loaded.has(entry.part));
  if (missing.length === 0) return undefined;
  return [
    `plugin(s) for ${missing.map((entry) => entry.part).join(', ')} did not load:`,
    ...problems.map((problem) => `  ${problem}`),
    ...missing.map((entry) => `  ${explainMissingPart(plan, entry)}`),
    'Refusing to serve without them (Verdaccio would silently fall back to its defaults).',
  ].join('\n');
}

function refuseAndExit(message: string): void {
  process.stderr.write(`\nregistry start-up failed: ${message}\n`);
  process.exit(1);
}

function addressText(server: Server): string | undefined {
  const address = server.address();
  if (!address || typeof address !== 'object') return undefined;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `http://${host}:${address.port}`;
}

/**
 * Arms the guard once per process (later calls only add nothing): at the first `listen()` —
 * before the port is bound, so a refused start never accepts a connection — every expected part
 * must have announced itself, else the process exits 1 with what to run. The first server that
 * listens is named on the boot timeline ("listening on … — ready"). Returns false when a guard
 * was already armed.
 */
export function armPresenceGuard(plan: PresencePlan, refuse: (message: string) => void = refuseAndExit): boolean {
  if (guardState() !== undefined) return false;
  const state: GuardState = { plan, loaded: new Set(), problems: [], refuse };
  (globalThis as GuardHolder)[GUARD_KEY] = state;
  onPluginLoaded(({ part }) => state.loaded.add(part));
  const onListenStart = (): void => {
    diagnosticsChannel.unsubscribe('tracing:net.server.listen:asyncStart', onListenStart);
    const problem = presenceProblem(state.plan, state.loaded, state.problems);
    if (problem !== undefined) state.refuse(problem);
  };
  const onListenEnd = (message: unknown): void => {
    diagnosticsChannel.unsubscribe('tracing:net.server.listen:asyncEnd', onListenEnd);
    const url = addressText((message as { server: Server }).server);
    if (url) bootMark(`listening on ${url} — ready`);
  };
  diagnosticsChannel.subscribe('tracing:net.server.listen:asyncStart', onListenStart);
  diagnosticsChannel.subscribe('tracing:net.server.listen:asyncEnd', onListenEnd);
  return true;
}

/** A start-up failure to repeat in the refusal (e.g. an invalid registry.lockb and how to repair it). */
export function reportStartupProblem(text: string): void {
  const state = guardState();
  if (state && !state.problems.includes(text)) state.problems.push(text);
}

/** The folder config.yaml's `plugins:` names, resolved against the config's folder. */
export function pluginsDirOf(configPath: string, plugins: unknown): string | undefined {
  return typeof plugins === 'string' && plugins !== '' ? resolve(dirname(resolve(configPath)), plugins) : undefined;
}
