/**
 * `GET /_dashboard/terminal` — the live channel of docs/http-api.md, used by the page and the terminal
 * client. Server → client: `config` on connect and after every change from any source,
 * `event` as things happen (`history` once on connect), `auth` and `output` answers, `error`
 * for a malformed message. Client → server: `auth` (a token, never in the URL), `command`
 * (the core's command language, shared scope) and `ping`.
 *
 * A socket starts anonymous: it may read (config, env, packages it has access to, help);
 * set/toggle/url need an admin token, exactly like POST /_dashboard/api/config. Tokens go
 * through the core's token seam with the socket's real peer address (token-check.ts), and are
 * checked again before every command, with intent `write` for set/toggle/url.
 *
 * Work per socket is bounded (socket-limits.ts): a token bucket per socket (over it: an error
 * answer, then close 1008), at most `maxQueued` messages waiting (one more: close 1008), and
 * everything still queued is dropped when the socket closes.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { RawData, WebSocket, WebSocketServer } from 'ws';
import {
  COMMANDS,
  executeCommand,
  helpText,
  isWriteCommand,
  parseCommand,
  RegistryCoreError,
  runWithRequestActor,
  type Command,
  type PackageSummary,
  type RegistryEvent,
} from '../registry-core/index';
import type { Session } from './access';
import type { ConfigChange, ConfigService } from './config-service';
import type { RenderedConfig } from './config-view';
import { isTokenRejection, type TokenIntent, type TokenRejectionCode } from '../registry-core/token-verifier';
import { MAX_BODY_BYTES, requestSchemas } from './request-limits';
import { DEFAULT_SOCKET_LIMITS, MessageAdmission, type SocketLimits } from './socket-limits';
import type { SocketTokenCheck } from './token-check';
import { anonymousUser, type AccessChecker, type DashboardLogger, type VerdaccioRemoteUser } from './verdaccio-adapter';

export interface TerminalSocketOptions {
  path: string;
  service: ConfigService;
  access: AccessChecker;
  listPackages(user: VerdaccioRemoteUser): Promise<PackageSummary[]>;
  verifyToken: SocketTokenCheck;
  /** the client address as HTTP would see it (`req.ip`: trust-proxy rules applied); default: the TCP peer */
  peerAddress?(req: IncomingMessage): string;
  limits?: SocketLimits;
  /** ms clock for the rate limits (tests freeze it) */
  now?: () => number;
  logger: DashboardLogger;
  pingIntervalMs?: number;
  historySize?: number;
}

interface QueuedMessage {
  data: RawData;
  isBinary: boolean;
}

interface Client {
  ws: WebSocket;
  /** the address token restrictions (CIDR) are checked against */
  peer: string;
  user: VerdaccioRemoteUser;
  session: Session;
  /** kept to re-check before every write: revocation or a new issuer must bite here as on HTTP */
  token: string | undefined;
  /** the jti of that token: config changes made through this socket are audited with it (docs/audit.md) */
  tokenId: string | undefined;
  alive: boolean;
  /** messages waiting, answered one at a time in the order they arrived */
  queue: QueuedMessage[];
  /** a message is being handled (it still counts as pending) */
  busy: boolean;
  admission: MessageAdmission;
  /** we sent a close frame (limits); anything the client still sends ends the connection */
  closing: boolean;
  closed: boolean;
  /** events are delivered in the order they happened, access checks notwithstanding */
  outbox: Promise<void>;
}

const ANONYMOUS: VerdaccioRemoteUser = Object.freeze(anonymousUser());
const ANONYMOUS_SESSION: Session = Object.freeze({ user: null, admin: false, groups: [] }) as Session;
/** a client that does not read what we send gets cut off rather than grow our memory */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;

type EventMessage = RegistryEvent & { type: 'event' };

export class TerminalSockets {
  readonly path: string;
  readonly #options: TerminalSocketOptions;
  /** created by the first upgrade: `ws` (≈ 4 ms CPU to load) is not needed before one (issue 17: cold start) */
  #wss: WebSocketServer | undefined;
  readonly #clients = new Set<Client>();
  readonly #history: EventMessage[] = [];
  readonly #historySize: number;
  readonly #limits: SocketLimits;
  /** queued + in-flight messages over every socket, closed ones included until their handler returns */
  #pending = 0;
  #ping: NodeJS.Timeout | undefined;

  constructor(options: TerminalSocketOptions) {
    this.#options = options;
    this.path = options.path;
    this.#historySize = options.historySize ?? 100;
    this.#limits = options.limits ?? DEFAULT_SOCKET_LIMITS;
  }

  get clientCount(): number {
    return this.#clients.size;
  }

  /** Messages received and not yet answered, over all sockets (0 once every closed socket's work is dropped). */
  get pendingMessages(): number {
    return this.#pending;
  }

  /** Returns false when the upgrade is not for our path (another listener may want it). */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://registry.invalid');
    } catch {
      // e.g. `GET //[ HTTP/1.1`: not a path of ours; thrown here it would end the process (an `upgrade` listener)
      return false;
    }
    if (url.pathname !== this.path && url.pathname !== `${this.path}/`) return false;
    if (url.searchParams.has('token') || url.searchParams.has('access_token')) {
      rejectUpgrade(socket, 400, 'tokens never travel in the URL: connect, then send {"type":"auth","token":"…"}');
      return true;
    }
    const origin = req.headers.origin;
    if (origin !== undefined && !sameHost(origin, req.headers.host)) {
      // a page on another site must not drive a logged-in user's socket (cross-site WebSocket hijacking)
      rejectUpgrade(socket, 403, `origin ${origin} is not this registry`);
      return true;
    }
    let peer: string;
    try {
      peer = this.#options.peerAddress?.(req) ?? req.socket.remoteAddress ?? '';
    } catch (error) {
      // without the address no CIDR rule can be applied: refuse rather than guess
      rejectUpgrade(socket, 400, `cannot tell the client address: ${error instanceof Error ? error.message : String(error)}`);
      return true;
    }
    this.#wss ??= new (require('ws') as typeof import('ws')).WebSocketServer({ noServer: true, maxPayload: MAX_BODY_BYTES * 2, clientTracking: false, perMessageDeflate: false });
    this.#wss.handleUpgrade(req, socket, head, (ws) => this.#accept(ws, peer));
    return true;
  }

  #accept(ws: WebSocket, peer: string): void {
    const client: Client = {
      ws,
      peer,
      user: ANONYMOUS,
      session: ANONYMOUS_SESSION,
      token: undefined,
      tokenId: undefined,
      alive: true,
      queue: [],
      busy: false,
      admission: new MessageAdmission(this.#limits, this.#options.now),
      closing: false,
      closed: false,
      outbox: Promise.resolve(),
    };
    this.#clients.add(client);
    this.#startPing();
    ws.on('pong', () => (client.alive = true));
    ws.on('error', () => ws.terminate());
    ws.on('close', () => {
      client.closed = true;
      this.#dropQueue(client);
      this.#clients.delete(client);
    });
    ws.on('message', (data, isBinary) => this.#receive(client, data, isBinary));
    send(client, this.#options.service.current().message);
    const history = this.#history.slice();
    client.outbox = client.outbox.then(async () => {
      const visible: EventMessage[] = [];
      for (const event of history) if (await this.#visible(client, event)) visible.push(event);
      send(client, JSON.stringify({ type: 'history', events: visible }));
    });
  }

  /** Admission of one incoming message: rate limit, queue bound, then the queue. Synchronous and cheap. */
  #receive(client: Client, data: RawData, isBinary: boolean): void {
    if (client.closed) return;
    if (client.closing) {
      // it keeps sending after our close frame: it does not read, so it will not answer that either
      client.ws.terminate();
      return;
    }
    const admission = client.admission.admit();
    if (admission === 'close') {
      return this.#cutOff(client, `rate limit exceeded: at most ${this.#limits.messagesPerSecond} messages per second`);
    }
    if (admission === 'rate-limited') {
      return sendError(client, `rate limit: at most ${this.#limits.messagesPerSecond} messages per second (burst ${this.#limits.burst}); message dropped`, 'rate-limited');
    }
    if (client.queue.length + (client.busy ? 1 : 0) >= this.#limits.maxQueued) {
      return this.#cutOff(client, `too many messages waiting (at most ${this.#limits.maxQueued}); wait for the answers`);
    }
    client.queue.push({ data, isBinary });
    this.#pending += 1;
    if (!client.busy) void this.#drain(client);
  }

  async #drain(client: Client): Promise<void> {
    client.busy = true;
    try {
      while (!client.closed && !client.closing) {
        const next = client.queue.shift();
        if (!next) break;
        try {
          await this.#onMessage(client, next.data, next.isBinary);
        } finally {
          this.#pending -= 1;
        }
      }
    } finally {
      client.busy = false;
    }
  }

  #dropQueue(client: Client): void {
    this.#pending -= client.queue.length;
    client.queue.length = 0;
  }

  /** Policy violation (RFC 6455 1008): no more work for this socket; what is queued is dropped now. */
  #cutOff(client: Client, reason: string): void {
    client.closing = true;
    this.#dropQueue(client);
    // the close reason must fit a control frame (123 bytes)
    client.ws.close(1008, reason.slice(0, 123));
  }

  async #onMessage(client: Client, data: RawData, isBinary: boolean): Promise<void> {
    try {
      if (isBinary) return sendError(client, 'binary messages are not supported; send JSON text');
      const text = Array.isArray(data) ? Buffer.concat(data).toString('utf8') : Buffer.from(data as Buffer).toString('utf8');
      if (text.length > MAX_BODY_BYTES) return sendError(client, `message too large (at most ${MAX_BODY_BYTES} bytes)`);
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        return sendError(client, 'message is not valid JSON');
      }
      const { ClientMessage, describeIssues } = requestSchemas();
      const result = ClientMessage.safeParse(parsed);
      if (!result.success) return sendError(client, describeIssues(result.error));
      const message = result.data;
      switch (message.type) {
        case 'ping':
          return send(client, JSON.stringify({ type: 'pong', ...(message.id === undefined ? {} : { id: message.id }) }));
        case 'auth':
          return await this.#authenticate(client, message.token);
        case 'command':
          return await this.#command(client, message.line, message.id);
      }
    } catch (error) {
      // never let one client's bad luck take the process down
      this.#options.logger.error(`terminal socket: ${error instanceof Error ? error.message : String(error)}`);
      sendError(client, 'internal error while handling the message');
    }
  }

  async #authenticate(client: Client, token: string): Promise<void> {
    const refused = await this.#verify(client, token, 'read');
    if (refused === undefined) {
      send(client, JSON.stringify({ type: 'auth', ok: true, user: client.session.user, admin: client.session.admin }));
    } else {
      send(client, JSON.stringify({ type: 'auth', ok: false, user: null, admin: false, error: refused.message, code: refused.code }));
    }
  }

  /**
   * Checks the token for one use and sets the client's identity from it. A token refused for
   * good (revoked, expired, another issuer, CIDR…) makes the client anonymous again; a read-only
   * token refused a write keeps its identity for reads. Returns why it was refused.
   */
  async #verify(client: Client, token: string, intent: TokenIntent, pkg?: string): Promise<{ code: TokenRejectionCode; message: string } | undefined> {
    try {
      const use = { peerAddress: client.peer, intent };
      const verified = await this.#options.verifyToken(token, pkg === undefined ? use : { ...use, package: pkg });
      client.user = verified.user;
      client.session = verified.session;
      client.token = token;
      client.tokenId = verified.identity.jti;
      return undefined;
    } catch (error) {
      // refused for this use only (a write, or another package of a package-limited token): the identity stays for the rest
      if ((isTokenRejection(error, 'read-only') || isTokenRejection(error, 'package')) && client.token === token) return { code: error.code, message: error.message };
      client.user = ANONYMOUS;
      client.session = ANONYMOUS_SESSION;
      client.token = undefined;
      client.tokenId = undefined;
      if (isTokenRejection(error)) return { code: error.code, message: error.message };
      throw error;
    }
  }

  async #command(client: Client, line: string, id: string | number | undefined): Promise<void> {
    const reply = (ok: boolean, text: string, code?: TokenRejectionCode): void =>
      send(client, JSON.stringify({ type: 'output', ok, text, ...(id === undefined ? {} : { id }), ...(code === undefined ? {} : { code }) }));
    let command: Command;
    try {
      command = parseCommand(line);
    } catch (error) {
      return reply(false, error instanceof Error ? error.message : String(error));
    }
    const spec = COMMANDS.find((entry) => entry.name === command.name);
    if (spec?.scope === 'cli') return reply(false, `${command.name} works only in the CLI: npm run config -- ${command.name}`);
    if (command.name === 'help') return reply(true, helpText('shared'));
    const write = isWriteCommand(command.name);
    // HTTP checks the token on every request; a socket checks it again before every command
    if (client.token !== undefined) {
      const refused = await this.#verify(client, client.token, write ? 'write' : 'read');
      if (refused?.code === 'read-only' || refused?.code === 'package') return reply(false, `${command.name} refused: ${refused.message}`, refused.code);
      if (refused !== undefined) return reply(false, `${command.name} refused: the token is no longer valid (${refused.message}); sign in again`, refused.code);
    }
    if (write) {
      if (!client.session.user) return reply(false, `${command.name} needs an admin token: send {"type":"auth","token":"…"} first`);
      if (!client.session.admin) return reply(false, `${command.name} needs an admin; ${client.session.user} is not one`);
    }
    const user = client.user;
    const context = this.#options.service.commandContext(client.session.user ?? undefined, () => this.#options.listPackages(user));
    try {
      // the socket's who/where/which token, as the auth middleware sets it for HTTP requests (audit trail)
      const actor = { user: client.session.user, address: client.peer || null, tokenId: client.tokenId ?? null };
      const result = await runWithRequestActor(actor, () => executeCommand(command, context));
      reply(result.ok, result.text);
    } catch (error) {
      if (error instanceof RegistryCoreError) return reply(false, error.message);
      throw error;
    }
  }

  broadcastConfig(rendered: RenderedConfig, change: ConfigChange): void {
    for (const client of this.#clients) send(client, rendered.message);
    const event: RegistryEvent = { kind: 'config', time: Date.now(), detail: change.detail };
    if (change.user !== undefined) event.user = change.user;
    this.broadcastEvent(event);
  }

  /** A message for every open socket, no access check: only for documents without package names (the `activity` counts). */
  broadcastMessage(json: string): void {
    for (const client of this.#clients) send(client, json);
  }

  broadcastEvent(event: RegistryEvent): void {
    const message: EventMessage = { ...event, type: 'event' };
    this.#history.push(message);
    if (this.#history.length > this.#historySize) this.#history.shift();
    const json = JSON.stringify(message);
    for (const client of this.#clients) {
      if (event.name === undefined) {
        send(client, json);
        continue;
      }
      client.outbox = client.outbox.then(async () => {
        if (!client.closed && (await this.#visible(client, message))) send(client, json);
      });
    }
  }

  /** An event about a package reaches only those who may read that package. */
  async #visible(client: Client, event: RegistryEvent): Promise<boolean> {
    if (event.name === undefined) return true;
    try {
      // as on HTTP, the token must still hold when it is used: a revoked token reads no more events
      if (client.token !== undefined) {
        const refused = await this.#verify(client, client.token, 'read', event.name);
        // a package-limited token hears nothing about other packages (and stays signed in)
        if (refused?.code === 'package') return false;
        if (refused) send(client, JSON.stringify({ type: 'auth', ok: false, user: null, admin: false, error: refused.message, code: refused.code }));
      }
      return await this.#options.access.canAccess(event.name, client.user);
    } catch {
      return false;
    }
  }

  #startPing(): void {
    if (this.#ping) return;
    this.#ping = setInterval(() => {
      for (const client of this.#clients) {
        if (!client.alive) {
          client.ws.terminate();
          this.#clients.delete(client);
          continue;
        }
        client.alive = false;
        client.ws.ping();
      }
      if (this.#clients.size === 0) this.#stopPing();
    }, this.#options.pingIntervalMs ?? 30_000);
    this.#ping.unref();
  }

  #stopPing(): void {
    if (this.#ping) clearInterval(this.#ping);
    this.#ping = undefined;
  }

  close(): void {
    this.#stopPing();
    for (const client of this.#clients) client.ws.terminate();
    this.#clients.clear();
    this.#wss?.close();
  }
}

function send(client: Client, message: string): void {
  if (client.ws.readyState !== client.ws.OPEN) return;
  if (client.ws.bufferedAmount > MAX_BUFFERED_BYTES) {
    client.ws.terminate();
    return;
  }
  client.ws.send(message);
}

function sendError(client: Client, error: string, code?: string): void {
  send(client, JSON.stringify({ type: 'error', error, ...(code === undefined ? {} : { code }) }));
}

function sameHost(origin: string, host: string | undefined): boolean {
  try {
    return host !== undefined && new URL(origin).host.toLowerCase() === host.toLowerCase();
  } catch {
    return false;
  }
}

const REASONS: Record<number, string> = { 400: 'Bad Request', 403: 'Forbidden', 404: 'Not Found' };

export function rejectUpgrade(socket: Duplex, status: number, error: string): void {
  // an upgraded socket has no 'error' listener of Node's: a reset while we answer must not be uncaught
  if (socket.listenerCount('error') === 0) socket.on('error', () => socket.destroy());
  const body = JSON.stringify({ error });
  socket.end(
    `HTTP/1.1 ${status} ${REASONS[status] ?? 'Error'}\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}
