/** Public API of the core's database part (docs/database.md). Loads `pg`: import only where a database is used. */
export * from './settings';
export * from './migrate';
export * from './database';
export * from './package-changes';
