/**
 * 0001 — the storage part's tables (docs/database.md "Tables"): packuments, tarballs (bytea,
 * chosen by measurement: docs/database.md "bytea or large objects"), the package list and
 * secret (.verdaccio-db.json), and the shared package index (registry.lockb records, byte for byte).
 */
import type { Migration } from '../migrate';

export const migration: Migration = {
  version: 1,
  name: 'storage: packuments, tarballs, package list, package index',
  up: `
    CREATE SEQUENCE packument_revision;

    CREATE TABLE packuments (
      name       text PRIMARY KEY,
      body       text NOT NULL,
      revision   bigint NOT NULL DEFAULT nextval('packument_revision'),
      updated_at timestamptz NOT NULL DEFAULT now()
    );

    CREATE TABLE tarballs (
      package    text NOT NULL,
      file       text NOT NULL,
      bytes      bytea NOT NULL,
      size       integer NOT NULL,
      sha512     text NOT NULL,
      sha1       text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (package, file)
    );
    -- bytes are already gzip: no point in TOAST compressing them again
    ALTER TABLE tarballs ALTER COLUMN bytes SET STORAGE EXTERNAL;

    CREATE TABLE package_list (name text PRIMARY KEY);

    CREATE TABLE storage_settings (key text PRIMARY KEY, value text NOT NULL);

    CREATE TABLE package_index (
      id         bigserial PRIMARY KEY,
      name       text NOT NULL,
      record     bytea NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX package_index_name ON package_index (name, id);
  `,
};
