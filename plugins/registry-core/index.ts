/** Public API of registry-core. Consumers import only from here (and `./plugin-presence`). */
export * from './errors';
export * from './crc8';
export * from './registry-url';
export * from './layout';
export * from './describe';
export { createConfigFile, inspectConfigFile, repairConfigFile } from './header-file';
export * from './config-file';
export * from './issuer';
export * from './events';
export * from './timeline';
export * from './env';
export * from './index-record';
export * from './package-index';
export * from './index-summary';
export * from './index-rebuild';
export * from './commands';
export { bootRegistry, describeStartupError, prepareRegistryState, registryLayoutOf, type PreparedState, type RegistryLayout } from './startup';
export * from './fs-errors';
