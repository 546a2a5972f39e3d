/**
 * Smoke test of `npm run bench`: the pure table / ratio / target logic, the CPU-profile ranking,
 * the argument parser, and the cheapest version of each kind of row against a real stock
 * Verdaccio (JWT mode, as in the bench) and a real ours: ping throughput with the ceiling in the
 * same rounds, the first read after a publish, cold starts (with RSS and the compile cache of each
 * side), the config rows. No timing is asserted — only that the rows exist, carry figures and add up.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { renderChart } from '../../scripts/bench/chart';
import { CLIENT_SETTINGS, ceilingRowNames, runInstallBench, runPublishBench } from '../../scripts/bench/clients-bench';
import { CONFIG_ROWS, runConfigBench } from '../../scripts/bench/config-bench';
import { CEILING_TARGET, READ_ROWS, cannon, runFirstReadBench, throughputRow, type Endpoint } from '../../scripts/bench/http-bench';
import { parseArgs } from '../../scripts/bench/main';
import { ownerOf, summarizeProfile } from '../../scripts/bench/profile';
import { evaluateRow, formatNumber, formatTable, makeRow, median, parseTarget, ratioOf, summarize } from '../../scripts/bench/report';
import { appendIndex, changesSincePrevious, readIndex, runBaseName, writeRecordedChart, type IndexEntry } from '../../scripts/bench/results';
import { SCALE_CURVES, SCALE_ROWS, SCALE_SETTINGS, runScaleBench, windowAt, type ScaleSettings } from '../../scripts/bench/scale-bench';
import { COLD_START_ROWS, runStartupBench } from '../../scripts/bench/startup-bench';
import { UPSTREAM_SETTINGS, runUpstreamBench, startRelay, upstreamRows, upstreamTree, type UpstreamSettings } from '../../scripts/bench/upstream-bench';
import {
  Budget,
  addUser,
  compileCacheDirOf,
  interleave,
  interleaveSides,
  makeTarball,
  publishRaw,
  rawGet,
  removeDir,
  rssMiB,
  startCeiling,
  startOurs,
  startServer,
  startStock,
  tempDir,
  type BenchServer,
} from '../../scripts/bench/stock';

describe('bench report (pure)', () => {
  it('median of odd and even counts, NaN when empty', () => {
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([4, 1, 3, 2]), 2.5);
    assert.ok(Number.isNaN(median([])));
  });

  it('ratio is ours / baseline, null without a usable baseline', () => {
    assert.equal(ratioOf(300, 200), 1.5);
    assert.equal(ratioOf(1, null), null);
    assert.equal(ratioOf(1, 0), null);
    assert.equal(ratioOf(Number.NaN, 2), null);
  });

  it('targets with × compare the ratio, others compare ours in the row unit', () => {
    assert.deepEqual(parseTarget('≥ 1.5× stock req/s'), { op: '>=', value: 1.5, on: 'ratio' });
    assert.deepEqual(parseTarget('≤ 1.05x stock time'), { op: '<=', value: 1.05, on: 'ratio' });
    assert.deepEqual(parseTarget('p50 ≤ 5 ms'), { op: '<=', value: 5, on: 'ours' });
    assert.deepEqual(parseTarget('<= 100 ns median'), { op: '<=', value: 100, on: 'ours' });
    assert.equal(parseTarget('info'), null);
    // The rows issue 17 added: the ceiling fraction and RSS compare the ratio too.
    assert.deepEqual(parseTarget(CEILING_TARGET), { op: '>=', value: 0.6, on: 'ratio' });
    assert.deepEqual(parseTarget('≤ 1.0× stock RSS'), { op: '<=', value: 1, on: 'ratio' });
    assert.equal(evaluateRow(makeRow('packument ÷ ceiling', 5000, 10000, 'req/s', CEILING_TARGET)), 'fail');
    assert.equal(evaluateRow(makeRow('packument ÷ ceiling', 7000, 10000, 'req/s', CEILING_TARGET)), 'pass');
  });

  it('verdicts follow the target direction', () => {
    const faster = makeRow('packument GET', 3000, 1500, 'req/s', '≥ 1.5× stock req/s');
    const slower = makeRow('packument GET', 2000, 1500, 'req/s', '≥ 1.5× stock req/s');
    assert.equal(evaluateRow(faster), 'pass');
    assert.equal(evaluateRow(slower), 'fail');
    assert.equal(evaluateRow(makeRow('npm publish', 10.4, 10, 's', '≤ 1.05× stock time')), 'pass');
    assert.equal(evaluateRow(makeRow('npm publish', 10.6, 10, 's', '≤ 1.05× stock time')), 'fail');
    assert.equal(evaluateRow(makeRow('getConfig()', 80, null, 'ns', '≤ 100 ns')), 'pass');
    assert.equal(evaluateRow(makeRow('getConfig()', 120, null, 'ns', '≤ 100 ns')), 'fail');
    assert.equal(evaluateRow(makeRow('ping', 10, 10, 'req/s', 'info')), 'info');
    assert.equal(evaluateRow(faster, ['ERROR ours: 3 non-2xx']), 'error');
    assert.equal(evaluateRow(makeRow('x', Number.NaN, 1, 'ms', '≤ 1.1× stock time')), 'error');
  });

  it('the table has one line per row with both figures, the ratio and a mark', () => {
    const rows = [
      makeRow('packument GET', 3012.4, 1500.2, 'req/s', '≥ 1.5× stock req/s'),
      makeRow('cold start', 1200, 1000, 'ms', '≤ 1.1× stock time'),
      makeRow('getConfig()', 42, null, 'ns', '≤ 100 ns'),
    ];
    const text = formatTable(rows);
    const lines = text.split('\n');
    assert.equal(lines.length, 2 + rows.length);
    assert.match(lines[2], /packument GET\s+1500\s+3012\s+req\/s\s+2\.01×\s+≥ 1\.5× stock req\/s\s+✓$/);
    assert.match(lines[3], /cold start\s+1000\s+1200\s+ms\s+1\.20×.*✗$/);
    assert.match(lines[4], /getConfig\(\)\s+—\s+42\.0\s+ns\s+—.*✓$/);
    const markdown = formatTable(rows, { markdown: true }).split('\n');
    assert.equal(markdown.length, 2 + rows.length);
    assert.ok(markdown.every((line) => line.startsWith('| ') && line.endsWith(' |')));
    assert.deepEqual(summarize(rows), { pass: 2, fail: 1, info: 0, error: 0 });
  });

  it('numbers keep three significant digits', () => {
    assert.equal(formatNumber(1234.6), '1235');
    assert.equal(formatNumber(12.34), '12.3');
    assert.equal(formatNumber(0.01234), '0.0123');
    assert.equal(formatNumber(null), '—');
    assert.equal(formatNumber(Number.NaN), 'n/a');
  });

  it('parses the command line and refuses unknown groups', () => {
    const quick = parseArgs(['--quick', '--only', 'read,startup']);
    assert.equal(quick.quick, true);
    assert.deepEqual([...quick.only].sort(), ['read', 'startup']);
    assert.ok(quick.budgetMs <= 150_000);
    assert.ok(parseArgs([]).budgetMs <= 600_000);
    assert.deepEqual([...parseArgs(['--quick', '--only', 'scale']).only], ['scale']);
    assert.deepEqual([...parseArgs(['--quick', '--only', 'upstream']).only], ['upstream']);
    assert.deepEqual([...parseArgs(['--quick', '--only', 'cluster']).only], ['cluster']);
    assert.equal(parseArgs(['--record']).record, true);
    // docs/bench.svg is the picture of a full run of every group, never of a quick or partial one.
    assert.throws(() => parseArgs(['--record', '--quick']), /--record/);
    assert.throws(() => parseArgs(['--record', '--only', 'scale']), /--record/);
    assert.throws(() => parseArgs(['--only', 'nope']), /--only/);
    assert.throws(() => parseArgs(['--frobnicate']), /unknown argument/);
  });
});

describe('bench helpers (pure)', () => {
  it('the fixture tarball is a gzipped ustar archive under package/', () => {
    const tar = gunzipSync(makeTarball({ 'package.json': '{"name":"x","version":"1.0.0"}\n', 'index.js': 'exports.x = 1;\n' }));
    assert.equal(tar.length % 512, 0);
    assert.equal(tar.subarray(0, 20).toString('ascii').replace(/\0+$/, ''), 'package/package.json');
    assert.equal(tar.subarray(257, 262).toString('ascii'), 'ustar');
    // The header checksum field must equal the byte sum with that field read as spaces.
    const header = Buffer.from(tar.subarray(0, 512));
    const stored = parseInt(header.subarray(148, 154).toString('ascii'), 8);
    header.fill(0x20, 148, 156);
    assert.equal(stored, header.reduce((sum, byte) => sum + byte, 0));
  });

  it('interleave flips the order every round and stops at the budget', async () => {
    const order: string[] = [];
    const result = await interleave(3, new Budget(60_000), async (side, round) => {
      order.push(`${side}${round}`);
      return round;
    });
    assert.deepEqual(order, ['stock0', 'ours0', 'ours1', 'stock1', 'stock2', 'ours2']);
    assert.deepEqual(result.ours, [0, 1, 2]);
    const cut = await interleave(5, new Budget(0), async () => 1);
    assert.equal(cut.ours.length, 1, 'round 0 always runs');
    assert.equal(cut.skippedRounds, 4);
  });

  it('three sides (stock, ours, ceiling) reverse their order every round', async () => {
    const order: string[] = [];
    const result = await interleaveSides(['stock', 'ours', 'ceiling'] as const, 2, new Budget(60_000), async (side, round) => {
      order.push(`${side}${round}`);
      return side;
    });
    assert.deepEqual(order, ['stock0', 'ours0', 'ceiling0', 'ceiling1', 'ours1', 'stock1']);
    assert.deepEqual(result.runs.ceiling, ['ceiling', 'ceiling']);
  });

  it('a CPU profile is ranked by owner and by function', () => {
    const frame = (functionName: string, url: string) => ({ functionName, url, lineNumber: 9, columnNumber: 0 });
    const profile = {
      nodes: [
        { id: 1, callFrame: frame('(root)', '') },
        { id: 2, callFrame: frame('verify', 'file:///w/build/plugins/verdaccio-registry-auth/verifier.js') },
        { id: 3, callFrame: frame('parse', 'file:///w/node_modules/express/lib/router/index.js') },
        { id: 4, callFrame: frame('(idle)', '') },
      ],
      startTime: 0,
      endTime: 10_000,
      samples: [2, 2, 2, 3, 4],
      timeDeltas: [1000, 1000, 1000, 1000, 5000],
    };
    const summary = summarizeProfile(profile);
    assert.equal(summary.totalMs, 4);
    assert.equal(summary.idleMs, 5);
    assert.deepEqual(summary.byOwner.map((e) => e.label), ['plugins/verdaccio-registry-auth', 'express']);
    assert.equal(summary.byFunction[0].label, 'verify plugins/verdaccio-registry-auth/verifier.js:10');
    assert.equal(summary.byOwner[0].share, 0.75);
    assert.equal(ownerOf('node:internal/http'), 'node internals');
    assert.equal(ownerOf('file:///w/node_modules/@verdaccio/auth/build/auth.js'), '@verdaccio/auth');
  });
});

describe('bench chart and results index (pure)', () => {
  const rows = [
    makeRow('packument GET', 3000, 1000, 'req/s', '≥ 3× stock req/s'),
    makeRow('publish <at> 10 & "more"', 20, 10, 'ms', '≤ 1.0× stock time'),
    makeRow('dashboard list', 12, null, 'ms', '≤ 50 ms'),
    makeRow('search', 5, 10, 'ms', 'info'),
  ];
  const curve = { name: SCALE_CURVES.publish, xLabel: 'versions', yLabel: 'ms', x: [1, 2, 3], stock: [1, 2, 3], ours: [2, 3, Number.NaN] };

  it('one bar per row with a ratio, the target marked where it compares the ratio, a line per side per curve', () => {
    const svg = renderChart({ title: 'smoke <run>', rows, curves: [curve] });
    assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    assert.ok(svg.trimEnd().endsWith('</svg>'));
    assert.equal(svg.match(/<rect class="bar /g)?.length, 3, 'the row without a baseline has no ratio bar');
    assert.equal(svg.match(/class="bar pass"/g)?.length, 1);
    assert.equal(svg.match(/class="bar fail"/g)?.length, 1);
    assert.equal(svg.match(/class="bar info"/g)?.length, 1);
    assert.equal(svg.match(/<line class="target"/g)?.length, 2, 'the ratio targets; none for info or an absolute bound');
    assert.equal(svg.match(/<polyline class="curve stock"/g)?.length, 1);
    assert.match(svg, /<polyline class="curve ours"[^>]*points="[\d.]+,[\d.]+ [\d.]+,[\d.]+"/, 'a missing point is left out');
    // Names are text, never markup.
    assert.ok(svg.includes('publish &lt;at&gt; 10 &amp; &quot;more&quot;') && svg.includes('smoke &lt;run&gt;'));
    assert.ok(!svg.includes('<at>'));
  });

  it('run files are named by date and commit; the index keeps every run and shows what moved', () => {
    const name = runBaseName(new Date('2026-12-02T00:40:12.345Z'), { short: 'abc1234', dirty: true });
    assert.equal(name, 'bench-2026-12-02T00-40-12Z-abc1234-dirty');
    const dir = tempDir('smoke-index');
    try {
      const file = join(dir, 'index.json');
      assert.deepEqual(readIndex(file).runs, []);
      const entry = (commit: string, ratio: number, mode: 'quick' | 'full' = 'quick'): IndexEntry => ({
        file: `bench-x-${commit}.json`,
        date: '2026-12-02T00:00:00.000Z',
        commit,
        dirty: false,
        mode,
        groups: ['scale'],
        counts: { pass: 0, fail: 0, info: 1, error: 0 },
        rows: [{ name: 'bulk publish rate', ours: ratio, baseline: 1, unit: 'pkg/s', ratio, target: 'info', verdict: 'info' }],
      });
      appendIndex(file, entry('aaa', 1));
      appendIndex(file, entry('bbb', 0.5, 'full'));
      const index = appendIndex(file, entry('ccc', 0.7));
      assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')).runs.map((run: IndexEntry) => run.commit), ['aaa', 'bbb', 'ccc']);
      // Compared with the previous run of the same mode (aaa), not the full run in between.
      assert.deepEqual(changesSincePrevious(index), ['bulk publish rate: ratio 1.00× → 0.70× (aaa → ccc)']);
      assert.deepEqual(changesSincePrevious(appendIndex(file, entry('ddd', 0.75))), []);
      // --record: the chart lands in <root>/docs/bench.svg, replaced whole.
      mkdirSync(join(dir, 'docs'));
      assert.equal(writeRecordedChart(dir, '<svg>1</svg>'), join(dir, 'docs', 'bench.svg'));
      writeRecordedChart(dir, '<svg>2</svg>');
      assert.equal(readFileSync(join(dir, 'docs', 'bench.svg'), 'utf8'), '<svg>2</svg>');
      assert.deepEqual(readdirSync(join(dir, 'docs')), ['bench.svg'], 'no temporary file left');
      // A file that is not an index is refused, never overwritten.
      writeFileSync(join(dir, 'other.json'), '{"rows": []}');
      assert.throws(() => appendIndex(join(dir, 'other.json'), entry('eee', 1)), /not a bench results index/);
    } finally {
      removeDir(dir);
    }
  });

  it('the publish latency window grows with the version count, within bounds', () => {
    assert.equal(windowAt(10), 5);
    assert.equal(windowAt(1000), 25);
    assert.equal(windowAt(100_000), 25);
    // Quick sizes are smaller than full ones, and the row names carry the sizes.
    assert.ok(SCALE_SETTINGS.quick.packages < SCALE_SETTINGS.full.packages);
    assert.equal(SCALE_SETTINGS.full.packages, 3000);
    assert.deepEqual(SCALE_SETTINGS.full.checkpoints, [10, 100, 1000]);
    assert.match(SCALE_ROWS.restartAt(SCALE_SETTINGS.quick.packages), new RegExp(`with ${SCALE_SETTINGS.quick.packages} packages`));
  });
});

describe('bench against real servers (stock in JWT mode, ours, the ceiling)', { timeout: 240_000 }, () => {
  const dirs: string[] = [];
  const servers: BenchServer[] = [];
  let stock: BenchServer;
  let ours: BenchServer;
  const ping: Endpoint = { name: 'ping', path: '/-/ping', check: (status) => (status === 200 ? null : `status ${status}`) };

  before(async () => {
    dirs.push(tempDir('smoke-stock'), tempDir('smoke-ours'));
    stock = await startStock(dirs[0], { jwt: true });
    servers.push(stock);
    ours = await startOurs(dirs[1]);
    servers.push(ours);
  });

  after(async () => {
    for (const server of servers) await server.stop();
    for (const dir of dirs) removeDir(dir);
  });

  it('autocannon reaches both servers', async () => {
    for (const server of [stock, ours]) {
      const result = await cannon(`${server.url}/-/ping`, { durationSec: 1, connections: 2 });
      assert.ok(result.requests > 0, `${server.kind}: no requests completed`);
      assert.equal(result.non2xx, 0, `${server.kind}: non-2xx answers`);
      assert.equal(result.errors, 0, `${server.kind}: errors`);
    }
  });

  it('one interleaved round gives a row whose ratio is ours / stock', async () => {
    const lines: string[] = [];
    const outcome = await throughputRow(
      'ping',
      { stock, ours },
      { stock: ping, ours: ping },
      'info',
      { rounds: 1, durationSec: 1, warmupSec: 0, connections: 4 },
      new Budget(30_000),
      (line) => lines.push(line),
    );
    assert.equal(outcome.rows.length, 1);
    const [row] = outcome.rows;
    assert.ok(row.ours > 0 && row.baseline !== null && row.baseline > 0, JSON.stringify(row));
    assert.equal(row.ratio, row.ours / (row.baseline ?? Number.NaN));
    assert.deepEqual(outcome.samples.ping.ours, [row.ours]);
    assert.equal(evaluateRow(row, outcome.notes.ping), 'info');
    assert.equal(lines.length, 2, 'one log line per side');
  });

  it('the ceiling replays ours\' bytes and headers, and its row comes from the same rounds', async () => {
    const dir = tempDir('smoke-ceiling');
    dirs.push(dir);
    const recorded = await rawGet(`${ours.url}/-/ping`);
    const ceiling = await startCeiling(dir, { '/-/ping': recorded });
    servers.push(ceiling);
    const replayed = await rawGet(`${ceiling.url}/-/ping`);
    assert.equal(replayed.status, recorded.status);
    assert.deepEqual(replayed.body, recorded.body);
    const header = (response: typeof recorded, name: string): string | undefined => response.headers.find(([n]) => n.toLowerCase() === name)?.[1];
    for (const name of ['content-type', 'etag']) assert.equal(header(replayed, name), header(recorded, name), name);
    assert.equal((await rawGet(`${ceiling.url}/elsewhere`)).status, 404);

    const lines: string[] = [];
    const outcome = await throughputRow(
      'ping',
      { stock, ours },
      { stock: ping, ours: ping },
      'info',
      { rounds: 1, durationSec: 1, warmupSec: 0, connections: 4 },
      new Budget(30_000),
      (line) => lines.push(line),
      { rowName: 'ping ÷ ceiling', server: ceiling, endpoint: ping, target: CEILING_TARGET },
    );
    assert.deepEqual(outcome.rows.map((r) => r.name), ['ping', 'ping ÷ ceiling']);
    const [vsStock, vsCeiling] = outcome.rows;
    assert.equal(vsCeiling.ours, vsStock.ours, 'ours is measured once for both rows');
    assert.ok(vsCeiling.baseline !== null && vsCeiling.baseline > 0);
    assert.equal(vsCeiling.ratio, vsCeiling.ours / (vsCeiling.baseline ?? Number.NaN));
    assert.ok(!(outcome.notes['ping ÷ ceiling'] ?? []).some((note) => note.startsWith('ERROR')), outcome.notes['ping ÷ ceiling']?.join('\n'));
    assert.equal(lines.length, 3, 'one log line per side: stock, ours, ceiling');
  });

  it('the ceiling rewrites the recorded origin in its bodies once at load, compressed or not, with a content-length that fits', async () => {
    const dir = tempDir('smoke-ceiling-origin');
    dirs.push(dir);
    const origin = 'http://127.0.0.1:1';
    const document = JSON.stringify({ a: `${origin}/a/-/a-1.0.0.tgz`, b: `${origin}/b/-/b-1.0.0.tgz` });
    const ceiling = await startCeiling(
      dir,
      {
        '/plain': { status: 200, headers: [['Content-Type', 'application/json']], body: Buffer.from(document) },
        '/gzip': { status: 200, headers: [['Content-Type', 'application/json'], ['Content-Encoding', 'gzip']], body: gzipSync(document) },
        '/other': { status: 200, headers: [], body: Buffer.from('no origin here') },
      },
      15000,
      origin,
    );
    servers.push(ceiling);
    const expected = document.split(origin).join(ceiling.url);
    const plain = await rawGet(`${ceiling.url}/plain`);
    assert.equal(plain.body.toString(), expected);
    const gzip = await rawGet(`${ceiling.url}/gzip`);
    assert.equal(gunzipSync(gzip.body).toString(), expected);
    for (const response of [plain, gzip]) {
      assert.equal(response.headers.find(([name]) => name.toLowerCase() === 'content-length')?.[1], String(response.body.length));
    }
    assert.equal((await rawGet(`${ceiling.url}/other`)).body.toString(), 'no origin here');
  });

  it('install rows: stock, ours and the ceiling recorded from ours for that client, in the same rounds', async () => {
    const packages = ['@mycompany/smoke-install-1', '@mycompany/smoke-install-2'];
    const targets = {
      stock: { server: stock, token: await addUser(stock.url, 'smoke-inst', 'smoke-password-1') },
      ours: { server: ours, token: await addUser(ours.url, 'smoke-inst', 'smoke-password-1') },
    };
    for (const side of ['stock', 'ours'] as const) {
      for (const name of packages) await publishRaw(targets[side].server.url, targets[side].token, name, '1.0.0');
    }
    const lines: string[] = [];
    const settings = { ...CLIENT_SETTINGS.quick, installRounds: 1, bunRounds: 1 };
    const outcome = await runInstallBench(targets, packages, settings, new Budget(120_000), (line) => lines.push(line));
    const names = outcome.rows.map((row) => row.name);
    for (const client of ['npm', 'bun']) {
      const base = `${client} install × 2 packages`;
      const ceilingRows = ceilingRowNames(base, ', fresh project + client cache');
      const main = outcome.rows.find((row) => row.name === `${base} (fresh project + client cache, anonymous)`);
      const physics = outcome.rows.find((row) => row.name === ceilingRows.ceilingStock);
      const left = outcome.rows.find((row) => row.name === ceilingRows.oursCeiling);
      assert.ok(main && physics && left, names.join('\n'));
      assert.equal(main.target, '≤ 0.9× stock time');
      assert.ok((outcome.notes[main.name] ?? []).some((note) => /^CPU per install .*server — stock \d+, ours \d+, ceiling \d+; client .* — stock \d+/.test(note)), outcome.notes[main.name]?.join('; '));
      for (const row of [main, physics, left]) {
        const notes = outcome.notes[row.name] ?? [];
        assert.ok(!notes.some((note) => note.startsWith('ERROR')), `${row.name}: ${notes.join('; ')}`);
        assert.ok(Number.isFinite(row.ours) && row.baseline !== null && Number.isFinite(row.baseline), `${row.name}: both figures`);
      }
      // the same rounds: the ceiling row's ceiling is the physics row's, ours and stock the main row's
      assert.equal(physics.baseline, main.baseline);
      assert.equal(left.ours, main.ours);
      assert.equal(left.baseline, physics.ours);
      assert.equal(evaluateRow(physics, outcome.notes[physics.name]), 'info');
      // what was recorded: that client's own GETs, one packument and one tarball per package
      assert.ok((outcome.notes[physics.name] ?? []).some((note) => note.includes(`${client}'s 4 GETs`) && note.includes('2 packuments, 2 tarballs')), outcome.notes[physics.name]?.join('; '));
      assert.equal(lines.filter((line) => line.startsWith(`  ${base}`) && line.endsWith(' ms') && line.includes(' ceiling: ')).length, 1);
    }
  });

  it('first read after a publish: one row, a sample per pair, the new version already listed', async () => {
    const targets = {
      stock: { server: stock, token: await addUser(stock.url, 'smoke', 'smoke-password-1') },
      ours: { server: ours, token: await addUser(ours.url, 'smoke', 'smoke-password-1') },
    };
    const outcome = await runFirstReadBench(targets, { pairs: 2 }, new Budget(60_000), () => undefined);
    assert.deepEqual(outcome.rows.map((r) => r.name), [READ_ROWS.firstRead]);
    const notes = outcome.notes[READ_ROWS.firstRead] ?? [];
    assert.ok(!notes.some((note) => note.startsWith('ERROR')), notes.join('\n'));
    assert.equal(outcome.samples[READ_ROWS.firstRead].stock.length, 2);
    assert.equal(outcome.samples[READ_ROWS.firstRead].ours.length, 2);
    assert.equal(outcome.rows[0].target, '≤ 1.0× stock time');
  });

  it('npm publish row against stock JWT mode, and the AES info row beside it', async () => {
    const dir = tempDir('smoke-stock-aes');
    dirs.push(dir);
    const aes = await startStock(dir);
    servers.push(aes);
    const targets = {
      stock: { server: stock, token: await addUser(stock.url, 'smoke-pub', 'smoke-password-1') },
      ours: { server: ours, token: await addUser(ours.url, 'smoke-pub', 'smoke-password-1') },
    };
    const aesTarget = { server: aes, token: await addUser(aes.url, 'smoke-pub', 'smoke-password-1') };
    const settings = { publishRounds: 1, installRounds: 1, bunRounds: 1, publishCount: 1 };
    const outcome = await runPublishBench(targets, settings, new Budget(120_000), () => undefined, aesTarget);
    const [jwtRow, aesRow] = outcome.rows;
    assert.equal(outcome.rows.length, 2);
    assert.match(jwtRow.name, /npm publish × 1 packages \(vs stock JWT mode/);
    assert.equal(jwtRow.target, '≤ 1.0× stock time');
    assert.match(aesRow.name, /info: vs stock default AES mode/);
    assert.equal(evaluateRow(aesRow, outcome.notes[aesRow.name]), 'info');
    for (const row of outcome.rows) {
      const notes = outcome.notes[row.name] ?? [];
      assert.ok(!notes.some((note) => note.startsWith('ERROR')), `${row.name}: ${notes.join('; ')}`);
    }
    assert.deepEqual(outcome.samples[aesRow.name].ours, outcome.samples[jwtRow.name].ours, 'ours: the same runs in both rows');
    assert.ok((outcome.notes[jwtRow.name] ?? []).some((note) => note.startsWith('server CPU per publish')));
  });

  it('each side gets its own compile cache, filled by its start (the same treatment for both)', async () => {
    for (const kind of ['stock-jwt', 'ours'] as const) {
      const dir = tempDir(`smoke-cache-${kind}`);
      dirs.push(dir);
      assert.equal(existsSync(compileCacheDirOf(dir)), false);
      const server = await startServer(kind, dir);
      const rss = rssMiB(server.child.pid);
      await server.stop();
      assert.ok(rss !== null && rss > 0, `${kind}: VmRSS readable`);
      assert.ok(readdirSync(compileCacheDirOf(dir), { recursive: true }).length > 0, `${kind}: compile cache written`);
    }
  });

  it('cold start rows: first start and restart, each with CPU and RSS at ready, both sides', async () => {
    const outcome = await runStartupBench({ rounds: 1 }, new Budget(120_000), () => undefined);
    const names = outcome.rows.map((r) => r.name);
    for (const name of [COLD_START_ROWS.fresh, COLD_START_ROWS.restart]) assert.ok(names.includes(name), name);
    assert.equal(names.filter((name) => name.startsWith('RSS at ready')).length, 2);
    assert.equal(names.filter((name) => name.startsWith('cold start CPU to ready')).length, 2);
    for (const row of outcome.rows) {
      const notes = outcome.notes[row.name] ?? [];
      assert.ok(!notes.some((note) => note.startsWith('ERROR')), `${row.name}: ${notes.join('; ')}`);
      assert.ok(Number.isFinite(row.ours) && row.baseline !== null && Number.isFinite(row.baseline), `${row.name}: both figures`);
    }
    const target = (name: string): string | undefined => outcome.rows.find((r) => r.name === name)?.target;
    assert.equal(target(COLD_START_ROWS.restart), '≤ 1.0× stock time');
    assert.equal(target(COLD_START_ROWS.fresh), '≤ 1.1× stock time');
  });
});

describe('bench config rows (in process)', { timeout: 60_000 }, () => {
  it('getConfig, its idle CPU, the real write path vs a bare locked write, and the info rows', async () => {
    const rows = await runConfigBench({ quick: true });
    const byName = new Map(rows.map((row) => [row.name, row]));
    for (const name of Object.values(CONFIG_ROWS)) assert.ok(byName.has(name), `missing row: ${name}`);
    const real = byName.get(CONFIG_ROWS.realWrite);
    assert.ok(real && real.baseline !== null && real.baseline > 0 && real.ours > 0, JSON.stringify(real));
    assert.equal(real?.target, '≤ 2× bare locked write');
    assert.ok(Number.isFinite(byName.get(CONFIG_ROWS.idleCpu)?.ours), 'idle CPU is a number');
    assert.equal(evaluateRow(byName.get(CONFIG_ROWS.setByteUnlocked) ?? real), 'info');
  });
});

describe('bench scale rows (tiny sizes, real stock and ours)', { timeout: 300_000 }, () => {
  it('every scale row exists with its figures, the curves have a point per block, and the chart draws them', async () => {
    const tiny: ScaleSettings = {
      checkpoints: [2, 4],
      packages: 6,
      batch: 3,
      concurrency: 2,
      restartRounds: 1,
      gets: 2,
      rebuildRuns: 1,
      burst: { publishes: 2, megabytes: 0.05, rounds: 1 },
      label: 'smoke sizes',
    };
    const outcome = await runScaleBench(tiny, () => undefined);
    const byName = new Map(outcome.rows.map((row) => [row.name, row]));
    const withStock = [
      ...tiny.checkpoints.flatMap((n) => [SCALE_ROWS.publishAt(n), SCALE_ROWS.sizeAt(n), SCALE_ROWS.getAt(n)]),
      SCALE_ROWS.publishGrowth(4, 2),
      SCALE_ROWS.bulkRate(6, 2),
      SCALE_ROWS.cpuPerPublish(6),
      SCALE_ROWS.restartAt(6),
      SCALE_ROWS.restartGrowth(6),
      SCALE_ROWS.rssAfterRestart(6),
      SCALE_ROWS.search(6),
      SCALE_ROWS.burstWall(2, 0.05),
      SCALE_ROWS.burstRss(2, 0.05),
    ];
    const oursOnly = [SCALE_ROWS.dashboardList(6), SCALE_ROWS.indexOpen(6), SCALE_ROWS.rebuild(6)];
    assert.deepEqual([...byName.keys()].sort(), [...withStock, ...oursOnly].sort());
    for (const row of outcome.rows) {
      const notes = outcome.notes[row.name] ?? [];
      assert.ok(!notes.some((note) => note.startsWith('ERROR')), `${row.name}: ${notes.join('; ')}`);
      assert.ok(Number.isFinite(row.ours), `${row.name}: ours is a number`);
    }
    for (const name of withStock) {
      const row = byName.get(name);
      assert.ok(row && row.baseline !== null && Number.isFinite(row.baseline), `${name}: a baseline`);
    }
    for (const name of oursOnly) assert.equal(byName.get(name)?.baseline, null, `${name}: ours only`);
    // The targets of issues 17 and 18 are on the rows that carry them.
    assert.equal(byName.get(SCALE_ROWS.dashboardList(6))?.target, '≤ 50 ms');
    assert.equal(byName.get(SCALE_ROWS.burstRss(2, 0.05))?.target, '≤ 1.0× stock RSS');
    assert.equal(byName.get(SCALE_ROWS.bulkRate(6, 2))?.target, '≥ 1.0× stock rate');
    assert.match(byName.get(SCALE_ROWS.publishGrowth(4, 2))?.target ?? '', /≤ 2×/);
    // Ours' growth row compares ours with itself: its baseline is ours at the first checkpoint.
    assert.equal(byName.get(SCALE_ROWS.publishGrowth(4, 2))?.baseline, byName.get(SCALE_ROWS.publishAt(2))?.ours);
    const curves = outcome.curves ?? [];
    assert.deepEqual(curves.map((c) => c.name), [SCALE_CURVES.publish, SCALE_CURVES.get]);
    assert.deepEqual(curves[0].x, [1, 2, 3, 4]);
    assert.deepEqual(curves[1].x, [2, 4]);
    for (const c of curves) assert.ok([...c.stock, ...c.ours].every((v) => Number.isFinite(v) && v > 0), c.name);
    const svg = renderChart({ title: 'scale smoke', rows: outcome.rows, notes: outcome.notes, curves });
    assert.equal(svg.match(/<rect class="bar /g)?.length, withStock.length);
    assert.equal(svg.match(/<polyline class="curve /g)?.length, 4);
  });
});

describe('bench upstream rows (tiny sizes, a real stock upstream, real stock and ours proxying it)', { timeout: 300_000 }, () => {
  it('the tree has three tiers, each package depending only on the tier below', () => {
    const tree = upstreamTree(3);
    assert.equal(tree.length, 9);
    const names = new Set(tree.map((pkg) => pkg.name));
    for (const pkg of tree) for (const dep of Object.keys(pkg.dependencies)) assert.ok(names.has(dep), `${pkg.name} → ${dep}`);
    assert.deepEqual(tree.filter((pkg) => pkg.name.includes('-leaf-')).map((pkg) => Object.keys(pkg.dependencies).length), [0, 0, 0]);
    // Quick and full say their size in every row name, and full proxies at least 30 packages (issue 12).
    assert.ok(UPSTREAM_SETTINGS.full.tier * 3 >= 30);
    assert.ok(Object.values(upstreamRows(UPSTREAM_SETTINGS.quick)).every((name) => name.includes('quick')));
    assert.ok(Object.values(upstreamRows(UPSTREAM_SETTINGS.full)).every((name) => !name.includes('quick') && name.includes('30 packages')));
  });

  it('the counting relay forwards to the upstream and counts every request', async () => {
    const dir = tempDir('smoke-relay');
    const upstream = await startServer('stock-jwt', dir);
    const relay = await startRelay(upstream.url);
    try {
      for (let i = 0; i < 3; i += 1) assert.equal((await fetch(`${relay.url}/-/ping`)).status, 200);
      assert.equal((await fetch(`${relay.url}/no-such-package-here`)).status, 404);
      assert.equal(relay.count(), 4);
    } finally {
      await relay.close();
      await upstream.stop();
      removeDir(dir);
    }
  });

  it('every upstream row exists with both figures, cold fills reach the upstream through the relay', async () => {
    const tiny: UpstreamSettings = {
      tier: 2,
      npmRounds: 1,
      bunRounds: 1,
      requests: 40,
      concurrency: 8,
      concurrencyRounds: 1,
      http: { rounds: 1, durationSec: 0.3, warmupSec: 0, connections: 2 },
      label: 'smoke: 6 packages',
    };
    const outcome = await runUpstreamBench(tiny, new Budget(240_000), () => undefined);
    const rows = upstreamRows(tiny);
    assert.deepEqual(outcome.rows.map((row) => row.name).sort(), Object.values(rows).sort());
    for (const row of outcome.rows) {
      const notes = outcome.notes[row.name] ?? [];
      assert.ok(!notes.some((note) => note.startsWith('ERROR')), `${row.name}: ${notes.join('; ')}`);
      assert.ok(Number.isFinite(row.ours) && row.baseline !== null && Number.isFinite(row.baseline), `${row.name}: both figures`);
    }
    const byName = new Map(outcome.rows.map((row) => [row.name, row]));
    for (const name of [rows.npmCold, rows.npmWarm, rows.bunCold, rows.bunWarm]) assert.equal(byName.get(name)?.target, '≤ 0.9× stock time');
    assert.equal(byName.get(rows.packument)?.target, '≥ 3× stock req/s');
    assert.equal(byName.get(rows.perThousand)?.target, 'info');
    assert.equal(byName.get(rows.perPackage)?.target, '≤ 1 requests');
    // A cold server has nothing: both sides fetched from the upstream (counted at their relay).
    assert.ok((byName.get(rows.perThousand)?.ours ?? 0) > 0 && (byName.get(rows.perThousand)?.baseline ?? 0) > 0);
    const coldNote = (outcome.notes[rows.npmCold] ?? []).find((note) => note.startsWith('upstream requests per install'));
    assert.ok(coldNote && !/stock 0,|ours 0$/.test(coldNote), coldNote);
  });
});
