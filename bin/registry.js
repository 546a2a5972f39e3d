#!/usr/bin/env node
/*
 * `npx @mycompany/registry` / `mycompany-registry`: runs a registry in the current folder.
 *
 * Plain CommonJS with no dependencies so that it runs on whatever Node the shell has, even one the
 * registry does not support: it then re-executes itself with the Node binary of the package's own
 * `node` dependency. State (storage, htpasswd, keys, registry.lockb, .env.local) lives next to the
 * config file; a folder without `config.yaml` gets the default one, generated from the package's
 * config.yaml (so the same plugins run as in the repository) with `plugins:` pointing at this
 * installed package by absolute path.
 */
'use strict';

const { spawn } = require('node:child_process');
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
  const child = spawn(nodeBin, [__filename, ...args], {
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

function usage(pkg) {
  return [
    `${pkg.name}@${pkg.version} — local-first private npm registry`,
    '',
    'Usage: npx @mycompany/registry [verdaccio options]    (or: mycompany-registry …)',
    '',
    'Runs the registry in the current folder. Without `-c <config.yaml>` it uses ./config.yaml and',
    'writes the default one there first if the folder has none. State lives next to the config file.',
    '  --listen <host:port>   where to listen (default from config.yaml: 127.0.0.1:4873)',
    '  -c, --config <file>    another config file',
    '',
    `Needs Node ${MIN_NODE_MAJOR}+; on an older Node it switches to the Node of its \`node\` dependency.`,
    '',
  ].join('\n');
}

function main() {
  const args = process.argv.slice(2);
  const pkg = readPackageJson();
  if (args.includes('-h') || args.includes('--help')) {
    process.stdout.write(usage(pkg));
    return;
  }
  if (nodeMajor(process.versions.node) < MIN_NODE_MAJOR) {
    reexecWithPackagedNode(args);
    return;
  }
  say(`${pkg.name}@${pkg.version} on Node ${process.version} (${process.execPath})`);

  const startScript = path.join(PACKAGE_DIR, 'build', 'scripts', 'start.js');
  if (!fs.existsSync(startScript)) die(`the package is incomplete: ${startScript} is missing`);

  let startArgs = args;
  if (!hasConfigArgument(args)) {
    const configPath = path.resolve('config.yaml');
    if (!fs.existsSync(configPath)) {
      try {
        writeNewFile(configPath, renderDefaultConfig(pkg));
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
