/**
 * One HTTP request to a test server exactly as given: the path byte for byte, these headers and no
 * others (a Host header too), the body as bytes. `fetch` would normalise the path, drop a Host
 * header and undo Content-Encoding — each of which a test here needs to control or to see.
 */
import { request, type Agent, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';

export interface RawRequest {
  method?: string;
  /** sent as it is: no normalisation, no encoding */
  path: string;
  headers?: OutgoingHttpHeaders;
  /** the caller names its content type; Content-Length is set here */
  body?: Buffer | string;
  agent?: Agent;
  /** the request fails (and its socket is destroyed) after this long without an answer; default 15 s */
  timeoutMs?: number;
}

export interface RawAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  /** the bytes on the wire (still encoded if Content-Encoding says so) */
  body: Buffer;
  /** the body as UTF-8 */
  text: string;
}

export function rawRequest(server: { port: number }, options: RawRequest): Promise<RawAnswer> {
  const payload = typeof options.body === 'string' ? Buffer.from(options.body) : options.body;
  const headers = payload === undefined ? options.headers : { ...options.headers, 'content-length': String(payload.length) };
  const method = options.method ?? 'GET';
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: server.port, method, path: options.path, headers, agent: options.agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text: body.toString('utf8') });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(options.timeoutMs ?? 15_000, () => req.destroy(new Error(`${method} ${options.path}: no answer within ${options.timeoutMs ?? 15_000} ms`)));
    req.end(payload);
  });
}

/** A JSON body and its content type, for `rawRequest`; nothing for `undefined`. */
export function jsonRequestBody(value: unknown): { body?: string; headers: OutgoingHttpHeaders } {
  return value === undefined ? { headers: {} } : { body: JSON.stringify(value), headers: { 'content-type': 'application/json' } };
}
