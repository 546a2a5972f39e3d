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

function verdaccioPackage<T>(name: '@verdaccio/core' | '@verdaccio/config' | '@verdaccio/url'): T {
  try {
    return require(`${name}/build/index.mjs`) as T;
  } catch (error) {
    // Node 22.0–22.11 cannot require() an ES module (ERR_REQUIRE_ESM; allowed from 22.12, which
    // `engines: >=22` admits): there the package's CommonJS build serves — the same functions, as
    // the second copy described above. Any other failure is a broken install and is thrown.
    if ((error as NodeJS.ErrnoException).code !== 'ERR_REQUIRE_ESM') throw error;
    return require(name) as T;
  }
}

export const verdaccioCore = verdaccioPackage<VerdaccioCore>('@verdaccio/core');
export const verdaccioConfig = verdaccioPackage<VerdaccioConfig>('@verdaccio/config');
export const verdaccioUrl = verdaccioPackage<VerdaccioUrl>('@verdaccio/url');
