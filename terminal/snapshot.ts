/**
 * The plain snapshot (`--once`, or stdout not a terminal): text only, no escape codes; the
 * package list is wrapped to the config's `cols`. Pure.
 */
import { FEATURE_FLAG_NAMES } from '../plugins/registry-core/layout';
import { fieldsOf } from './model';
import { gridLines, lineText } from './render';
import { configBytes, type ActivityView, type PackageInfo, type ServerConfig, type UpstreamView } from './protocol';
import { activitySummary, upstreamSummary } from './render';

/** Snapshots are never narrower than the grid, whatever `cols` says. */
const MIN_SNAPSHOT_WIDTH = 48;

export const DISABLED_MESSAGE =
  'terminal mode is disabled in registry.lockb (byte 13 = 0); enable it with `npm run config -- set 13 2`';

/** What a snapshot shows: the documents as fetched, or why one could not be. */
export interface SnapshotInput {
  registry: string;
  config: ServerConfig;
  packages: PackageInfo[] | { error: string };
  /** absent: not asked (older callers) */
  upstream?: UpstreamView | { error: string };
  /** absent: not asked (older callers) */
  activity?: ActivityView | { error: string };
  now?: Date;
}

export function renderSnapshot(input: SnapshotInput): string {
  const { config } = input;
  const width = Math.max(MIN_SNAPSHOT_WIDTH, config.fields.cols);
  const f = config.fields;
  const fields = fieldsOf(config);
  const on = FEATURE_FLAG_NAMES.filter((flag) => config.flags[flag]);
  const out: string[] = [];
  out.push(`registry ${input.registry} at ${(input.now ?? new Date()).toISOString()}`);
  out.push('');
  out.push('config bytes (registry.lockb offsets 4..16)');
  for (const line of gridLines(configBytes(config), null)) out.push(lineText(line));
  out.push(`hex ${config.hex} check ${config.check}`);
  out.push('');
  out.push(`version       ${f.version} (${f.version === 1 ? 'modern' : 'legacy'})`);
  out.push(`registryHash  ${f.registryHash}${typeof config.registryUrl === 'string' ? ` (${config.registryUrl}${config.urlMatchesHash === false ? ': does NOT hash to this value' : ''})` : ''}`);
  out.push(`featureFlags  ${fields.featureFlags} = ${on.join(' | ') || 'none'}`);
  out.push(`terminalMode  ${fields.terminalMode} (${f.terminalMode})`);
  out.push(`rows x cols   ${f.rows} x ${f.cols}`);
  out.push(`check         0x${config.check}`);
  if (config.issuer) out.push(`issuer        ${config.issuer.url} (${config.issuer.alg})`);
  out.push('');
  out.push('flags');
  for (const flag of FEATURE_FLAG_NAMES) out.push(`  [${config.flags[flag] ? 'x' : ' '}] ${flag}`);
  out.push('');
  if (input.upstream !== undefined) {
    out.push(`upstream      ${'error' in input.upstream ? `${config.flags.OFFLINE ? 'OFFLINE' : 'online'} | status not available (${input.upstream.error})` : upstreamSummary(input.upstream, config.flags.OFFLINE)}`);
    if (input.activity === undefined) out.push('');
  }
  if (input.activity !== undefined) {
    out.push(`activity      ${'error' in input.activity ? `not available (${input.activity.error})` : activitySummary(input.activity)}`);
    out.push('');
  }
  if ('error' in input.packages) {
    out.push(`packages: not available (${input.packages.error})`);
  } else {
    out.push(`packages (${input.packages.length})`);
    for (const p of input.packages) {
      const tags = Object.entries(p.distTags).map(([tag, version]) => `${tag}=${version}`).join(' ');
      out.push(...wrap(`  ${p.name}  ${p.versions.join(', ') || '(no versions)'}${tags ? `  [${tags}]` : ''}  ${p.time}${p.source === 'cached' ? '  (cached)' : ''}`, width));
    }
  }
  if (fields.terminalMode === 0) {
    out.push('');
    out.push(`note: ${DISABLED_MESSAGE}`);
  }
  // Only the package list can grow past `cols`: it is wrapped; messages stay on one line so they can be grepped.
  return `${out.join('\n')}\n`;
}

export function snapshotJson(input: Omit<SnapshotInput, 'now'>): string {
  const extra = { ...(input.upstream ? { upstream: input.upstream } : {}), ...(input.activity ? { activity: input.activity } : {}) };
  return `${JSON.stringify({ registry: input.registry, config: input.config, packages: input.packages, ...extra }, null, 2)}\n`;
}

/** Breaks a long line at spaces (continuations indented), so nothing is cut off. */
export function wrap(line: string, width: number): string[] {
  if (line.length <= width) return [line];
  const out: string[] = [];
  let rest = line;
  let indent = '';
  while (indent.length + rest.length > width) {
    const room = width - indent.length;
    let cut = rest.lastIndexOf(' ', room);
    if (cut <= 0) cut = room;
    out.push(indent + rest.slice(0, cut).trimEnd());
    rest = rest.slice(cut).trimStart();
    indent = '    ';
    if (rest === '') break;
  }
  if (rest !== '') out.push(indent + rest);
  return out;
}
