/**
 * `npm token` records for Verdaccio's token routes (saveToken / readTokens / deleteToken),
 * delegated to the core `TokenStore` the auth plugin also uses (`<storage>/.registry-tokens.json`),
 * so a token revoked through either path is revoked for both.
 */
import { join } from 'node:path';
import { TOKEN_STORE_FILE, TokenStore, TokenStoreError, type TokenRecords } from '../registry-core/token-store';
import { databaseSettingsOf } from '../registry-core/database/index';
import { clusterLink } from '../registry-core/database/cluster';
import { PgTokenStore } from '../registry-core/database/token-store-pg';
import { StorageError } from './errors';

/** Verdaccio's token shape (@verdaccio/types Token), without importing Verdaccio here. */
export interface LedgerToken {
  user: string;
  token: string;
  key: string;
  cidr?: string[];
  readonly: boolean;
  created: number | string;
  updated?: number | string;
}

function toMillis(value: number | string | undefined): number {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  const parsed = typeof value === 'string' ? Date.parse(value) : Number.NaN;
  return Number.isFinite(parsed) ? parsed : Date.now();
}

export class TokenLedger {
  readonly file: string;
  private readonly store: TokenRecords;

  /** `config`: Verdaccio's config, for the backend choice (PostgreSQL: the store every node shares, docs/cluster.md) */
  constructor(storageDir: string, config?: unknown) {
    this.file = join(storageDir, TOKEN_STORE_FILE);
    const backend = databaseSettingsOf(config, process.env);
    this.store = backend.backend === 'postgres' ? PgTokenStore.open(clusterLink(backend.url)) : TokenStore.open(this.file);
  }

  async save(token: LedgerToken): Promise<void> {
    if (typeof token?.user !== 'string' || typeof token.key !== 'string' || typeof token.token !== 'string') {
      throw new StorageError('ERR_BAD_MANIFEST', 'token record needs user, key and token');
    }
    await this.store.save({
      key: token.key,
      user: token.user,
      created: toMillis(token.created),
      expiresAt: null,
      readonly: token.readonly === true,
      cidr: Array.isArray(token.cidr) ? token.cidr.filter((item): item is string => typeof item === 'string') : [],
      token: token.token,
    });
  }

  async read(user: string): Promise<LedgerToken[]> {
    await this.store.sync();
    return this.store.list(user).map((record) => ({
      user: record.user,
      token: record.token,
      key: record.key,
      cidr: record.cidr,
      readonly: record.readonly,
      created: record.created,
    }));
  }

  async delete(user: string, key: string): Promise<void> {
    try {
      await this.store.revoke(user, key);
    } catch (error) {
      if (error instanceof TokenStoreError && error.code === 'ERR_TOKEN_NOT_FOUND') throw new StorageError('ERR_NOT_FOUND', error.message);
      throw error;
    }
  }

  close(): void {
    this.store.close();
  }
}
