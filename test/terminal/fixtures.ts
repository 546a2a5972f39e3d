/** Config views built with the core (the same functions the server uses), for the pure tests. */
import { describeConfig, defaultFields, withByte, type ConfigFields } from '../../plugins/registry-core/index';
import { configViewSchema, type ServerConfig } from '../../terminal/protocol';

export function serverConfig(fields: ConfigFields = defaultFields(), extra: Record<string, unknown> = {}): ServerConfig {
  return configViewSchema.parse({
    ...describeConfig(fields),
    issuer: { url: 'http://localhost:4873/_auth', alg: 'EdDSA', kind: 'private' },
    env: '',
    registryUrl: 'http://localhost:4873',
    urlMatchesHash: true,
    ...extra,
  });
}

export function configWith(offset: number, value: number): ServerConfig {
  return serverConfig(withByte(defaultFields(), offset, value));
}
