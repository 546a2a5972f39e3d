/**
 * `node build/scripts/bench/publish-profile.js [--side ours|stock] [--versions N] [--packages M] [--burst C] [--segments K] [--svg <file>]`
 *
 * One server (ours by default) under `node --cpu-prof`, fed the raw `PUT` publishes of the scale
 * group (`publishBody`, kept-alive connection): 10 untimed warm-up publishes, then N versions of
 * one package one after another, then M new packages 4 in flight. Prints, per publish, the server
 * CPU from `/proc` (utime+stime, all threads: robust on a loaded box) and the main-thread profile
 * split into the publish stages (inclusive time of each stage's frames, so nested stages overlap),
 * and with `--svg` writes a flame graph of the publish windows (the bench README's figure).
 * `--burst C` adds, after those (and outside their figures), C concurrent publishes of new packages
 * with the scale group's burst tarball (`--burst-mb`, default 2: random hex, ~1.1 MB gzipped) and
 * prints their server CPU and their own stage table.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { join } from 'node:path';
import { monotonicUs, ownerOf, readProfile, type CallFrame, type ProfileNode } from './profile';
import { addUser, makeTarball, packageFiles, processCpuMs, publishBody, putPublish, removeDir, startServer, tempDir } from './stock';

interface Window {
  startUs: number;
  endUs: number;
}

/** A stage: its frames are recognised by file (url substring) and/or function name. */
interface Stage {
  name: string;
  match(frame: CallFrame, parent: CallFrame | undefined): boolean;
}

const inFile = (part: string) => (frame: CallFrame) => frame.url.includes(part);
const fn = (file: string, ...names: string[]) => (frame: CallFrame) => frame.url.includes(file) && names.includes(frame.functionName);

/** Order = the order of a publish; a sample counts once for every stage on its stack. */
export const STAGES: Stage[] = [
  { name: 'request body read + JSON.parse (body-parser)', match: inFile('node_modules/body-parser/') },
  { name: 'publish guard (publish-guard.ts)', match: inFile('verdaccio-registry-storage/http/publish-guard.js') },
  { name: 'auth: token verify (jose)', match: inFile('node_modules/jose/') },
  { name: 'Verdaccio publish handler (publish.js, incl. its JSON.stringify(_attachments))', match: inFile('verdaccio/build/api/endpoint/api/publish.') },
  { name: 'JSON body parse (body-parser → JSON.parse)', match: (f, p) => f.functionName === 'parse' && f.url === '' && !!p?.url.includes('body-parser') },
  { name: 'base64 decode (Buffer.from)', match: (f, p) => f.functionName === 'from' && f.url === 'node:buffer' && !!p?.url.includes('api/publish.') },
  { name: 'tarball write stream (hash + temp write)', match: inFile('verdaccio-registry-storage/fs-store.js') },
  { name: 'sha1 / sha512 (node:crypto Hash)', match: (f) => f.url.includes('internal/crypto/hash') },
  { name: 'lock (KeyedLock + proper-lockfile)', match: (f) => f.url.includes('proper-lockfile') || f.url.includes('verdaccio-registry-storage/lock.js') || f.url.includes('registry-core/lock.js') },
  { name: 'packument read + JSON.parse', match: fn('fs-store.js', 'readPackument', 'readPackumentText') },
  { name: 'structuredClone', match: (f) => f.functionName === 'structuredClone' },
  { name: 'packument write (stringify + temp + fsync + rename)', match: fn('fs-store.js', 'writePackument') },
  { name: 'fs sync/fsync/rename/open calls', match: (f) => f.url.startsWith('node:internal/fs/') },
  { name: 'integrity verify (ssri)', match: inFile('verdaccio-registry-storage/integrity.js') },
  { name: 'signatures (ECDSA sign)', match: inFile('verdaccio-registry-storage/signatures.js') },
  { name: 'index append (registry.lockb)', match: (f) => f.url.includes('registry-core/package-index.js') || f.url.includes('lockb-sink.js') },
  { name: 'audit log', match: inFile('audit-log.js') },
  { name: 'Verdaccio storage (lib/storage.js, local-storage.js)', match: (f) => f.url.includes('verdaccio/build/lib/storage.') || f.url.includes('verdaccio/build/lib/local-storage.') },
  { name: 'our storage plugin (all of plugins/verdaccio-registry-storage)', match: inFile('/plugins/verdaccio-registry-storage/') },
  { name: 'garbage collector', match: (f) => f.functionName === '(garbage collector)' },
];

interface Timed {
  nodes: Map<number, ProfileNode>;
  parent: Map<number, number>;
  /** ms per node id from the samples inside the windows */
  self: Map<number, number>;
  busyMs: number;
}

function sampleTimes(path: string, windows: readonly Window[]): Timed {
  const profile = readProfile(path) as unknown as { nodes: ProfileNode[]; startTime: number; samples?: number[]; timeDeltas?: number[] };
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const self = new Map<number, number>();
  let at = profile.startTime;
  let busyMs = 0;
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  for (let i = 0; i < samples.length; i += 1) {
    at += deltas[i] ?? 0;
    if (!windows.some((w) => at >= w.startUs && at <= w.endUs)) continue;
    const node = nodes.get(samples[i]);
    if (!node || node.callFrame.functionName === '(idle)') continue;
    const ms = (deltas[i] ?? 0) / 1000;
    self.set(samples[i], (self.get(samples[i]) ?? 0) + ms);
    busyMs += ms;
  }
  return { nodes, parent, self, busyMs };
}

function stackOf(timed: Timed, id: number): CallFrame[] {
  const frames: CallFrame[] = [];
  for (let at: number | undefined = id; at !== undefined; at = timed.parent.get(at)) {
    const node = timed.nodes.get(at);
    if (node) frames.push(node.callFrame);
  }
  return frames.reverse(); // root → leaf
}

/** Self time per function (name, file:line) in the windows, highest first. */
export function topSelf(timed: Timed, top: number): Array<{ label: string; ms: number }> {
  const totals = new Map<string, number>();
  for (const [id, ms] of timed.self) {
    const frame = timed.nodes.get(id)?.callFrame;
    if (!frame) continue;
    const file = frame.url.replace(/^.*\/(node_modules|build)\//, '');
    const label = `${frame.functionName || '(anonymous)'}${file ? ` ${file}:${frame.lineNumber + 1}` : ' (native)'}`;
    totals.set(label, (totals.get(label) ?? 0) + ms);
  }
  return [...totals.entries()].sort((a, b) => b[1] - a[1]).slice(0, top).map(([label, ms]) => ({ label, ms }));
}

/** Inclusive time per function (each counted once per sample), highest first; `filter` picks the frames listed. */
export function topInclusive(timed: Timed, top: number, filter: (frame: CallFrame) => boolean): Array<{ label: string; ms: number }> {
  const totals = new Map<string, number>();
  for (const [id, ms] of timed.self) {
    const seen = new Set<string>();
    for (const frame of stackOf(timed, id)) {
      if (!filter(frame)) continue;
      const file = frame.url.replace(/^.*\/(node_modules|build)\//, '');
      const label = `${frame.functionName || '(anonymous)'} ${file}:${frame.lineNumber + 1}`;
      if (seen.has(label)) continue;
      seen.add(label);
      totals.set(label, (totals.get(label) ?? 0) + ms);
    }
  }
  return [...totals.entries()].sort((a, b) => b[1] - a[1]).slice(0, top).map(([label, ms]) => ({ label, ms }));
}

export function stageTable(timed: Timed): Array<{ stage: string; ms: number }> {
  const totals = new Map<string, number>();
  for (const [id, ms] of timed.self) {
    const stack = stackOf(timed, id);
    const hit = new Set<string>();
    stack.forEach((frame, i) => {
      for (const stage of STAGES) if (stage.match(frame, stack[i - 1])) hit.add(stage.name);
    });
    for (const name of hit) totals.set(name, (totals.get(name) ?? 0) + ms);
  }
  return STAGES.map((stage) => ({ stage: stage.name, ms: totals.get(stage.name) ?? 0 }));
}

// ---- flame graph ------------------------------------------------------------------------------

interface Flame {
  label: string;
  owner: string;
  ms: number;
  children: Map<string, Flame>;
}

function flameOf(timed: Timed): Flame {
  const root: Flame = { label: 'all publishes', owner: '', ms: 0, children: new Map() };
  for (const [id, ms] of timed.self) {
    let at = root;
    at.ms += ms;
    for (const frame of stackOf(timed, id)) {
      if (frame.functionName === '(root)') continue;
      const file = frame.url.replace(/^.*\/(node_modules|build)\//, '').replace(/^file:\/\//, '');
      const label = `${frame.functionName || '(anonymous)'}${file ? ` ${file}:${frame.lineNumber + 1}` : ''}`;
      let next = at.children.get(label);
      if (!next) {
        next = { label, owner: ownerOf(frame.url), ms: 0, children: new Map() };
        at.children.set(label, next);
      }
      next.ms += ms;
      at = next;
    }
  }
  return root;
}

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function colourOf(owner: string): string {
  if (owner.startsWith('plugins/')) return '#e8743b';
  if (owner === 'node internals') return '#5b8def';
  if (owner === '(native / V8)' || owner.startsWith('(')) return '#9aa5b1';
  if (owner === 'verdaccio' || owner.startsWith('@verdaccio')) return '#3bb273';
  return '#c9b037';
}

/** An icicle-style flame graph (root on top), width ∝ CPU time; a <title> on every box. */
export function renderFlame(root: Flame, title: string, width = 1200): string {
  const rowHeight = 16;
  const boxes: string[] = [];
  let depthMax = 0;
  const scale = (width - 20) / Math.max(root.ms, 1e-9);
  const visit = (node: Flame, x: number, depth: number): void => {
    const w = node.ms * scale;
    if (w < 0.5) return;
    depthMax = Math.max(depthMax, depth);
    const y = 40 + depth * rowHeight;
    const tip = `${node.label} — ${node.ms.toFixed(1)} ms (${((node.ms / root.ms) * 100).toFixed(1)} %)`;
    const text = w > 40 ? `<text x="${(x + 3).toFixed(1)}" y="${y + 12}" font-size="10">${escapeXml(node.label.slice(0, Math.floor(w / 6)))}</text>` : '';
    boxes.push(`<g><title>${escapeXml(tip)}</title><rect x="${x.toFixed(1)}" y="${y}" width="${w.toFixed(1)}" height="${rowHeight - 1}" fill="${node.owner ? colourOf(node.owner) : '#777'}" rx="1"/>${text}</g>`);
    let childX = x;
    for (const child of [...node.children.values()].sort((a, b) => b.ms - a.ms)) {
      visit(child, childX, depth + 1);
      childX += child.ms * scale;
    }
  };
  visit(root, 10, 0);
  const height = 60 + (depthMax + 1) * rowHeight;
  const legend = [
    ['#e8743b', 'our plugins'],
    ['#3bb273', 'verdaccio'],
    ['#c9b037', 'other packages'],
    ['#5b8def', 'node internals'],
    ['#9aa5b1', 'native / V8 / GC'],
  ]
    .map(([colour, name], i) => `<rect x="${10 + i * 140}" y="22" width="10" height="10" fill="${colour}"/><text x="${24 + i * 140}" y="31" font-size="11">${name}</text>`)
    .join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="monospace"><rect width="100%" height="100%" fill="#fff"/><text x="10" y="15" font-size="13">${escapeXml(title)}</text>${legend}${boxes.join('')}</svg>\n`;
}

// ---- the run ----------------------------------------------------------------------------------

function argValue(argv: readonly string[], name: string, fallback: string): string {
  const i = argv.indexOf(name);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1] : fallback;
}

async function main(argv: readonly string[]): Promise<void> {
  const side = argValue(argv, '--side', 'ours') === 'stock' ? 'stock' : 'ours';
  const versions = Number(argValue(argv, '--versions', '200'));
  const packages = Number(argValue(argv, '--packages', '200'));
  const svg = argValue(argv, '--svg', '');
  const burst = Number(argValue(argv, '--burst', '0'));
  const burstMb = Number(argValue(argv, '--burst-mb', '2'));
  const burstWindows: Window[] = [];
  const segments = Number(argValue(argv, '--segments', '1'));
  const segmentRows: string[] = [];
  const segmentWindows: Array<{ series: string; label: string; count: number; window: Window }> = [];
  const dir = tempDir(`publish-profile-${side}`);
  const profileDir = join(dir, 'cpuprofile');
  mkdirSync(profileDir, { recursive: true });
  // PROFILE_SERVER_NODE_OPTIONS: e.g. a `--require` of a counting shim (the README's call counts)
  const serverOptions = process.env.PROFILE_SERVER_NODE_OPTIONS ? { NODE_OPTIONS: process.env.PROFILE_SERVER_NODE_OPTIONS } : undefined;
  const server = await startServer(side === 'ours' ? 'ours' : 'stock-jwt', join(dir, 'state'), { cpuProfDir: profileDir, env: serverOptions });
  const windows: Window[] = [];
  const cpu: Record<string, number> = {};
  try {
    const token = await addUser(server.url, 'bench', 'bench-password-1');
    const agent = new Agent({ keepAlive: true, maxSockets: 4 });
    const pid = server.child.pid;
    for (let w = 1; w <= 10; w += 1) await putPublish(server.url, agent, token, '@mycompany/profile-warmup', publishBody(server.url, '@mycompany/profile-warmup', `1.0.${w}`).body);

    const pkg = '@mycompany/profile-versions';
    const bodies = Array.from({ length: versions }, (_, i) => publishBody(server.url, pkg, `1.0.${i + 1}`, makeTarball(packageFiles(pkg, `1.0.${i + 1}`))).body);
    let before = processCpuMs(pid) ?? 0;
    let start = monotonicUs();
    let segmentCpu = before;
    let segmentUs = start;
    const step = Math.ceil(versions / Math.max(1, segments));
    for (let i = 0; i < bodies.length; i += 1) {
      await putPublish(server.url, agent, token, pkg, bodies[i]);
      if (segments > 1 && ((i + 1) % step === 0 || i + 1 === bodies.length)) {
        const now = processCpuMs(pid) ?? 0;
        const count = (i % step) + 1;
        const label = `versions ${i + 2 - count}..${i + 1}`;
        segmentRows.push(`${label}: ${((now - segmentCpu) / count).toFixed(2)} ms`);
        segmentWindows.push({ series: 'versions', label, count, window: { startUs: segmentUs, endUs: monotonicUs() } });
        segmentCpu = now;
        segmentUs = monotonicUs();
      }
    }
    windows.push({ startUs: start, endUs: monotonicUs() });
    cpu.versions = ((processCpuMs(pid) ?? 0) - before) / versions;

    const names = Array.from({ length: packages }, (_, i) => `@mycompany/profile-bulk-${i + 1}`);
    const bulk = names.map((name) => publishBody(server.url, name, '1.0.0').body);
    before = processCpuMs(pid) ?? 0;
    start = monotonicUs();
    // --segments K: the new packages in K consecutive groups (4 in flight within each), each group's
    // CPU per publish printed, so a cost that grows with the number of stored packages shows
    const size = Math.ceil(packages / Math.max(1, segments));
    for (let from = 0; from < names.length; from += size) {
      const to = Math.min(names.length, from + size);
      const segmentStart = processCpuMs(pid) ?? 0;
      const segmentStartUs = monotonicUs();
      let next = from;
      await Promise.all(
        Array.from({ length: 4 }, async () => {
          while (next < to) {
            const i = next;
            next += 1;
            await putPublish(server.url, agent, token, names[i], bulk[i]);
          }
        }),
      );
      segmentWindows.push({ series: 'packages', label: `packages ${from + 1}..${to}`, count: to - from, window: { startUs: segmentStartUs, endUs: monotonicUs() } });
      if (segments > 1) segmentRows.push(`packages ${from + 1}..${to}: ${(((processCpuMs(pid) ?? 0) - segmentStart) / (to - from)).toFixed(2)} ms`);
    }
    windows.push({ startUs: start, endUs: monotonicUs() });
    cpu.bulk = ((processCpuMs(pid) ?? 0) - before) / packages;
    if (burst > 0) {
      // as the scale group's burst: random bytes as hex compress about 2:1
      const blob = randomBytes(Math.round((burstMb * 1024 * 1024) / 2)).toString('hex');
      const tarball = makeTarball({ ...packageFiles('@mycompany/profile-burst', '1.0.0'), 'blob.txt': blob });
      const burstNames = Array.from({ length: burst }, (_, i) => `@mycompany/profile-burst-${i + 1}`);
      const burstBodies = burstNames.map((name) => Buffer.from(publishBody(server.url, name, '1.0.0', tarball).body));
      const burstAgent = new Agent({ keepAlive: true, maxSockets: burst });
      before = processCpuMs(pid) ?? 0;
      start = monotonicUs();
      await Promise.all(burstNames.map((name, i) => putPublish(server.url, burstAgent, token, name, burstBodies[i])));
      burstWindows.push({ startUs: start, endUs: monotonicUs() });
      cpu.burst = (processCpuMs(pid) ?? 0) - before;
      burstAgent.destroy();
    }
    agent.destroy();
  } finally {
    await server.stop();
  }
  // the main thread's profile is the largest (logger worker threads write their own)
  const file = readdirSync(profileDir)
    .filter((name) => name.endsWith('.cpuprofile'))
    .sort((a, b) => statSync(join(profileDir, b)).size - statSync(join(profileDir, a)).size)[0];
  if (!file) throw new Error(`no .cpuprofile in ${profileDir} (did the server exit gracefully?)`);
  const timed = sampleTimes(join(profileDir, file), windows);
  const count = versions + packages;
  console.log(`${side}: server CPU per publish (/proc utime+stime, all threads): ${cpu.versions.toFixed(2)} ms over ${versions} versions of one package, ${cpu.bulk.toFixed(2)} ms over ${packages} new packages (4 in flight)`);
  if (segmentRows.length > 0) console.log(`${side}: server CPU per publish by segment: ${segmentRows.join('; ')}`);
  console.log(`${side}: main-thread profile in the publish windows: ${timed.busyMs.toFixed(0)} ms busy = ${(timed.busyMs / count).toFixed(2)} ms per publish`);
  console.log('| stage (inclusive, main thread) | ms per publish | share of busy |');
  console.log('| --- | ---: | ---: |');
  for (const row of stageTable(timed)) console.log(`| ${row.stage} | ${(row.ms / count).toFixed(2)} | ${((row.ms / timed.busyMs) * 100).toFixed(1)} % |`);
  console.log('| self time, top functions (main thread) | ms per publish |');
  console.log('| --- | ---: |');
  for (const row of topSelf(timed, 25)) console.log(`| ${row.label} | ${(row.ms / count).toFixed(3)} |`);
  if (process.env.PROFILE_INCLUSIVE) {
    console.log('| inclusive, our plugins and Verdaccio (main thread) | ms per publish |');
    console.log('| --- | ---: |');
    const ours = (frame: CallFrame): boolean => frame.url.includes('/plugins/') || frame.url.includes('node_modules/verdaccio/') || frame.url.includes('node_modules/@verdaccio/');
    for (const row of topInclusive(timed, Number(process.env.PROFILE_INCLUSIVE), ours)) console.log(`| ${row.label} | ${(row.ms / count).toFixed(3)} |`);
  }
  for (const series of segments > 1 ? ['versions', 'packages'] : []) {
    // what grows with the packument size / the number of stored packages: the first and the last group side by side
    const inSeries = segmentWindows.filter((segment) => segment.series === series);
    if (inSeries.length < 2) continue;
    const first = inSeries[0];
    const last = inSeries[inSeries.length - 1];
    const a = sampleTimes(join(profileDir, file), [first.window]);
    const b = sampleTimes(join(profileDir, file), [last.window]);
    const perA = new Map(topSelf(a, 400).map((row) => [row.label, row.ms / first.count]));
    const perB = new Map(topSelf(b, 400).map((row) => [row.label, row.ms / last.count]));
    const labels = [...new Set([...perA.keys(), ...perB.keys()])];
    const grown = labels.map((label) => ({ label, a: perA.get(label) ?? 0, b: perB.get(label) ?? 0 })).sort((x, y) => y.b - y.a - (x.b - x.a));
    console.log(`| self time, ${first.label} vs ${last.label} (main thread, ms per publish; busy ${(a.busyMs / first.count).toFixed(2)} vs ${(b.busyMs / last.count).toFixed(2)}) | first | last |`);
    console.log('| --- | ---: | ---: |');
    for (const row of grown.slice(0, 20)) console.log(`| ${row.label} | ${row.a.toFixed(3)} | ${row.b.toFixed(3)} |`);
    const incA = new Map(topInclusive(a, 400, () => true).map((row) => [row.label, row.ms / first.count]));
    const incB = new Map(topInclusive(b, 400, () => true).map((row) => [row.label, row.ms / last.count]));
    const incLabels = [...new Set([...incA.keys(), ...incB.keys()])];
    const incGrown = incLabels.map((label) => ({ label, a: incA.get(label) ?? 0, b: incB.get(label) ?? 0 })).sort((x, y) => y.b - y.a - (x.b - x.a));
    console.log(`| inclusive, ${first.label} vs ${last.label}, largest growth | first | last |`);
    console.log('| --- | ---: | ---: |');
    for (const row of incGrown.slice(0, 25)) console.log(`| ${row.label} | ${row.a.toFixed(3)} | ${row.b.toFixed(3)} |`);
  }
  if (burst > 0) {
    const inBurst = sampleTimes(join(profileDir, file), burstWindows);
    console.log(`${side}: ${burst} concurrent ${burstMb} MB publishes: server CPU ${cpu.burst.toFixed(0)} ms (/proc, all threads), main thread busy ${inBurst.busyMs.toFixed(0)} ms`);
    console.log('| stage in the burst (inclusive, main thread) | ms per publish |');
    console.log('| --- | ---: |');
    for (const row of stageTable(inBurst)) console.log(`| ${row.stage} | ${(row.ms / burst).toFixed(2)} |`);
    console.log('| self time in the burst, top functions | ms per publish |');
    console.log('| --- | ---: |');
    for (const row of topSelf(inBurst, 15)) console.log(`| ${row.label} | ${(row.ms / burst).toFixed(3)} |`);
  }
  if (svg) {
    writeFileSync(svg, renderFlame(flameOf(timed), `${side}: CPU of ${count} raw-PUT publishes (${versions} versions of one package + ${packages} new packages), main thread, ${(timed.busyMs / count).toFixed(2)} ms per publish`));
    console.log(`wrote ${svg}`);
  }
  if (!process.env.KEEP_PROFILE) removeDir(dir); else console.log(`profile kept in ${profileDir}`);
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
