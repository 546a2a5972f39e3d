/**
 * Issue 15.5, backups: `registry backup` during a stream of real publishes, `registry restore`
 * into an empty folder, a registry started on it; tampered archives refused with nothing
 * changed; `registry doctor` on a healthy and on a broken folder. Real registry (harness), real
 * npm, real files, the real `registry` bin.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tar from 'tar';
import { NODE_BIN, PROJECT_ROOT, addUser, cleanEnv, createClientDir, run, startRegistry, writePackage, type RunningRegistry } from '../harness/registry';
import { getJson, publishRaw, sha512Base64 } from '../storage/lib/packages';

const BIN = join(PROJECT_ROOT, 'bin', 'registry.js');
const ENV = cleanEnv({ REGISTRY_UPSTREAM_URL: 'off' });

function registryCli(args: string[], cwd: string) {
  return run(NODE_BIN, [BIN, ...args], { cwd, env: ENV, timeoutMs: 120_000 });
}

/** path → sha512 of every file below dir (what "unchanged" means). */
function treeDigest(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (current: string): void => {
    for (const entry of readdirSync(current, { withFileTypes: true })) {
      const full = join(current, entry.name);
      if (entry.isDirectory()) walk(full);
      else out.set(relative(dir, full), createHash('sha512').update(readFileSync(full)).digest('hex'));
    }
  };
  if (existsSync(dir)) walk(dir);
  return out;
}

interface Ack {
  name: string;
  version: string;
  integrity: string;
  at: number;
}

describe('15.5 backup and restore', () => {
  let source: RunningRegistry;
  let restored: RunningRegistry | undefined;
  let token: string;
  let backupFile: string;
  const work = mkdtempSync(join(tmpdir(), 'registry-backup-test-'));
  const acks: Ack[] = [];
  let backupStarted = 0;
  let backupEnded = 0;

  before(async () => {
    source = await startRegistry();
    token = await addUser(source, 'alice', 'correct-horse-battery');
  });

  after(async () => {
    await restored?.stop();
    await source?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it('15.5 backup during a stream of publishes (raw PUT and npm publish), restore into an empty folder, every acknowledged version is there and installs', async () => {
    // a package published with the real npm before anything else
    const client = createClientDir(source, { token });
    const pkgDir = writePackage(client.dir, { name: '@mycompany/by-npm', version: '1.0.0' });
    const published = await client.npm(['publish'], { cwd: pkgDir });
    assert.equal(published.code, 0, published.stderr);
    const npmDoc = await getJson(`${source.url}/@mycompany%2fby-npm`);
    const npmVersions = (npmDoc.json.versions ?? {}) as Record<string, { dist: { integrity: string } }>;
    acks.push({ name: '@mycompany/by-npm', version: '1.0.0', integrity: npmVersions['1.0.0'].dist.integrity, at: Date.now() });

    // a stream of raw publishes across four packages, running until the backup has finished
    let stop = false;
    const names = ['stream-a', '@mycompany/stream-b', 'stream-c', '@team/stream-d'];
    const stream = (async () => {
      for (let i = 0; i < 400 && !stop; i++) {
        const name = names[i % names.length];
        const version = `1.0.${Math.floor(i / names.length)}`;
        const result = await publishRaw(source.url, token, name, version);
        assert.equal(result.status, 201, `${name}@${version}: ${result.status} ${result.text}`);
        acks.push({ name, version, integrity: `sha512-${sha512Base64(result.tarball)}`, at: Date.now() });
      }
    })();
    // let the stream get going, so there is something before the backup and something during it
    for (let i = 0; i < 200 && acks.length < 12; i++) await new Promise((r) => setTimeout(r, 25));

    backupFile = join(work, 'registry-backup.tar.gz');
    backupStarted = Date.now();
    const ackedBefore = acks.filter((ack) => ack.at <= backupStarted).map((ack) => ({ ...ack }));
    const backup = await registryCli(['backup', backupFile], source.dir);
    backupEnded = Date.now();
    stop = true;
    await stream;
    assert.equal(backup.code, 0, `${backup.stdout}\n${backup.stderr}`);
    assert.match(backup.stderr, /backup: packages \d+\/\d+/, 'progress on stderr');
    assert.match(backup.stderr, /verifying the snapshot/);
    assert.match(backup.stdout, /wrote .*registry-backup\.tar\.gz/);
    const during = acks.filter((ack) => ack.at > backupStarted && ack.at <= backupEnded).length;
    assert.ok(during > 0, 'publishes were acknowledged while the backup ran (else this test proves nothing about consistency)');

    // restore into an empty folder
    const target = join(work, 'restored');
    const restore = await registryCli(['restore', backupFile, '--into', target], work);
    assert.equal(restore.code, 0, `${restore.stdout}\n${restore.stderr}`);
    assert.match(restore.stderr, /sha512 verified for \d+ files/);
    assert.match(restore.stderr, /every tarball matches its dist.integrity/);
    for (const item of ['storage', 'registry.lockb', 'keys', 'signing-keys', 'htpasswd', 'htpasswd.first-user', 'audit.log', 'config.yaml']) {
      assert.ok(existsSync(join(target, item)), `${item} restored`);
    }
    assert.equal(readdirSync(target).filter((name) => name.startsWith('.tmp-')).length, 0, 'no staging folder left');

    // doctor passes on the restored folder
    const doctor = await registryCli(['doctor'], target);
    assert.equal(doctor.code, 0, doctor.stdout + doctor.stderr);
    assert.match(doctor.stdout, /PASS\s+storage\s+every version has its tarball/);

    // a registry on the restored folder: every version acknowledged before the backup began is there
    restored = await startRegistry({ dir: target });
    assert.doesNotMatch(restored.logs(), /rebuilt the index/, 'the restored index describes the restored storage exactly');
    const byName = new Map<string, Ack[]>();
    for (const ack of acks) byName.set(ack.name, [...(byName.get(ack.name) ?? []), ack]);
    for (const [name, list] of byName) {
      const doc = await getJson(`${restored.url}/${name.replace('/', '%2f')}`);
      const versions = (doc.json.versions ?? {}) as Record<string, { dist: { integrity: string; tarball: string } }>;
      for (const ack of ackedBefore.filter((a) => a.name === name)) {
        assert.ok(versions[ack.version], `${name}@${ack.version} was acknowledged before the backup started and must be in it`);
      }
      for (const [version, meta] of Object.entries(versions)) {
        const acked = list.find((a) => a.version === version);
        assert.ok(acked, `${name}@${version} in the restore was acknowledged`);
        assert.equal(meta.dist.integrity, acked.integrity, `${name}@${version}: integrity as published`);
        const response = await fetch(meta.dist.tarball);
        assert.equal(response.status, 200, `${name}@${version} tarball`);
        const bytes = Buffer.from(await response.arrayBuffer());
        assert.equal(`sha512-${sha512Base64(bytes)}`, acked.integrity, `${name}@${version}: tarball bytes verify`);
      }
    }

    // the old token still works (keys + token store restored) and real npm installs from it
    const installer = createClientDir(restored, { token });
    const project = join(installer.dir, 'project');
    mkdirSync(project);
    writeFileSync(join(project, 'package.json'), '{"name":"consumer","version":"1.0.0","private":true}\n');
    const lastA = ackedBefore.filter((a) => a.name === 'stream-a').at(-1);
    assert.ok(lastA, 'stream-a had a version before the backup');
    const install = await installer.npm(['install', '@mycompany/by-npm@1.0.0', `stream-a@${lastA.version}`], { cwd: project });
    assert.equal(install.code, 0, install.stderr);
    const installed = JSON.parse(readFileSync(join(project, 'node_modules', 'stream-a', 'package.json'), 'utf8')) as { version: string };
    assert.equal(installed.version, lastA.version);
    const whoami = await installer.npm(['whoami']);
    assert.equal(whoami.stdout.trim(), 'alice', `the old token is valid on the restored registry: ${whoami.stderr}`);
  });

  it('15.5 a tampered backup is refused and the target folder stays unchanged', async () => {
    assert.ok(backupFile, 'needs the backup of the previous test');
    const target = join(work, 'victim');
    mkdirSync(target);
    writeFileSync(join(target, 'config.yaml'), 'storage: ./storage\n');
    mkdirSync(join(target, 'storage', 'keep-me'), { recursive: true });
    writeFileSync(join(target, 'storage', 'keep-me', 'package.json'), '{"name":"keep-me","versions":{}}');
    writeFileSync(join(target, 'registry.lockb'), 'not touched');
    const beforeTree = treeDigest(target);

    // unpack, change one tarball byte, repack (manifest left as it was)
    const unpacked = mkdtempSync(join(work, 'unpacked-'));
    await tar.extract({ file: backupFile, cwd: unpacked });
    const pkgFolder = join(unpacked, 'data', 'storage', 'stream-a');
    const tgz = readdirSync(pkgFolder).find((name) => name.endsWith('.tgz'));
    assert.ok(tgz);
    const bytes = readFileSync(join(pkgFolder, tgz));
    bytes[bytes.length - 5] ^= 0xff;
    writeFileSync(join(pkgFolder, tgz), bytes);
    const tampered = join(work, 'tampered.tar.gz');
    await tar.create({ gzip: true, file: tampered, cwd: unpacked }, ['manifest.json', 'data']);
    const refused = await registryCli(['restore', tampered, '--into', target, '--force'], work);
    assert.equal(refused.code, 1, refused.stdout + refused.stderr);
    assert.match(refused.stderr, /refused, nothing changed: data\/storage\/stream-a\/stream-a-.*\.tgz: sha512 .* does not match the manifest/);
    assert.deepEqual(treeDigest(target), beforeTree, 'target unchanged after a sha512 mismatch');

    // the same tarball change with a manifest rewritten to match: the packument's dist.integrity catches it
    const manifestPath = join(unpacked, 'manifest.json');
    const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as { files: Array<{ path: string; size: number; sha512: string }> };
    const entry = manifest.files.find((file) => file.path === `data/storage/stream-a/${tgz}`);
    assert.ok(entry);
    entry.sha512 = createHash('sha512').update(bytes).digest('hex');
    entry.size = bytes.length;
    writeFileSync(manifestPath, JSON.stringify(manifest));
    const consistent = join(work, 'tampered-consistent.tar.gz');
    await tar.create({ gzip: true, file: consistent, cwd: unpacked }, ['manifest.json', 'data']);
    const refused2 = await registryCli(['restore', consistent, '--into', target, '--force'], work);
    assert.equal(refused2.code, 1, refused2.stdout + refused2.stderr);
    assert.match(refused2.stderr, /does not verify: stream-a@.*tarball sha512/);
    assert.deepEqual(treeDigest(target), beforeTree, 'target unchanged after an integrity mismatch');

    // a file the manifest does not list
    writeFileSync(join(unpacked, 'data', 'storage', 'stream-a', 'extra.tgz'), 'x');
    const extra = join(work, 'tampered-extra.tar.gz');
    await tar.create({ gzip: true, file: extra, cwd: unpacked }, ['manifest.json', 'data']);
    const refused3 = await registryCli(['restore', extra, '--into', target, '--force'], work);
    assert.equal(refused3.code, 1);
    assert.match(refused3.stderr, /extra\.tgz is in the archive but not in its manifest/);
    assert.deepEqual(treeDigest(target), beforeTree);

    // a good backup into a non-empty folder without --force: refused, saying why
    const noForce = await registryCli(['restore', backupFile, '--into', target], work);
    assert.equal(noForce.code, 1);
    assert.match(noForce.stderr, /is not empty .*--force/);
    assert.deepEqual(treeDigest(target), beforeTree);

    // into the folder of a running registry: refused even with --force
    const live = treeDigest(join(source.dir, 'keys'));
    const running = await registryCli(['restore', backupFile, '--into', source.dir, '--force'], work);
    assert.equal(running.code, 1);
    assert.match(running.stderr, /a registry is running on .*stop it first/);
    assert.deepEqual(treeDigest(join(source.dir, 'keys')), live);

    // a failure in the middle of the swap (signing-keys/ cannot be created where config.yaml says,
    // after storage/, registry.lockb and keys/ were swapped): everything is put back
    const midway = join(work, 'midway');
    mkdirSync(join(midway, 'storage', 'keep-me'), { recursive: true });
    mkdirSync(join(midway, 'keys'));
    writeFileSync(join(midway, 'config.yaml'), 'storage: ./storage\nsigning_keys_dir: ./blocker/signing-keys\n');
    writeFileSync(join(midway, 'storage', 'keep-me', 'package.json'), '{"name":"keep-me","versions":{}}');
    writeFileSync(join(midway, 'keys', 'old.json'), '{}');
    writeFileSync(join(midway, 'registry.lockb'), 'not touched');
    writeFileSync(join(midway, 'blocker'), 'a file where a folder would have to be');
    const midwayBefore = treeDigest(midway);
    const failed = await registryCli(['restore', backupFile, '--into', midway, '--force'], work);
    assert.equal(failed.code, 1, failed.stdout + failed.stderr);
    assert.match(failed.stderr, /failed, the target is as it was/);
    assert.deepEqual(treeDigest(midway), midwayBefore, 'a failure during the swap leaves the target as it was');
    assert.deepEqual(readdirSync(midway).sort(), ['blocker', 'config.yaml', 'keys', 'registry.lockb', 'storage'], 'nothing set aside or staged is left');

    // and with --force into the stopped folder it does replace the state, keeping its config.yaml
    const forced = await registryCli(['restore', backupFile, '--into', target, '--force'], work);
    assert.equal(forced.code, 0, forced.stderr);
    assert.match(forced.stdout, /kept the folder's own config.yaml/);
    assert.equal(readFileSync(join(target, 'config.yaml'), 'utf8'), 'storage: ./storage\n');
    assert.ok(!existsSync(join(target, 'storage', 'keep-me')), 'the storage folder is the backup\'s');
    assert.ok(statSync(join(target, 'registry.lockb')).size >= 17);
  });

  it('15.5 doctor passes on a healthy folder and names the fault on a broken one', async () => {
    const healthy = await registryCli(['doctor'], source.dir);
    assert.equal(healthy.code, 0, healthy.stdout + healthy.stderr);
    for (const name of ['config', 'index', 'storage', 'keys', 'signing-keys', 'writable', 'upstream', 'disk', 'strays']) {
      assert.match(healthy.stdout, new RegExp(`^PASS\\s+${name}\\s`, 'm'), `${name} checked`);
    }

    assert.ok(restored, 'needs the restored registry of the first test');
    await restored.stop();
    const dir = restored.dir;
    restored = undefined;
    const pkg = join(dir, 'storage', 'stream-c');
    const tgz = readdirSync(pkg).find((name) => name.endsWith('.tgz'));
    assert.ok(tgz);
    unlinkSync(join(pkg, tgz));
    const broken = await registryCli(['doctor'], dir);
    assert.equal(broken.code, 1, broken.stdout);
    assert.match(broken.stdout, new RegExp(`^FAIL\\s+storage\\s+stream-c@[^:]+: tarball ${tgz.replace(/\./g, '\\.')} missing`, 'm'));
    assert.match(broken.stdout, /fix: restore the package from a backup/);

    // a flipped config byte: the check byte no longer verifies
    const lockb = join(dir, 'registry.lockb');
    const bytes = readFileSync(lockb);
    bytes[14] ^= 0x01;
    writeFileSync(lockb, bytes);
    const badHeader = await registryCli(['doctor'], dir);
    assert.equal(badHeader.code, 1);
    assert.match(badHeader.stdout, /^FAIL\s+config\s+.*check/im);
    // doctor changed nothing
    assert.deepEqual(readFileSync(lockb), bytes);
    assert.ok(!existsSync(join(pkg, tgz)));
  });
});
