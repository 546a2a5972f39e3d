/**
 * Issue 15.7 in the terminal client (pure parts: model, render, protocol): the package cursor and
 * the package detail screen (`]` / `o`), the activity line from the pushed document, one line per
 * publish in the event log. The same documents from a real registry are checked in
 * test/dashboard/life.test.ts (the client speaks HTTP/WebSocket only).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { applyActivity, applyEvent, applyPackageDetail, applyPackages, createState, formatEvent, handleKey, type ClientState, type KeyPress } from '../../terminal/model';
import { parseServerMessage, type ActivityView, type PackageDetail, type PackageInfo } from '../../terminal/protocol';
import { activitySummary, lineText, renderScreen } from '../../terminal/render';
import { renderSnapshot, snapshotJson } from '../../terminal/snapshot';
import { serverConfig } from './fixtures';

const k = (full: string): KeyPress => ({ full, ...(full.length === 1 ? { ch: full } : {}) });

function fresh(): ClientState {
  return createState({ registry: 'http://127.0.0.1:1', readonly: false, tokenSource: null, config: serverConfig() });
}

const pkg = (name: string): PackageInfo => ({ name, versions: ['1.0.0'], distTags: { latest: '1.0.0' }, time: '2026-12-02T08:00:00.000Z', source: 'local' });

const DETAIL: PackageDetail = {
  name: 'b-pkg',
  source: 'local',
  description: 'the second package',
  license: 'MIT',
  distTags: { latest: '2.0.0', stable: '1.0.0' },
  shown: '2.0.0',
  maintainers: [{ name: 'alice' }],
  versions: [
    { version: '2.0.0', time: '2026-12-02T08:01:00.000Z', publisher: 'alice', integrity: 'sha512-AAAA', tarballBytes: 2048, unpackedSize: 4096, tags: ['latest'] },
    { version: '1.0.0', time: '2026-12-01T08:00:00.000Z', publisher: 'bob', integrity: 'sha512-BBBB', tarballBytes: 1000, unpackedSize: null, tags: ['stable'], deprecated: 'old' },
  ],
  dependencies: { dependencies: { 'a-pkg': '^1.0.0' }, peerDependencies: {} },
};

const screen = (state: ClientState, width = 100, height = 40): string => renderScreen(state, { width, height }).map(lineText).join('\n');

test('15.7 terminal: ] picks a package, o opens its detail (versions, tags, publisher, size, integrity, dependencies), any key closes', () => {
  const state = fresh();
  applyPackages(state, [pkg('a-pkg'), pkg('b-pkg'), pkg('c-pkg')]);
  assert.match(screen(state), /^> a-pkg/m);
  assert.deepEqual(handleKey(state, k(']')), []);
  assert.match(screen(state), /^> b-pkg/m);
  const effects = handleKey(state, k('o'));
  assert.deepEqual(effects, [{ type: 'open-package', name: 'b-pkg' }], 'the client fetches GET /_dashboard/api/package?name=b-pkg');
  assert.match(screen(state), /b-pkg[\s\S]*loading…/);

  applyPackageDetail(state, 'other', DETAIL, null);
  assert.match(screen(state), /loading…/, 'an answer for another package is ignored');
  applyPackageDetail(state, 'b-pkg', DETAIL, null);
  const detail = screen(state);
  for (const expected of [/b-pkg  local  showing 2\.0\.0/, /publisher\s+alice/, /maintainers\s+alice/, /size\s+2\.0 KiB tarball, 4\.0 KiB unpacked/, /integrity\s+sha512-AAAA/, /dist-tags\s+latest: 2\.0\.0  stable: 1\.0\.0/, /dependencies a-pkg \^1\.0\.0/, /versions \(2, newest first\)/, /1\.0\.0 .* bob .* stable deprecated/]) {
    assert.match(detail, expected);
  }
  assert.ok(renderScreen(state, { width: 60, height: 12 }).every((line) => lineText(line).length <= 60), 'cut to the width');

  handleKey(state, k('x'));
  assert.equal(state.input.kind, 'normal');
  // the list changes under the cursor: it stays on its package
  applyPackages(state, [pkg('0-first'), pkg('a-pkg'), pkg('b-pkg')]);
  assert.equal(state.packages[state.packageCursor].name, 'b-pkg');
  applyPackages(state, [pkg('a-pkg')]);
  assert.equal(state.packageCursor, 0);
  handleKey(state, k('o'));
  applyPackageDetail(state, 'a-pkg', null, '/_dashboard/api/package?name=a-pkg answered 403: user bob may not read a-pkg');
  assert.match(screen(state), /answered 403/);
});

test('15.7 terminal: o with no packages says so and opens nothing', () => {
  const state = fresh();
  assert.deepEqual(handleKey(state, k('o')), []);
  assert.equal(state.input.kind, 'normal');
  assert.match(screen(state), /no package to open/);
});

test('15.7 terminal: the activity line sums the last hour from the pushed document', () => {
  const buckets = Array.from({ length: 60 }, (_, i) => ({ start: new Date(Date.UTC(2026, 11, 2, 7, i)).toISOString(), publishes: i === 59 ? 1 : 0, downloads: i % 30 === 0 ? 2 : 0, requests: 3 }));
  const frame = JSON.stringify({ type: 'activity', bucketSeconds: 60, now: '2026-12-02T07:59:30.000Z', buckets, totals: { publishes: 1, downloads: 4, requests: 180 }, storage: { localBytes: 9216, cachedBytes: 0, files: 10, measuredAt: 'x', tookMs: 1 } });
  const message = parseServerMessage(frame);
  assert.equal(message.type, 'activity');
  const state = fresh();
  assert.match(screen(state), /activity\s+waiting for the counts…/);
  applyActivity(state, (message as { activity: ActivityView }).activity);
  assert.equal(activitySummary(state.activity), '180 req | 4 dl | 1 pub in 60 min (this minute 3/0/1) | storage 9.0 KiB + 0 B cached');
  assert.match(screen(state), /activity\s+180 req \| 4 dl \| 1 pub/);
  assert.throws(() => parseServerMessage(JSON.stringify({ type: 'activity', buckets: 'no' })), /invalid activity/);
  // --once: the same line in the plain snapshot, and the document in --json
  const activity = (message as { activity: ActivityView }).activity;
  const snapshot = renderSnapshot({ registry: 'http://127.0.0.1:1', config: serverConfig(), packages: [], activity });
  assert.match(snapshot, /^activity {6}180 req \| 4 dl \| 1 pub in 60 min/m);
  assert.match(renderSnapshot({ registry: 'http://127.0.0.1:1', config: serverConfig(), packages: [], activity: { error: 'HTTP 404' } }), /^activity {6}not available \(HTTP 404\)$/m);
  assert.equal((JSON.parse(snapshotJson({ registry: 'x', config: serverConfig(), packages: [], activity })) as { activity: ActivityView }).activity.totals.requests, 180);
});

test('15.7 terminal: a publish is one event line, its dist-tags on it', () => {
  const state = fresh();
  const effects = applyEvent(state, { type: 'event', kind: 'publish', time: 1, name: 'p', version: '1.0.0', user: 'alice', tags: ['latest'] }, 1);
  assert.deepEqual(effects, [{ type: 'refresh-packages' }]);
  assert.deepEqual(state.log.map((entry) => entry.text), ['publish p@1.0.0 (latest) by alice']);
  assert.equal(formatEvent({ type: 'event', kind: 'dist-tag', name: 'p', version: '0.9.0', detail: 'stable' }), 'dist-tag p@0.9.0 stable');
});
