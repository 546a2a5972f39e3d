/**
 * Cooked mode (terminalMode 1): a line REPL of the shared command language over the WebSocket.
 * Events and config changes are printed above the prompt without eating what is being typed.
 */
import { createInterface } from 'node:readline';
import { COMMANDS, isWriteCommand, parseCommand } from '../plugins/registry-core/commands';
import { terminalSocketUrl } from './api';
import { LiveConnection, type ConnectionStatus } from './connection';
import { formatEvent } from './model';
import type { ServerConfig } from './protocol';

export interface CookedOptions {
  registry: string;
  token: string | undefined;
  tokenSource: string | null;
  readonly: boolean;
  initialConfig: ServerConfig;
  input?: NodeJS.ReadableStream;
  output?: NodeJS.WritableStream;
}

const CONNECT_WAIT_MS = 5000;

export function summarizeConfig(config: ServerConfig): string {
  const on = Object.entries(config.flags)
    .filter(([, value]) => value)
    .map(([flag]) => flag);
  const bytes = `${config.hex.match(/../g)?.join(' ') ?? config.hex} ${config.check}`;
  return `config ${bytes}  (flags ${on.join('|') || 'none'}, ${config.fields.terminalMode}, ${config.fields.rows}x${config.fields.cols})`;
}

export function runCooked(options: CookedOptions): Promise<number> {
  const input = options.input ?? process.stdin;
  const output = options.output ?? process.stdout;
  const rl = createInterface({ input, output, prompt: 'registry> ', terminal: true, historySize: 100 });
  let status: ConnectionStatus = { state: 'connecting', attempt: 1 };
  let lastConfig = options.initialConfig;
  const waiting: (() => void)[] = [];

  const print = (text: string): void => {
    // Clear the prompt line, print, then redraw the prompt with whatever was typed so far.
    output.write(`\r\x1b[K${text}\n`);
    rl.prompt(true);
  };

  const connection = new LiveConnection(terminalSocketUrl(options.registry), options.token, {
    onConfig(config) {
      if (config.hex !== lastConfig.hex || config.check !== lastConfig.check) print(`* ${summarizeConfig(config)}`);
      lastConfig = config;
    },
    onEvent(event) {
      print(`* ${formatEvent(event)}`);
    },
    onHistory() {
      // The REPL prints what happens from now on; the backlog is for the full screen.
    },
    onAuth(auth) {
      print(auth.ok ? `* authenticated as ${auth.user ?? '?'}${auth.admin ? ' (admin)' : ''}` : `* token refused: ${auth.error ?? 'unknown reason'}`);
    },
    onStatus(next) {
      const before = status.state;
      status = next;
      if (next.state === 'connected') {
        if (before !== 'connected' && before !== 'connecting') print('* reconnected');
        for (const resolve of waiting.splice(0)) resolve();
      } else if (next.state === 'disconnected' && before === 'connected') {
        print(`* disconnected (${next.reason}), retrying…`);
      }
    },
    onNotice(text, isError) {
      print(`${isError ? '! ' : '* '}${text}`);
    },
  });

  const connected = (): Promise<boolean> => {
    if (connection.connected) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), CONNECT_WAIT_MS);
      waiting.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  };

  const handle = async (raw: string): Promise<void> => {
    const line = raw.trim();
    if (line === '') return;
    let name: string;
    try {
      name = parseCommand(line).name;
    } catch (error) {
      print(`! ${(error as Error).message}`);
      return;
    }
    if (COMMANDS.find((c) => c.name === name)?.scope === 'cli') {
      print(`! \`${name}\` works only in the config CLI: npm run config -- ${name}`);
      return;
    }
    if (options.readonly && isWriteCommand(name)) {
      print(`! read-only (--readonly): \`${name}\` is disabled`);
      return;
    }
    if (!(await connected())) {
      print(`! not connected to ${options.registry} (still retrying); the command was not sent`);
      return;
    }
    try {
      const result = await connection.command(line);
      print(result.ok ? result.text : `! ${result.text}`);
    } catch (error) {
      print(`! ${(error as Error).message}`);
    }
  };

  return new Promise<number>((resolve) => {
    output.write(
      `registry ${options.registry} — cooked mode (terminalMode 1): type a command (\`help\` lists them); \`quit\` or Ctrl-D leaves\n` +
        `${summarizeConfig(options.initialConfig)}\n` +
        (options.tokenSource === null ? 'no token for this registry (.npmrc / --token): read-only commands only\n' : ''),
    );
    let queue = Promise.resolve();
    rl.on('line', (line) => {
      const word = line.trim().toLowerCase();
      if (word === 'quit' || word === 'exit' || word === 'q') {
        rl.close();
        return;
      }
      queue = queue.then(() => handle(line)).then(() => rl.prompt());
    });
    rl.on('SIGINT', () => rl.close());
    rl.on('close', () => {
      connection.stop();
      output.write('\n');
      resolve(0);
    });
    connection.start();
    rl.prompt();
  });
}
