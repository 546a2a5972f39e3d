/**
 * A REAL tmux (own server socket per session, no user config) running the REAL client: keys go in
 * with `send-keys`, the screen comes out with `capture-pane`. Waits poll with a deadline and
 * report what was on the screen when they gave up.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { NODE_BIN, PROJECT_ROOT, cleanEnv } from '../harness/registry';

export const CLIENT_MAIN = join(PROJECT_ROOT, 'build', 'terminal', 'main.js');

/** Why tmux tests cannot run here, or null when they can. */
export function tmuxUnavailable(): string | null {
  const probe = spawnSync('tmux', ['-V'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) return 'tmux is not installed (apt-get install tmux; .ci/run installs it)';
  return null;
}

const quote = (value: string): string => `'${value.replace(/'/g, `'\\''`)}'`;

let counter = 0;

export interface ClientLaunch {
  cwd: string;
  args: string[];
  /** Extra environment for the client (e.g. NO_COLOR=1). HOME is the cwd so ~/.npmrc never leaks in. */
  env?: Record<string, string>;
  width?: number;
  height?: number;
  /** Another built script to run instead of the client (e.g. build/scripts/warm.js). */
  script?: string;
}

export class TmuxSession {
  readonly socket: string;
  readonly target = 'term';
  private socketPath: string | null = null;

  private constructor(socket: string) {
    this.socket = socket;
  }

  /**
   * Starts the client in a new detached session. After the client exits the pane stays, showing
   * `EXITED <code>` and the tty's canonical/echo state, so tests can check the terminal was restored.
   */
  static start(launch: ClientLaunch): TmuxSession {
    const session = new TmuxSession(`registry-term-${process.pid}-${++counter}`);
    const env = { HOME: launch.cwd, LANG: 'C.UTF-8', ...launch.env };
    const assignments = Object.entries(env)
      .map(([key, value]) => `${key}=${quote(value)}`)
      .join(' ');
    const client = [quote(NODE_BIN), quote(launch.script ?? CLIENT_MAIN), ...launch.args.map(quote)].join(' ');
    const command =
      `cd ${quote(launch.cwd)} && env -u NO_COLOR -u BUN_REGISTRY_URL -u NPM_CONFIG_USERCONFIG -u npm_config_userconfig ${assignments} ${client}; ` +
      `echo "EXITED $?"; echo "TTY: $(stty -a | tr ' ;' '\\n\\n' | grep -E '^-?(icanon|echo)$' | tr '\\n' ' ')"; sleep 600`;
    session.tmux(['-f', '/dev/null', 'new-session', '-d', '-s', session.target, '-x', String(launch.width ?? 100), '-y', String(launch.height ?? 30), command]);
    session.socketPath = session.tmux(['display-message', '-p', '#{socket_path}']).trim() || null;
    return session;
  }

  tmux(args: string[]): string {
    return execFileSync('tmux', ['-L', this.socket, ...args], { encoding: 'utf8', env: cleanEnv(), timeout: 10_000 });
  }

  /** Named keys (`Enter`, `Right`, `Tab`, `Escape`, `q`…). */
  keys(...keys: string[]): void {
    this.tmux(['send-keys', '-t', this.target, ...keys]);
  }

  /** Literal text (so `0x1e` is typed, not read as a key code). */
  type(text: string): void {
    this.tmux(['send-keys', '-t', this.target, '-l', text]);
  }

  capture(options: { escapes?: boolean } = {}): string {
    return this.tmux(['capture-pane', '-p', '-J', ...(options.escapes ? ['-e'] : []), '-t', this.target]);
  }

  resize(width: number, height: number): void {
    this.tmux(['resize-window', '-t', this.target, '-x', String(width), '-y', String(height)]);
  }

  /** Polls the screen until `predicate` holds; throws with the last screen after `timeoutMs`. */
  async waitFor(predicate: (screen: string) => boolean, what: string, timeoutMs = 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    let screen = '';
    for (;;) {
      screen = this.capture();
      if (predicate(screen)) return screen;
      if (Date.now() > deadline) throw new Error(`screen never showed ${what} within ${timeoutMs} ms; last screen:\n${screen}`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  waitForText(pattern: RegExp, timeoutMs?: number): Promise<string> {
    return this.waitFor((screen) => pattern.test(screen), String(pattern), timeoutMs);
  }

  kill(): void {
    try {
      this.tmux(['kill-server']);
    } catch {
      // already gone
    }
    // tmux leaves its socket file behind; it is ours (own -L name), so remove it.
    if (this.socketPath !== null) rmSync(this.socketPath, { force: true });
  }
}

/** The `bytes` row of the grid as 13 hex pairs (cursor brackets removed). */
export function gridBytes(screen: string): string | undefined {
  const line = screen.split('\n').find((l) => /^bytes\s/.test(l));
  if (line === undefined) return undefined;
  return line
    .slice('bytes'.length)
    .replace(/[[\]]/g, ' ')
    .trim()
    .split(/\s+/)
    .join(' ');
}

/**
 * A plain TCP forwarder on a fixed port in front of the registry: the harness restarts the
 * registry on a new port, the client keeps one URL, so "the server went away and came back" is
 * seen by the client exactly as with a restart on the same port.
 */
export async function startForwarder(targetPort: number): Promise<{ port: number; retarget(port: number): void; close(): Promise<void> }> {
  let target = targetPort;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(target, '127.0.0.1');
    sockets.add(client);
    sockets.add(upstream);
    const end = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('forwarder has no port');
  return {
    port: address.port,
    retarget: (port) => {
      target = port;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
