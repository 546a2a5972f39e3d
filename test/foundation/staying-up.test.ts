/**
 * Issue 11, "Beyond the list": a deployment keeps the registry running through crashes and
 * reboots with the systemd unit in templates/registry.service. There is no systemd PID 1 here, so
 * what can be tested is: the unit verifies with `systemd-analyze verify` (when installed), it says
 * what the README promises (restart on failure, hardening, only the state folder writable, the
 * pinned Node), and its ExecStart — placeholders filled in as the README says — starts a registry
 * in its WorkingDirectory, and starts it again on the same state after the process was killed
 * (what systemd's Restart=on-failure does).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { NODE_BIN, PROJECT_ROOT, addUser, cleanEnv } from '../harness/registry';
import { renderTemplate } from '../harness/templates';

const TEMPLATE = join(PROJECT_ROOT, 'templates', 'registry.service');

/** The README's substitution: every {{NAME}} replaced, nothing left over. */
function renderUnit(values: Record<string, string>): string {
  return renderTemplate(TEMPLATE, values);
}

/** `[Section] Key=value` lines (comments and blank lines skipped); repeated keys keep every value. */
function parseUnit(text: string): Map<string, string[]> {
  const entries = new Map<string, string[]>();
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(\w+)\]$/.exec(line);
    if (header) {
      section = header[1];
      continue;
    }
    const eq = line.indexOf('=');
    assert.ok(eq > 0, `not a Key=value line: ${line}`);
    const key = `${section}.${line.slice(0, eq)}`;
    entries.set(key, [...(entries.get(key) ?? []), line.slice(eq + 1)]);
  }
  return entries;
}

function one(unit: Map<string, string[]>, key: string): string {
  const values = unit.get(key);
  assert.ok(values && values.length === 1, `${key}: expected one value, got ${JSON.stringify(values)}`);
  return values[0];
}

const systemdAnalyze = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
const noSystemdAnalyze = systemdAnalyze.error || systemdAnalyze.status !== 0 ? 'systemd-analyze is not installed (Debian package `systemd`)' : null;
if (noSystemdAnalyze) console.log(`# staying-up: unit verification skipped: ${noSystemdAnalyze}`);

describe('staying up: the systemd unit in templates/', () => {
  const stateDir = mkdtempSync(join(tmpdir(), 'registry-unit-'));
  const values = { APP_DIR: PROJECT_ROOT, NODE: NODE_BIN, STATE_DIR: stateDir, USER: userInfo().username, LISTEN: '127.0.0.1:0' };
  const unitText = renderUnit(values);
  const unit = parseUnit(unitText);
  const children: ChildProcess[] = [];

  after(() => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    rmSync(stateDir, { recursive: true, force: true });
  });

  it('staying up: systemd-analyze verify accepts the unit (placeholders filled in)', { skip: noSystemdAnalyze ?? false }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'registry-unit-file-'));
    try {
      const file = join(dir, 'mycompany-registry.service');
      writeFileSync(file, unitText);
      const result = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8' });
      const ours = `${result.stdout}${result.stderr}`
        .split('\n')
        .filter((line) => line.includes('mycompany-registry.service'));
      assert.equal(result.status, 0, `systemd-analyze verify failed:\n${result.stdout}${result.stderr}`);
      assert.deepEqual(ours, [], 'no warning about our unit');
      // the check is real: a broken ExecStart is refused
      writeFileSync(file, unitText.replace(/^ExecStart=\S+/m, 'ExecStart=/nonexistent/node'));
      const broken = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8' });
      assert.notEqual(broken.status, 0, 'verify refuses a unit whose ExecStart does not exist');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('staying up: the unit restarts on failure, is hardened, may write only the state folder, runs the pinned Node', () => {
    assert.equal(one(unit, 'Service.Restart'), 'on-failure');
    assert.equal(one(unit, 'Service.NoNewPrivileges'), 'yes');
    assert.equal(one(unit, 'Service.ProtectSystem'), 'strict');
    assert.equal(one(unit, 'Service.PrivateTmp'), 'yes');
    assert.equal(one(unit, 'Service.ReadWritePaths'), stateDir);
    assert.equal(one(unit, 'Service.WorkingDirectory'), stateDir);
    assert.equal(one(unit, 'Service.CapabilityBoundingSet'), '');
    assert.ok(!unit.has('Service.MemoryDenyWriteExecute'), 'V8 needs W+X memory');
    assert.equal(one(unit, 'Install.WantedBy'), 'multi-user.target');
    const exec = one(unit, 'Service.ExecStart').split(' ');
    assert.equal(exec[0], NODE_BIN, 'ExecStart runs the pinned Node');
    const pinned = (JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> }).dependencies.node;
    const version = spawnSync(exec[0], ['--version'], { encoding: 'utf8' }).stdout.trim();
    assert.equal(version, `v${pinned}`, 'the Node ExecStart names is the version package.json pins');
  });

  /** Runs ExecStart as systemd would: WorkingDirectory, Environment=, no shell. */
  function startFromUnit(): { child: ChildProcess; output: () => string; url: Promise<string> } {
    const [command, ...args] = one(unit, 'Service.ExecStart').split(' ');
    const env: Record<string, string> = {};
    for (const assignment of unit.get('Service.Environment') ?? []) {
      const eq = assignment.indexOf('=');
      env[assignment.slice(0, eq)] = assignment.slice(eq + 1);
    }
    const child = spawn(command, args, { cwd: one(unit, 'Service.WorkingDirectory'), env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let output = '';
    child.stdout?.setEncoding('utf8').on('data', (part: string) => (output += part));
    child.stderr?.setEncoding('utf8').on('data', (part: string) => (output += part));
    const url = new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no "listening" line within 30 s:\n${output}`)), 30_000);
      const onData = (): void => {
        const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
        if (match) {
          clearTimeout(timer);
          resolve(match[1]);
        }
      };
      child.stdout?.on('data', onData);
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`exited (${code ?? signal}) before listening:\n${output}`));
      });
    });
    return { child, output: () => output, url };
  }

  async function ping(url: string): Promise<number> {
    for (let i = 0; i < 100; i += 1) {
      try {
        return (await fetch(`${url}/-/ping`)).status;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    throw new Error(`${url}/-/ping never answered`);
  }

  it("staying up: the unit's ExecStart starts the registry in its state folder, and again on the same state after a kill -9", async () => {
    const first = startFromUnit();
    const url = await first.url;
    assert.equal(await ping(url), 200, first.output());
    // everything the registry writes is inside ReadWritePaths
    for (const part of ['config.yaml', 'registry.lockb', 'storage', 'keys']) assert.ok(existsSync(join(stateDir, part)), `${part} in the state folder`);
    const token = await addUser({ url }, 'unit-alice', 'unit-password-1');

    // a crash: systemd (Restart=on-failure) runs the same ExecStart again
    first.child.kill('SIGKILL');
    await new Promise((resolve) => first.child.once('exit', resolve));
    assert.equal(first.child.signalCode, 'SIGKILL');
    const second = startFromUnit();
    const again = await second.url;
    assert.equal(await ping(again), 200, second.output());
    const whoami = await fetch(`${again}/-/whoami`, { headers: { authorization: `Bearer ${token}` } });
    assert.deepEqual(await whoami.json(), { username: 'unit-alice' }, 'same state, same keys: the token from before the crash still works');

    // a stop (SIGTERM) is a clean exit for systemd, not a failure to restart from
    second.child.kill('SIGTERM');
    const [code, signal] = (await new Promise((resolve) => second.child.once('exit', (c, s) => resolve([c, s])))) as [number | null, string | null];
    assert.ok(code === 0 || signal === 'SIGTERM', `SIGTERM ends it cleanly (code ${code}, signal ${signal})`);
  });
});
