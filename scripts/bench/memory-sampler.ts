/**
 * `NODE_OPTIONS="--require build/scripts/bench/memory-sampler.js" SAMPLER_OUT=<file>` on a server:
 * samples `process.memoryUsage()` every `SAMPLER_MS` ms (default 10) and writes the samples as
 * JSON (`[ms since start, rss, heapTotal, heapUsed, external, arrayBuffers]` in bytes) to
 * SAMPLER_OUT at exit. Main thread only: worker threads (pino's log transport in Verdaccio) inherit
 * `--require` too, and their tiny heaps would overwrite the server's file. Used by burst-rss.ts.
 * A bench tool only: never loaded by the product.
 */
import { writeFileSync } from 'node:fs';
import { isMainThread } from 'node:worker_threads';

const out = process.env.SAMPLER_OUT;
if (isMainThread && out) {
  const every = Number(process.env.SAMPLER_MS ?? 10);
  const samples: number[][] = [];
  const t0 = Date.now();
  const timer = setInterval(() => {
    const m = process.memoryUsage();
    samples.push([Date.now() - t0, m.rss, m.heapTotal, m.heapUsed, m.external, m.arrayBuffers]);
  }, every);
  timer.unref();
  process.on('exit', () => writeFileSync(out, JSON.stringify(samples)));
}
