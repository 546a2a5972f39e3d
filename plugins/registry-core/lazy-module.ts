/**
 * A module loaded on first use, then kept (issue 17: what start-up does not need, it does not load).
 * Kept, not re-required: on Node 24 each `require` of a bare package name resolves it again
 * (package.json lookups and stats, ≈ 100 µs), which halved token issue + verify when jose was
 * required per call. Pass the `require` call itself so the bundler-free build keeps the caller's
 * resolution: `const jose = lazyModule(() => require('jose') as typeof import('jose'))`.
 */
export function lazyModule<T>(load: () => T): () => T {
  let loaded: { value: T } | undefined;
  return () => (loaded ??= { value: load() }).value;
}
