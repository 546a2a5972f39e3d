/**
 * The bench's ceiling: a bare `node:http` server that answers `GET <path>` with bytes recorded
 * from ours (status, headers, body), held in memory. Nothing a registry does — no routing
 * framework, no auth, no storage — so "ours ÷ ceiling" says how much of what the Node HTTP stack
 * can do on this machine ours keeps.
 *
 * `node build/scripts/bench/ceiling-server.js <routes.json> [<origin>]`; routes.json = [{path,
 * status, headers: [[name, value]…], bodyFile}]. With `<origin>` (the origin the recorded bodies
 * name, e.g. `http://127.0.0.1:4873`), every occurrence of it in a body is replaced by this
 * server's own origin once, after it has bound its port and before it says so (a compressed body
 * is decoded, rewritten and encoded again; content-length follows the new bytes): a replayed
 * packument's tarball URLs then lead the client back here, and no request pays for the rewrite.
 * Prints `listening on http://127.0.0.1:<port>`; ends on SIGTERM. Deliberately no import from the
 * rest of the project: its cost is Node's alone.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { brotliCompressSync, brotliDecompressSync, deflateSync, gzipSync, gunzipSync, inflateSync } from 'node:zlib';

interface Route {
  status: number;
  headers: [string, string][];
  body: Buffer;
}

const manifestFile = process.argv[2];
const recordedOrigin = process.argv[3];
if (!manifestFile) {
  process.stderr.write('usage: ceiling-server.js <routes.json> [<origin>]\n');
  process.exit(2);
}
const entries = JSON.parse(readFileSync(manifestFile, 'utf8')) as { path: string; status: number; headers: [string, string][]; bodyFile: string }[];
const routes = new Map<string, Route>();

const CODECS: Record<string, { decode: (b: Buffer) => Buffer; encode: (b: Buffer) => Buffer }> = {
  gzip: { decode: gunzipSync, encode: gzipSync },
  deflate: { decode: inflateSync, encode: deflateSync },
  br: { decode: brotliDecompressSync, encode: brotliCompressSync },
};

/** The body with `from` replaced by `to` everywhere, in its recorded content-encoding. */
function rewritten(body: Buffer, headers: [string, string][], from: string, to: string): Buffer {
  const encoding = headers.find(([name]) => name.toLowerCase() === 'content-encoding')?.[1].trim().toLowerCase() ?? 'identity';
  const codec = encoding === 'identity' ? null : CODECS[encoding];
  if (codec === undefined) throw new Error(`cannot rewrite a body in content-encoding ${encoding}`);
  const plain = codec ? codec.decode(body) : body;
  if (!plain.includes(from)) return body;
  const replaced = Buffer.from(plain.toString('latin1').split(from).join(to), 'latin1');
  return codec ? codec.encode(replaced) : replaced;
}

function load(ownOrigin: string): void {
  for (const entry of entries) {
    const recorded = readFileSync(entry.bodyFile);
    const body = recordedOrigin ? rewritten(recorded, entry.headers, recordedOrigin, ownOrigin) : recorded;
    // Headers flattened once, content-length included: each response is one writeHead + end.
    const headers: [string, string][] = [...entry.headers, ['content-length', String(body.length)]];
    routes.set(entry.path, { status: entry.status, headers, body });
  }
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
  load(`http://127.0.0.1:${port}`);
  process.stdout.write(`listening on http://127.0.0.1:${port}\n`);
});
process.on('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
});
