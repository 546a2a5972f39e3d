/**
 * Issue 15.5: the backup manifest parser (scripts/lib/backup-manifest.ts) — the one reader
 * restore trusts. Properties: every manifest the writer makes parses back to itself; any other
 * JSON is either a valid manifest or a ManifestError (never another exception); no path it
 * accepts can leave the archive's data/ folder.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  DATA_DIR,
  MANIFEST_FORMAT,
  MANIFEST_VERSION,
  ManifestError,
  ROLES,
  formatManifest,
  parseManifest,
  roleOfPath,
  type BackupManifest,
  type Role,
} from '../../scripts/lib/backup-manifest';

const hex128 = fc.stringMatching(/^[0-9a-f]{128}$/);
const segment = fc.stringMatching(/^[A-Za-z0-9@._-]{1,20}$/).filter((s) => s !== '.' && s !== '..');
const folderRoles = (Object.keys(ROLES) as Role[]).filter((role) => ROLES[role] === 'dir');
const fileRoles = (Object.keys(ROLES) as Role[]).filter((role) => ROLES[role] === 'file');

/** Valid manifests: required roles, unique paths, files inside folder roles, one file per file role. */
const manifestArb: fc.Arbitrary<BackupManifest> = fc
  .record({
    extraFileRoles: fc.subarray(fileRoles.filter((r) => r !== 'registry.lockb')),
    folders: fc.subarray(folderRoles.filter((r) => r !== 'storage')),
    inner: fc.array(fc.tuple(fc.constantFrom(...folderRoles), fc.array(segment, { minLength: 1, maxLength: 3 }), hex128, fc.nat(1e9)), { maxLength: 12 }),
    hashes: fc.array(hex128, { minLength: fileRoles.length, maxLength: fileRoles.length }),
    created: fc.date({ min: new Date(0), max: new Date(4e12), noInvalidDate: true }),
    packages: fc.nat(1e6),
    versions: fc.nat(1e6),
    upstreamCache: fc.boolean(),
  })
  .map(({ extraFileRoles, folders, inner, hashes, created, packages, versions, upstreamCache }) => {
    const roles: Role[] = ['storage', 'registry.lockb', ...extraFileRoles, ...folders];
    const files = new Map<string, { path: string; size: number; sha512: string }>();
    for (const [i, role] of ['registry.lockb' as Role, ...extraFileRoles].entries()) files.set(`${DATA_DIR}/${role}`, { path: `${DATA_DIR}/${role}`, size: i, sha512: hashes[i] });
    for (const [role, parts, sha512, size] of inner) {
      if (!roles.includes(role)) continue;
      const path = `${DATA_DIR}/${role}/${parts.join('/')}`;
      // never both a file and the folder of another
      if ([...files.keys()].some((other) => other.startsWith(`${path}/`) || path.startsWith(`${other}/`))) continue;
      files.set(path, { path, size, sha512 });
    }
    return {
      format: MANIFEST_FORMAT,
      formatVersion: MANIFEST_VERSION,
      created: created.toISOString(),
      writtenBy: '@mycompany/registry@0.1.0',
      upstreamCache,
      packages,
      versions,
      roles,
      files: [...files.values()],
    } satisfies BackupManifest;
  });

function parseOrError(text: string): BackupManifest | ManifestError {
  try {
    return parseManifest(text);
  } catch (error) {
    if (error instanceof ManifestError) return error;
    throw error;
  }
}

describe('15.5 backup manifest parser', () => {
  test('15.5 manifest: every written manifest parses back to itself', () => {
    fc.assert(
      fc.property(manifestArb, (manifest) => {
        assert.deepEqual(parseManifest(formatManifest(manifest)), manifest);
      }),
      { numRuns: 300 },
    );
  });

  test('15.5 manifest: any change to a valid manifest is a manifest or a ManifestError, never a crash', () => {
    const mutate = fc.oneof(
      fc.tuple(fc.constantFrom('format', 'formatVersion', 'created', 'writtenBy', 'upstreamCache', 'packages', 'versions', 'roles', 'files'), fc.jsonValue()),
      fc.tuple(fc.constant('files.path'), fc.string()),
      fc.tuple(fc.constant('files.sha512'), fc.string()),
      fc.tuple(fc.constant('files.size'), fc.jsonValue()),
    );
    fc.assert(
      fc.property(manifestArb, mutate, (manifest, [key, value]: [string, unknown]) => {
        const raw = JSON.parse(formatManifest(manifest)) as Record<string, unknown> & { files: Array<Record<string, unknown>> };
        if (key.startsWith('files.') && raw.files.length > 0) raw.files[0][key.slice('files.'.length)] = value;
        else raw[key] = value;
        const result = parseOrError(JSON.stringify(raw));
        if (!(result instanceof ManifestError)) {
          for (const file of result.files) assert.ok(!('problem' in roleOfPath(file.path)));
        }
      }),
      { numRuns: 500 },
    );
  });

  test('15.5 manifest: arbitrary text never throws anything but ManifestError', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.jsonValue().map((v) => JSON.stringify(v))), (text) => {
        parseOrError(text);
      }),
      { numRuns: 500 },
    );
  });

  test('15.5 manifest: no accepted path leaves data/ or is anything but plain segments', () => {
    const piece = fc.oneof(fc.constantFrom('..', '.', '', 'data', 'storage', 'keys', 'registry.lockb', '/', '\\', '\u0000', 'a/../..', '%2e%2e'), segment);
    fc.assert(
      fc.property(fc.array(piece, { minLength: 1, maxLength: 6 }), (parts) => {
        const path = parts.join('/');
        const result = roleOfPath(path);
        if ('role' in result) {
          const segments = path.split('/');
          assert.equal(segments[0], DATA_DIR);
          for (const s of segments) assert.ok(s !== '' && s !== '.' && s !== '..' && !s.includes('\\') && !s.includes('\u0000'), path);
        }
      }),
      { numRuns: 1000 },
    );
    assert.ok('problem' in roleOfPath('data/storage/../../etc/passwd'));
    assert.ok('problem' in roleOfPath('/etc/passwd'));
    assert.ok('problem' in roleOfPath('data/registry.lockb/x'));
    assert.ok('problem' in roleOfPath('data/storage'));
    assert.ok('role' in roleOfPath('data/storage/@scope/name/package.json'));
  });

  test('15.5 manifest: what it refuses, it names', () => {
    assert.throws(() => parseManifest('{"format":"zip"}'), /not a registry backup/);
    assert.throws(() => parseManifest(JSON.stringify({ format: MANIFEST_FORMAT, formatVersion: 2 })), /formatVersion 2 is not supported/);
    const good = JSON.parse(
      formatManifest({
        format: MANIFEST_FORMAT,
        formatVersion: MANIFEST_VERSION,
        created: new Date(0).toISOString(),
        writtenBy: 'x',
        upstreamCache: false,
        packages: 0,
        versions: 0,
        roles: ['storage', 'registry.lockb'],
        files: [{ path: 'data/registry.lockb', size: 17, sha512: 'a'.repeat(128) }],
      }),
    ) as Record<string, unknown>;
    assert.throws(() => parseManifest(JSON.stringify({ ...good, roles: ['storage'] })), /has no registry.lockb/);
    assert.throws(() => parseManifest(JSON.stringify({ ...good, files: [] })), /files has no data\/registry.lockb/);
    assert.throws(() => parseManifest(JSON.stringify({ ...good, files: [{ path: 'data/registry.lockb', size: 17, sha512: 'A'.repeat(128) }] })), /sha512 must be 128 lowercase hex/);
  });
});
