/**
 * Issue 11.6 (bodies) and 11.11 (idle connections) against a real registry: body limits are
 * applied before any body is buffered, only an authorised publish may send a large one, the
 * default config takes what it claims (a 40 MB tarball), a connection that sends nothing is closed.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { connect } from 'node:net';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { gzipSync, constants as zlibConstants } from 'node:zlib';
import fc from 'fast-check';
import { addUser, startRegistry, type RunningRegistry } from '../harness/registry';
import { declaredLength, isPublishRoute, maxTarballBytes, parseSize } from '../../plugins/verdaccio-registry-storage/http/body-limit';
import { publishBody, putPackage, sha512Base64, useOurStorage } from './lib/packages';

const MB = 1024 * 1024;

/** Peak resident memory of a process (kB → bytes), from the kernel's own accounting. */
function peakRss(pid: number): number {
  const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  assert.ok(match, 'VmHWM in /proc/<pid>/status');
  return Number(match[1]) * 1024;
}

interface RawAnswer {
  status: number;
  text: string;
  headers: Record<string, string | string[] | undefined>;
}

/**
 * Sends `size` bytes of a JSON string body in 1 MB writes (declared length, or chunked) and
 * resolves with the answer; writes refused after the server answered (it may close) are fine.
 */
function sendBody(url: string, path: string, options: { method?: string; size: number; chunked?: boolean; headers?: Record<string, string> }): Promise<RawAnswer> {
  const target = new URL(path, url);
  const chunk = Buffer.alloc(MB, 'a');
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { 'content-type': 'application/json', ...options.headers };
    if (!options.chunked) headers['content-length'] = String(options.size + 2);
    const req = request(target, { method: options.method ?? 'POST', headers });
    let answered = false;
    req.on('response', (res) => {
      answered = true;
      let text = '';
      res.setEncoding('utf8').on('data', (part: string) => (text += part));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, text, headers: res.headers });
        req.destroy(); // the rest of the body is not wanted
      });
      res.on('error', reject);
    });
    req.on('error', (error) => {
      if (!answered) reject(error);
    });
    let sent = 0;
    const pump = (): void => {
      while (!answered && !req.destroyed) {
        if (sent === 0) req.write('"');
        if (sent >= options.size) {
          req.end('"');
          return;
        }
        const piece = Math.min(MB, options.size - sent);
        sent += piece;
        if (!req.write(piece === MB ? chunk : chunk.subarray(0, piece))) {
          req.once('drain', pump);
          return;
        }
      }
    };
    pump();
  });
}

function errorOf(answer: RawAnswer): string {
  const body = JSON.parse(answer.text) as { error?: unknown };
  assert.equal(typeof body.error, 'string', answer.text);
  return body.error as string;
}

/** A real npm tarball of at least `bytes` (random content, so gzip cannot shrink it). */
function bigTarball(name: string, version: string, bytes: number): Buffer {
  const blob = randomBytes(bytes).toString('base64'); // gzip brings base64 back to ~ its source size
  const files: Record<string, string> = {
    'package.json': `${JSON.stringify({ name, version, main: 'index.js', license: 'MIT' })}\n`,
    'index.js': 'module.exports = 1;\n',
    'blob.txt': blob,
  };
  const blocks: Buffer[] = [];
  for (const [file, content] of Object.entries(files)) {
    const data = Buffer.from(content, 'utf8');
    const header = Buffer.alloc(512, 0);
    header.write(`package/${file}`, 0, 100, 'utf8');
    header.write('0000644\0', 100, 8, 'ascii');
    header.write('0000000\0', 108, 8, 'ascii');
    header.write('0000000\0', 116, 8, 'ascii');
    header.write(`${data.length.toString(8).padStart(11, '0')}\0`, 124, 12, 'ascii');
    header.write(`${Math.floor(Date.UTC(2026, 0, 1) / 1000).toString(8).padStart(11, '0')}\0`, 136, 12, 'ascii');
    header.write('        ', 148, 8, 'ascii');
    header.write('0', 156, 1, 'ascii');
    header.write('ustar\0', 257, 6, 'ascii');
    header.write('00', 263, 2, 'ascii');
    let sum = 0;
    for (const byte of header) sum += byte;
    header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
    blocks.push(header, data, Buffer.alloc((512 - (data.length % 512)) % 512, 0));
  }
  blocks.push(Buffer.alloc(1024, 0));
  return gzipSync(Buffer.concat(blocks), { level: zlibConstants.Z_BEST_SPEED });
}

describe('11.6 bodies: the pure parts', () => {
  it('parseSize reads max_body_size exactly as body-parser (the `bytes` package) does', () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- the oracle is body-parser's own dependency
    const bytes = require('bytes') as { parse(value: string): number | null };
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4096 }), fc.constantFrom('', 'b', 'kb', 'mb', 'gb', 'KB', 'Mb'), fc.boolean(), (amount, unit, fraction) => {
        const text = `${amount}${fraction ? '.5' : ''}${unit}`;
        assert.equal(parseSize(text, 'max_body_size'), bytes.parse(text), text);
      }),
      { numRuns: 500 },
    );
    assert.equal(parseSize('72mb', 'max_body_size'), 72 * MB);
    assert.throws(() => parseSize('lots', 'max_body_size'), /must be a size like 64kb/);
    assert.throws(() => parseSize(-1, 'max_body_size'), /must be a size/);
  });

  it('the largest tarball of a publish body: base64 (4/3) plus a metadata allowance', () => {
    assert.ok(maxTarballBytes(72 * MB) >= 50 * MB, 'the default takes a 50 MB tarball');
    assert.ok(maxTarballBytes(50 * MB) < 40 * MB, 'the old default could not take a 40 MB one');
    fc.assert(
      fc.property(fc.integer({ min: 5 * MB, max: 2048 * MB }), (limit) => {
        const tarball = maxTarballBytes(limit);
        assert.ok(Math.ceil(tarball / 3) * 4 <= limit, 'its base64 fits the limit');
      }),
    );
  });

  it('declaredLength and isPublishRoute: only PUT /:package[/-rev/:rev] (scoped, %2f) is a publish', () => {
    assert.equal(declaredLength(undefined), null);
    assert.equal(declaredLength('123'), 123);
    assert.ok(Number.isNaN(declaredLength('12a')));
    assert.equal(isPublishRoute('PUT', '/pkg'), 'pkg');
    assert.equal(isPublishRoute('PUT', '/@scope/pkg'), '@scope/pkg');
    assert.equal(isPublishRoute('PUT', '/@scope%2fpkg'), '@scope/pkg');
    assert.equal(isPublishRoute('PUT', '/pkg/-rev/3-abc'), 'pkg');
    assert.equal(isPublishRoute('POST', '/pkg'), null);
    assert.equal(isPublishRoute('PUT', '/-/user/org.couchdb.user:bob'), null);
    assert.equal(isPublishRoute('PUT', '/pkg/beta'), null, 'a dist-tag');
    assert.equal(isPublishRoute('PUT', '/-/package/pkg/dist-tags/beta'), null);
  });
});

describe('11.6 bodies: limits before parsing', () => {
  let registry: RunningRegistry;
  let token: string;

  before(async () => {
    registry = await startRegistry({ editConfig: useOurStorage });
    token = await addUser(registry, 'limits-alice', 'limits-password-1');
  });
  after(async () => registry?.stop());

  it('11.6 bodies: large anonymous bodies to /-/ping and login are refused with 413 before parsing (peak RSS stays far below the bytes sent)', async () => {
    const pid = registry.process.pid;
    assert.ok(pid);
    const size = 49 * MB;
    // warm the refusal path once, so the baseline includes what serving it costs at all
    assert.equal((await sendBody(registry.url, '/-/ping', { size: 128 * 1024 })).status, 413);
    const baseline = peakRss(pid);
    const targets = [
      { path: '/-/ping', method: 'POST' },
      { path: '/-/user/org.couchdb.user:limits-bob', method: 'PUT' },
      { path: '/-/npm/v1/tokens', method: 'POST' },
      { path: '/-/package/some-pkg/dist-tags/beta', method: 'PUT' },
      { path: '/_dashboard/api/config', method: 'POST' },
      { path: '/-/verdaccio/sec/login', method: 'POST' },
    ];
    for (const target of targets) {
      for (const chunked of [false, true]) {
        const answer = await sendBody(registry.url, target.path, { method: target.method, size, chunked });
        const label = `${target.method} ${target.path}${chunked ? ' (chunked)' : ''}`;
        assert.equal(answer.status, 413, `${label}: ${answer.text}`);
        assert.match(errorOf(answer), /request body too large.*at most 64 KB/, label);
      }
    }
    // 12 × 49 MB were sent; parsing even one would cost > 49 MB (Verdaccio's old parser: ~150 MB each)
    const growth = peakRss(pid) - baseline;
    assert.ok(growth < size, `peak RSS grew by ${Math.round(growth / MB)} MB while refusing ${targets.length * 2} bodies of 49 MB`);
    // and the server still answers normally
    const ping = await fetch(`${registry.url}/-/ping`);
    assert.equal(ping.status, 200);
    // a small body on the same routes still works: login of a new user
    await addUser(registry, 'limits-bob', 'limits-password-2');
  });

  it('11.6 bodies: a large publish body from a caller not allowed to publish is refused before it is read (401/403)', async () => {
    const anonymous = await sendBody(registry.url, '/@scope%2fsome-pkg', { method: 'PUT', size: 20 * MB });
    assert.equal(anonymous.status, 401, anonymous.text);
    assert.match(errorOf(anonymous), /authorization required to publish package @scope\/some-pkg/);
    const badToken = await sendBody(registry.url, '/some-pkg', { method: 'PUT', size: 20 * MB, chunked: true, headers: { authorization: 'Bearer not-a-token' } });
    assert.equal(badToken.status, 401, badToken.text);
    // a read-only token: the credential check answers 403 by itself, the body is still never read
    const created = await fetch(`${registry.url}/-/npm/v1/tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ password: 'limits-password-1', readonly: true, cidr_whitelist: [] }),
    });
    const readOnly = ((await created.json()) as { token?: string }).token;
    assert.equal(typeof readOnly, 'string', `token create: ${created.status}`);
    const viaReadOnly = await sendBody(registry.url, '/some-pkg', { method: 'PUT', size: 20 * MB, headers: { authorization: `Bearer ${readOnly}` } });
    assert.equal(viaReadOnly.status, 403, viaReadOnly.text);
    assert.match(errorOf(viaReadOnly), /read-only/);
    // over max_body_size even for an authorised publisher: the message names the largest tarball
    const huge = await sendBody(registry.url, '/some-pkg', { method: 'PUT', size: 80 * MB, headers: { authorization: `Bearer ${token}` } });
    assert.equal(huge.status, 413, huge.text);
    assert.match(errorOf(huge), /largest tarball is about 5\d(\.\d)? MB; raise max_body_size/);
  });

  it('11.6 bodies: a 40 MB tarball publishes with the default config (max_body_size fits its base64)', async () => {
    const name = 'limits-big';
    const tarball = bigTarball(name, '1.0.0', 41 * MB);
    assert.ok(tarball.length >= 40 * MB, `tarball is ${tarball.length} bytes`);
    const { body } = publishBody(registry.url, name, '1.0.0', { tarball });
    assert.ok(body.length > 50 * MB, 'the publish body is larger than the old 50mb limit');
    const put = await putPackage(registry.url, token, name, body);
    assert.equal(put.status, 201, put.text);
    const packument = (await (await fetch(`${registry.url}/${name}`)).json()) as { versions: Record<string, { dist: { integrity: string } }> };
    assert.equal(packument.versions['1.0.0'].dist.integrity, `sha512-${sha512Base64(tarball)}`);
    const download = await fetch(`${registry.url}/${name}/-/${name}-1.0.0.tgz`);
    assert.equal(download.status, 200);
    const bytes = Buffer.from(await download.arrayBuffer());
    assert.equal(bytes.length, tarball.length);
    assert.ok(bytes.equals(tarball), 'the stored tarball is byte-identical');
  });
});

describe('11.11 idle connections', () => {
  let registry: RunningRegistry;

  before(async () => {
    registry = await startRegistry({
      editConfig: (config) => {
        useOurStorage(config);
        const middlewares = config.middlewares as Record<string, Record<string, unknown>>;
        middlewares['registry-storage-http'] = { ...middlewares['registry-storage-http'], headers_timeout_s: 1, idle_timeout_s: 2 };
      },
    });
  });
  after(async () => registry?.stop());

  /** Opens a raw TCP connection, optionally sends `bytes`, and resolves with what came back once the server closed it. */
  function openAndWait(bytes: string | null, boundMs: number): Promise<{ closed: boolean; received: string }> {
    return new Promise((resolve) => {
      const socket = connect(registry.port, '127.0.0.1');
      let received = '';
      const bound = setTimeout(() => {
        socket.destroy();
        resolve({ closed: false, received });
      }, boundMs);
      socket.setEncoding('utf8').on('data', (part: string) => (received += part));
      socket.on('connect', () => {
        if (bytes !== null) socket.write(bytes);
      });
      socket.on('close', () => {
        clearTimeout(bound);
        resolve({ closed: true, received });
      });
      socket.on('error', () => undefined);
    });
  }

  it('11.11 idle: a raw TCP connection that never sends a byte is closed by the server (configured 1 s headers / 2 s idle)', async () => {
    const silent = await openAndWait(null, 15_000);
    assert.ok(silent.closed, 'the server closed a connection that sent nothing');
    const partial = await openAndWait('GET /-/ping HTTP/1.1\r\nHost: x\r\n', 15_000);
    assert.ok(partial.closed, 'the server closed a connection whose headers never completed');
    assert.match(partial.received, /^HTTP\/1\.1 408/);
  });

  it('11.11 idle: keep-alive still works for a real client (several requests on one connection)', async () => {
    const socket = connect(registry.port, '127.0.0.1');
    socket.setEncoding('utf8');
    let received = '';
    socket.on('data', (part: string) => (received += part));
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    for (let i = 1; i <= 3; i += 1) {
      socket.write('GET /-/ping HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
      const deadline = Date.now() + 5000;
      while ((received.match(/HTTP\/1\.1 200/g) ?? []).length < i && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      assert.equal((received.match(/HTTP\/1\.1 200/g) ?? []).length, i, `answer ${i} on the same connection`);
    }
    assert.ok(!socket.destroyed);
    socket.destroy();
  });
});
