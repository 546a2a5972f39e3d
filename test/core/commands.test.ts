import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import {
  COMMANDS,
  ConfigFile,
  PackageIndex,
  RegistryCoreError,
  changeRegistryUrl,
  defaultFields,
  executeCommand,
  helpText,
  parseCommand,
  readRegistryUrl,
  summarizeIndex,
  type Command,
  type CommandContext,
} from '../../plugins/registry-core/index';

const root = mkdtempSync(join(tmpdir(), 'core-commands-'));
after(() => rmSync(root, { recursive: true, force: true }));

function syntaxError(pattern: RegExp) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof RegistryCoreError, String(error));
    assert.equal(error.code, 'ERR_COMMAND_SYNTAX');
    assert.match(error.message, pattern);
    return true;
  };
}

test('parseCommand: the documented forms', () => {
  assert.deepEqual(parseCommand('get'), { name: 'get' });
  assert.deepEqual(parseCommand('  SET   13   0x01 '), { name: 'set', offset: 13, value: 1 });
  assert.deepEqual(parseCommand('set 0xD 0XFF'), { name: 'set', offset: 13, value: 255 });
  assert.deepEqual(parseCommand('toggle debug'), { name: 'toggle', flag: 'DEBUG' });
  assert.deepEqual(parseCommand('Toggle private-registry'), { name: 'toggle', flag: 'PRIVATE_REGISTRY' });
  assert.deepEqual(parseCommand('url https://Registry.MyCompany.com:443/'), { name: 'url', url: 'https://registry.mycompany.com' });
  assert.deepEqual(parseCommand('packages'), { name: 'packages' });
  assert.deepEqual(parseCommand('packages left'), { name: 'packages', filter: 'left' });
  for (const name of ['env', 'help', 'watch', 'repair', 'rebuild-index'] as const) assert.deepEqual(parseCommand(name), { name });
});

test('parseCommand: clear syntax errors', () => {
  assert.throws(() => parseCommand(''), syntaxError(/empty command/));
  assert.throws(() => parseCommand('frobnicate'), syntaxError(/unknown command "frobnicate"; commands are get, set/));
  assert.throws(() => parseCommand('set 13'), syntaxError(/set takes 2 arguments \(usage: set <offset> <value>\), got 1/));
  assert.throws(() => parseCommand('set 13 seven'), syntaxError(/value must be a decimal or 0x-hex number, got "seven"/));
  assert.throws(() => parseCommand('set -1 2'), syntaxError(/offset must be/));
  assert.throws(() => parseCommand('toggle SHINY'), syntaxError(/unknown flag "SHINY"; flags are PREMIUM_TYPES, PRIVATE_REGISTRY, DEBUG/));
  assert.throws(() => parseCommand('get now'), syntaxError(/get takes 0 arguments/));
  assert.throws(() => parseCommand('url'), syntaxError(/url takes 1 argument/));
  assert.throws(() => parseCommand('url notaurl'), (e: unknown) => e instanceof RegistryCoreError && e.code === 'ERR_REGISTRY_URL');
});

const flagName = fc.constantFrom('PREMIUM_TYPES', 'PRIVATE_REGISTRY', 'DEBUG', 'OFFLINE' as const);
const space = fc.stringMatching(/^[ \t]{1,3}$/);
const randomCase = (word: string) =>
  fc.array(fc.boolean(), { minLength: word.length, maxLength: word.length }).map((upper) => [...word].map((c, i) => (upper[i] ? c.toUpperCase() : c.toLowerCase())).join(''));
const number = (max: number) =>
  fc.integer({ min: 0, max }).chain((n) =>
    fc.constantFrom('dec', 'hex', 'HEX').map((style) => ({ n, text: style === 'dec' ? String(n) : `${style === 'hex' ? '0x' : '0X'}${n.toString(16)}` })),
  );

const commandLine: fc.Arbitrary<{ line: fc.Arbitrary<string> | string; expected: Command }> = fc.oneof(
  fc.tuple(randomCase('set'), space, number(300), space, number(300), space).map(([w, s1, o, s2, v, s3]) => ({
    line: `${s3}${w}${s1}${o.text}${s2}${v.text}${s3}`,
    expected: { name: 'set', offset: o.n, value: v.n } as Command,
  })),
  fc.tuple(randomCase('toggle'), space, flagName.chain((f) => randomCase(f).map((typed) => ({ f, typed })))).map(([w, s, { f, typed }]) => ({
    line: `${w}${s}${typed}`,
    expected: { name: 'toggle', flag: f } as Command,
  })),
  fc.tuple(fc.constantFrom('get', 'env', 'help', 'watch', 'repair', 'rebuild-index' as const).chain((n) => randomCase(n).map((typed) => ({ n, typed }))), space).map(
    ([{ n, typed }, s]) => ({ line: `${s}${typed}${s}`, expected: { name: n } as Command }),
  ),
  fc.tuple(randomCase('packages'), space, fc.stringMatching(/^[a-z@/.-]{1,12}$/)).map(([w, s, filter]) => ({
    line: `${w}${s}${filter}`,
    expected: { name: 'packages', filter } as Command,
  })),
  fc.tuple(randomCase('url'), space, fc.domain(), fc.constantFrom('http', 'https')).map(([w, s, host, scheme]) => ({
    line: `${w}${s}${scheme}://${host}/`,
    expected: { name: 'url', url: `${scheme}://${new URL(`${scheme}://${host}`).host}` } as Command,
  })),
);

test('property: every generated valid command line parses to the expected Command', () => {
  fc.assert(
    fc.property(commandLine, ({ line, expected }) => {
      assert.deepEqual(parseCommand(line as string), expected);
    }),
    { numRuns: 3000 },
  );
});

test('property: random input never throws anything but RegistryCoreError', () => {
  const words = fc.constantFrom('get', 'set', 'toggle', 'url', 'env', 'packages', 'help', 'watch', '0x', '0xZZ', '13', 'DEBUG', 'http://', '\u0000', '🙂');
  const input = fc.oneof(fc.string({ maxLength: 80 }), fc.string({ unit: 'binary', maxLength: 80 }), fc.array(words, { maxLength: 5 }).map((w) => w.join(' ')));
  fc.assert(
    fc.property(input, (line) => {
      try {
        parseCommand(line);
      } catch (error) {
        assert.ok(error instanceof RegistryCoreError, `${JSON.stringify(line)} threw ${String(error)}`);
      }
    }),
    { numRuns: 5000 },
  );
});

test('helpText: shared commands for the WebSocket/terminal, all for the CLI', () => {
  const shared = helpText('shared');
  const cli = helpText('cli');
  for (const c of COMMANDS) {
    assert.equal(shared.includes(c.usage), c.scope === 'shared', c.name);
    assert.ok(cli.includes(c.usage), c.name);
  }
});

test('executeCommand against a real ConfigFile and package index', async () => {
  const lockb = join(root, 'registry.lockb');
  const envFile = join(root, '.env.local');
  const config = ConfigFile.open(lockb, { createWith: defaultFields() });
  const index = PackageIndex.open(lockb);
  index.append({ kind: 'publish', name: 'left-pad', version: '1.0.0', sha512: '', time: 1_700_000_000_000, detail: '' });
  index.append({ kind: 'publish', name: '@acme/tool', version: '0.1.0', sha512: '', time: 1_700_000_000_001, detail: '' });
  const context: CommandContext = {
    config,
    registryUrl: () => readRegistryUrl(envFile),
    setRegistryUrl: async (url) => void (await changeRegistryUrl(config, envFile, url)),
    listPackages: async () => summarizeIndex(index.readAll()),
  };
  const run = (line: string) => executeCommand(parseCommand(line), context);

  const got = await run('get');
  assert.ok(got.ok);
  assert.match(got.text, /01 0a 96 b6 ce 03 00 00 00 02 18 50 36/);
  assert.equal(got.view?.hex, '010a96b6ce03000000021850');

  const set = await run('set 13 0x01');
  assert.ok(set.ok);
  assert.match(set.text, /terminalMode cooked/);
  assert.equal(readFileSync(lockb)[13], 1);

  const refused = await run('set 13 7');
  assert.equal(refused.ok, false);
  assert.match(refused.text, /terminalMode must be 0 \(disabled\), 1 \(cooked\) or 2 \(raw\), got 7/);
  assert.equal(readFileSync(lockb)[13], 1, 'unchanged');

  const toggled = await run('toggle debug');
  assert.ok(toggled.ok);
  assert.equal(toggled.view?.flags.DEBUG, true);

  const url = await run('url https://registry.mycompany.com');
  assert.ok(url.ok);
  assert.equal(config.getConfig().view.fields.registryHash, '0x4469efac');
  assert.match(readFileSync(envFile, 'utf8'), /^BUN_REGISTRY_URL=https:\/\/registry\.mycompany\.com$/m);

  const env = await run('env');
  assert.equal(env.text.split('\n').length, 9);
  assert.match(env.text, /BUN_REGISTRY_URL=https:\/\/registry\.mycompany\.com\nBUN_FEATURE_PRIVATE_REGISTRY=1\nBUN_FEATURE_PREMIUM_TYPES=1\nBUN_FEATURE_DEBUG=1\nBUN_FEATURE_OFFLINE=0\nBUN_TERMINAL_MODE=cooked/);

  const packages = await run('packages PAD');
  assert.match(packages.text, /^left-pad {2}1\.0\.0/);
  assert.doesNotMatch(packages.text, /acme/);
  assert.match((await run('packages nothing-like-it')).text, /no packages matching/);

  const cliOnly = await run('watch');
  assert.equal(cliOnly.ok, false);
  assert.match(cliOnly.text, /only available in the config CLI/);
  index.close();
  config.close();
});
