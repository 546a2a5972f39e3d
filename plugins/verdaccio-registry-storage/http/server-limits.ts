/**
 * Connection limits of the http.Server Verdaccio creates (issue 11.11: a connection that never
 * sends a byte must not stay open). Node's defaults are 60 s for headers, checked every 30 s, and
 * no idle limit at all; Verdaccio only sets `keepAliveTimeout` (config `server.keepAliveTimeout`).
 *
 * - `headersTimeout`: a request's headers must be complete this long after its first byte
 *   (slowloris), 408 + close;
 * - `requestTimeout`: the whole request (a large publish body included) must arrive in this time;
 * - `timeout` (idle): a socket with no traffic either way for this long is closed — this is what
 *   ends a connection that never sends anything. Keep-alive between requests stays governed by
 *   `server.keepAliveTimeout` (Node swaps the socket timeout while a connection waits for its next
 *   request), and an upgraded WebSocket is no longer an HTTP socket (ws clears the timeout).
 */
import type { Server } from 'node:http';

export interface ServerLimits {
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  idleTimeoutMs: number;
}

export const DEFAULT_SERVER_LIMITS: ServerLimits = { headersTimeoutMs: 30_000, requestTimeoutMs: 300_000, idleTimeoutMs: 120_000 };

export function applyServerLimits(server: Server, limits: ServerLimits): void {
  server.headersTimeout = limits.headersTimeoutMs;
  server.requestTimeout = limits.requestTimeoutMs;
  server.timeout = limits.idleTimeoutMs;
  // Node reads the checking interval when the server starts listening (this runs just before):
  // a limit is enforced within a quarter of itself, not up to 30 s late.
  (server as Server & { connectionsCheckingInterval: number }).connectionsCheckingInterval = Math.max(100, Math.min(30_000, Math.floor(Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs) / 4)));
}
