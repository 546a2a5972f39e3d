/**
 * Trusted-publisher rules (what `npm trust github|gitlab|list|revoke` manage) and the pure claim
 * matcher that decides whether a CI provider's id_token satisfies one. Contract:
 * docs/trusted-publishing.md.
 *
 * Rules live in `<storage>/.registry-trust.json` (`{"version":1,"packages":{"<name>":[rule…]}}`),
 * replaced atomically (temp file, fsync, rename) on every change, mode 0600. The file is read
 * once at start; a malformed file stops the start (a silently empty rule set would not be safer,
 * but it would hide that rules were lost).
 */
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { writeFileAtomicSync } from '../registry-core/atomic-file';
import { AuthError } from './errors';

export const TRUST_FILE = '.registry-trust.json';
export const TRUST_PROVIDER_TYPES = ['github', 'gitlab'] as const;
export type TrustProviderType = (typeof TRUST_PROVIDER_TYPES)[number];
/** npm 11's permission names (trust-cmd.js); a rule without `permissions` (older npm) allows publishing. */
export const PUBLISH_PERMISSION = 'createPackage';
const KNOWN_PERMISSIONS = new Set([PUBLISH_PERMISSION, 'createStagedPackage']);
export const MAX_RULES_PER_PACKAGE = 20;
const MAX_FIELD = 512;

export interface TrustRule {
  id: string;
  type: TrustProviderType;
  /** github: owner/repo; gitlab: group/project (the `project_path` claim) */
  entity: string;
  /** the workflow (github) or CI config (gitlab) file name, e.g. release.yml */
  file: string;
  environment: string | null;
  permissions: string[] | null;
  createdBy: string;
  /** ms since epoch */
  created: number;
}

function bad(message: string): AuthError {
  return new AuthError('ERR_BAD_REQUEST', message);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function field(value: unknown, what: string, pattern?: RegExp): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_FIELD || /[\u0000-\u001f\u007f]/.test(value)) {
    throw bad(`${what} must be a non-empty string of at most ${MAX_FIELD} characters`);
  }
  if (pattern && !pattern.test(value)) throw bad(`${what} ${JSON.stringify(value)} is malformed`);
  return value;
}

const GITHUB_REPO = /^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/;
const GITLAB_PROJECT = /^[A-Za-z0-9_.-]+(?:\/[A-Za-z0-9_.-]+)+$/;
const YAML_FILE = /^[^/\\]+\.ya?ml$/;

/** One entry of the body npm sends to `POST /-/package/<name>/trust` (without id/createdBy). */
export function parseTrustConfig(input: unknown): Omit<TrustRule, 'id' | 'createdBy' | 'created'> {
  if (!isRecord(input)) throw bad('each trust configuration must be an object {"type", "claims"}');
  const type = input.type;
  if (type !== 'github' && type !== 'gitlab') throw bad(`trust type must be one of ${TRUST_PROVIDER_TYPES.join(', ')} (got ${JSON.stringify(type)})`);
  const claims = input.claims;
  if (!isRecord(claims)) throw bad('claims must be an object');
  const fileClaim = type === 'github' ? claims.workflow_ref : claims.ci_config_ref_uri;
  const fileName = type === 'github' ? 'claims.workflow_ref.file' : 'claims.ci_config_ref_uri.file';
  if (!isRecord(fileClaim)) throw bad(`${fileName} is required`);
  const file = field(fileClaim.file, fileName, YAML_FILE);
  const entity =
    type === 'github'
      ? field(claims.repository, 'claims.repository (owner/repo)', GITHUB_REPO)
      : field(claims.project_path, 'claims.project_path (group/project)', GITLAB_PROJECT);
  const environment = claims.environment === undefined || claims.environment === null ? null : field(claims.environment, 'claims.environment');
  let permissions: string[] | null = null;
  if (input.permissions !== undefined && input.permissions !== null) {
    if (!Array.isArray(input.permissions) || input.permissions.length === 0 || !input.permissions.every((p) => typeof p === 'string' && KNOWN_PERMISSIONS.has(p))) {
      throw bad(`permissions must be a non-empty list of ${[...KNOWN_PERMISSIONS].join(', ')}`);
    }
    permissions = [...new Set(input.permissions as string[])];
  }
  return { type, entity, file, environment, permissions };
}

/** The rule as npm reads it back (`npm trust list` shows id, type, file, repository/project, environment, permissions). */
export function trustRuleView(rule: TrustRule): Record<string, unknown> {
  const claims: Record<string, unknown> =
    rule.type === 'github'
      ? { repository: rule.entity, workflow_ref: { file: rule.file } }
      : { project_path: rule.entity, ci_config_ref_uri: { file: rule.file } };
  if (rule.environment !== null) claims.environment = rule.environment;
  const view: Record<string, unknown> = { id: rule.id, type: rule.type, claims, created: new Date(rule.created).toISOString(), created_by: rule.createdBy };
  if (rule.permissions !== null) view.permissions = rule.permissions;
  return view;
}

/** What the matcher reads of a verified id_token (already checked: signature, iss, aud, exp). */
export type IdTokenClaims = Record<string, unknown>;

/**
 * `owner/repo/.github/workflows/release.yml@refs/heads/main` → `{repo, file}`; GitLab's
 * `gitlab.example.com/group/project//.gitlab-ci.yml@refs/heads/main` → `{repo, file}` (repo
 * without the host). null when the claim does not have that shape.
 */
export function splitWorkflowRef(type: TrustProviderType, ref: unknown): { repo: string; file: string } | null {
  if (typeof ref !== 'string' || ref.length > 2048) return null;
  const at = ref.indexOf('@');
  const path = at < 0 ? ref : ref.slice(0, at);
  if (type === 'github') {
    const match = /^([^/]+\/[^/]+)\/\.github\/workflows\/([^/]+)$/.exec(path);
    return match ? { repo: match[1], file: match[2] } : null;
  }
  const match = /^[^/]+\/(.+?)\/\/(?:.*\/)?([^/]+)$/.exec(path);
  return match ? { repo: match[1], file: match[2] } : null;
}

/**
 * Why the claims do NOT satisfy the rule, or null when they do. GitHub: `repository` equals the
 * rule's (owner/repo, case-insensitive as GitHub's names are), `workflow_ref` names the same
 * repository and the rule's workflow file; GitLab: `project_path` and `ci_config_ref_uri`
 * likewise. Both: when the rule names an environment, the `environment` claim must equal it;
 * the rule must allow publishing.
 */
export function ruleMismatch(rule: TrustRule, claims: IdTokenClaims): string | null {
  if (rule.permissions !== null && !rule.permissions.includes(PUBLISH_PERMISSION)) return 'the rule does not allow publishing';
  const entityClaim = rule.type === 'github' ? 'repository' : 'project_path';
  const refClaim = rule.type === 'github' ? 'workflow_ref' : 'ci_config_ref_uri';
  const entity = claims[entityClaim];
  if (typeof entity !== 'string' || entity.toLowerCase() !== rule.entity.toLowerCase()) return `${entityClaim} ${JSON.stringify(entity)} is not ${rule.entity}`;
  const ref = splitWorkflowRef(rule.type, claims[refClaim]);
  if (ref === null) return `${refClaim} is missing or malformed`;
  if (ref.repo.toLowerCase() !== rule.entity.toLowerCase()) return `${refClaim} names another repository (${ref.repo})`;
  if (ref.file !== rule.file) return `${refClaim} names workflow ${ref.file}, not ${rule.file}`;
  if (rule.environment !== null && claims.environment !== rule.environment) return `environment ${JSON.stringify(claims.environment ?? null)} is not ${rule.environment}`;
  return null;
}

function parseStored(file: string, text: string): Map<string, TrustRule[]> {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new AuthError('ERR_AUTH_CONFIG', `${file} is not valid JSON (trusted-publisher rules); fix or remove it`);
  }
  if (!isRecord(data) || data.version !== 1 || !isRecord(data.packages)) throw new AuthError('ERR_AUTH_CONFIG', `${file} is not a trust-rule file (version 1)`);
  const result = new Map<string, TrustRule[]>();
  for (const [name, list] of Object.entries(data.packages)) {
    if (!Array.isArray(list)) throw new AuthError('ERR_AUTH_CONFIG', `${file}: rules of ${name} are not a list`);
    result.set(
      name,
      list.map((raw: unknown) => {
        if (!isRecord(raw) || typeof raw.id !== 'string' || typeof raw.createdBy !== 'string' || typeof raw.created !== 'number') {
          throw new AuthError('ERR_AUTH_CONFIG', `${file}: a rule of ${name} is malformed`);
        }
        const parsed = parseTrustConfig(trustRuleView(raw as unknown as TrustRule));
        return { ...parsed, id: raw.id, createdBy: raw.createdBy, created: raw.created };
      }),
    );
  }
  return result;
}

export class TrustRuleStore {
  readonly file: string;
  private readonly packages: Map<string, TrustRule[]>;

  constructor(file: string) {
    this.file = file;
    this.packages = existsSync(file) ? parseStored(file, readFileSync(file, 'utf8')) : new Map();
  }

  list(name: string): TrustRule[] {
    return [...(this.packages.get(name) ?? [])];
  }

  add(name: string, configs: readonly Omit<TrustRule, 'id' | 'createdBy' | 'created'>[], createdBy: string, now = Date.now()): TrustRule[] {
    const existing = this.packages.get(name) ?? [];
    if (existing.length + configs.length > MAX_RULES_PER_PACKAGE) throw bad(`a package has at most ${MAX_RULES_PER_PACKAGE} trust configurations`);
    const added = configs.map((config) => ({ ...config, id: randomUUID(), createdBy, created: now }));
    this.commit(name, [...existing, ...added]);
    return added;
  }

  /** false when the package has no rule with that id */
  remove(name: string, id: string): boolean {
    const existing = this.packages.get(name) ?? [];
    const next = existing.filter((rule) => rule.id !== id);
    if (next.length === existing.length) return false;
    this.commit(name, next);
    return true;
  }

  /** Writes first, then changes memory: a failed write changes nothing. */
  private commit(name: string, rules: TrustRule[]): void {
    const next = new Map(this.packages);
    if (rules.length === 0) next.delete(name);
    else next.set(name, rules);
    const packages = Object.fromEntries([...next.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    writeFileAtomicSync(this.file, `${JSON.stringify({ version: 1, packages }, null, 2)}\n`, 0o600);
    if (rules.length === 0) this.packages.delete(name);
    else this.packages.set(name, rules);
  }
}
