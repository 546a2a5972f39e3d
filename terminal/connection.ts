/**
 * The live WebSocket to `/_dashboard/terminal`: authenticates with a frame (never in the URL),
 * forwards config/event frames, answers commands, and reconnects with backoff when the server
 * goes away. One instance per client; no global state.
 */
import WebSocket from 'ws';
import { TerminalError } from './errors';
import { parseServerMessage, type ActivityView, type AuthMessage, type EventMessage, type ServerConfig } from './protocol';

export type ConnectionStatus =
  | { state: 'connecting'; attempt: number }
  | { state: 'connected'; since: number }
  | { state: 'disconnected'; attempt: number; retryInMs: number; reason: string }
  | { state: 'closed' };

export interface ConnectionListeners {
  onConfig(config: ServerConfig): void;
  onEvent(event: EventMessage): void;
  /** The recent events the server replays once on connect. */
  onHistory(events: EventMessage[]): void;
  onAuth(auth: AuthMessage): void;
  onStatus(status: ConnectionStatus): void;
  /** Frames that are not answers to our commands: auth results, server errors, bad frames. */
  onNotice(text: string, isError: boolean): void;
  /** The activity counts the server pushes (issue 15.7); optional for clients that do not show them. */
  onActivity?(activity: ActivityView): void;
}

export interface CommandResult {
  ok: boolean;
  text: string;
}

/** Backoff after the n-th failed attempt (1-based): 250 ms doubling, capped at 2 s. */
export function backoffDelay(attempt: number): number {
  return Math.min(2000, 250 * 2 ** Math.max(0, attempt - 1));
}

interface Pending {
  id: number;
  resolve(result: CommandResult): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

const COMMAND_TIMEOUT_MS = 10000;
const HEARTBEAT_MS = 15000;

export class LiveConnection {
  readonly url: string;
  private readonly token: string | undefined;
  private readonly listeners: ConnectionListeners;
  private socket: WebSocket | null = null;
  private pending: Pending[] = [];
  private nextId = 1;
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  private heartbeat: NodeJS.Timeout | null = null;
  private alive = true;
  private stopped = false;

  constructor(url: string, token: string | undefined, listeners: ConnectionListeners) {
    this.url = url;
    this.token = token;
    this.listeners = listeners;
  }

  get connected(): boolean {
    return this.socket !== null && this.socket.readyState === WebSocket.OPEN;
  }

  start(): void {
    this.stopped = false;
    this.open();
  }

  private open(): void {
    this.attempt += 1;
    this.listeners.onStatus({ state: 'connecting', attempt: this.attempt });
    const socket = new WebSocket(this.url, { handshakeTimeout: 5000 });
    this.socket = socket;
    let failure = 'connection closed';
    socket.on('open', () => {
      this.attempt = 0;
      this.alive = true;
      if (this.token !== undefined) socket.send(JSON.stringify({ type: 'auth', token: this.token }));
      this.listeners.onStatus({ state: 'connected', since: Date.now() });
      this.heartbeat = setInterval(() => {
        // A server that vanished without a FIN (suspended VM, pulled cable) is noticed here.
        if (!this.alive) {
          socket.terminate();
          return;
        }
        this.alive = false;
        socket.ping();
      }, HEARTBEAT_MS);
    });
    socket.on('pong', () => {
      this.alive = true;
    });
    socket.on('message', (data: WebSocket.RawData) => this.receive(data.toString()));
    socket.on('unexpected-response', (_request, response) => {
      failure = `the server refused the WebSocket upgrade (HTTP ${response.statusCode})`;
      socket.terminate();
    });
    socket.on('error', (error: Error & { code?: string }) => {
      failure = error.code ?? error.message;
    });
    socket.on('close', (code: number, reason: Buffer) => {
      if (this.heartbeat !== null) clearInterval(this.heartbeat);
      this.heartbeat = null;
      if (this.socket === socket) this.socket = null;
      const why = reason.length > 0 ? `${reason.toString()} (${code})` : code === 1006 ? failure : `closed (${code})`;
      this.failPending(new TerminalError('ERR_NOT_CONNECTED', `connection lost before the answer: ${why}`));
      if (this.stopped) return;
      const retryInMs = backoffDelay(Math.max(1, this.attempt));
      this.listeners.onStatus({ state: 'disconnected', attempt: Math.max(1, this.attempt), retryInMs, reason: why });
      this.retryTimer = setTimeout(() => {
        this.retryTimer = null;
        if (!this.stopped) this.open();
      }, retryInMs);
    });
  }

  private receive(text: string): void {
    let message;
    try {
      message = parseServerMessage(text);
    } catch (error) {
      this.listeners.onNotice((error as Error).message, true);
      return;
    }
    switch (message.type) {
      case 'config':
        this.listeners.onConfig(message.config);
        return;
      case 'event':
        this.listeners.onEvent(message.event);
        return;
      case 'history':
        this.listeners.onHistory(message.events);
        return;
      case 'auth':
        this.listeners.onAuth(message.auth);
        return;
      case 'pong':
        return;
      case 'output': {
        const output = message.output;
        // Answers carry our id when the server echoes it; otherwise they come back in order.
        const index = output.id !== undefined ? this.pending.findIndex((p) => String(p.id) === String(output.id)) : 0;
        const entry = index >= 0 ? this.pending[index] : undefined;
        if (entry === undefined) {
          this.listeners.onNotice(output.text, !output.ok);
          return;
        }
        this.pending.splice(index, 1);
        clearTimeout(entry.timer);
        entry.resolve({ ok: output.ok, text: output.text });
        return;
      }
      case 'error':
        this.listeners.onNotice(message.error, true);
        return;
      case 'activity':
        this.listeners.onActivity?.(message.activity);
        return;
      case 'other': {
        const raw = message.raw;
        const text = typeof raw.text === 'string' ? raw.text : typeof raw.error === 'string' ? raw.error : undefined;
        if (text !== undefined) this.listeners.onNotice(`${message.kind}: ${text}`, raw.ok === false || raw.error !== undefined);
        return;
      }
    }
  }

  /** Sends one command line and resolves with the server's output frame. */
  command(line: string): Promise<CommandResult> {
    const socket = this.socket;
    if (socket === null || socket.readyState !== WebSocket.OPEN) {
      return Promise.reject(new TerminalError('ERR_NOT_CONNECTED', 'not connected to the registry; the command was not sent'));
    }
    const id = this.nextId++;
    return new Promise<CommandResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending = this.pending.filter((p) => p.id !== id);
        reject(new TerminalError('ERR_COMMAND_TIMEOUT', `no answer to "${line}" within ${COMMAND_TIMEOUT_MS / 1000} s`));
      }, COMMAND_TIMEOUT_MS);
      this.pending.push({ id, resolve, reject, timer });
      socket.send(JSON.stringify({ type: 'command', line, id }));
    });
  }

  private failPending(error: Error): void {
    const pending = this.pending;
    this.pending = [];
    for (const entry of pending) {
      clearTimeout(entry.timer);
      entry.reject(error);
    }
  }

  stop(): void {
    this.stopped = true;
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (this.heartbeat !== null) clearInterval(this.heartbeat);
    this.heartbeat = null;
    this.failPending(new TerminalError('ERR_NOT_CONNECTED', 'client is closing'));
    const socket = this.socket;
    this.socket = null;
    if (socket !== null) socket.terminate();
    this.listeners.onStatus({ state: 'closed' });
  }
}
