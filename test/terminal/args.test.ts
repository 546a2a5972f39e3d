import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_REGISTRY_URL, parseTerminalArgs } from '../../terminal/args';
import { isTerminalError } from '../../terminal/errors';

test('defaults: BUN_REGISTRY_URL, else http://localhost:4873; no token; interactive', () => {
  assert.deepEqual(parseTerminalArgs([], {}), { registry: DEFAULT_REGISTRY_URL, once: false, json: false, readonly: false, help: false });
  assert.equal(parseTerminalArgs([], { BUN_REGISTRY_URL: 'https://r.example.com/npm/' }).registry, 'https://r.example.com/npm');
  assert.equal(parseTerminalArgs(['--registry', 'http://127.0.0.1:5000/'], { BUN_REGISTRY_URL: 'http://x' }).registry, 'http://127.0.0.1:5000');
});

test('flags and values', () => {
  const options = parseTerminalArgs(['--token', ' t0k ', '--npmrc', 'x/.npmrc', '--once', '--json', '--readonly'], {});
  assert.equal(options.token, 't0k');
  assert.equal(options.npmrc, 'x/.npmrc');
  assert.equal(options.once && options.json && options.readonly, true);
  assert.equal(parseTerminalArgs(['-h'], {}).help, true);
});

test('bad arguments are ERR_ARGS with a message naming the problem', () => {
  const cases: [string[], Record<string, string>, RegExp][] = [
    [['--bogus'], {}, /bogus/],
    [['--registry', 'not a url'], {}, /--registry is not a URL/],
    [['--registry', 'ftp://x'], {}, /http\(s\)/],
    [['--registry', 'http://user:pw@x'], {}, /credentials/],
    [[], { BUN_REGISTRY_URL: '::' }, /BUN_REGISTRY_URL is not a URL/],
    [['--token', '  '], {}, /--token is empty/],
    [['--json'], {}, /--json only makes sense with --once/],
    [['positional'], {}, /positional/i],
  ];
  for (const [argv, env, pattern] of cases) {
    assert.throws(() => parseTerminalArgs(argv, env), (error: unknown) => isTerminalError(error, 'ERR_ARGS') && pattern.test(error.message), argv.join(' '));
  }
});
