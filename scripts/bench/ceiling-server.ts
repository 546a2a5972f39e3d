/**
 * The bench's ceiling: a bare `node:http` server that answers `GET <path>` with bytes recorded
 * from ours (status, headers, body), held in memory. Nothing a registry does — no routing
 * framework, no auth, no storage — so "ours ÷ ceiling" says how much of what the Node HTTP stack
 * can do on this machine ours keeps.
 *
 * `node build/scripts/bench/ceiling-server.js <routes.json>`; routes.json = [{path, status,
 * headers: [[name, value]…], bodyFile}]. Prints `listening on http://127.0.0.1:<port>`; ends on
 * SIGTERM. Deliberately no import from the rest of the project: its cost is Node's alone.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

interface Route {
  status: number;
  headers: [string, string][];
  body: Buffer;
}

const manifestFile = process.argv[2];
if (!manifestFile) {
  process.stderr.write('usage: ceiling-server.js <routes.json>\n');
  process.exit(2);
}
const entries = JSON.parse(readFileSync(manifestFile, 'utf8')) as { path: string; status: number; headers: [string, string][]; bodyFile: string }[];
const routes = new Map<string, Route>();
for (const entry of entries) {
  const body = readFileSync(entry.bodyFile);
  // Headers flattened once, content-length included: each response is one writeHead + end.
  const headers: [string, string][] = [...entry.headers, ['content-length', String(body.length)]];
  routes.set(entry.path, { status: entry.status, headers, body });
}
const notFound = Buffer.from('{"error":"not found"}');

const server = createServer((req, res) => {
  const route = req.method === 'GET' ? routes.get(req.url ?? '') : undefined;
  if (!route) {
    res.writeHead(404, { 'content-type': 'application/json', 'content-length': notFound.length });
    res.end(notFound);
    return;
  }
  res.writeHead(route.status, route.headers.flat());
  res.end(route.body);
});
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  const port = address && typeof address === 'object' ? address.port : 0;
  process.stdout.write(`listening on http://127.0.0.1:${port}\n`);
});
process.on('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
});
