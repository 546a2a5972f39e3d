import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { addUser, createClientDir, startRegistry, writePackage, type RunningRegistry } from '../harness/registry';

describe('real npm and bun against the running registry', () => {
  let registry: RunningRegistry;
  let token: string;
  before(async () => {
    registry = await startRegistry();
    token = await addUser(registry, 'founder', 'correct-horse-battery');
  });
  after(async () => {
    await registry?.stop();
  });

  test('npm publish, then npm install from a clean cache', async () => {
    const publisher = createClientDir(registry, { token });
    const pkg = writePackage(publisher.dir, { name: '@mycompany/hello-npm', version: '1.0.0' });
    const published = await publisher.npm(['publish'], { cwd: pkg });
    assert.equal(published.code, 0, published.stderr);

    const consumer = createClientDir(registry);
    const app = writePackage(consumer.dir, { name: 'consumer-app', version: '0.0.0' });
    const installed = await consumer.npm(['install', '@mycompany/hello-npm@1.0.0'], { cwd: app });
    assert.equal(installed.code, 0, installed.stderr);
    const code = readFileSync(join(app, 'node_modules', '@mycompany', 'hello-npm', 'index.js'), 'utf8');
    assert.match(code, /@mycompany\/hello-npm@1\.0\.0/);
  });

  test('bun publish, then bun install from a clean cache', async () => {
    const publisher = createClientDir(registry, { token });
    const pkg = writePackage(publisher.dir, { name: '@mycompany/hello-bun', version: '2.1.0' });
    const published = await publisher.bun(['publish'], { cwd: pkg });
    assert.equal(published.code, 0, `${published.stdout}\n${published.stderr}`);

    const consumer = createClientDir(registry);
    const app = writePackage(consumer.dir, { name: 'consumer-bun', version: '0.0.0' });
    const installed = await consumer.bun(['add', '@mycompany/hello-bun@2.1.0'], { cwd: app });
    assert.equal(installed.code, 0, `${installed.stdout}\n${installed.stderr}`);
    const code = readFileSync(join(app, 'node_modules', '@mycompany', 'hello-bun', 'index.js'), 'utf8');
    assert.match(code, /@mycompany\/hello-bun@2\.1\.0/);
  });
});
