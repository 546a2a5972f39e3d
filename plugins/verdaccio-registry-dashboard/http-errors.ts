/**
 * Every answer under /_dashboard/api that is not a success is `{"error": "..."}` with a 4xx
 * status (5xx only for faults of ours). One class so handlers `throw` and one place renders.
 */
import type { ServerResponse } from 'node:http';

export class DashboardHttpError extends Error {
  readonly status: number;
  readonly headers: Record<string, string>;

  constructor(status: number, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.name = 'DashboardHttpError';
    this.status = status;
    this.headers = headers;
  }
}

const JSON_HEADERS = {
  'Content-Type': 'application/json; charset=utf-8',
  'Cache-Control': 'no-store',
  'X-Content-Type-Options': 'nosniff',
} as const;

export function sendJson(res: ServerResponse, status: number, body: string, extraHeaders: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  res.writeHead(status, { ...JSON_HEADERS, 'Content-Length': String(Buffer.byteLength(body)), ...extraHeaders });
  res.end(body);
}

export function sendError(res: ServerResponse, status: number, message: string, extraHeaders: Record<string, string> = {}): void {
  sendJson(res, status, JSON.stringify({ error: message }), extraHeaders);
}

/**
 * What the app-wide body parser (express.json, run by Verdaccio before any plugin) reports,
 * as a clean 4xx for our routes. body-parser errors carry `type` and `status`.
 */
export function describeBodyParserError(error: unknown): { status: number; message: string } | undefined {
  if (!error || typeof error !== 'object') return undefined;
  const { type, status } = error as { type?: unknown; status?: unknown };
  switch (type) {
    case 'entity.parse.failed':
      return { status: 400, message: 'body is not valid JSON' };
    case 'entity.too.large':
      return { status: 413, message: 'body is too large' };
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return { status: 415, message: 'unsupported body encoding or charset' };
    case 'request.aborted':
    case 'request.size.invalid':
    case 'stream.encoding.set':
      return { status: 400, message: 'body could not be read' };
    default:
      if (typeof status === 'number' && status >= 400 && status < 500) {
        return { status, message: error instanceof Error && error.message ? error.message : 'bad request' };
      }
      return undefined;
  }
}
