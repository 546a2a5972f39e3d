import { createServer } from 'node:net';
// shared by the bench (scripts/bench) and the test harness, like child-env.ts

/** A port free on 127.0.0.1 right now (bind port 0, read it, close): for servers that need the number before they start. */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (address && typeof address === 'object' ? resolvePort(address.port) : reject(new Error('no port'))));
    });
  });
}
