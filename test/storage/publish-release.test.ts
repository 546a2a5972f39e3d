/**
 * A guarded JSON publish gives its body's base64 tarball string up once Verdaccio has decoded it
 * into the store's upload stream (publish-intent.ts runInPublish / releaseAttachment): the string
 * (4/3 of the tarball) used to stay alive through the tarball's fsync, the package lock and the
 * version write — the bulk of the peak RSS of 20 concurrent 5 MB publishes (SPEC §9).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import express from 'express';
import type { Request, Response } from 'express';
import { createStorageHttpHandler } from '../../plugins/verdaccio-registry-storage/http/routes';
import { releaseAttachment, runInPublish } from '../../plugins/verdaccio-registry-storage/publish-intent';
import type { PackageService } from '../../plugins/verdaccio-registry-storage/package-service';
import type { TarballDigest, TarballWriter } from '../../plugins/verdaccio-registry-storage/store';
import { PackageHandler, type AdapterDeps, type StorageHttpHost } from '../../plugins/verdaccio-registry-storage/verdaccio-adapter';
import { makeTarball, sha1Hex, sha512Base64 } from './lib/packages';

test('releaseAttachment drops only the current publish request’s own attachment, once, across awaits', async () => {
  const attachment: Record<string, unknown> = { content_type: 'application/octet-stream', data: 'H4sIAAAA', length: 6 };
  releaseAttachment('pkg', 'pkg-1.0.0.tgz'); // outside any publish request: nothing to release
  assert.equal(attachment.data, 'H4sIAAAA');
  await runInPublish('pkg', 'pkg-1.0.0.tgz', attachment, async () => {
    releaseAttachment('pkg', 'pkg-2.0.0.tgz'); // another tarball of the package
    releaseAttachment('other', 'pkg-1.0.0.tgz'); // another package
    assert.equal(attachment.data, 'H4sIAAAA');
    await new Promise((resolve) => setImmediate(resolve)); // the store's calls come back in later turns
    releaseAttachment('pkg', 'pkg-1.0.0.tgz');
    assert.equal(Object.hasOwn(attachment, 'data'), false);
    assert.deepEqual({ ...attachment }, { content_type: 'application/octet-stream', length: 6 }, 'the rest of the attachment stays');
    attachment.data = 'again';
    releaseAttachment('pkg', 'pkg-1.0.0.tgz'); // released once: a later value is not this request's body
    assert.equal(attachment.data, 'again');
  });
  // two requests at once, each with its own context
  const first: Record<string, unknown> = { data: 'AAAA' };
  const second: Record<string, unknown> = { data: 'BBBB' };
  let go!: () => void;
  const gate = new Promise<void>((resolve) => (go = resolve));
  const a = runInPublish('same', 'same-1.0.0.tgz', first, async () => {
    await gate;
    releaseAttachment('same', 'same-1.0.0.tgz');
  });
  const b = runInPublish('same', 'same-1.0.0.tgz', second, async () => {
    await gate;
  });
  go();
  await Promise.all([a, b]);
  assert.equal(Object.hasOwn(first, 'data'), false);
  assert.equal(second.data, 'BBBB', 'a concurrent publish of the same version keeps its own string');
});

function fakeService(received: Buffer[]): PackageService {
  return {
    uploadTarball: (): TarballWriter => {
      const stream = new Writable({
        write(chunk: Buffer, _encoding, callback) {
          received.push(chunk);
          callback();
        },
      });
      return {
        stream,
        commit: async (): Promise<TarballDigest> => {
          const bytes = Buffer.concat(received);
          return { sha512: sha512Base64(bytes), sha1: sha1Hex(bytes), size: bytes.length };
        },
        abort: async () => undefined,
      };
    },
  } as unknown as PackageService;
}

test('PackageHandler.writeTarball: done() after the decoded bytes releases the body string; the store gets every byte', async () => {
  const tarball = makeTarball('pkg', '1.0.0', { 'blob.txt': 'x'.repeat(100_000) });
  const attachment: Record<string, unknown> = { content_type: 'application/octet-stream', data: tarball.toString('base64'), length: tarball.length };
  const received: Buffer[] = [];
  const logger = { warn() {}, error() {}, info() {}, debug() {}, trace() {}, fatal() {}, http() {}, child: () => logger };
  const handler = new PackageHandler('pkg', { service: fakeService(received), tokens: null, logger } as unknown as AdapterDeps);
  await runInPublish('pkg', 'pkg-1.0.0.tgz', attachment, async () => {
    // what Verdaccio's publish handler does (api/publish.ts createTarball)
    const upload = handler.writeTarball('pkg-1.0.0.tgz');
    const settled = new Promise<void>((resolve, reject) => {
      upload.once('success', () => resolve());
      upload.once('error', reject);
    });
    upload.end(Buffer.from(attachment.data as string, 'base64'));
    assert.equal(typeof attachment.data, 'string', 'kept until the store has the decoded bytes');
    upload.done();
    assert.equal(Object.hasOwn(attachment, 'data'), false);
    await settled;
  });
  assert.ok(Buffer.concat(received).equals(tarball));
});

test('the publish guard runs Verdaccio’s flow inside the publish context of the body’s attachment', async () => {
  const host = {
    packumentRevision: null,
    ownerStore: null,
    actor: () => ({ name: 'alice', admin: false }),
    errorAnswer: () => ({ status: 500, message: 'error' }),
    upstream: null,
    storeProblem: 'not ours',
    cacheBlockers: [],
    forwardedProtoHeader: 'X-Forwarded-Proto',
    listNames: null,
    publishFailed: null,
    allowed: (_action: string, _name: string, _req: Request, done: (allowed: boolean) => void) => done(true),
    hostHeaderUsable: () => true,
    hasRemoteUser: () => true,
    needsVerdaccioAuth: () => false,
  } as unknown as StorageHttpHost;
  const app = express();
  app.use(express.json({ limit: '10mb' }));
  app.use(createStorageHttpHandler({ host, cache: null, warn: () => undefined }));
  // stands in for Verdaccio's handler: the store's upload of this tarball reports it decoded
  app.put('/:package', (req: Request, res: Response) => {
    const attachments = (req.body as { _attachments: Record<string, Record<string, unknown>> })._attachments;
    const [key] = Object.keys(attachments);
    const before = typeof attachments[key].data;
    setImmediate(() => {
      releaseAttachment('@scope/pkg', 'pkg-1.0.0.tgz');
      res.json({ before, after: typeof attachments[key].data });
    });
  });
  const server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  try {
    const tarball = makeTarball('@scope/pkg', '1.0.0');
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const body = {
      _id: '@scope/pkg',
      name: '@scope/pkg',
      'dist-tags': { latest: '1.0.0' },
      versions: { '1.0.0': { name: '@scope/pkg', version: '1.0.0', dist: { tarball: `${url}/@scope/pkg/-/pkg-1.0.0.tgz`, shasum: sha1Hex(tarball), integrity: `sha512-${sha512Base64(tarball)}` } } },
      _attachments: { '@scope/pkg-1.0.0.tgz': { content_type: 'application/octet-stream', data: tarball.toString('base64'), length: tarball.length } },
    };
    const response = await fetch(`${url}/@scope%2fpkg`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    assert.equal(response.status, 200, await response.clone().text());
    assert.deepEqual(await response.json(), { before: 'string', after: 'undefined' });
  } finally {
    server.close();
  }
});
