/**
 * Shared bits of the dashboard tests: a real registry with the dashboard plugin enabled (and
 * `alice` listed as admin), and a small WebSocket client that queues messages so tests can
 * wait for "the next message matching X" with a bounded time.
 */
import { readFileSync } from 'node:fs';
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
