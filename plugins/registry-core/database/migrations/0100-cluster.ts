/**
 * 0100 — the cluster parts' tables (docs/cluster.md "Tables"): what every node needs besides the
 * packages. Users and their password hashes; issued tokens, revocations and per-user token
 * generations with one revision counter every token write bumps (a node compares it before it
 * trusts its in-memory copy); shared files (the JWT keys and the registry's signing keys, byte for
 * byte); the 13 config bytes; failed-login counters; the audit trail.
 */
import type { Migration } from '../migrate';

export const migration: Migration = {
  version: 100,
  name: 'cluster: users, tokens, shared files, config bytes, login failures, audit',
  up: `
    CREATE TABLE registry_users (
      name       text PRIMARY KEY,
      hash       text NOT NULL,
      comment    text NOT NULL DEFAULT '',
      position   bigserial,
      updated_at timestamptz NOT NULL DEFAULT now()
    );

    CREATE TABLE registry_tokens (
      key    text PRIMARY KEY,
      "user" text NOT NULL,
      record jsonb NOT NULL
    );
    CREATE INDEX registry_tokens_user ON registry_tokens ("user");

    CREATE TABLE registry_revocations (
      jti        text PRIMARY KEY,
      expires_at bigint
    );

    CREATE TABLE registry_generations (
      "user"     text PRIMARY KEY,
      generation integer NOT NULL
    );

    CREATE TABLE registry_token_state (
      id       integer PRIMARY KEY CHECK (id = 1),
      revision bigint NOT NULL
    );
    INSERT INTO registry_token_state (id, revision) VALUES (1, 0);

    CREATE TABLE registry_shared_files (
      folder     text NOT NULL,
      name       text NOT NULL,
      bytes      bytea NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (folder, name)
    );

    CREATE TABLE registry_config (
      id         integer PRIMARY KEY CHECK (id = 1),
      bytes      bytea NOT NULL CHECK (length(bytes) = 13),
      revision   bigint NOT NULL,
      updated_at timestamptz NOT NULL DEFAULT now()
    );

    CREATE TABLE registry_login_failures (
      key          text PRIMARY KEY,
      failures     bigint[] NOT NULL,
      locked_until bigint NOT NULL,
      lockouts     integer NOT NULL,
      touched_at   timestamptz NOT NULL DEFAULT now()
    );

    CREATE TABLE registry_audit (
      id    bigserial PRIMARY KEY,
      node  text NOT NULL,
      line  text NOT NULL
    );
  `,
};
