// @ts-check
/**
 * The dashboard page. Plain browser JavaScript, no build step, no third-party code: it talks to
 * the registry only (same origin) — /_dashboard/api/* over HTTP, /_dashboard/terminal over a
 * WebSocket for live updates, and /_auth/token for signing in. The token lives in
 * sessionStorage (gone when the tab closes) and only ever travels in an Authorization header
 * or the socket's `auth` message, never in a URL.
 */
'use strict';

/**
 * @typedef {'PREMIUM_TYPES' | 'PRIVATE_REGISTRY' | 'DEBUG' | 'OFFLINE'} FlagName
 * @typedef {{
 *   hex: string; check: string;
 *   fields: { version: number; registryHash: string; featureFlags: number; terminalMode: string; rows: number; cols: number };
 *   flags: Record<FlagName, boolean>;
 *   issuer: { url: string; alg: string; kind: string };
 *   env: string; registryUrl: string; urlMatchesHash: boolean;
 * }} DashboardConfig
 * @typedef {{ name: string; versions: string[]; distTags: Record<string, string>; time: string; source?: 'local' | 'cached' }} PackageSummary
 * @typedef {{ available: false; reason?: string } | {
 *   available: true; url: string | null; offline: boolean; lastSuccess: number | null;
 *   lastFailure: { time: number; error: string } | null; latencyMs: number | null; cachedPackages: number; cachedBytes: number;
 * }} UpstreamView
 * @typedef {{ kind: string; time: number; name?: string; version?: string; user?: string; actor?: string; address?: string; tokenId?: string; detail?: string; tags?: string[] }} RegistryEvent
 * @typedef {{ packages: PackageSummary[]; total: number; offset: number; limit: number | null; local: number; cached: number }} PackagePage
 * @typedef {{ publishes: number; downloads: number; requests: number }} ActivityTotals
 * @typedef {{ localBytes: number; cachedBytes: number; files: number; measuredAt: string }} StorageSize
 * @typedef {{ bucketSeconds: number; now: string; buckets: (ActivityTotals & { start: string })[]; totals: ActivityTotals; storage: StorageSize | null }} ActivityDocument
 * @typedef {{ version: string; time: string | null; publisher: string | null; integrity: string | null; shasum: string | null; tarballBytes: number | null; unpackedSize: number | null; fileCount: number | null; deprecated?: string; dependencyCount: number; tags: string[] }} VersionView
 * @typedef {{
 *   name: string; source: 'local' | 'cached'; description: string | null; license: string | null; homepage: string | null; repository: string | null;
 *   distTags: Record<string, string>; shown: string | null; maintainers: { name: string; email?: string }[]; versions: VersionView[];
 *   dependencies: Record<'dependencies' | 'devDependencies' | 'peerDependencies' | 'optionalDependencies', Record<string, string>>;
 *   readme: { html: string; truncated: boolean; length: number };
 * }} PackageView
 * @typedef {{ seq: number; time: string; kind: string; actor: string | null; address: string | null; tokenId: string | null; name?: string; version?: string; user?: string; detail?: string }} AuditRecord
 * @typedef {{ user: string | null; admin: boolean; groups: string[]; error?: string }} Session
 */

const API = '/_dashboard/api';
const SOCKET_PATH = '/_dashboard/terminal';
const TOKEN_KEY = 'registry-dashboard.token';
const MAX_EVENTS = 200;
const PAGE_SIZE = 100;
const SVG_NS = 'http://www.w3.org/2000/svg';

/** @type {{ offset: number; field: string; short: string }[]} */
const CELLS = [
  { offset: 4, field: 'version', short: 'ver' },
  { offset: 5, field: 'registryHash', short: 'hash·0' },
  { offset: 6, field: 'registryHash', short: 'hash·1' },
  { offset: 7, field: 'registryHash', short: 'hash·2' },
  { offset: 8, field: 'registryHash', short: 'hash·3' },
  { offset: 9, field: 'featureFlags', short: 'flags·0' },
  { offset: 10, field: 'featureFlags', short: 'flags·1' },
  { offset: 11, field: 'featureFlags', short: 'flags·2' },
  { offset: 12, field: 'featureFlags', short: 'flags·3' },
  { offset: 13, field: 'terminalMode', short: 'mode' },
  { offset: 14, field: 'rows', short: 'rows' },
  { offset: 15, field: 'cols', short: 'cols' },
  { offset: 16, field: 'check', short: 'check' },
];

/** @type {{ name: FlagName; help: string; invalidatesTokens: boolean }[]} */
const FLAGS = [
  { name: 'PREMIUM_TYPES', help: 'On: new tokens are EdDSA (Ed25519). Off: RS256.', invalidatesTokens: false },
  { name: 'PRIVATE_REGISTRY', help: 'On: issuer is <registry URL>/_auth. Changes the token issuer.', invalidatesTokens: true },
  { name: 'DEBUG', help: 'Verbose diagnostics.', invalidatesTokens: false },
  { name: 'OFFLINE', help: 'On: never contact the upstream; serve only what this registry holds.', invalidatesTokens: false },
];

const TOKEN_WARNING =
  'This change gives tokens a different issuer or audience: every token issued so far (npm logins, CI tokens, ' +
  'this session) stops working and everyone must log in again. Continue?';

/**
 * @template {HTMLElement} T
 * @param {string} id
 * @param {new () => T} type
 * @returns {T}
 */
function $(id, type) {
  const element = document.getElementById(id);
  if (!(element instanceof type)) throw new Error(`page is missing #${id}`);
  return element;
}

const ui = {
  connection: $('connection', HTMLElement),
  loginForm: $('login-form', HTMLFormElement),
  loginUser: $('login-user', HTMLInputElement),
  loginPassword: $('login-password', HTMLInputElement),
  signedIn: $('signed-in', HTMLElement),
  who: $('who', HTMLElement),
  role: $('role', HTMLElement),
  logout: $('logout', HTMLButtonElement),
  notice: $('notice', HTMLElement),
  noticeText: $('notice-text', HTMLElement),
  noticeClose: $('notice-close', HTMLButtonElement),
  grid: $('grid', HTMLOListElement),
  decoded: $('decoded', HTMLElement),
  byteEditor: $('byte-editor', HTMLFormElement),
  byteLabel: $('byte-label', HTMLLabelElement),
  byteValue: $('byte-value', HTMLInputElement),
  byteCancel: $('byte-cancel', HTMLButtonElement),
  flagList: $('flag-list', HTMLUListElement),
  terminalForm: $('terminal-form', HTMLFormElement),
  terminalMode: $('terminal-mode', HTMLSelectElement),
  terminalRows: $('terminal-rows', HTMLInputElement),
  terminalCols: $('terminal-cols', HTMLInputElement),
  registryUrl: $('registry-url', HTMLElement),
  registryHash: $('registry-hash', HTMLElement),
  issuerUrl: $('issuer-url', HTMLElement),
  issuerKind: $('issuer-kind', HTMLElement),
  issuerAlg: $('issuer-alg', HTMLElement),
  hashWarning: $('hash-warning', HTMLElement),
  urlForm: $('url-form', HTMLFormElement),
  urlInput: $('url-input', HTMLInputElement),
  envText: $('env-text', HTMLElement),
  envCopy: $('env-copy', HTMLButtonElement),
  envStatus: $('env-status', HTMLElement),
  packageFilter: $('package-filter', HTMLInputElement),
  packagePrev: $('package-prev', HTMLButtonElement),
  packageNext: $('package-next', HTMLButtonElement),
  packageRange: $('package-range', HTMLElement),
  activityChart: /** @type {SVGSVGElement} */ (/** @type {unknown} */ (document.getElementById('activity-chart'))),
  activityRequests: $('activity-requests', HTMLElement),
  activityDownloads: $('activity-downloads', HTMLElement),
  activityPublishes: $('activity-publishes', HTMLElement),
  activityStorage: $('activity-storage', HTMLElement),
  pv: $('package-view', HTMLElement),
  pvName: $('pv-name', HTMLElement),
  pvSource: $('pv-source', HTMLElement),
  pvShown: $('pv-shown', HTMLElement),
  pvClose: $('pv-close', HTMLButtonElement),
  pvDescription: $('pv-description', HTMLElement),
  pvError: $('pv-error', HTMLElement),
  pvPublisher: $('pv-publisher', HTMLElement),
  pvMaintainers: $('pv-maintainers', HTMLElement),
  pvSize: $('pv-size', HTMLElement),
  pvIntegrity: $('pv-integrity', HTMLElement),
  pvLicense: $('pv-license', HTMLElement),
  pvRepository: $('pv-repository', HTMLElement),
  pvTags: $('pv-tags', HTMLUListElement),
  pvDeps: $('pv-deps', HTMLUListElement),
  pvVersions: $('pv-versions', HTMLTableSectionElement),
  pvReadme: $('pv-readme', HTMLElement),
  packageRows: $('package-rows', HTMLTableSectionElement),
  packageCount: $('package-count', HTMLElement),
  packagesEmpty: $('packages-empty', HTMLElement),
  eventLog: $('event-log', HTMLOListElement),
  upstreamMode: $('upstream-mode', HTMLElement),
  upstreamUnavailable: $('upstream-unavailable', HTMLElement),
  upstreamFacts: $('upstream-facts', HTMLElement),
  upstreamUrl: $('upstream-url', HTMLElement),
  upstreamLastSuccess: $('upstream-last-success', HTMLElement),
  upstreamLastFailure: $('upstream-last-failure', HTMLElement),
  upstreamLatency: $('upstream-latency', HTMLElement),
  upstreamCache: $('upstream-cache', HTMLElement),
  upstreamOfflineToggle: $('upstream-offline-toggle', HTMLButtonElement),
  commandForm: $('command-form', HTMLFormElement),
  commandInput: $('command-input', HTMLInputElement),
  commandOutput: $('command-output', HTMLElement),
};

const state = {
  /** @type {DashboardConfig | null} */
  config: null,
  /** @type {string | null} */
  token: sessionStorage.getItem(TOKEN_KEY),
  /** @type {Session} */
  session: { user: null, admin: false, groups: [] },
  /** @type {PackageSummary[]} the page shown */
  packages: [],
  /** @type {PackagePage | null} */
  packagePage: null,
  packageOffset: 0,
  /** @type {string | null} the package in the package view */
  viewing: null,
  /** @type {number | undefined} */
  viewTimer: undefined,
  /** @type {ActivityDocument | null} */
  activity: null,
  /** @type {number | undefined} */
  activityTimer: undefined,
  /** @type {WebSocket | null} */
  socket: null,
  reconnectAttempt: 0,
  /** @type {number | undefined} */
  packagesTimer: undefined,
  /** @type {UpstreamView | null} */
  upstream: null,
  /** @type {number | undefined} */
  upstreamTimer: undefined,
  /** @type {number | null} */
  editingOffset: null,
  /** @type {Set<string>} */
  seenEvents: new Set(),
  /** set when we close the socket on purpose (sign-out): reconnect at once, as anonymous */
  reconnectNow: false,
};

// ---------------------------------------------------------------- helpers

/**
 * @param {string} text
 * @param {'error' | 'info'} [kind]
 */
function showNotice(text, kind = 'error') {
  ui.noticeText.textContent = text;
  ui.notice.classList.toggle('info', kind === 'info');
  ui.notice.hidden = false;
}

function hideNotice() {
  ui.notice.hidden = true;
}

/** @param {number} value */
function hex2(value) {
  return value.toString(16).padStart(2, '0');
}

/** @param {string} hex */
function bytesOf(hex) {
  /** @type {number[]} */
  const bytes = [];
  for (let i = 0; i + 1 < hex.length; i += 2) bytes.push(Number.parseInt(hex.slice(i, i + 2), 16));
  return bytes;
}

/** @param {number | string} time */
function formatTime(time) {
  const date = new Date(time);
  if (Number.isNaN(date.getTime())) return '';
  const pad = (/** @type {number} */ n) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

/**
 * @param {string} tag
 * @param {Record<string, string>} [attributes]
 * @param {(Node | string)[]} [children]
 */
function h(tag, attributes = {}, children = []) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
  for (const child of children) element.append(child);
  return element;
}

/** @returns {Record<string, string>} */
function authHeaders() {
  return state.token ? { authorization: `Bearer ${state.token}` } : {};
}

/**
 * @param {string} path
 * @param {RequestInit} [init]
 * @returns {Promise<any>}
 */
async function api(path, init = {}) {
  const response = await fetch(`${API}${path}`, {
    ...init,
    headers: { accept: 'application/json', ...authHeaders(), ...(init.headers ?? {}) },
    cache: 'no-store',
  });
  const text = await response.text();
  /** @type {any} */
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = { error: text.slice(0, 200) || `HTTP ${response.status}` };
  }
  if (!response.ok) {
    if (response.status === 401 && state.token) signOut('Your session is no longer valid. Please sign in again.');
    throw new Error((body && typeof body.error === 'string' && body.error) || `HTTP ${response.status}`);
  }
  return body;
}

// ---------------------------------------------------------------- rendering

function buildGrid() {
  ui.grid.replaceChildren();
  for (const cell of CELLS) {
    const editable = cell.offset !== 16;
    const button = h('button', {
      type: 'button',
      class: `cell f-${cell.field}`,
      'data-offset': String(cell.offset),
      'data-field': cell.field,
    }, [
      h('span', { class: 'offset', 'aria-hidden': 'true' }, [`${cell.offset} · 0x${hex2(cell.offset)}`]),
      h('span', { class: 'value' }, ['--']),
      h('span', { class: 'field', 'aria-hidden': 'true' }, [cell.short]),
    ]);
    if (!editable) button.setAttribute('aria-disabled', 'true');
    ui.grid.append(h('li', {}, [button]));
  }
}

/** @param {number} offset */
function cellButton(offset) {
  const button = ui.grid.querySelector(`button[data-offset="${offset}"]`);
  if (!(button instanceof HTMLButtonElement)) throw new Error(`no cell for offset ${offset}`);
  return button;
}

/** @param {DashboardConfig} config */
function renderConfig(config) {
  const previous = state.config;
  state.config = config;
  const bytes = [...bytesOf(config.hex), Number.parseInt(config.check, 16)];
  const oldBytes = previous ? [...bytesOf(previous.hex), Number.parseInt(previous.check, 16)] : null;
  ui.grid.dataset.hex = config.hex + config.check;
  CELLS.forEach((cell, index) => {
    const button = cellButton(cell.offset);
    const value = bytes[index];
    const valueSpan = button.querySelector('.value');
    if (valueSpan) valueSpan.textContent = hex2(value);
    const editHint = cell.offset === 16 ? 'computed, read-only' : state.session.admin ? 'press Enter to edit' : 'sign in as admin to edit';
    button.setAttribute('aria-label', `offset ${cell.offset}, ${cell.field}, value 0x${hex2(value)} (${value}), ${editHint}`);
    if (oldBytes && oldBytes[index] !== value) {
      button.classList.remove('changed');
      void button.offsetWidth; // restart the animation
      button.classList.add('changed');
    }
  });

  const f = config.fields;
  const on = FLAGS.filter((flag) => config.flags[flag.name]).map((flag) => flag.name);
  ui.decoded.textContent =
    `version ${f.version} · registryHash ${f.registryHash} · featureFlags ${f.featureFlags} [${on.join(', ') || 'none'}] · ` +
    `terminalMode ${f.terminalMode} · ${f.rows}×${f.cols} · check 0x${config.check}`;

  renderFlags(config);
  renderOfflineSwitch(config.flags.OFFLINE);
  if (document.activeElement?.closest('#terminal-form') == null) {
    ui.terminalMode.value = String(['disabled', 'cooked', 'raw'].indexOf(f.terminalMode));
    ui.terminalRows.value = String(f.rows);
    ui.terminalCols.value = String(f.cols);
  }
  ui.registryUrl.textContent = config.registryUrl;
  ui.registryHash.textContent = f.registryHash;
  ui.issuerUrl.textContent = config.issuer.url;
  ui.issuerKind.textContent = config.issuer.kind;
  ui.issuerAlg.textContent = config.issuer.alg;
  ui.hashWarning.hidden = config.urlMatchesHash;
  ui.hashWarning.textContent = config.urlMatchesHash
    ? ''
    : `registryHash ${f.registryHash} is not the hash of ${config.registryUrl}: tokens are issued for a different audience ` +
      'than this URL suggests. Set the URL again to fix the hash.';
  ui.envText.textContent = config.env;
  if (state.editingOffset !== null && document.activeElement !== ui.byteValue) openEditor(state.editingOffset);
  // a new registry hash or issuer kind invalidates tokens: find out at once whether ours still works
  const issuerChanged = previous !== null && (previous.fields.registryHash !== f.registryHash || previous.flags.PRIVATE_REGISTRY !== config.flags.PRIVATE_REGISTRY);
  if (issuerChanged && state.token) {
    loadSession().catch(() => undefined);
  }
}

/** @param {DashboardConfig} config */
function renderFlags(config) {
  if (ui.flagList.children.length === 0) {
    for (const flag of FLAGS) {
      const button = h('button', { type: 'button', class: 'needs-admin', 'data-flag': flag.name, 'aria-pressed': 'false' }, ['Toggle']);
      button.addEventListener('click', () => toggleFlag(flag.name));
      ui.flagList.append(
        h('li', { class: 'flag', 'data-flag': flag.name }, [
          h('span', { class: 'led', 'aria-hidden': 'true' }),
          h('span', {}, [h('span', { class: 'flag-name' }, [flag.name]), ' ', h('span', { class: 'flag-state' })]),
          button,
          h('p', { class: 'hint' }, [flag.help]),
        ]),
      );
    }
  }
  for (const flag of FLAGS) {
    const item = ui.flagList.querySelector(`li[data-flag="${flag.name}"]`);
    if (!item) continue;
    const on = config.flags[flag.name];
    item.querySelector('.led')?.classList.toggle('on', on);
    const stateLabel = item.querySelector('.flag-state');
    if (stateLabel) stateLabel.textContent = on ? 'on' : 'off';
    const button = item.querySelector('button');
    if (button) {
      button.setAttribute('aria-pressed', String(on));
      button.textContent = on ? `Turn ${flag.name} off` : `Turn ${flag.name} on`;
    }
  }
  applyPermissions();
}

/** The OFFLINE switch of the upstream card: the flag itself (the config is the truth, live over the socket). */
function renderOfflineSwitch(/** @type {boolean} */ offline) {
  ui.upstreamMode.dataset.offline = String(offline);
  ui.upstreamMode.textContent = offline ? 'OFFLINE' : 'online';
  ui.upstreamOfflineToggle.setAttribute('aria-pressed', String(offline));
  ui.upstreamOfflineToggle.textContent = offline ? 'Go online' : 'Go offline';
}

/** @param {number} bytes */
function formatBytes(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
  return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
}

function renderUpstream() {
  const view = state.upstream;
  if (!view) return;
  ui.upstreamUnavailable.hidden = view.available;
  ui.upstreamFacts.hidden = !view.available;
  if (!view.available) {
    ui.upstreamUnavailable.textContent = `Upstream status not available: ${view.reason ?? 'unknown'}`;
    return;
  }
  ui.upstreamUrl.textContent = view.url ?? 'none (no upstream configured)';
  ui.upstreamLastSuccess.textContent = view.lastSuccess === null ? 'never' : formatTime(view.lastSuccess);
  ui.upstreamLastFailure.textContent = view.lastFailure === null ? 'none' : `${formatTime(view.lastFailure.time)} — ${view.lastFailure.error}`;
  ui.upstreamLatency.textContent = view.latencyMs === null ? '—' : `${Math.round(view.latencyMs)} ms`;
  ui.upstreamCache.textContent = `${view.cachedPackages} package${view.cachedPackages === 1 ? '' : 's'}, ${formatBytes(view.cachedBytes)}`;
}

function applyPermissions() {
  const admin = state.session.admin;
  for (const element of document.querySelectorAll('.needs-admin')) {
    if (element instanceof HTMLButtonElement) {
      element.disabled = !admin;
      element.title = admin ? '' : 'Sign in as a registry admin to change the config';
    }
  }
}

function renderSession() {
  const { user, admin } = state.session;
  ui.loginForm.hidden = user !== null;
  ui.signedIn.hidden = user === null;
  ui.who.textContent = user ?? '';
  ui.role.textContent = admin ? 'admin' : 'read-only';
  ui.role.classList.toggle('admin', admin);
  applyPermissions();
  if (state.config) renderConfig(state.config);
}

function renderPackages() {
  const page = state.packagePage;
  const filter = ui.packageFilter.value.trim();
  const total = page?.total ?? 0;
  const counts = page ? `${page.total}${page.cached ? ` (${page.cached} cached)` : ''}` : '';
  ui.packageCount.textContent = filter ? `${counts} matching “${filter}”` : counts;
  const first = total === 0 ? 0 : state.packageOffset + 1;
  const last = state.packageOffset + state.packages.length;
  ui.packageRange.textContent = total === 0 ? '' : `${first}–${last} of ${total}`;
  ui.packagePrev.disabled = state.packageOffset === 0;
  ui.packageNext.disabled = last >= total;
  ui.packagesEmpty.hidden = state.packages.length > 0;
  ui.packagesEmpty.textContent = !filter && total === 0 ? 'No packages yet.' : 'No package matches the search.';
  ui.packageRows.replaceChildren(
    ...state.packages.map((pkg) =>
      h('tr', { 'data-package': pkg.name, 'data-source': pkg.source ?? 'local' }, [
        h('td', { class: 'name' }, [h('button', { type: 'button', class: 'package-link', 'data-name': pkg.name, title: `open ${pkg.name}` }, [pkg.name])]),
        h('td', {}, [
          h('span', { class: `badge source source-${pkg.source ?? 'local'}`, title: pkg.source === 'cached' ? 'a copy of the upstream\'s package' : 'published here' }, [pkg.source ?? 'local']),
        ]),
        h('td', {}, [h('ul', { class: 'versions', 'aria-label': `versions of ${pkg.name}` }, lastItems(pkg.versions, 5).map((v) => h('li', {}, [v])))]),
        h('td', {}, [
          h('ul', { class: 'tags', 'aria-label': `dist-tags of ${pkg.name}` }, Object.entries(pkg.distTags).map(([tag, v]) => h('li', {}, [`${tag}: ${v}`]))),
        ]),
        h('td', {}, [pkg.time ? h('time', { datetime: pkg.time }, [formatTime(pkg.time)]) : '']),
      ]),
    ),
  );
}

/** The newest `n` versions, with "…" for the rest (a package may have thousands). */
function lastItems(/** @type {string[]} */ items, /** @type {number} */ n) {
  return items.length <= n ? items : [`… ${items.length - n} more`, ...items.slice(-n)];
}

// ---------------------------------------------------------------- package view

/** Tags and attributes the readme may contain (the server's renderer emits no others; this is the second check). */
const README_TAGS = new Set(['P', 'H1', 'H2', 'H3', 'H4', 'H5', 'H6', 'UL', 'OL', 'LI', 'A', 'CODE', 'PRE', 'EM', 'STRONG', 'BLOCKQUOTE', 'HR', 'BR', 'TABLE', 'THEAD', 'TBODY', 'TR', 'TH', 'TD', 'S', 'SPAN']);
/** @type {Record<string, string[]>} */
const README_ATTRIBUTES = { A: ['href', 'rel', 'title'], OL: ['start'], CODE: ['class'], SPAN: ['class'] };

/**
 * The readme HTML, rebuilt element by element from an inert parse (DOMParser runs no script and
 * loads nothing): only allowed tags and attributes survive, links only to http(s)/mailto/#.
 * @param {string} html
 */
function safeReadme(html) {
  const parsed = new DOMParser().parseFromString(`<body>${html}</body>`, 'text/html');
  const fragment = document.createDocumentFragment();
  /** @param {Node} from @param {Node} to */
  const copy = (from, to) => {
    for (const child of from.childNodes) {
      if (child.nodeType === Node.TEXT_NODE) {
        to.appendChild(document.createTextNode(child.textContent ?? ''));
      } else if (child.nodeType === Node.ELEMENT_NODE) {
        const element = /** @type {Element} */ (child);
        if (!README_TAGS.has(element.tagName)) {
          copy(element, to); // unknown wrapper: keep its text only
          continue;
        }
        const clean = document.createElement(element.tagName.toLowerCase());
        for (const name of README_ATTRIBUTES[element.tagName] ?? []) {
          const value = element.getAttribute(name);
          if (value === null) continue;
          if (name === 'href' && !/^(https?:\/\/|mailto:|#)/i.test(value.trim())) continue;
          clean.setAttribute(name, value);
        }
        if (clean instanceof HTMLAnchorElement && clean.hasAttribute('href')) clean.rel = 'noopener noreferrer nofollow';
        copy(element, clean);
        to.appendChild(clean);
      }
    }
  };
  copy(parsed.body, fragment);
  return fragment;
}

/** @param {number | null} bytes */
function sizeText(bytes) {
  return bytes === null ? '—' : formatBytes(bytes);
}

/** @param {string} name */
async function openPackage(name) {
  state.viewing = name;
  if (location.hash !== `#package=${encodeURIComponent(name)}`) history.replaceState(null, '', `#package=${encodeURIComponent(name)}`);
  ui.pv.hidden = false;
  ui.pvName.textContent = name;
  ui.pv.dataset.state = 'loading';
  try {
    const view = /** @type {PackageView} */ (await api(`/package?name=${encodeURIComponent(name)}`));
    if (state.viewing !== name) return;
    renderPackageView(view);
  } catch (error) {
    if (state.viewing !== name) return;
    ui.pv.dataset.state = 'error';
    ui.pvError.hidden = false;
    ui.pvError.textContent = `Could not open ${name}: ${error instanceof Error ? error.message : String(error)}`;
    for (const element of [ui.pvVersions, ui.pvTags, ui.pvDeps, ui.pvReadme]) element.replaceChildren();
  }
}

function closePackage() {
  state.viewing = null;
  ui.pv.hidden = true;
  if (location.hash.startsWith('#package=')) history.replaceState(null, '', location.pathname + location.search);
}

/** @param {PackageView} view */
function renderPackageView(view) {
  ui.pv.dataset.state = 'ready';
  ui.pv.dataset.package = view.name;
  ui.pvError.hidden = true;
  ui.pvName.textContent = view.name;
  ui.pvSource.textContent = view.source;
  ui.pvSource.className = `badge source source-${view.source}`;
  ui.pvShown.textContent = view.shown ? `showing ${view.shown}` : '';
  ui.pvDescription.textContent = view.description ?? '';
  const shown = view.versions.find((v) => v.version === view.shown);
  ui.pvPublisher.textContent = shown?.publisher ?? '—';
  ui.pvMaintainers.textContent = view.maintainers.map((m) => m.name).join(', ') || '—';
  ui.pvSize.textContent = shown
    ? `${sizeText(shown.tarballBytes)} tarball · ${sizeText(shown.unpackedSize)} unpacked${shown.fileCount === null ? '' : ` · ${shown.fileCount} files`}`
    : '—';
  ui.pvIntegrity.textContent = shown?.integrity ?? '—';
  ui.pvLicense.textContent = view.license ?? '—';
  ui.pvRepository.textContent = view.repository ?? '—';
  ui.pvTags.replaceChildren(...Object.entries(view.distTags).map(([tag, version]) => h('li', {}, [`${tag}: ${version}`])));
  /** @type {HTMLElement[]} */
  const deps = [];
  for (const [kind, map] of Object.entries(view.dependencies)) {
    for (const [dep, range] of Object.entries(map)) deps.push(h('li', { 'data-kind': kind }, [`${dep} ${range} `, h('span', { class: 'dep-kind' }, [kind === 'dependencies' ? '' : kind.replace('Dependencies', '')])]));
  }
  ui.pvDeps.replaceChildren(...(deps.length ? deps : [h('li', {}, ['none'])]));
  ui.pvVersions.replaceChildren(
    ...view.versions.map((v) =>
      h('tr', { 'data-version': v.version }, [
        h('td', {}, [v.version, ...v.tags.map((tag) => h('span', { class: 'badge' }, [tag])), v.deprecated ? h('span', { class: 'badge', title: v.deprecated }, ['deprecated']) : '']),
        h('td', {}, [v.time ? h('time', { datetime: v.time }, [formatTime(v.time)]) : '']),
        h('td', {}, [v.publisher ?? '—']),
        h('td', {}, [sizeText(v.tarballBytes)]),
        h('td', { class: 'integrity' }, [v.integrity ?? '—']),
      ]),
    ),
  );
  ui.pvReadme.replaceChildren(view.readme.html ? safeReadme(view.readme.html) : h('p', { class: 'hint' }, ['No readme.']));
  if (view.readme.truncated) ui.pvReadme.append(h('p', { class: 'hint' }, [`(readme cut at 256 KiB of ${view.readme.length} characters)`]));
}

// ---------------------------------------------------------------- activity chart

/**
 * @param {string} tag
 * @param {Record<string, string | number>} attributes
 */
function svg(tag, attributes) {
  const element = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
  return element;
}

function renderActivity() {
  const doc = state.activity;
  if (!doc) return;
  const chart = ui.activityChart;
  const sum = (/** @type {keyof ActivityTotals} */ key) => doc.buckets.reduce((total, bucket) => total + bucket[key], 0);
  const sums = { publishes: sum('publishes'), downloads: sum('downloads'), requests: sum('requests') };
  ui.activityRequests.textContent = String(sums.requests);
  ui.activityDownloads.textContent = String(sums.downloads);
  ui.activityPublishes.textContent = String(sums.publishes);
  ui.activityStorage.textContent = doc.storage
    ? `${formatBytes(doc.storage.localBytes)} local · ${formatBytes(doc.storage.cachedBytes)} cached · ${doc.storage.files} files`
    : 'measuring…';
  chart.dataset.publishes = String(sums.publishes);
  chart.dataset.downloads = String(sums.downloads);
  chart.dataset.requests = String(sums.requests);
  const width = 600;
  const height = 160;
  const top = 14;
  const bottom = 16;
  const n = doc.buckets.length;
  const step = width / Math.max(1, n);
  const max = Math.max(1, ...doc.buckets.map((b) => Math.max(b.requests, b.downloads)));
  const maxPublishes = Math.max(1, ...doc.buckets.map((b) => b.publishes));
  const y = (/** @type {number} */ value, /** @type {number} */ scale) => height - bottom - (value / scale) * (height - top - bottom);
  /** @type {Element[]} */
  const parts = [chart.querySelector('title') ?? svg('title', {})];
  for (const fraction of [0, 0.5, 1]) {
    const lineY = y(max * fraction, max);
    parts.push(svg('line', { class: 'grid-line', x1: 0, x2: width, y1: lineY, y2: lineY }));
  }
  const maxLabel = svg('text', { class: 'axis', x: 4, y: top - 3 });
  maxLabel.textContent = `${max}/min`;
  parts.push(maxLabel);
  doc.buckets.forEach((bucket, i) => {
    if (bucket.publishes === 0) return;
    const barTop = y(bucket.publishes, maxPublishes);
    const bar = svg('rect', { class: 'bar publishes', x: i * step + step * 0.2, width: step * 0.6, y: barTop, height: height - bottom - barTop, 'data-start': bucket.start });
    const title = svg('title', {});
    title.textContent = `${bucket.publishes} publish${bucket.publishes === 1 ? '' : 'es'} at ${formatTime(bucket.start)}`;
    bar.append(title);
    parts.push(bar);
  });
  for (const key of /** @type {const} */ (['requests', 'downloads'])) {
    const points = doc.buckets.map((bucket, i) => `${(i * step + step / 2).toFixed(1)},${y(bucket[key], max).toFixed(1)}`).join(' ');
    parts.push(svg('polyline', { class: `series ${key}`, points }));
  }
  const first = svg('text', { class: 'axis', x: 4, y: height - 3 });
  first.textContent = doc.buckets[0] ? formatTime(doc.buckets[0].start).slice(11, 16) : '';
  const now = svg('text', { class: 'axis', x: width - 4, y: height - 3, 'text-anchor': 'end' });
  now.textContent = 'now';
  parts.push(first, now);
  chart.replaceChildren(...parts);
  const titleElement = chart.querySelector('title');
  if (titleElement) titleElement.textContent = `Last hour: ${sums.requests} requests, ${sums.downloads} downloads, ${sums.publishes} publishes`;
}

async function loadActivity() {
  try {
    state.activity = /** @type {ActivityDocument} */ (await api('/activity'));
    renderActivity();
  } catch {
    // the next socket push or event tries again
  }
}

function scheduleActivity() {
  window.clearTimeout(state.activityTimer);
  state.activityTimer = window.setTimeout(loadActivity, 150);
}

/** @param {RegistryEvent} event */
function eventKey(event) {
  return `${event.time}|${event.kind}|${event.name ?? ''}|${event.version ?? ''}|${event.detail ?? ''}`;
}

/** @param {RegistryEvent} event */
function logEvent(event) {
  const key = eventKey(event);
  if (state.seenEvents.has(key)) return;
  state.seenEvents.add(key);
  const subject = event.name ? `${event.name}${event.version ? `@${event.version}` : ''}` : '';
  const who = event.actor ?? event.user;
  const parts = [
    subject,
    event.tags && event.tags.length ? event.tags.join(', ') : '',
    who ? `by ${who}` : '',
    event.address ? `from ${event.address}` : '',
    event.tokenId ? `token ${event.tokenId.slice(0, 8)}…` : '',
    event.detail ?? '',
  ]
    .filter(Boolean)
    .join(' · ');
  const item = h('li', { 'data-kind': event.kind }, [
    h('time', { datetime: new Date(event.time).toISOString() }, [formatTime(event.time)]),
    h('span', { class: `event-kind kind-${event.kind}` }, [event.kind]),
    parts,
  ]);
  ui.eventLog.prepend(item);
  while (ui.eventLog.children.length > MAX_EVENTS) ui.eventLog.lastElementChild?.remove();
}

// ---------------------------------------------------------------- data

async function loadConfig() {
  renderConfig(await api('/config'));
}

/** answers of older package requests are dropped (a search typed while a refresh was in flight) */
let packagesRequest = 0;

async function loadPackages() {
  const request = ++packagesRequest;
  try {
    const q = ui.packageFilter.value.trim();
    const query = new URLSearchParams({ offset: String(state.packageOffset), limit: String(PAGE_SIZE) });
    if (q) query.set('q', q);
    const body = /** @type {PackagePage} */ (await api(`/packages?${query}`));
    if (request !== packagesRequest) return;
    // the list shrank under us (unpublish, narrower search): back to the last page that exists
    if (body.total > 0 && body.packages.length === 0 && state.packageOffset > 0) {
      state.packageOffset = Math.max(0, Math.floor((body.total - 1) / PAGE_SIZE) * PAGE_SIZE);
      return loadPackages();
    }
    state.packagePage = body;
    state.packages = Array.isArray(body?.packages) ? body.packages : [];
    renderPackages();
    ui.packageRows.dataset.query = q;
  } catch (error) {
    showNotice(`Could not load packages: ${error instanceof Error ? error.message : String(error)}`);
  }
}

async function loadUpstream() {
  try {
    state.upstream = /** @type {UpstreamView} */ (await api('/upstream'));
    renderUpstream();
  } catch (error) {
    state.upstream = { available: false, reason: error instanceof Error ? error.message : String(error) };
    renderUpstream();
  }
}

function scheduleUpstream() {
  window.clearTimeout(state.upstreamTimer);
  state.upstreamTimer = window.setTimeout(loadUpstream, 150);
}

function schedulePackages() {
  window.clearTimeout(state.packagesTimer);
  state.packagesTimer = window.setTimeout(loadPackages, 150);
}

async function loadSession() {
  if (!state.token) {
    state.session = { user: null, admin: false, groups: [] };
    renderSession();
    return;
  }
  const session = /** @type {Session} */ (await api('/session'));
  if (!session.user) {
    signOut(session.error ? `Sign-in expired or was revoked (${session.error}).` : 'Sign-in expired or was revoked.');
    return;
  }
  state.session = session;
  renderSession();
  await loadAudit();
}

/** The audit trail (what this user may see) fills the event log with what happened before the page opened. */
async function loadAudit() {
  try {
    const body = await api('/audit?limit=50');
    /** @type {AuditRecord[]} */
    const records = Array.isArray(body?.records) ? body.records : [];
    for (const record of records.slice().reverse()) {
      /** @type {RegistryEvent} */
      const event = { kind: record.kind, time: Date.parse(record.time) };
      if (record.name !== undefined) event.name = record.name;
      if (record.version !== undefined) event.version = record.version;
      if (record.detail !== undefined) event.detail = record.detail;
      if (record.actor) event.actor = record.actor;
      else if (record.user !== undefined) event.user = record.user;
      if (record.address) event.address = record.address;
      if (record.tokenId) event.tokenId = record.tokenId;
      logEvent(event);
    }
  } catch (error) {
    showNotice(`Could not load the audit trail: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/**
 * @param {Record<string, unknown>} operation
 * @returns {Promise<boolean>}
 */
async function writeConfig(operation) {
  try {
    const config = await api('/config', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(operation),
    });
    renderConfig(config);
    hideNotice();
    return true;
  } catch (error) {
    showNotice(`Change refused: ${error instanceof Error ? error.message : String(error)}`);
    return false;
  }
}

// ---------------------------------------------------------------- actions

/** @param {FlagName} name */
async function toggleFlag(name) {
  const flag = FLAGS.find((candidate) => candidate.name === name);
  if (flag?.invalidatesTokens && !window.confirm(TOKEN_WARNING)) return;
  await writeConfig({ op: 'toggleFeature', flag: name });
}

/** @param {number} offset */
function openEditor(offset) {
  if (!state.config) return;
  const index = CELLS.findIndex((cell) => cell.offset === offset);
  const cell = CELLS[index];
  const bytes = bytesOf(state.config.hex);
  for (const button of ui.grid.querySelectorAll('.cell.selected')) button.classList.remove('selected');
  cellButton(offset).classList.add('selected');
  state.editingOffset = offset;
  ui.byteLabel.textContent = `Byte ${offset} (0x${hex2(offset)}, ${cell.field})`;
  ui.byteValue.value = `0x${hex2(bytes[index])}`;
  ui.byteEditor.hidden = false;
}

function closeEditor() {
  const offset = state.editingOffset;
  state.editingOffset = null;
  ui.byteEditor.hidden = true;
  for (const button of ui.grid.querySelectorAll('.cell.selected')) button.classList.remove('selected');
  if (offset !== null) cellButton(offset).focus();
}

/** @param {string} text */
function parseByte(text) {
  const trimmed = text.trim().toLowerCase();
  const value = /^0x[0-9a-f]{1,2}$/.test(trimmed) ? Number.parseInt(trimmed.slice(2), 16) : /^\d{1,3}$/.test(trimmed) ? Number(trimmed) : NaN;
  return Number.isInteger(value) && value >= 0 && value <= 255 ? value : null;
}

/**
 * @param {string} text
 * @param {Element} status
 */
async function copyText(text, status) {
  try {
    await navigator.clipboard.writeText(text);
    status.textContent = 'Copied.';
    return;
  } catch {
    // no clipboard API (insecure context, permission refused): fall back to a selection copy
  }
  const area = h('textarea', { 'aria-hidden': 'true', readonly: '' });
  if (!(area instanceof HTMLTextAreaElement)) return;
  area.value = text;
  area.style.position = 'fixed';
  area.style.opacity = '0';
  document.body.append(area);
  area.select();
  let copied = false;
  try {
    copied = document.execCommand('copy');
  } catch {
    copied = false;
  }
  area.remove();
  if (copied) {
    status.textContent = 'Copied.';
  } else {
    const range = document.createRange();
    range.selectNodeContents(ui.envText);
    window.getSelection()?.removeAllRanges();
    window.getSelection()?.addRange(range);
    status.textContent = 'Copy is blocked here: the text is selected, press Ctrl+C.';
  }
}

/**
 * @param {string} message
 */
function signOut(message) {
  state.token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  state.session = { user: null, admin: false, groups: [] };
  renderSession();
  if (message) showNotice(message, 'info');
  // the socket keeps its old identity until it reconnects
  if (state.socket) {
    state.reconnectNow = true;
    state.socket.close(4000, 'signed out');
  }
}

// ---------------------------------------------------------------- live socket

function setConnection(/** @type {'connecting' | 'live' | 'reconnecting'} */ status, /** @type {string} */ text) {
  ui.connection.dataset.state = status;
  ui.connection.textContent = text;
}

function connect() {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const socket = new WebSocket(`${scheme}//${location.host}${SOCKET_PATH}`);
  state.socket = socket;
  socket.addEventListener('open', () => {
    state.reconnectAttempt = 0;
    setConnection('live', 'Live');
    if (state.token) socket.send(JSON.stringify({ type: 'auth', token: state.token }));
    // whatever happened while we were away: one fresh package list
    schedulePackages();
  });
  socket.addEventListener('message', (message) => {
    /** @type {any} */
    let data;
    try {
      data = JSON.parse(String(message.data));
    } catch {
      return;
    }
    switch (data?.type) {
      case 'config': {
        const { type: _type, ...config } = data;
        renderConfig(/** @type {DashboardConfig} */ (config));
        scheduleUpstream();
        break;
      }
      case 'event':
        logEvent(data);
        // upstream health and cache size change with upstream events and with cache fills
        if (data.kind === 'upstream' || data.kind === 'publish' || data.kind === 'cache') scheduleUpstream();
        if (data.kind !== 'config' && data.kind !== 'login' && data.kind !== 'logout' && data.kind !== 'token') {
          schedulePackages();
          if (state.viewing !== null && data.name === state.viewing) {
            window.clearTimeout(state.viewTimer);
            const name = state.viewing;
            state.viewTimer = window.setTimeout(() => void openPackage(name), 150);
          }
        }
        if (data.kind === 'publish' || data.kind === 'cache' || data.kind === 'unpublish') scheduleActivity();
        break;
      case 'activity': {
        const { type: _type, ...doc } = data;
        state.activity = /** @type {ActivityDocument} */ (doc);
        renderActivity();
        break;
      }
      case 'history':
        for (const event of Array.isArray(data.events) ? data.events : []) logEvent(event);
        break;
      case 'output':
        ui.commandOutput.textContent = String(data.text ?? '');
        ui.commandOutput.classList.toggle('failed', data.ok !== true);
        break;
      case 'auth':
        if (data.ok !== true && state.token) signOut(`Sign-in is no longer valid (${data.error ?? 'rejected'}).`);
        break;
      case 'error':
        ui.commandOutput.textContent = String(data.error ?? 'error');
        ui.commandOutput.classList.add('failed');
        break;
      default:
        break;
    }
  });
  socket.addEventListener('close', () => {
    if (state.socket !== socket) return;
    state.socket = null;
    if (state.reconnectNow) {
      state.reconnectNow = false;
      setConnection('connecting', 'Connecting…');
      connect();
      return;
    }
    const delay = Math.min(10_000, 500 * 2 ** state.reconnectAttempt) * (0.8 + Math.random() * 0.4);
    state.reconnectAttempt += 1;
    setConnection('reconnecting', `Disconnected, retrying in ${Math.round(delay / 1000)} s…`);
    window.setTimeout(connect, delay);
  });
}

// ---------------------------------------------------------------- wiring

buildGrid();

ui.grid.addEventListener('click', (event) => {
  const target = event.target instanceof Element ? event.target.closest('button.cell') : null;
  if (!(target instanceof HTMLButtonElement)) return;
  const offset = Number(target.dataset.offset);
  if (offset === 16) {
    showNotice('The check byte is computed from bytes 4..15; edit those instead.', 'info');
    return;
  }
  if (!state.session.admin) {
    showNotice('Sign in as a registry admin to edit bytes.', 'info');
    return;
  }
  openEditor(offset);
  ui.byteValue.focus();
  ui.byteValue.select();
});

ui.grid.addEventListener('keydown', (event) => {
  const target = event.target instanceof Element ? event.target.closest('button.cell') : null;
  if (!(target instanceof HTMLButtonElement)) return;
  const offset = Number(target.dataset.offset);
  /** @type {Record<string, number>} */
  const moves = { ArrowLeft: -1, ArrowRight: 1, Home: 4 - offset, End: 16 - offset };
  const step = moves[event.key];
  if (step === undefined) return;
  const next = Math.min(16, Math.max(4, offset + step));
  event.preventDefault();
  cellButton(next).focus();
});

ui.byteEditor.addEventListener('submit', async (event) => {
  event.preventDefault();
  const offset = state.editingOffset;
  if (offset === null) return;
  const value = parseByte(ui.byteValue.value);
  if (value === null) {
    showNotice('A byte is 0..255 in decimal, or 0x00..0xff.');
    ui.byteValue.focus();
    return;
  }
  if (offset >= 5 && offset <= 8 && !window.confirm(TOKEN_WARNING)) return;
  if (await writeConfig({ op: 'setByte', offset, value })) closeEditor();
});
ui.byteCancel.addEventListener('click', closeEditor);
ui.byteEditor.addEventListener('keydown', (event) => {
  if (event.key === 'Escape') closeEditor();
});

ui.terminalForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  if (!state.config) return;
  const wanted = [
    { offset: 13, value: Number(ui.terminalMode.value), current: ['disabled', 'cooked', 'raw'].indexOf(state.config.fields.terminalMode) },
    { offset: 14, value: Number(ui.terminalRows.value), current: state.config.fields.rows },
    { offset: 15, value: Number(ui.terminalCols.value), current: state.config.fields.cols },
  ];
  for (const { offset, value, current } of wanted) {
    if (value === current) continue;
    if (!(await writeConfig({ op: 'setByte', offset, value }))) return;
  }
});

ui.urlForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  const url = ui.urlInput.value.trim();
  if (!url) return;
  if (!window.confirm(`${TOKEN_WARNING}\n\nNew registry URL: ${url}`)) return;
  if (await writeConfig({ op: 'setRegistryUrl', url })) ui.urlInput.value = '';
});

ui.envCopy.addEventListener('click', () => {
  void copyText(state.config?.env ?? ui.envText.textContent ?? '', ui.envStatus);
});

/** @type {number | undefined} */
let searchTimer;
ui.packageFilter.addEventListener('input', () => {
  // at once: narrow the rows shown; then the server's answer (all pages) replaces them
  const q = ui.packageFilter.value.trim().toLowerCase();
  state.packages = state.packages.filter((pkg) => pkg.name.toLowerCase().includes(q));
  renderPackages();
  ui.packageRows.dataset.query = '…';
  window.clearTimeout(searchTimer);
  searchTimer = window.setTimeout(() => {
    state.packageOffset = 0;
    void loadPackages();
  }, 200);
});
ui.packagePrev.addEventListener('click', () => {
  state.packageOffset = Math.max(0, state.packageOffset - PAGE_SIZE);
  void loadPackages();
});
ui.packageNext.addEventListener('click', () => {
  state.packageOffset += PAGE_SIZE;
  void loadPackages();
});
ui.packageRows.addEventListener('click', (event) => {
  const target = event.target instanceof Element ? event.target.closest('button.package-link') : null;
  if (target instanceof HTMLButtonElement && target.dataset.name) {
    void openPackage(target.dataset.name).then(() => ui.pv.scrollIntoView({ block: 'start' }));
  }
});
ui.pvClose.addEventListener('click', closePackage);
window.addEventListener('hashchange', () => {
  const name = packageFromHash();
  if (name) void openPackage(name);
  else if (state.viewing !== null) closePackage();
});

/** `#package=<name>` opens the package view (a link to a package). */
function packageFromHash() {
  if (!location.hash.startsWith('#package=')) return null;
  try {
    return decodeURIComponent(location.hash.slice('#package='.length)) || null;
  } catch {
    return null;
  }
}

ui.commandForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const line = ui.commandInput.value.trim();
  if (!line) return;
  if (!state.socket || state.socket.readyState !== WebSocket.OPEN) {
    ui.commandOutput.textContent = 'Not connected; the command was not sent.';
    ui.commandOutput.classList.add('failed');
    return;
  }
  state.socket.send(JSON.stringify({ type: 'command', line }));
});

ui.loginForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  try {
    const response = await fetch('/_auth/token', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ username: ui.loginUser.value, password: ui.loginPassword.value }),
      cache: 'no-store',
    });
    /** @type {any} */
    const body = await response.json().catch(() => ({}));
    if (!response.ok || typeof body?.token !== 'string') throw new Error(body?.error ?? `HTTP ${response.status}`);
    state.token = body.token;
    sessionStorage.setItem(TOKEN_KEY, body.token);
    ui.loginPassword.value = '';
    await loadSession();
    hideNotice();
    if (state.socket?.readyState === WebSocket.OPEN) state.socket.send(JSON.stringify({ type: 'auth', token: body.token }));
    schedulePackages();
  } catch (error) {
    showNotice(`Sign-in failed: ${error instanceof Error ? error.message : String(error)}`);
  }
});

ui.logout.addEventListener('click', () => signOut(''));
ui.upstreamOfflineToggle.addEventListener('click', () => toggleFlag('OFFLINE'));
// latency and last success move without an event of their own: a slow, bounded refresh
window.setInterval(() => {
  if (document.visibilityState === 'visible') void loadUpstream();
}, 15_000);
ui.noticeClose.addEventListener('click', hideNotice);

setConnection('connecting', 'Connecting…');
loadSession()
  .catch((error) => showNotice(`Could not check the sign-in: ${error instanceof Error ? error.message : String(error)}`))
  .finally(() => {
    loadConfig().catch((error) => showNotice(`Could not load the config: ${error instanceof Error ? error.message : String(error)}`));
    void loadPackages();
    void loadUpstream();
    void loadActivity();
    const linked = packageFromHash();
    if (linked) void openPackage(linked);
    connect();
  });
