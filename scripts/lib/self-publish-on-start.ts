/**
 * `self_publish: true` (top level of config.yaml): on its first start — no self-reference record in
 * registry.lockb yet — the registry publishes the package it runs from into itself, over HTTP
 * like any publisher, with one boot-timeline line saying what happened.
 *
 * The publisher authenticates like npm does: `self_publish_user` from config.yaml and the password
 * from the environment variable REGISTRY_SELF_PUBLISH_PASSWORD (never in a file), through the
 * couch login route `PUT /-/user/org.couchdb.user:<name>`. As with `npm adduser`, a user that does
 * not exist yet is created with that password (on a fresh registry it is then the first user).
 *
 * A failure never stops the server (it serves packages fine without its own); it is printed on
 * stderr and as a timeline line, and the next start tries again.
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import { readFileSync } from 'node:fs';
import type { AddressInfo, Server } from 'node:net';
import { PackageIndex, bootMark, type IndexRecord } from '../../plugins/registry-core/index';
import { loadYaml, readVerdaccioConfig } from './verdaccio-config';

/*
 * The publishing side (libnpmpublish, npm-registry-fetch, sigstore…) is loaded only when a start
 * really self-publishes: `npm start` imports this module on every start, and loading those costs
 * ~50 ms CPU / ~30 ms of cold start (measured by `npm run bench`, scripts/bench/README.md).
 */
function npmClients(): typeof import('./npm-clients') {
  return require('./npm-clients') as typeof import('./npm-clients');
}

function selfPublishing(): typeof import('./self-publish') {
  return require('./self-publish') as typeof import('./self-publish');
}

export const SELF_PUBLISH_PASSWORD_ENV = 'REGISTRY_SELF_PUBLISH_PASSWORD';

export interface SelfPublishSettings {
  user: string;
  password: string;
}

/** `undefined` when config.yaml does not ask for it; throws when it asks but cannot be satisfied. */
export function readSelfPublishSettings(
  configPath: string,
  env: Record<string, string | undefined> = process.env,
): SelfPublishSettings | undefined {
  const yaml = loadYaml(readFileSync(configPath, 'utf8')) as Record<string, unknown> | null;
  const flag = yaml?.self_publish;
  if (flag === undefined || flag === false) return undefined;
  if (flag !== true) throw new Error(`self_publish in ${configPath} must be true or false, not ${JSON.stringify(flag)}`);
  const user = yaml?.self_publish_user;
  if (typeof user !== 'string' || user === '') {
    throw new Error(`self_publish: true needs self_publish_user: <user name> in ${configPath}`);
  }
  const password = env[SELF_PUBLISH_PASSWORD_ENV];
  if (!password) throw new Error(`self_publish: true needs the password of "${user}" in the environment variable ${SELF_PUBLISH_PASSWORD_ENV}`);
  return { user, password };
}

function urlOf(address: AddressInfo | string | null): string {
  if (!address || typeof address === 'string') throw new Error(`the server listens on ${String(address)}, not on a TCP port`);
  // A wildcard listener is reached through loopback.
  const host = address.address === '0.0.0.0' ? '127.0.0.1' : address.address === '::' ? '::1' : address.address;
  return `http://${address.family === 'IPv6' ? `[${host}]` : host}:${address.port}`;
}

async function login(registryUrl: string, settings: SelfPublishSettings): Promise<string> {
  const answer = (await npmClients().putJson(
    `/-/user/org.couchdb.user:${encodeURIComponent(settings.user)}`,
    {
      _id: `org.couchdb.user:${settings.user}`,
      name: settings.user,
      password: settings.password,
      type: 'user',
      roles: [],
      date: new Date().toISOString(),
    },
    { registry: `${registryUrl}/` },
  )) as { token?: unknown };
  if (typeof answer.token !== 'string') throw new Error(`logging in as "${settings.user}" returned no token`);
  return answer.token;
}

/**
 * Publishes the running package into the registry at `registryUrl` unless the index already holds
 * its self-reference. Resolves to what happened; never rejects.
 */
export async function selfPublishOnStart(
  configPath: string,
  registryUrl: string,
  env: Record<string, string | undefined> = process.env,
): Promise<'disabled' | 'already-recorded' | 'published' | 'already-published' | 'failed'> {
  try {
    const settings = readSelfPublishSettings(configPath, env);
    if (!settings) return 'disabled';
    const lockbPath = readVerdaccioConfig(configPath).lockbPath;
    const { OWN_PACKAGE_DIR, readManifest, selfPublish } = selfPublishing();
    const manifest = readManifest(OWN_PACKAGE_DIR);
    const index = PackageIndex.open(lockbPath);
    let recorded: IndexRecord | undefined;
    try {
      recorded = index.readAll().find((record) => record.kind === 'self-reference' && record.name === manifest.name);
    } finally {
      index.close();
    }
    if (recorded) {
      bootMark(`self-publish: ${recorded.name}@${recorded.version} already recorded in ${lockbPath}`);
      return 'already-recorded';
    }
    const token = await login(registryUrl, settings);
    const result = await selfPublish({ packageDir: OWN_PACKAGE_DIR, lockbPath, registryUrl, token });
    bootMark(
      result.outcome === 'published'
        ? `self-published ${result.name}@${result.version} as ${settings.user} (${result.integrity.slice(0, 23)}…)`
        : `self-publish: ${result.name}@${result.version} was already published (same content); self-reference recorded`,
    );
    return result.outcome;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const hint = (error as { hint?: unknown }).hint;
    bootMark(`self-publish FAILED: ${message.split('\n')[0]}`);
    process.stderr.write(`self-publish on start failed: ${message}\n${typeof hint === 'string' ? `  ${hint}\n` : ''}`);
    return 'failed';
  }
}

/**
 * For scripts/start.ts: call once before Verdaccio starts; when the server listens (after the
 * plugin-presence guard, which subscribed earlier and exits first if a plugin is missing), the
 * first-start self-publish runs in the background.
 */
export function armSelfPublishOnStart(configPath: string): void {
  const channel = 'tracing:net.server.listen:asyncEnd';
  const onListen = (message: unknown): void => {
    diagnosticsChannel.unsubscribe(channel, onListen);
    const { server } = message as { server: Server };
    let url: string;
    try {
      url = urlOf(server.address());
    } catch (error) {
      bootMark(`self-publish FAILED: ${(error as Error).message}`);
      return;
    }
    void selfPublishOnStart(configPath, url);
  };
  diagnosticsChannel.subscribe(channel, onListen);
}
