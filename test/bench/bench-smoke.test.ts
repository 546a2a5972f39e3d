/**
 * Smoke test of `npm run bench`: the pure table / ratio / target logic, the CPU-profile ranking,
 * the argument parser, and one cheap workload (ping throughput, 1 round of 1 s) against a real
 * stock Verdaccio and a real ours. No timing is asserted — only that figures exist and add up.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { cannon, throughputRow, type Endpoint } from '../../scripts/bench/http-bench';
import { parseArgs } from '../../scripts/bench/main';
import { ownerOf, summarizeProfile } from '../../scripts/bench/profile';
import { evaluateRow, formatNumber, formatTable, makeRow, median, parseTarget, ratioOf, summarize } from '../../scripts/bench/report';
import { Budget, interleave, makeTarball, removeDir, startOurs, startStock, tempDir, type BenchServer } from '../../scripts/bench/stock';
import { gunzipSync } from 'node:zlib';

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
    assert.ok(quick.budgetMs <= 120_000);
    assert.ok(parseArgs([]).budgetMs <= 600_000);
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

describe('bench against real servers (1 round of ping throughput)', { timeout: 90_000 }, () => {
  const dirs: string[] = [];
  const servers: BenchServer[] = [];
  let stock: BenchServer;
  let ours: BenchServer;

  before(async () => {
    dirs.push(tempDir('smoke-stock'), tempDir('smoke-ours'));
    stock = await startStock(dirs[0]);
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
    const ping: Endpoint = { name: 'ping', path: '/-/ping', check: (status) => (status === 200 ? null : `status ${status}`) };
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
});
