/**
 * The publish-body guard: what `PUT /:package[/-rev/:rev]` may carry before Verdaccio's publish
 * handler sees it. Pure and Verdaccio-free (the HTTP glue is in `routes.ts`).
 *
 * Why it exists: Verdaccio 6.10.4's handler trusts the body. It asserts `isNameValid` on the
 * attachment key (an encoded "/" → AssertionError inside a storage callback: a 500 first, then
 * the process exits), calls `Buffer.from(attachment.data, 'base64')` and sets
 * `version.readme` without checking types (TypeErrors inside callbacks), stores whatever
 * `dist-tags`/`users`/`deprecated` a change request carries, and treats a missing `versions`
 * in a `/-rev/` change as "unpublish every version". The rules below are what npm, pnpm and
 * bun actually send (libnpmpublish's document), so real clients never notice them.
 *
 * Verdaccio's branch order is mirrored exactly (src/api/endpoint/api/publish.ts):
 *   1. no `versions` key and an object `users`            → star
 *   1b. `/-rev/` with `maintainers` and no `versions`       → owners (ours: Verdaccio ignores maintainers)
 *   2. `/-rev/` in the URL, or a deprecation without attachments → change (unpublish/deprecate)
 *   3. everything else                                      → publish of one version
 */
import { integrityProblem } from '../integrity';
import { isAbsoluteHttpUrl, isValidVersion, readsAsVersion, tarballFileOf, versionProblem } from '../names';
import { isOwnersBody, parseOwnersBody } from '../owners';

/** owners: `npm owner add|rm` (`{_id, _rev, maintainers}` to `/-rev/`), answered by the entry itself. */
export type PublishKind = 'publish' | 'change' | 'star' | 'owners';

export type GuardVerdict = { ok: true; kind: PublishKind } | { ok: false; error: string };

type JsonObject = Record<string, unknown>;

const MAX_TAG_LENGTH = 128;
const SHA1_HEX = /^[0-9a-f]{40}$/i;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Verdaccio's isObject: `Object.prototype.toString` says Object (so not an array, not null). */
export function isPlainObject(value: unknown): value is JsonObject {
  return Object.prototype.toString.call(value) === '[object Object]';
}

function hasOwn(object: JsonObject, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(object, key);
}

function quote(value: unknown): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value) ?? String(value);
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text);
}

class BodyError extends Error {}

function refuse(message: string): never {
  throw new BodyError(message);
}

/** The unscoped part of a package name: it prefixes tarball file names. */
export function bareNameOf(name: string): string {
  return name.slice(name.lastIndexOf('/') + 1);
}

/**
 * A dist-tag name npm itself would accept: URL-safe as is (npm refuses tags that need
 * encoding), not a version (it would shadow one in `npm install name@x`), never `__proto__`.
 */
export function isValidTagName(tag: string): boolean {
  return (
    tag.length > 0 &&
    tag.length <= MAX_TAG_LENGTH &&
    encodeURIComponent(tag) === tag &&
    !readsAsVersion(tag) &&
    tag !== '__proto__'
  );
}

function checkDistTags(value: unknown, allowed: (version: string) => boolean, what: string): void {
  if (!isPlainObject(value)) refuse(`"dist-tags" must be an object of tag → version (got ${quote(value)})`);
  for (const [tag, version] of Object.entries(value)) {
    if (!isValidTagName(tag)) refuse(`dist-tag name ${quote(tag)} is not valid: use URL-safe characters, at most ${MAX_TAG_LENGTH}, and not a version number`);
    if (typeof version !== 'string' || !isValidVersion(version)) refuse(`dist-tag ${quote(tag)} must name a version (got ${quote(version)})`);
    if (!allowed(version)) refuse(`dist-tag ${quote(tag)} points at ${quote(version)}, which is not ${what}`);
  }
}

function checkUsers(value: unknown): void {
  if (value === undefined) return;
  if (!isPlainObject(value)) refuse(`"users" must be an object of user → true (got ${quote(value)})`);
  for (const [user, starred] of Object.entries(value)) {
    if (typeof starred !== 'boolean') refuse(`"users" entry ${quote(user)} must be true or false (got ${quote(starred)})`);
  }
}

function checkOptionalString(object: JsonObject, key: string, where: string): void {
  if (hasOwn(object, key) && object[key] !== undefined && typeof object[key] !== 'string') {
    refuse(`${where}.${key} must be a string (got ${quote(object[key])})`);
  }
}

function checkIdentity(body: JsonObject, name: string): void {
  if (typeof body.name !== 'string') refuse(`the document has no "name" (expected ${quote(name)})`);
  if (body.name !== name) refuse(`the document's name ${quote(body.name)} does not match the package in the URL ${quote(name)}`);
  if (hasOwn(body, '_id') && body._id !== name) refuse(`"_id" ${quote(body._id)} does not match the package in the URL ${quote(name)}`);
  checkOptionalString(body, '_rev', 'document');
}

function attachmentsOf(body: JsonObject): JsonObject {
  const attachments = body._attachments;
  if (attachments === undefined || attachments === null) return {};
  if (!isPlainObject(attachments)) refuse(`"_attachments" must be an object (got ${quote(attachments)})`);
  return attachments;
}

function checkStar(body: JsonObject): GuardVerdict {
  checkUsers(body.users);
  checkOptionalString(body, '_rev', 'document');
  checkOptionalString(body, '_id', 'document');
  return { ok: true, kind: 'star' };
}

/** unpublish of some versions, deprecate/undeprecate, owner changes: Verdaccio replaces dist-tags and users with the body's. */
function checkChange(body: JsonObject, name: string): GuardVerdict {
  checkIdentity(body, name);
  const versions = body.versions;
  if (!isPlainObject(versions)) refuse(`a change must carry the package's "versions" object (a missing one would unpublish every version); got ${quote(versions)}`);
  for (const [version, meta] of Object.entries(versions)) {
    if (!isPlainObject(meta)) refuse(`versions[${quote(version)}] must be an object (got ${quote(meta)}); leave a version out to unpublish it`);
    checkOptionalString(meta, 'deprecated', `versions[${quote(version)}]`);
  }
  if (!hasOwn(body, 'dist-tags')) refuse('a change must carry the package\'s "dist-tags" (a missing one would drop every tag)');
  checkDistTags(body['dist-tags'], (version) => hasOwn(versions, version), 'among the document\'s versions');
  checkUsers(body.users);
  if (Object.keys(attachmentsOf(body)).length > 0) {
    refuse('a change of an existing package carries no "_attachments"; publish a new version with PUT /<name> instead');
  }
  return { ok: true, kind: 'change' };
}

function decodedLength(data: string): number {
  const padding = data.endsWith('==') ? 2 : data.endsWith('=') ? 1 : 0;
  return (data.length / 4) * 3 - padding;
}

function checkAttachment(file: string, attachment: unknown): void {
  const where = `_attachments[${quote(file)}]`;
  if (!isPlainObject(attachment)) refuse(`${where} must be an object with base64 "data" (got ${quote(attachment)})`);
  const data = attachment.data;
  if (typeof data !== 'string' || data.length === 0) refuse(`${where}.data must be the tarball as a non-empty base64 string`);
  if (data.length % 4 !== 0 || !BASE64.test(data)) refuse(`${where}.data is not valid base64`);
  const head = Buffer.from(data.slice(0, 4), 'base64');
  if (head.length < 2 || head[0] !== 0x1f || head[1] !== 0x8b) refuse(`${where}.data is not a gzip tarball (.tgz)`);
  if (hasOwn(attachment, 'length') && attachment.length !== undefined) {
    const length = attachment.length;
    if (typeof length !== 'number' || !Number.isSafeInteger(length) || length !== decodedLength(data)) {
      refuse(`${where}.length ${quote(length)} does not match the ${decodedLength(data)} bytes in .data`);
    }
  }
  checkOptionalString(attachment, 'content_type', where);
}

function checkVersionMeta(name: string, version: string, meta: unknown, file: string): void {
  const where = `versions[${quote(version)}]`;
  if (!isPlainObject(meta)) refuse(`${where} must be the version's package.json object (got ${quote(meta)})`);
  if (hasOwn(meta, 'name') && meta.name !== name) refuse(`${where}.name ${quote(meta.name)} does not match ${quote(name)}`);
  if (hasOwn(meta, 'version') && meta.version !== version) refuse(`${where}.version ${quote(meta.version)} does not match ${quote(version)}`);
  for (const key of ['readme', 'deprecated', '_id']) checkOptionalString(meta, key, where);
  if (hasOwn(meta, 'maintainers') && meta.maintainers !== undefined) {
    // the web UI adds an avatar to each maintainer object (a string there is a TypeError)
    if (!Array.isArray(meta.maintainers) || !meta.maintainers.every(isPlainObject)) refuse(`${where}.maintainers must be a list of {name, email} objects`);
  }
  const dist = meta.dist;
  if (!isPlainObject(dist)) refuse(`${where}.dist must be an object with tarball, shasum and/or integrity`);
  if (typeof dist.tarball !== 'string') refuse(`${where}.dist.tarball must be the tarball URL (got ${quote(dist.tarball)})`);
  if (!isAbsoluteHttpUrl(dist.tarball) || tarballFileOf(dist.tarball) !== file) refuse(`${where}.dist.tarball must be an absolute http(s) URL ending in /${file} (got ${quote(dist.tarball)})`);
  if (hasOwn(dist, 'shasum') && (typeof dist.shasum !== 'string' || !SHA1_HEX.test(dist.shasum))) refuse(`${where}.dist.shasum must be 40 hex digits (got ${quote(dist.shasum)})`);
  if (hasOwn(dist, 'integrity') && typeof dist.integrity !== 'string') refuse(`${where}.dist.integrity must be a string (got ${quote(dist.integrity)})`);
  if (typeof dist.integrity === 'string') {
    const problem = integrityProblem(dist.integrity);
    if (problem !== null) refuse(`${where}.${problem}`);
  }
  if (typeof dist.shasum !== 'string' && typeof dist.integrity !== 'string') refuse(`${where}.dist declares neither integrity nor shasum: the tarball could not be verified`);
}

/** A new version: exactly one version, exactly one attachment, both naming the same tarball. */
function checkPublish(body: JsonObject, name: string): GuardVerdict {
  checkIdentity(body, name);
  const versions = body.versions;
  if (!isPlainObject(versions)) refuse(`"versions" must hold the version being published (got ${quote(versions)})`);
  const versionKeys = Object.keys(versions);
  if (versionKeys.length !== 1) refuse(`a publish carries exactly one version (got ${versionKeys.length})`);
  const [version] = versionKeys;
  const problem = versionProblem(version);
  if (problem !== null) refuse(problem);

  const attachments = attachmentsOf(body);
  const files = Object.keys(attachments);
  if (files.length === 0) refuse('a publish carries the tarball in "_attachments" (none given)');
  if (files.length !== 1) refuse(`a publish carries exactly one attachment (got ${files.length}: ${files.slice(0, 3).map(quote).join(', ')})`);
  const bare = bareNameOf(name);
  const file = `${bare}-${version}.tgz`;
  // libnpmpublish names the attachment `${name}-${version}.tgz` (scope included); Verdaccio keeps its basename
  const key = files[0];
  if (key !== file && key !== `${name}-${version}.tgz`) refuse(`attachment ${quote(key)} must be named ${quote(file)} (the tarball of ${name}@${version})`);
  checkAttachment(key, attachments[key]);
  checkVersionMeta(name, version, versions[version], file);

  if (hasOwn(body, 'dist-tags') && body['dist-tags'] !== undefined) {
    checkDistTags(body['dist-tags'], (tagged) => tagged === version, `the version being published (${version})`);
  }
  return { ok: true, kind: 'publish' };
}

/** Verdaccio's isRelatedToDeprecation: some version object has a `deprecated` key. */
function mentionsDeprecation(versions: unknown): boolean {
  if (!isPlainObject(versions)) return false;
  return Object.values(versions).some((meta) => isPlainObject(meta) && hasOwn(meta, 'deprecated'));
}

/**
 * Checks a `PUT /:package` (viaRevisionPath: `/:package/-rev/:rev`) body. `name` is the
 * decoded package name from the URL. Never throws.
 */
export function checkPublishBody(name: string, viaRevisionPath: boolean, body: unknown): GuardVerdict {
  try {
    if (!isPlainObject(body)) return { ok: false, error: `the request body must be a JSON object (a package document), got ${quote(body)}` };
    if (!hasOwn(body, 'versions') && isPlainObject(body.users)) return checkStar(body);
    if (viaRevisionPath && isOwnersBody(body)) {
      const owners = parseOwnersBody(name, body);
      return owners.ok ? { ok: true, kind: 'owners' } : { ok: false, error: owners.error };
    }
    if (viaRevisionPath) return checkChange(body, name);
    const attachments = body._attachments;
    const noAttachments = attachments === undefined || attachments === null || (isPlainObject(attachments) && Object.keys(attachments).length === 0);
    if (noAttachments && mentionsDeprecation(body.versions)) return checkChange(body, name);
    return checkPublish(body, name);
  } catch (error) {
    if (error instanceof BodyError) return { ok: false, error: `refused ${name} document: ${error.message}` };
    throw error;
  }
}

/**
 * Dist-tag writes Verdaccio routes to `mergeTags`: `PUT /:package/:tag` and
 * `PUT|POST /-/package/:package/dist-tags/:tag` take a JSON string (the version); a body of
 * another type falls through Verdaccio's routes to an HTML 404. `POST /-/package/:package/dist-tags`
 * takes an object of tag → version (null removes the tag).
 */
export function checkDistTagBody(name: string, tag: string | null, body: unknown): GuardVerdict {
  try {
    if (tag !== null) {
      if (!isValidTagName(tag)) refuse(`dist-tag name ${quote(tag)} is not valid: use URL-safe characters, at most ${MAX_TAG_LENGTH}, and not a version number`);
      if (typeof body !== 'string') refuse(`setting dist-tag ${quote(tag)} takes a JSON string naming a version, e.g. "1.2.3" (got ${quote(body)})`);
      if (!isValidVersion(body)) refuse(`dist-tag ${quote(tag)} must name a version (got ${quote(body)})`);
      return { ok: true, kind: 'change' };
    }
    if (!isPlainObject(body)) refuse(`"dist-tags" must be an object of tag → version (got ${quote(body)})`);
    for (const [each, version] of Object.entries(body)) {
      if (!isValidTagName(each)) refuse(`dist-tag name ${quote(each)} is not valid: use URL-safe characters, at most ${MAX_TAG_LENGTH}, and not a version number`);
      if (version !== null && (typeof version !== 'string' || !isValidVersion(version))) refuse(`dist-tag ${quote(each)} must name a version, or be null to remove it (got ${quote(version)})`);
    }
    return { ok: true, kind: 'change' };
  } catch (error) {
    if (error instanceof BodyError) return { ok: false, error: `refused dist-tags of ${name}: ${error.message}` };
    throw error;
  }
}
