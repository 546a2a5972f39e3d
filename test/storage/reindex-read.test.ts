/**
 * Verdaccio's start-up search reindex reads every packument through PackageHandler.readPackage
 * outside any request; those reads must not fill the store's text cache (issue 17: RSS after a
 * restart with 3,000 packages), while every read inside a request (the auth middleware's request
 * context, anonymous included) keeps filling it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PackageHandler, type AdapterDeps } from '../../plugins/verdaccio-registry-storage/verdaccio-adapter';
import { runWithRequestActor } from '../../plugins/registry-core/index';
import type { PackageService } from '../../plugins/verdaccio-registry-storage/package-service';
import type { ReadOptions } from '../../plugins/verdaccio-registry-storage/store';

test('readPackage: keep: false outside a request, the default inside one (anonymous too)', async () => {
  const seen: (ReadOptions | undefined)[] = [];
  const service = {
    readPackage: async (name: string, options?: ReadOptions) => {
      seen.push(options);
      return { name, versions: {}, 'dist-tags': {} };
    },
  } as unknown as PackageService;
  const logger = { warn() {}, error() {}, info() {}, debug() {}, trace() {}, fatal() {}, http() {}, child() { return logger; } };
  const handler = new PackageHandler('pkg', { service, tokens: null, logger } as unknown as AdapterDeps);
  const read = (): Promise<unknown> => new Promise((resolve, reject) => handler.readPackage('pkg', (error: unknown, value: unknown) => (error ? reject(error) : resolve(value))));
  await read();
  await runWithRequestActor({ user: null, address: '127.0.0.1', tokenId: null }, read);
  await runWithRequestActor({ user: 'alice', address: '127.0.0.1', tokenId: 'j1' }, read);
  assert.deepEqual(seen, [{ keep: false }, undefined, undefined]);
});
