/** The full-screen client (terminalMode raw): state + live connection + screen adapter. */
import { fetchActivity, fetchPackage, fetchPackages, fetchUpstream, terminalSocketUrl } from './api';
import { LiveConnection } from './connection';
import {
  applyActivity,
  applyAuth,
  applyCommandFailure,
  applyCommandResult,
  applyConfig,
  applyEvent,
  applyHistory,
  applyPackageDetail,
  applyPackages,
  applyStatus,
  addLog,
  createState,
  handleKey,
  type ClientState,
  type Effect,
} from './model';
import type { ServerConfig } from './protocol';
import { bindingForKey } from './keymap';
import { MIN_HEIGHT, MIN_WIDTH, renderScreen } from './render';
import { createScreen, type ScreenAdapter } from './screen-adapter';

export interface RawAppOptions {
  registry: string;
  token: string | undefined;
  tokenSource: string | null;
  readonly: boolean;
  color: boolean;
  initialConfig: ServerConfig;
}

/** Resolves with the exit code once the user quits; the terminal is restored by then. */
export function runRawApp(options: RawAppOptions): Promise<number> {
  const state: ClientState = createState({
    registry: options.registry,
    readonly: options.readonly,
    tokenSource: options.tokenSource,
    config: options.initialConfig,
  });
  if (options.tokenSource === null) addLog(state, 'no token for this registry in .npmrc and no --token: watching read-only', 'info');
  const screen: ScreenAdapter = createScreen({ color: options.color });

  let scheduled = false;
  const render = (): void => {
    scheduled = false;
    screen.draw(renderScreen(state, { width: screen.width, height: screen.height }));
  };
  // Many messages can arrive in one tick (config + event): one frame for all of them.
  const schedule = (): void => {
    if (scheduled) return;
    scheduled = true;
    setImmediate(render);
  };

  let packagesInFlight = false;
  let packagesAgain = false;
  const refreshPackages = (): void => {
    if (packagesInFlight) {
      packagesAgain = true;
      return;
    }
    packagesInFlight = true;
    Promise.all([
      fetchPackages(options.registry, options.token).then((packages) => {
        applyPackages(state, packages);
      }),
      // the activity line: the socket pushes it every few seconds; this fills it at once
      fetchActivity(options.registry, options.token).then(
        (activity) => applyActivity(state, activity),
        () => undefined,
      ),
      // the upstream line rides along: it changes when the list does (cache fills, upstream events)
      fetchUpstream(options.registry, options.token).then(
        (upstream) => {
          state.upstream = upstream;
        },
        (error: Error) => {
          state.upstream = { available: false, reason: error.message };
        },
      ),
    ])
      .catch((error: Error) => addLog(state, `package list: ${error.message}`, 'error'))
      .finally(() => {
        packagesInFlight = false;
        schedule();
        if (packagesAgain) {
          packagesAgain = false;
          refreshPackages();
        }
      });
  };

  const connection = new LiveConnection(terminalSocketUrl(options.registry), options.token, {
    onConfig(config) {
      applyConfig(state, config);
      schedule();
    },
    onEvent(event) {
      run(applyEvent(state, event));
      schedule();
    },
    onHistory(events) {
      applyHistory(state, events);
      schedule();
    },
    onAuth(auth) {
      applyAuth(state, auth);
      schedule();
    },
    onStatus(status) {
      applyStatus(state, status);
      if (status.state === 'connected') refreshPackages();
      schedule();
    },
    onNotice(text, isError) {
      addLog(state, text, isError ? 'error' : 'info');
      schedule();
    },
    onActivity(activity) {
      applyActivity(state, activity);
      schedule();
    },
  });

  let finish: (code: number) => void = () => undefined;
  const done = new Promise<number>((resolve) => (finish = resolve));
  const quit = (): void => {
    connection.stop();
    screen.destroy();
    finish(0);
  };

  function run(effects: Effect[]): void {
    for (const effect of effects) {
      switch (effect.type) {
        case 'send':
          connection
            .command(effect.line)
            .then((result) => applyCommandResult(state, effect.line, result.ok, result.text))
            .catch((error: Error) => applyCommandFailure(state, effect.line, error))
            .finally(schedule);
          break;
        case 'quit':
          quit();
          return;
        case 'redraw':
          screen.repaint();
          break;
        case 'refresh-packages':
          refreshPackages();
          break;
        case 'open-package': {
          const name = effect.name;
          fetchPackage(options.registry, options.token, name)
            .then((detail) => applyPackageDetail(state, name, detail, null))
            .catch((error: Error) => applyPackageDetail(state, name, null, error.message))
            .finally(schedule);
          break;
        }
      }
    }
  }

  screen.onKey((key) => {
    // A window too small to show the grid accepts only quit: no invisible edits.
    if (screen.width < MIN_WIDTH || screen.height < MIN_HEIGHT) {
      if (bindingForKey(key.full)?.action === 'quit') quit();
      return;
    }
    run(handleKey(state, key));
    schedule();
  });
  screen.onResize(() => render());
  render();
  connection.start();
  return done;
}
