/**
 * Runs `bin/registry.js` (of the repository or of an installed copy) the way a user does — as an
 * executable found through its shebang — in a folder of its own, and waits for the start script's
 * "listening on" line. The harness starts build/scripts/start.js of the repository; this starts
 * whatever package the bin belongs to.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { delimiter, join } from 'node:path';
import { PROJECT_ROOT, cleanEnv } from '../harness/registry';

export interface RunningBin {
  url: string;
  dir: string;
  process: ChildProcess;
  logs(): string;
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** PATH without the repository's node_modules/.bin, so `#!/usr/bin/env node` finds the system Node. */
export function pathWithoutProjectBin(): string {
  const projectBin = join(PROJECT_ROOT, 'node_modules', '.bin');
  return (process.env.PATH ?? '')
    .split(delimiter)
    .filter((entry) => entry !== '' && entry !== projectBin && !entry.includes('node-gyp-bin'))
    .join(delimiter);
}

export function binEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...cleanEnv(extra), PATH: pathWithoutProjectBin() };
}

export async function startBin(
  binPath: string,
  dir: string,
  args: string[] = ['--listen', '127.0.0.1:0'],
  options: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<RunningBin> {
  const child = spawn(binPath, args, { cwd: dir, env: options.env ?? binEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolveExit) =>
    child.once('exit', (code, signal) => resolveExit({ code, signal })),
  );

  const timeoutMs = options.timeoutMs ?? 60_000;
  const port = await new Promise<number>((resolvePort, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${binPath} did not listen within ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    const onData = (): void => {
      const match = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(output);
      if (!match) return;
      clearTimeout(timer);
      child.stdout.off('data', onData);
      resolvePort(Number(match[1]));
    };
    child.stdout.on('data', onData);
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`${binPath} exited (code ${code}, signal ${signal}) before listening:\n${output}`));
    });
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    const ok = await fetch(`${url}/-/ping`).then((response) => response.ok, () => false);
    if (ok) break;
    if (Date.now() > deadline) throw new Error(`${url}/-/ping never answered:\n${output}`);
    await new Promise((resolveWait) => setTimeout(resolveWait, 100));
  }
  return {
    url,
    dir,
    process: child,
    logs: () => output,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const force = setTimeout(() => child.kill('SIGKILL'), 10_000);
        child.kill('SIGTERM');
        const result = await exited;
        clearTimeout(force);
        return result;
      }
      return exited;
    },
  };
}
