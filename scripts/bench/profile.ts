/**
 * Reads a V8 `.cpuprofile` (written by `node --cpu-prof`) and ranks where the CPU went: by
 * function (self time) and by owner (our plugin folders, a node_modules package, Node internals),
 * so `npm run bench -- --profile` can say which hot path costs what and who owns it.
 */
import { readFileSync } from 'node:fs';

export interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

export interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  hitCount?: number;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface ProfileEntry {
  label: string;
  selfMs: number;
  share: number;
}

export interface ProfileSummary {
  totalMs: number;
  idleMs: number;
  byFunction: ProfileEntry[];
  byOwner: ProfileEntry[];
}

/** `plugins/<name>`, `node_modules/<pkg>` (scoped too), `node:internal`, or the file itself. */
export function ownerOf(url: string): string {
  if (url === '') return '(native / V8)';
  if (url.startsWith('node:')) return 'node internals';
  const path = url.replace(/^file:\/\//, '');
  const modules = /.*node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path);
  if (modules) return modules[1];
  const plugin = /\/build\/plugins\/([^/]+)\//.exec(path) ?? /\/plugins\/([^/]+)\//.exec(path);
  if (plugin) return `plugins/${plugin[1]}`;
  const script = /\/build\/(scripts\/[^/]+)/.exec(path);
  if (script) return script[1];
  return path;
}

function shortUrl(url: string): string {
  const path = url.replace(/^file:\/\//, '');
  const modules = path.lastIndexOf('node_modules/');
  if (modules >= 0) return path.slice(modules + 'node_modules/'.length);
  const build = path.indexOf('/build/');
  return build >= 0 ? path.slice(build + '/build/'.length) : path;
}

/** A stretch of a run in CLOCK_MONOTONIC µs — the clock V8 stamps profile samples with on Linux. */
export interface ProfileWindow {
  startUs: number;
  endUs: number;
}

/** Now on the clock of profile timestamps (process.hrtime is CLOCK_MONOTONIC too), in µs. */
export function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

/** Ranks self time; with `windows`, only samples taken inside one of them count. */
export function summarizeProfile(profile: CpuProfile, top = 25, windows?: readonly ProfileWindow[]): ProfileSummary {
  const hits = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  // Self time per node from the sample stream (hitCount alone ignores uneven sampling intervals).
  let at = profile.startTime;
  for (let i = 0; i < samples.length; i += 1) {
    at += deltas[i] ?? 0;
    if (windows && !windows.some((w) => at >= w.startUs && at <= w.endUs)) continue;
    hits.set(samples[i], (hits.get(samples[i]) ?? 0) + (deltas[i] ?? 0) / 1000);
  }
  const byFunction = new Map<string, number>();
  const byOwner = new Map<string, number>();
  let totalMs = 0;
  let idleMs = 0;
  for (const node of profile.nodes) {
    const ms = hits.get(node.id) ?? 0;
    if (ms === 0) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === '(idle)' || functionName === '(program)' || functionName === '(garbage collector)') {
      if (functionName === '(idle)') idleMs += ms;
      else {
        totalMs += ms;
        byFunction.set(functionName, (byFunction.get(functionName) ?? 0) + ms);
        byOwner.set(functionName, (byOwner.get(functionName) ?? 0) + ms);
      }
      continue;
    }
    totalMs += ms;
    const label = `${functionName || '(anonymous)'} ${shortUrl(url)}:${lineNumber + 1}`;
    byFunction.set(label, (byFunction.get(label) ?? 0) + ms);
    const owner = ownerOf(url);
    byOwner.set(owner, (byOwner.get(owner) ?? 0) + ms);
  }
  const rank = (map: Map<string, number>): ProfileEntry[] =>
    [...map.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([label, selfMs]) => ({ label, selfMs, share: totalMs > 0 ? selfMs / totalMs : 0 }));
  return { totalMs, idleMs, byFunction: rank(byFunction), byOwner: rank(byOwner) };
}

export function readProfile(path: string): CpuProfile {
  return JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
}

export function formatProfile(title: string, summary: ProfileSummary): string {
  const lines = [`${title}: ${summary.totalMs.toFixed(0)} ms busy, ${summary.idleMs.toFixed(0)} ms idle`];
  lines.push('  self time by owner:');
  for (const entry of summary.byOwner.slice(0, 12)) lines.push(`    ${(entry.share * 100).toFixed(1).padStart(5)} %  ${entry.selfMs.toFixed(0).padStart(7)} ms  ${entry.label}`);
  lines.push('  self time by function:');
  for (const entry of summary.byFunction) lines.push(`    ${(entry.share * 100).toFixed(1).padStart(5)} %  ${entry.selfMs.toFixed(0).padStart(7)} ms  ${entry.label}`);
  return lines.join('\n');
}
