/**
 * Raw-HTTP publishing for the storage tests: real npm tarballs (gzip'd ustar with
 * package/package.json) and the exact JSON body npm sends to `PUT /<name>`, so tests can
 * publish dozens of versions concurrently, or send deliberately wrong bodies, without
 * spawning a CLI per request.
 */
import { createHash } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { gzipSync } from 'node:zlib';

function tarHeader(path: string, size: number): Buffer {
  const header = Buffer.alloc(512, 0);
  header.write(path, 0, 100, 'utf8');
  header.write('0000644\0', 100, 8, 'ascii');
  header.write('0000000\0', 108, 8, 'ascii');
  header.write('0000000\0', 116, 8, 'ascii');
  header.write(`${size.toString(8).padStart(11, '0')}\0`, 124, 12, 'ascii');
  header.write(`${Math.floor(Date.UTC(2026, 0, 1) / 1000).toString(8).padStart(11, '0')}\0`, 136, 12, 'ascii');
  header.write('        ', 148, 8, 'ascii'); // checksum field counts as spaces while summing
  header.write('0', 156, 1, 'ascii');
  header.write('ustar\0', 257, 6, 'ascii');
  header.write('00', 263, 2, 'ascii');
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
  return header;
}

/** A valid npm package tarball holding package.json (+ files). */
export function makeTarball(name: string, version: string, files: Record<string, string> = {}): Buffer {
  const all: Record<string, string> = {
    'package.json': `${JSON.stringify({ name, version, main: 'index.js', license: 'MIT' }, null, 2)}\n`,
    'index.js': `module.exports = ${JSON.stringify(`${name}@${version}`)};\n`,
    ...files,
  };
  const blocks: Buffer[] = [];
  for (const [file, content] of Object.entries(all)) {
    const data = Buffer.from(content, 'utf8');
    blocks.push(tarHeader(`package/${file}`, data.length), data, Buffer.alloc((512 - (data.length % 512)) % 512, 0));
  }
  blocks.push(Buffer.alloc(1024, 0));
  return gzipSync(Buffer.concat(blocks));
}

export function sha512Base64(bytes: Buffer): string {
  return createHash('sha512').update(bytes).digest('base64');
}

export function sha1Hex(bytes: Buffer): string {
  return createHash('sha1').update(bytes).digest('hex');
}

export function bareName(name: string): string {
  return name.slice(name.lastIndexOf('/') + 1);
}

export interface PublishOptions {
  tarball?: Buffer;
  /** override what the manifest declares */
  integrity?: string;
  shasum?: string;
  attachmentName?: string;
  distTarball?: string;
  tag?: string;
  extra?: Record<string, unknown>;
}

/** The body `npm publish` sends. */
export function publishBody(registryUrl: string, name: string, version: string, options: PublishOptions = {}): { body: string; tarball: Buffer } {
  const tarball = options.tarball ?? makeTarball(name, version);
  const file = options.attachmentName ?? `${bareName(name)}-${version}.tgz`;
  const body = {
    _id: name,
    name,
    description: `test package ${name}`,
    'dist-tags': { [options.tag ?? 'latest']: version },
    versions: {
      [version]: {
        name,
        version,
        main: 'index.js',
        license: 'MIT',
        _id: `${name}@${version}`,
        dist: {
          integrity: options.integrity ?? `sha512-${sha512Base64(tarball)}`,
          shasum: options.shasum ?? sha1Hex(tarball),
          tarball: options.distTarball ?? `${registryUrl}/${name}/-/${file}`,
        },
        ...options.extra,
      },
    },
    access: null,
    _attachments: { [file]: { content_type: 'application/octet-stream', data: tarball.toString('base64'), length: tarball.length } },
  };
  return { body: JSON.stringify(body), tarball };
}

export interface HttpResult {
  status: number;
  text: string;
}

export async function putPackage(registryUrl: string, token: string, name: string, body: string, pathOverride?: string): Promise<HttpResult> {
  const response = await fetch(`${registryUrl}/${pathOverride ?? encodeURIComponent(name)}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body,
  });
  return { status: response.status, text: await response.text() };
}

export async function publishRaw(registryUrl: string, token: string, name: string, version: string, options: PublishOptions = {}): Promise<HttpResult & { tarball: Buffer }> {
  const { body, tarball } = publishBody(registryUrl, name, version, options);
  return { ...(await putPackage(registryUrl, token, name, body)), tarball };
}

/** Publishes each [name, extra] at 1.0.0 (raw PUT), asserting every 201: the packages a test starts with. */
export async function publishEach(registryUrl: string, token: string, packages: ReadonlyArray<readonly [string, Record<string, unknown>]>): Promise<void> {
  for (const [name, extra] of packages) {
    const published = await publishRaw(registryUrl, token, name, '1.0.0', { extra });
    if (published.status !== 201) throw new Error(`publishing ${name}@1.0.0: ${published.status} ${published.text}`);
  }
}

export async function getJson(url: string): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await fetch(url, { headers: { accept: 'application/json' } });
  const text = await response.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    json = { raw: text };
  }
  return { status: response.status, json };
}

export async function getBytes(url: string): Promise<{ status: number; bytes: Buffer }> {
  const response = await fetch(url);
  return { status: response.status, bytes: Buffer.from(await response.arrayBuffer()) };
}

export function tarballUrl(registryUrl: string, name: string, version: string): string {
  return `${registryUrl}/${name}/-/${bareName(name)}-${version}.tgz`;
}

/** config.yaml already names our store; tests say so explicitly so they never run against stock storage. */
export function useOurStorage(config: Record<string, unknown>): void {
  config.store = { 'registry-storage': {} };
}

/**
 * Every file under dir (relative path → mtime) of a running registry's folder, not descending into
 * the lock folders (`.locks`): they appear and vanish by design — a package lock is given back one
 * event-loop turn after the answer — so a recursive listing that enters one can meet a folder
 * already gone. A subfolder removed between its parent's listing and its own is simply gone.
 */
export function storedFiles(dir: string): Map<string, number> {
  const files = new Map<string, number>();
  const walk = (current: string): void => {
    let entries;
    try {
      entries = readdirSync(current, { withFileTypes: true });
    } catch (error) {
      if (current !== dir && (error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    for (const entry of entries) {
      const full = join(current, entry.name);
      if (entry.isDirectory()) {
        if (entry.name !== '.locks') walk(full);
        continue;
      }
      if (!entry.isFile()) continue;
      const info = statSync(full, { throwIfNoEntry: false }); // a file can go between the listing and the stat
      if (info) files.set(relative(dir, full), info.mtimeMs);
    }
  };
  walk(dir);
  return files;
}
