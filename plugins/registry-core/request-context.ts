/**
 * Who is asking, for the whole life of one request: the auth plugin's app-wide middleware (which
 * knows the verified token) runs everything after it inside `runWithRequestActor`, so any code the
 * request reaches — Verdaccio's handlers, the store plugin's callbacks, the event bus — can ask
 * `currentRequestActor()` without the plugins importing each other. AsyncLocalStorage follows
 * callbacks, promises and timers created within the request. The instance lives on `globalThis`
 * so the context holds even if this module were loaded twice.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

export interface RequestActor {
  /** the authenticated user; null for an anonymous request */
  user: string | null;
  /** the peer address as the auth plugin saw it (req.ip, IPv4-mapped IPv6 normalised) */
  address: string | null;
  /** the `jti` of the token that authenticated the request; null for Basic / anonymous */
  tokenId: string | null;
}

const KEY = Symbol.for('mycompany-registry:request-actor');
type Holder = { [KEY]?: AsyncLocalStorage<RequestActor> };

function storage(): AsyncLocalStorage<RequestActor> {
  const holder = globalThis as Holder;
  holder[KEY] ??= new AsyncLocalStorage<RequestActor>();
  return holder[KEY];
}

export function runWithRequestActor<T>(actor: RequestActor, fn: () => T): T {
  return storage().run(Object.freeze({ ...actor }), fn);
}

export function currentRequestActor(): RequestActor | undefined {
  return storage().getStore();
}

/**
 * Runs fn with no request context: for events that are not caused by the request whose context
 * a long-lived timer or watcher may have inherited (e.g. a change another process made).
 */
export function outsideRequest<T>(fn: () => T): T {
  return storage().exit(fn);
}
