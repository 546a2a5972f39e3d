/**
 * A real HTTP relay in front of a real upstream registry, for the upstream tests: it counts and
 * records every request it relays (method, path, conditional headers, the upstream's status), and
 * can be switched to misbehave the way real upstreams do — `down` (connections reset), `flip`
 * (tarball bytes altered in flight, headers untouched), `slow` (each tarball chunk delayed),
 * `hang` (the request is read, never answered: an upstream slower than any timeout).
 * Nothing is faked: every answer it gives in `pass` mode is the upstream's own.
 */
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export type RelayMode = 'pass' | 'down' | 'flip' | 'slow' | 'hang';

export interface RelayedRequest {
  method: string;
  path: string;
  ifNoneMatch: string | undefined;
  ifModifiedSince: string | undefined;
  status?: number;
}

export interface Relay {
  url: string;
  mode: RelayMode;
  requests: RelayedRequest[];
  /** requests for exactly this path */
  count(path: string): number;
  close(): Promise<void>;
}

export async function startRelay(upstreamUrl: string): Promise<Relay> {
  const target = new URL(upstreamUrl);
  const requests: RelayedRequest[] = [];
  const relay: Relay = {
    url: '',
    mode: 'pass',
    requests,
    count: (path) => requests.filter((item) => item.path === path).length,
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
  const server: Server = createServer((req, res) => {
    const entry: RelayedRequest = {
      method: req.method ?? 'GET',
      path: req.url ?? '/',
      ifNoneMatch: header(req, 'if-none-match'),
      ifModifiedSince: header(req, 'if-modified-since'),
    };
    requests.push(entry);
    if (relay.mode === 'down') {
      req.socket.destroy();
      return;
    }
    if (relay.mode === 'hang') return; // closeAllConnections() at close() ends it
    // the client's Host is kept: the upstream then names the relay in its tarball URLs, so tarballs pass here too
    const headers = { ...req.headers };
    const upstream = request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers }, (answer) => {
      entry.status = answer.statusCode;
      const isTarball = /\/-\/[^/]+\.tgz$/.test(req.url ?? '');
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      if (!isTarball || relay.mode === 'pass') {
        answer.pipe(res);
        return;
      }
      let first = true;
      answer.on('data', (chunk: Buffer) => {
        if (relay.mode === 'flip' && first) {
          const altered = Buffer.from(chunk);
          altered[altered.length >> 1] ^= 0xff; // same length, other bytes
          first = false;
          res.write(altered);
          return;
        }
        if (relay.mode === 'slow') {
          answer.pause();
          setTimeout(() => {
            res.write(chunk);
            answer.resume();
          }, 300);
          return;
        }
        res.write(chunk);
      });
      answer.on('end', () => setTimeout(() => res.end(), relay.mode === 'slow' ? 300 : 0));
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  relay.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return relay;
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}
