/**
 * Verdaccio's own packages, as the instances Verdaccio's server runs.
 *
 * Verdaccio 6.10.4 is ESM and `import`s `@verdaccio/core`, `@verdaccio/config` and `@verdaccio/url`
 * (their `build/index.mjs`). A plain `require('@verdaccio/core')` from our CommonJS build resolves
 * the packages' other build (`build/index.js`) and loads a second copy of each: ≈ 60 ms CPU at every
 * start (core's zod manifest schemas alone ≈ 35 ms) and its memory, for functions Verdaccio has
 * already loaded (issue 17's cold-start profile). `require()` of the ESM build (Node ≥ 22.12 and Bun
 * load ES modules synchronously) hands back the module Verdaccio imported — one copy, and errors
 * made here are the very classes Verdaccio's own code checks. Outside a Verdaccio process (unit
 * tests) it loads the ESM build itself.
 */
type VerdaccioCore = typeof import('@verdaccio/core');
type VerdaccioConfig = typeof import('@verdaccio/config');
type VerdaccioUrl = typeof import('@verdaccio/url');

export const verdaccioCore = require('@verdaccio/core/build/index.mjs') as VerdaccioCore;
export const verdaccioConfig = require('@verdaccio/config/build/index.mjs') as VerdaccioConfig;
export const verdaccioUrl = require('@verdaccio/url/build/index.mjs') as VerdaccioUrl;
