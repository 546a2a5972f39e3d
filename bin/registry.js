#!/usr/bin/env node
/*
 * `registry <verb>` (also `mycompany-registry`, `npx @mycompany/registry`): the one command of the
 * package. `start` (the default when no verb is given) runs a registry in the current folder;
 * `config`, `term` and `self-publish` run the built JavaScript of those tools directly — nothing is
 * compiled on a call (building happens once, at install or `npm start`), so `registry config get`
 * costs one Node start-up.
 *
 * Plain CommonJS with no dependencies so that it runs on whatever Node the shell has, even one the
 * registry does not support: it then re-executes itself with the Node binary of the package's own
 * `node` dependency. State (storage, htpasswd, keys, registry.lockb, .env.local) lives next to the
 * config file; a folder without `config.yaml` gets the default one, generated from the package's
 * config.yaml (so the same plugins run as in the repository) with `plugins:` pointing at this
 * installed package by absolute path.
 */
'use strict';

const fs = require('node:fs');
const path = require('node:path');

const PACKAGE_DIR = path.resolve(__dirname, '..');
const MIN_NODE_MAJOR = 22;
const REEXEC_MARK = 'MYCOMPANY_REGISTRY_REEXEC';
const FORWARDED_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'];

function say(message) {
  process.stdout.write(`mycompany-registry: ${message}\n`);
}

function die(message) {
  process.stderr.write(`mycompany-registry: ${message}\n`);
  process.exit(1);
}

function readPackageJson() {
  try {
    return JSON.parse(fs.readFileSync(path.join(PACKAGE_DIR, 'package.json'), 'utf8'));
  } catch (error) {
    return die(`cannot read ${path.join(PACKAGE_DIR, 'package.json')}: ${error.message}`);
  }
}

function nodeMajor(version) {
  return Number(String(version).replace(/^v/, '').split('.')[0]);
}

function isExecutable(file) {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/** The Node binary of the package's `node` dependency: nested, or hoisted next to the package. */
function findPackagedNode() {
  const candidates = [];
  try {
    candidates.push(require.resolve('node/bin/node', { paths: [PACKAGE_DIR] }));
  } catch {
    // not resolvable from here; try the .bin links below
  }
  candidates.push(path.join(PACKAGE_DIR, 'node_modules', '.bin', 'node'));
  // node_modules/@mycompany/registry → node_modules/.bin
  candidates.push(path.join(PACKAGE_DIR, '..', '..', '.bin', 'node'));
  return candidates.find(isExecutable);
}

function reexecWithPackagedNode(args) {
  const current = `Node ${process.version} (${process.execPath})`;
  if (process.env[REEXEC_MARK]) {
    die(`${current} is not supported (needs ${MIN_NODE_MAJOR} or newer), even after switching to the packaged Node.`);
  }
  const nodeBin = findPackagedNode();
  if (!nodeBin) {
    die(
      `${current} is not supported (needs ${MIN_NODE_MAJOR} or newer) and the package's own Node ` +
        '(npm package `node`) is not installed next to it: its install script downloads the binary. ' +
        'Install with scripts allowed (`allowScripts: {"node": true}` in your package.json, or ' +
        '`npx --allow-scripts=node @mycompany/registry`), or run this with Node 22+.',
    );
  }
  say(`${current} is not supported (needs ${MIN_NODE_MAJOR}+); re-running with ${nodeBin}`);
  // required here, not at the top: child_process pulls in net and streams, a third of `config get`'s own cost
  const child = require('node:child_process').spawn(nodeBin, [__filename, ...args], {
    stdio: 'inherit',
    env: { ...process.env, [REEXEC_MARK]: '1' },
  });
  // The child is the registry: pass signals on and leave with its exit status.
  const handlers = FORWARDED_SIGNALS.map((signal) => {
    const handler = () => child.kill(signal);
    process.on(signal, handler);
    return [signal, handler];
  });
  child.on('error', (error) => die(`cannot run ${nodeBin}: ${error.message}`));
  child.on('exit', (code, signal) => {
    for (const [name, handler] of handlers) process.off(name, handler);
    if (signal) process.kill(process.pid, signal);
    else process.exit(code === null ? 1 : code);
  });
}

function hasConfigArgument(args) {
  return args.some((arg) => arg === '-c' || arg === '--config' || arg.startsWith('--config='));
}

/** config.yaml for this folder: the package's own config.yaml with `plugins:` = the installed plugins folder. */
function renderDefaultConfig(pkg) {
  const pluginsDir = path.join(PACKAGE_DIR, 'plugins');
  const template = fs.readFileSync(path.join(PACKAGE_DIR, 'templates', 'config.yaml'), 'utf8');
  const projectConfig = fs.readFileSync(path.join(PACKAGE_DIR, 'config.yaml'), 'utf8');
  // JSON strings are valid YAML double-quoted scalars: safe for any path.
  const pluginsLine = `plugins: ${JSON.stringify(pluginsDir)}`;
  const body = /^plugins:.*$/m.test(projectConfig)
    ? projectConfig.replace(/^plugins:.*$/m, pluginsLine)
    : `${projectConfig.trimEnd()}\n${pluginsLine}\n`;
  const values = { PACKAGE: `${pkg.name}@${pkg.version}`, PLUGINS_DIR: pluginsDir, CONFIG: body.trimEnd() };
  return `${template.replace(/\{\{(PACKAGE|PLUGINS_DIR|CONFIG)\}\}/g, (_, key) => values[key]).trimEnd()}\n`;
}

/** Temp file + fsync + link: atomic, and never replaces a config.yaml that appeared meanwhile. */
function writeNewFile(file, text) {
  const temp = `${file}.${process.pid}.tmp`;
  const fd = fs.openSync(temp, 'wx', 0o644);
  try {
    fs.writeFileSync(fd, text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  try {
    fs.linkSync(temp, file);
  } finally {
    fs.unlinkSync(temp);
  }
}

/** Verbs other than `start`: each runs one built script in this process. */
const TOOL_VERBS = {
  // `fast`: tried first; its runFastGet(args) answers the plain `get` alone, or returns false (see there)
  config: { script: ['build', 'scripts', 'config-cli.js'], fast: ['build', 'scripts', 'config-get.js'], what: 'the command language on registry.lockb (get, set, toggle, url, env, packages, watch, repair, rebuild-index)' },
  term: { script: ['build', 'terminal', 'main.js'], what: 'the terminal client of a running registry' },
  'self-publish': { script: ['build', 'scripts', 'self-publish.js'], what: 'pack this package and publish it to a registry' },
  warm: { script: ['build', 'scripts', 'warm.js'], what: 'fetch everything a lockfile names through the registry (fills its upstream cache)' },
  migrate: { script: ['build', 'scripts', 'migrate.js'], what: 'move the packages between the storage folder and PostgreSQL, verified (to-postgres | to-files)' },
  backup: { script: ['build', 'scripts', 'backup.js'], what: 'a consistent snapshot of the registry while it serves (tar.gz with sha512 manifest)' },
  restore: { script: ['build', 'scripts', 'restore.js'], what: 'verify a backup completely, then swap it in (never under a running registry)' },
  doctor: { script: ['build', 'scripts', 'doctor.js'], what: 'read-only health checks of a registry folder, PASS/FAIL with a fix per line' },
};

function usage(pkg) {
  return [
    `${pkg.name}@${pkg.version} — local-first private npm registry`,
    '',
    'Usage: registry [start] [verdaccio options]    (also: mycompany-registry, npx @mycompany/registry)',
    '       registry config <command> [--file F] [--config F]',
    '       registry term [--registry URL] [--token T] [--once]',
    '       registry self-publish [--registry URL] [--config F] [--cwd DIR]',
    '       registry warm <lockfile> [--registry URL] [--concurrency N]',
    '       registry migrate to-postgres|to-files [--database-url URL] [--config F]',
    '       registry backup FILE [--config F] [--upstream-cache]',
    '       registry restore FILE [--into DIR] [--force]',
    '       registry doctor [--config F]',
    '',
    'start (the default) runs the registry in the current folder. Without `-c <config.yaml>` it uses',
    './config.yaml and writes the default one there first if the folder has none. State lives next to',
    'the config file.',
    '  --listen <host:port>   where to listen (default from config.yaml: 127.0.0.1:4873)',
    '  -c, --config <file>    another config file',
    '',
    ...Object.entries(TOOL_VERBS).map(([verb, { what }]) => `${verb.padEnd(13)}${what}`),
    '',
    `Needs Node ${MIN_NODE_MAJOR}+; on an older Node it switches to the Node of its \`node\` dependency.`,
    '',
  ].join('\n');
}

/** Runs a built tool script in this process, as if Node had been started on it. */
function runTool(verb, args) {
  const script = path.join(PACKAGE_DIR, ...TOOL_VERBS[verb].script);
  if (!fs.existsSync(script)) {
    die(`${script} is missing: the package is not built (in a checkout, run \`npm run build\` once)`);
  }
  let toolArgs = args;
  // In a folder of its own (an installed registry), `config` acts on that folder's config.yaml
  // rather than the package's; an explicit --config/--file still wins.
  if (verb === 'config' && !args.some((arg) => /^--(config|file)(=|$)/.test(arg))) {
    const local = path.resolve('config.yaml');
    if (fs.existsSync(local)) toolArgs = ['--config', local, ...args];
  }
  // `registry config get`: a handful of small modules, no compile cache (enabling it costs more
  // instructions than it saves on them, callgrind), no process.argv rewrite
  const fast = TOOL_VERBS[verb].fast;
  if (fast !== undefined) {
    const fastScript = path.join(PACKAGE_DIR, ...fast);
    if (fs.existsSync(fastScript) && require(fastScript).runFastGet(toolArgs)) return;
  }
  // V8's code cache on disk: a tool call is mostly module compilation, the cache skips it
  require('node:module').enableCompileCache?.();
  process.argv = [process.execPath, script, ...toolArgs];
  // each tool exports runCli(): its `require.main === module` guard does not fire when required
  require(script).runCli();
}

function main() {
  const argv = process.argv.slice(2);
  // read only where it is used (usage, start): a tool call such as `registry config get` skips it
  const pkg = () => readPackageJson();
  const verb = argv[0] === 'start' || Object.hasOwn(TOOL_VERBS, argv[0] ?? '') ? argv[0] : undefined;
  const args = verb === undefined ? argv : argv.slice(1);
  if (verb === undefined && argv[0] !== undefined && !argv[0].startsWith('-')) {
    process.stderr.write(usage(pkg()));
    die(`unknown command \`${argv[0]}\``);
  }
  if ((verb === undefined || verb === 'start') && (args.includes('-h') || args.includes('--help'))) {
    process.stdout.write(usage(pkg()));
    return;
  }
  if (nodeMajor(process.versions.node) < MIN_NODE_MAJOR) {
    reexecWithPackagedNode(argv);
    return;
  }
  if (verb !== undefined && verb !== 'start') {
    runTool(verb, args);
    return;
  }
  const startPkg = pkg();
  say(`${startPkg.name}@${startPkg.version} on Node ${process.version} (${process.execPath})`);

  const startScript = path.join(PACKAGE_DIR, 'build', 'scripts', 'start.js');
  if (!fs.existsSync(startScript)) die(`the package is incomplete: ${startScript} is missing`);

  let startArgs = args;
  if (!hasConfigArgument(args)) {
    const configPath = path.resolve('config.yaml');
    if (!fs.existsSync(configPath)) {
      try {
        writeNewFile(configPath, renderDefaultConfig(startPkg));
      } catch (error) {
        die(`cannot write the default ${configPath}: ${error.message}`);
      }
      say(`wrote the default ${configPath} (plugins from ${path.join(PACKAGE_DIR, 'plugins')})`);
    }
    startArgs = ['-c', configPath, ...args];
  }
  // The start script runs in this process (it runs Verdaccio in-process too): one Node, signals as usual.
  process.argv = [process.execPath, startScript, ...startArgs];
  require(startScript);
}

main();
