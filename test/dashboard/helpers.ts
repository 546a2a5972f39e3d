/**
 * Shared bits of the dashboard tests: a real registry with the dashboard plugin enabled (and
 * `alice` listed as admin), and a small WebSocket client that queues messages so tests can
 * wait for "the next message matching X" with a bounded time.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import WebSocket from 'ws';
import { addUser, startRegistry, type RunningRegistry, type StartOptions } from '../harness/registry';

export const ADMIN = { name: 'alice', password: 'alice-secret-1' };
export const READER = { name: 'bob', password: 'bob-secret-1' };

/** Adds our middleware (keeping audit) and an access rule that hides `secret-*` from anonymous users. */
export function withDashboard(config: Record<string, unknown>): void {
  const middlewares = (config.middlewares ?? {}) as Record<string, unknown>;
  middlewares['registry-dashboard'] = { ...((middlewares['registry-dashboard'] as object | undefined) ?? {}), admins: [ADMIN.name] };
  config.middlewares = middlewares;
  const packages = (config.packages ?? {}) as Record<string, unknown>;
  config.packages = {
    'secret-*': { access: '$authenticated', publish: '$authenticated', unpublish: '$authenticated' },
    ...packages,
  };
}

export async function startDashboardRegistry(options: StartOptions = {}): Promise<RunningRegistry> {
  return startRegistry({
    ...options,
    editConfig: (config) => {
      withDashboard(config);
      options.editConfig?.(config);
    },
  });
}

/** Creates alice (admin) first, then bob: with the auth plugin the first user is also the registry admin. */
export async function createUsers(registry: RunningRegistry): Promise<{ admin: string; reader: string }> {
  const admin = await addUser(registry, ADMIN.name, ADMIN.password);
  const reader = await addUser(registry, READER.name, READER.password);
  return { admin, reader };
}

export function lockbBytes(registry: RunningRegistry): Buffer {
  return readFileSync(registry.lockbPath);
}

/** Bytes 4..16 of registry.lockb as 26 lowercase hex chars (the 12 config bytes + check). */
export function configHexOnDisk(registry: RunningRegistry): string {
  return lockbBytes(registry).subarray(4, 17).toString('hex');
}

export interface JsonAnswer {
  status: number;
  headers: Headers;
  body: unknown;
  text: string;
}

export async function request(
  registry: RunningRegistry,
  path: string,
  init: { method?: string; token?: string; body?: string; contentType?: string | null; headers?: Record<string, string> } = {},
): Promise<JsonAnswer> {
  const headers: Record<string, string> = { ...init.headers };
  if (init.token) headers.authorization = `Bearer ${init.token}`;
  if (init.body !== undefined && init.contentType !== null) headers['content-type'] = init.contentType ?? 'application/json';
  const response = await fetch(`${registry.url}${path}`, { method: init.method ?? 'GET', headers, body: init.body });
  const text = await response.text();
  let body: unknown = undefined;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: response.status, headers: response.headers, body, text };
}

export function postConfig(registry: RunningRegistry, body: unknown, token?: string): Promise<JsonAnswer> {
  return request(registry, '/_dashboard/api/config', { method: 'POST', token, body: JSON.stringify(body) });
}

export type SocketMessage = { type: string } & Record<string, unknown>;

export class SocketClient {
  readonly ws: WebSocket;
  readonly messages: SocketMessage[] = [];
  #waiters: { predicate: (message: SocketMessage) => boolean; resolve: (message: SocketMessage) => void }[] = [];
  #cursor = 0;

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('message', (data) => {
      const message = JSON.parse(String(data)) as SocketMessage;
      this.messages.push(message);
      this.#waiters = this.#waiters.filter((waiter) => {
        if (!waiter.predicate(message)) return true;
        waiter.resolve(message);
        return false;
      });
    });
  }

  static open(url: string, options: { origin?: string; headers?: Record<string, string> } = {}): Promise<SocketClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { ...(options.origin ? { origin: options.origin } : {}), ...(options.headers ? { headers: options.headers } : {}) });
      const client = new SocketClient(ws);
      ws.once('open', () => resolve(client));
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    });
  }

  send(message: unknown): void {
    this.ws.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  /** The first message after everything already consumed by `next` that matches; bounded wait. */
  next(predicate: (message: SocketMessage) => boolean, timeoutMs = 5000, what = 'message'): Promise<SocketMessage> {
    for (let i = this.#cursor; i < this.messages.length; i++) {
      if (predicate(this.messages[i])) {
        this.#cursor = i + 1;
        return Promise.resolve(this.messages[i]);
      }
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((waiter) => waiter.resolve !== done);
        reject(new Error(`no ${what} within ${timeoutMs} ms; got: ${JSON.stringify(this.messages.slice(-5))}`));
      }, timeoutMs);
      const done = (message: SocketMessage): void => {
        clearTimeout(timer);
        this.#cursor = this.messages.length;
        resolve(message);
      };
      this.#waiters.push({ predicate, resolve: done });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.ws.readyState === WebSocket.CLOSED) return resolve();
      this.ws.once('close', () => resolve());
      this.ws.close();
    });
  }
}

export function socketUrl(registry: RunningRegistry): string {
  return `${registry.url.replace(/^http/, 'ws')}/_dashboard/terminal`;
}

/**
 * A client that speaks just enough WebSocket: handshake, then masked text frames written in ONE
 * TCP write (so the server sees them together, as from a flooder). With `read: false` it never
 * reads again; otherwise what the server sends is collected in `received`.
 */
export async function rawSocket(host: string, port: number, path: string, options: { read: boolean }): Promise<{ socket: Socket; received: () => Buffer }> {
  const socket = connect({ host, port });
  await once(socket, 'connect');
  socket.write(
    `GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${Buffer.from('0123456789abcdef').toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );
  let head = '';
  while (!head.includes('\r\n\r\n')) {
    const [chunk] = (await once(socket, 'data')) as [Buffer];
    head += chunk.toString('latin1');
  }
  assert.match(head, /^HTTP\/1\.1 101 /);
  socket.on('error', () => undefined); // the server may reset the connection while we write
  const chunks: Buffer[] = [Buffer.from(head.slice(head.indexOf('\r\n\r\n') + 4), 'latin1')];
  if (options.read) socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  else socket.pause(); // from now on nothing is read: the server's answers pile up on its side
  return { socket, received: () => Buffer.concat(chunks) };
}

/** Server frames (unmasked) in `data`: opcode and payload; stops at an incomplete frame. */
export function serverFrames(data: Buffer): { opcode: number; payload: Buffer }[] {
  const frames: { opcode: number; payload: Buffer }[] = [];
  let at = 0;
  while (at + 2 <= data.length) {
    const opcode = data[at] & 0x0f;
    let length = data[at + 1] & 0x7f;
    let start = at + 2;
    if (length === 126) {
      if (start + 2 > data.length) break;
      length = data.readUInt16BE(start);
      start += 2;
    } else if (length === 127) {
      if (start + 8 > data.length) break;
      length = Number(data.readBigUInt64BE(start));
      start += 8;
    }
    if (start + length > data.length) break;
    frames.push({ opcode, payload: data.subarray(start, start + length) });
    at = start + length;
  }
  return frames;
}

export function maskedTextFrame(text: string): Buffer {
  const payload = Buffer.from(text, 'utf8');
  const mask = Buffer.from([0x12, 0x34, 0x56, 0x78]);
  const length = payload.length < 126 ? Buffer.from([0x80 | payload.length]) : Buffer.from([0x80 | 126, payload.length >> 8, payload.length & 0xff]);
  const masked = Buffer.alloc(payload.length);
  for (let i = 0; i < payload.length; i++) masked[i] = payload[i] ^ mask[i % 4];
  return Buffer.concat([Buffer.from([0x81]), length, mask, masked]);
}
