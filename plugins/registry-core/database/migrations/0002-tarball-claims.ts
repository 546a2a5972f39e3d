/**
 * 0002 — upload claims (docs/database.md "One transaction per publish"): a tarball upload claims
 * its (package, file) before its publish transaction runs, so a second node uploading the same
 * version gets 409 at once — as link() gives on files — instead of both registering an upload
 * and one failing later with a confusing shasum error. The publish transaction inserts the
 * tarball and deletes the claim; a claim older than 120 s (its node died mid-publish) may be taken over.
 */
import type { Migration } from '../migrate';

export const migration: Migration = {
  version: 2,
  name: 'storage: tarball upload claims',
  up: `
    CREATE TABLE tarball_claims (
      package    text NOT NULL,
      file       text NOT NULL,
      sha512     text NOT NULL,
      claimed_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (package, file)
    );
  `,
};
