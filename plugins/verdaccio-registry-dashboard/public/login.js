// The web login's sign-in page (docs/web-login-and-tokens.md). The session id is the last path
// segment; the auth plugin's routes do the rest: GET /-/v1/login/<id> says whether to offer
// registration, POST /-/v1/login/<id>/complete signs in, and npm collects its token itself.
// @ts-check
'use strict';
(() => {
  /** @param {string} id @returns {HTMLElement} */
  const $ = (id) => {
    const element = document.getElementById(id);
    if (!element) throw new Error(`login page: #${id} is missing`);
    return element;
  };
  /** @param {string} id @returns {HTMLInputElement} */
  const input = (id) => /** @type {HTMLInputElement} */ ($(id));
  /** @param {string} id @returns {HTMLButtonElement} */
  const button = (id) => /** @type {HTMLButtonElement} */ ($(id));
  const id = decodeURIComponent(location.pathname.split('/').filter(Boolean).pop() || '');
  // behind a proxy that serves the registry under a path (Verdaccio's url_prefix), the API is under it too
  const prefix = location.pathname.replace(/\/_dashboard\/login\/[^/]+\/?$/, '');
  const base = `${prefix}/-/v1/login/${encodeURIComponent(id)}`;
  let create = false;

  /** @param {HTMLElement} element @param {boolean} [visible] */
  const show = (element, visible = true) => { element.hidden = !visible; };
  /** @param {string} text */
  const fail = (text) => { $('message').textContent = text; show($('message')); };
  /** @param {Response} response @returns {Promise<string>} */
  const errorOf = async (response) => {
    try {
      const body = await response.json();
      if (body && typeof body.error === 'string') return body.error;
    } catch { /* not JSON */ }
    return `the registry answered ${response.status}`;
  };

  const mode = () => (create && /** @type {HTMLInputElement | null} */ (document.querySelector('input[name=mode]:checked'))?.value === 'create' ? 'create' : 'login');
  const updateMode = () => {
    const creating = mode() === 'create';
    button('submit').textContent = creating ? 'Create account and sign in' : 'Sign in';
    input('password').autocomplete = creating ? 'new-password' : 'current-password';
  };

  const load = async () => {
    let response;
    try {
      response = await fetch(base, { headers: { accept: 'application/json' }, cache: 'no-store', credentials: 'omit' });
    } catch {
      $('intro').textContent = 'The registry cannot be reached.';
      return;
    }
    if (!response.ok) {
      $('intro').textContent = await errorOf(response);
      return;
    }
    /** @type {{create?: unknown, requestedFrom?: unknown}} */
    const session = await response.json();
    create = session.create === true;
    $('title').textContent = create ? 'Create an npm account or sign in' : 'Sign in to npm';
    $('intro').textContent = create ? 'npm adduser is waiting for you to create an account (or sign in).' : 'npm login is waiting for you to sign in.';
    $('requested-from').textContent = String(session.requestedFrom);
    $('command').textContent = create ? 'npm adduser' : 'npm login';
    show($('origin'));
    show($('mode'), create);
    show($('form'));
    updateMode();
    input('username').focus();
  };

  $('form').addEventListener('change', updateMode);
  $('form').addEventListener('submit', async (event) => {
    event.preventDefault();
    show($('message'), false);
    button('submit').disabled = true;
    const username = input('username').value.trim();
    /** @type {{username: string, password: string, create?: boolean}} */
    const body = { username, password: input('password').value };
    if (mode() === 'create') body.create = true;
    try {
      const response = await fetch(`${base}/complete`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify(body),
        cache: 'no-store',
        credentials: 'omit',
      });
      if (!response.ok) {
        fail(await errorOf(response));
        return;
      }
      $('who').textContent = username;
      show($('form'), false);
      show($('origin'), false);
      show($('intro'), false);
      show($('done'));
    } catch {
      fail('The registry cannot be reached.');
    } finally {
      button('submit').disabled = false;
      input('password').value = '';
    }
  });

  load();
})();
