/**
 * Node's server diagnostics channels, also on runtimes that do not publish them (Bun).
 *
 * Our parts never get the http.Server from Verdaccio; they find it the way Node lets anyone do:
 * - `tracing:net.server.listen:asyncStart` `{server, options}` — inside `listen()`, before the
 *   port is bound (the plugin-presence guard refuses there; the dashboard attaches its WebSocket
 *   `upgrade` listener; storage-http applies its timeouts),
 * - `tracing:net.server.listen:asyncEnd` `{server}` — bound, just before `'listening'` (the boot
 *   timeline's "listening on … — ready"),
 * - `http.server.request.start` `{request, response, socket, server}` — before `'request'` is
 *   emitted (auth redacts `npm logout` tokens from the URL; ops counts and logs requests).
 *
 * Node ≥ 20 publishes all three. Bun 1.4 implements `node:diagnostics_channel` (subscribe and
 * publish work) but its `node:net`/`node:http` publish none of these channels, so under Bun the
 * registry served without the presence guard, never said "ready" and attached no WebSocket.
 * `installServerChannels()` publishes them itself there, with Node's timing and message shapes,
 * by wrapping `listen` of `net.Server` and `http.Server` (https servers inherit the latter) and
 * `http.Server.prototype.emit` for `'request'`.
 *
 * It also works around a Bun 1.4 defect of `node:diagnostics_channel`: a channel that has
 * subscribers is held only weakly, so after a garbage collection `channel(name)` hands out a
 * fresh channel without them — `subscribe(name, fn)` then silently stops delivering (Node keeps a
 * channel with subscribers alive). Under Bun every channel that gets a subscriber is kept in a
 * process-wide set until its last subscriber leaves. Without this the presence guard saw plugins
 * that had announced themselves as missing, and the event bus (events.ts) lost its listeners.
 *
 * On Node it does nothing. Once per process (a global symbol), whichever copy of this module runs
 * first; bootRegistry (startup.ts) calls it before anything subscribes. docs/operations.md ("Bun").
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import http from 'node:http';
import net from 'node:net';

export const LISTEN_START_CHANNEL = 'tracing:net.server.listen:asyncStart';
export const LISTEN_END_CHANNEL = 'tracing:net.server.listen:asyncEnd';
export const REQUEST_START_CHANNEL = 'http.server.request.start';

const INSTALLED = Symbol.for('mycompany-registry:server-channels');
type Holder = { [INSTALLED]?: string };

/** Which runtime needs the channels published by us: undefined on Node (it publishes them itself). */
export function serverChannelsMissing(versions: NodeJS.ProcessVersions = process.versions): string | undefined {
  const bun = (versions as NodeJS.ProcessVersions & { bun?: unknown }).bun;
  return typeof bun === 'string' ? `Bun ${bun}` : undefined;
}

/** Node's `options` for listen(port, host, …) / listen(options, …) / listen(path, …), as it publishes them. */
function listenOptionsOf(args: unknown[]): Record<string, unknown> {
  const [first, second] = args;
  if (typeof first === 'object' && first !== null) return { ...(first as Record<string, unknown>) };
  if (typeof first === 'string' && !/^\d+$/.test(first)) return { path: first };
  const options: Record<string, unknown> = {};
  if (first !== undefined && typeof first !== 'function') options.port = Number(first);
  if (typeof second === 'string') options.host = second;
  return options;
}

type ChannelProto = { subscribe: (this: object, ...args: unknown[]) => unknown; unsubscribe: (this: object, ...args: unknown[]) => unknown };

/** Strong references to every channel with subscribers (see the header: Bun holds them weakly). */
function retainSubscribedChannels(): void {
  const retained = new Set<object>();
  const probe = diagnosticsChannel.channel('mycompany-registry:channel-probe');
  const inactive = Object.getPrototypeOf(probe) as ChannelProto;
  const noop = (): void => undefined;
  probe.subscribe(noop);
  const active = Object.getPrototypeOf(probe) as ChannelProto;
  probe.unsubscribe(noop);
  for (const proto of new Set([inactive, active])) {
    const { subscribe, unsubscribe } = proto;
    proto.subscribe = function retainingSubscribe(this: object, ...args: unknown[]): unknown {
      retained.add(this);
      return subscribe.apply(this, args);
    };
    proto.unsubscribe = function releasingUnsubscribe(this: object, ...args: unknown[]): unknown {
      const result = unsubscribe.apply(this, args);
      if (!(this as { hasSubscribers: boolean }).hasSubscribers) retained.delete(this);
      return result;
    };
  }
}

/**
 * Publishes the three channels where the runtime does not (Bun); no-op on Node. Returns the
 * runtime it installed for (e.g. `Bun 1.4.5`), or undefined. Idempotent.
 */
export function installServerChannels(runtime: string | undefined = serverChannelsMissing()): string | undefined {
  const holder = globalThis as Holder;
  if (holder[INSTALLED] !== undefined) return holder[INSTALLED];
  if (runtime === undefined) return undefined;
  holder[INSTALLED] = runtime;
  retainSubscribedChannels();

  const listenStart = diagnosticsChannel.channel(LISTEN_START_CHANNEL);
  const listenEnd = diagnosticsChannel.channel(LISTEN_END_CHANNEL);
  const requestStart = diagnosticsChannel.channel(REQUEST_START_CHANNEL);

  // Bun's http.Server does not inherit net.Server's listen (Node's does): wrap both, publish once per call.
  const inListen = new WeakSet<object>();
  const wrapListen = (proto: { listen: (...args: unknown[]) => unknown }): void => {
    const listen = proto.listen;
    proto.listen = function listenWithChannels(this: net.Server, ...args: unknown[]): unknown {
      if (inListen.has(this)) return listen.apply(this, args);
      inListen.add(this);
      try {
        // before the callback listen() adds, as Node's asyncEnd comes before the 'listening' listeners
        this.prependOnceListener('listening', () => {
          if (listenEnd.hasSubscribers) listenEnd.publish({ server: this });
        });
        if (listenStart.hasSubscribers) listenStart.publish({ server: this, options: listenOptionsOf(args) });
        return listen.apply(this, args);
      } finally {
        inListen.delete(this);
      }
    };
  };
  const netProto = net.Server.prototype as unknown as { listen: (...args: unknown[]) => unknown };
  const httpListenProto = http.Server.prototype as unknown as { listen: (...args: unknown[]) => unknown };
  wrapListen(netProto);
  if (httpListenProto.listen !== netProto.listen) wrapListen(httpListenProto);

  const httpProto = http.Server.prototype as http.Server & { emit: (event: string | symbol, ...args: unknown[]) => boolean };
  const emit = httpProto.emit;
  httpProto.emit = function emitWithChannels(this: http.Server, event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'request' && requestStart.hasSubscribers) {
      const [request, response] = args as [http.IncomingMessage, http.ServerResponse];
      requestStart.publish({ request, response, socket: request.socket, server: this });
    }
    return emit.call(this, event, ...args);
  };
  return runtime;
}
