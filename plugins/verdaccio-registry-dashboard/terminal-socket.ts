/**
 * `GET /_dashboard/terminal` — the live channel of SPEC §4, used by the page and the terminal
 * client. Server → client: `config` on connect and after every change from any source,
 * `event` as things happen (`history` once on connect), `auth` and `output` answers, `error`
 * for a malformed message. Client → server: `auth` (a token, never in the URL), `command`
 * (the core's command language, shared scope) and `ping`.
 *
 * A socket starts anonymous: it may read (config, env, packages it has access to, help);
 * set/toggle/url need an admin token, exactly like POST /_dashboard/api/config.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import {
  COMMANDS,
  executeCommand,
  helpText,
  parseCommand,
  RegistryCoreError,
  type Command,
  type PackageSummary,
  type RegistryEvent,
} from '../registry-core/index';
import type { Session } from './access';
import type { ConfigChange, ConfigService } from './config-service';
import type { RenderedConfig } from './config-view';
import { ClientMessage, describeIssues, MAX_BODY_BYTES } from './requests';
import type { VerifiedToken } from './token-check';
import { anonymousUser, type AccessChecker, type DashboardLogger, type RemoteUser } from './verdaccio-adapter';

export interface TerminalSocketOptions {
  path: string;
  service: ConfigService;
  access: AccessChecker;
  listPackages(user: RemoteUser): Promise<PackageSummary[]>;
  verifyToken(server: Server, token: string): Promise<VerifiedToken>;
  logger: DashboardLogger;
  pingIntervalMs?: number;
  historySize?: number;
}

interface Client {
  ws: WebSocket;
  server: Server;
  user: RemoteUser;
  session: Session;
  /** kept to re-check before every write: revocation or a new issuer must bite here as on HTTP */
  token: string | undefined;
  alive: boolean;
  /** messages are answered in the order they arrive */
  inbox: Promise<void>;
  /** events are delivered in the order they happened, access checks notwithstanding */
  outbox: Promise<void>;
}

const ANONYMOUS: RemoteUser = Object.freeze(anonymousUser());
const ANONYMOUS_SESSION: Session = Object.freeze({ user: null, admin: false, groups: [] }) as Session;
const WRITE_COMMANDS = new Set<Command['name']>(['set', 'toggle', 'url']);
/** a client that does not read what we send gets cut off rather than grow our memory */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;

type EventMessage = RegistryEvent & { type: 'event' };

export class TerminalSockets {
  readonly path: string;
  readonly #options: TerminalSocketOptions;
  readonly #wss: WebSocketServer;
  readonly #clients = new Set<Client>();
  readonly #history: EventMessage[] = [];
  readonly #historySize: number;
  #ping: NodeJS.Timeout | undefined;

  constructor(options: TerminalSocketOptions) {
    this.#options = options;
    this.path = options.path;
    this.#historySize = options.historySize ?? 100;
    this.#wss = new WebSocketServer({ noServer: true, maxPayload: MAX_BODY_BYTES * 2, clientTracking: false, perMessageDeflate: false });
  }

  get clientCount(): number {
    return this.#clients.size;
  }

  /** Returns false when the upgrade is not for our path (another listener may want it). */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, server: Server): boolean {
    const url = new URL(req.url ?? '/', 'http://registry.invalid');
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
    this.#wss.handleUpgrade(req, socket, head, (ws) => this.#accept(ws, server));
    return true;
  }

  #accept(ws: WebSocket, server: Server): void {
    const client: Client = {
      ws,
      server,
      user: ANONYMOUS,
      session: ANONYMOUS_SESSION,
      token: undefined,
      alive: true,
      inbox: Promise.resolve(),
      outbox: Promise.resolve(),
    };
    this.#clients.add(client);
    this.#startPing();
    ws.on('pong', () => (client.alive = true));
    ws.on('error', () => ws.terminate());
    ws.on('close', () => this.#clients.delete(client));
    ws.on('message', (data, isBinary) => {
      client.inbox = client.inbox.then(() => this.#onMessage(client, data, isBinary));
    });
    send(client, this.#options.service.current().message);
    const history = this.#history.slice();
    client.outbox = client.outbox.then(async () => {
      const visible: EventMessage[] = [];
      for (const event of history) if (await this.#visible(client, event)) visible.push(event);
      send(client, JSON.stringify({ type: 'history', events: visible }));
    });
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
    const reason = await this.#verify(client, token);
    if (reason === undefined) {
      send(client, JSON.stringify({ type: 'auth', ok: true, user: client.session.user, admin: client.session.admin }));
    } else {
      send(client, JSON.stringify({ type: 'auth', ok: false, user: null, admin: false, error: reason }));
    }
  }

  /** Sets the client's identity from the token; on failure the client is anonymous again. Returns the failure reason. */
  async #verify(client: Client, token: string): Promise<string | undefined> {
    try {
      const verified = await this.#options.verifyToken(client.server, token);
      client.user = verified.user;
      client.session = verified.session;
      client.token = token;
      return undefined;
    } catch (error) {
      client.user = ANONYMOUS;
      client.session = ANONYMOUS_SESSION;
      client.token = undefined;
      return error instanceof Error ? error.message : String(error);
    }
  }

  async #command(client: Client, line: string, id: string | number | undefined): Promise<void> {
    const reply = (ok: boolean, text: string): void =>
      send(client, JSON.stringify({ type: 'output', ok, text, ...(id === undefined ? {} : { id }) }));
    let command: Command;
    try {
      command = parseCommand(line);
    } catch (error) {
      return reply(false, error instanceof Error ? error.message : String(error));
    }
    const spec = COMMANDS.find((entry) => entry.name === command.name);
    if (spec?.scope === 'cli') return reply(false, `${command.name} works only in the CLI: npm run config -- ${command.name}`);
    if (command.name === 'help') return reply(true, helpText('shared'));
    if (WRITE_COMMANDS.has(command.name)) {
      // HTTP checks the token on every request; a socket re-checks it before every write
      if (client.token !== undefined) {
        const reason = await this.#verify(client, client.token);
        if (reason !== undefined) return reply(false, `${command.name} refused: the token is no longer valid (${reason}); sign in again`);
      }
      if (!client.session.user) return reply(false, `${command.name} needs an admin token: send {"type":"auth","token":"…"} first`);
      if (!client.session.admin) return reply(false, `${command.name} needs an admin; ${client.session.user} is not one`);
    }
    const user = client.user;
    const context = this.#options.service.commandContext(client.session.user ?? undefined, () => this.#options.listPackages(user));
    try {
      const result = await executeCommand(command, context);
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
        if (await this.#visible(client, message)) send(client, json);
      });
    }
  }

  /** An event about a package reaches only those who may read that package. */
  async #visible(client: Client, event: RegistryEvent): Promise<boolean> {
    if (event.name === undefined) return true;
    try {
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
    this.#wss.close();
  }
}

function send(client: Client, message: string): void {
  if (client.ws.readyState !== WebSocket.OPEN) return;
  if (client.ws.bufferedAmount > MAX_BUFFERED_BYTES) {
    client.ws.terminate();
    return;
  }
  client.ws.send(message);
}

function sendError(client: Client, error: string): void {
  send(client, JSON.stringify({ type: 'error', error }));
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
  const body = JSON.stringify({ error });
  socket.end(
    `HTTP/1.1 ${status} ${REASONS[status] ?? 'Error'}\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}
