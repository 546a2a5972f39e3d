/**
 * Where a run's files go: `bench-results/bench-<date>-<short commit>[-dirty].{json,md,svg}` and
 * `bench-results/index.json`, one entry per run (date, commit, mode, groups, every row's figures,
 * ratio and verdict), so a regression between commits is one file away. The folder is git-ignored;
 * `--record` (full runs only) also writes the chart to `docs/bench.svg`, which the README shows.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Verdict } from './report';

export interface RunCommit {
  /** short hash, or `nogit` outside a checkout */
  short: string;
  /** the working tree had uncommitted changes (the figures are then not exactly that commit's) */
  dirty: boolean;
}

export function currentCommit(root: string): RunCommit {
  try {
    const short = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8', timeout: 10000 }).trim();
    const status = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: root, encoding: 'utf8', timeout: 10000 }).trim();
    return { short, dirty: status !== '' };
  } catch {
    return { short: 'nogit', dirty: false };
  }
}

/** `bench-2026-12-02T00-40-12Z-830a1ca` (+ `-dirty`): sorts by date, names the commit. */
export function runBaseName(date: Date, commit: RunCommit): string {
  const stamp = date.toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/:/g, '-');
  return `bench-${stamp}-${commit.short}${commit.dirty ? '-dirty' : ''}`;
}

export interface IndexRow {
  name: string;
  ours: number | null;
  baseline: number | null;
  unit: string;
  ratio: number | null;
  target: string;
  verdict: Verdict;
}

export interface IndexEntry {
  file: string;
  date: string;
  commit: string;
  dirty: boolean;
  mode: 'quick' | 'full';
  groups: string[];
  counts: Record<Verdict, number>;
  rows: IndexRow[];
}

export interface ResultsIndex {
  about: string;
  runs: IndexEntry[];
}

const ABOUT = 'one entry per `npm run bench`, oldest first; ratio = ours / baseline; compare entries of the same mode';

export function readIndex(file: string): ResultsIndex {
  if (!existsSync(file)) return { about: ABOUT, runs: [] };
  const parsed = JSON.parse(readFileSync(file, 'utf8')) as Partial<ResultsIndex>;
  if (!Array.isArray(parsed.runs)) throw new Error(`${file} is not a bench results index (no "runs" array); move it away to start a new one`);
  return { about: ABOUT, runs: parsed.runs };
}

/** Appends one run; written to a temporary file and renamed, so a crash never leaves half an index. */
export function appendIndex(file: string, entry: IndexEntry): ResultsIndex {
  const index = readIndex(file);
  index.runs.push(entry);
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(index, null, 2)}\n`);
  renameSync(temporary, file);
  return index;
}

/**
 * Rows whose ratio moved by more than `factor` (either way) since the previous run of the same
 * mode — printed after the table so a regression is seen without opening any file.
 */
export function changesSincePrevious(index: ResultsIndex, factor = 1.25): string[] {
  const latest = index.runs[index.runs.length - 1];
  if (!latest) return [];
  const previous = [...index.runs.slice(0, -1)].reverse().find((run) => run.mode === latest.mode);
  if (!previous) return [];
  const before = new Map(previous.rows.map((row) => [row.name, row]));
  const lines: string[] = [];
  for (const row of latest.rows) {
    const old = before.get(row.name);
    if (!old || old.ratio === null || row.ratio === null || old.ratio <= 0 || row.ratio <= 0) continue;
    const change = row.ratio / old.ratio;
    if (change > factor || change < 1 / factor) {
      lines.push(`${row.name}: ratio ${old.ratio.toFixed(2)}× → ${row.ratio.toFixed(2)}× (${previous.commit} → ${latest.commit})`);
    }
  }
  return lines;
}

export function writeRecordedChart(root: string, svg: string): string {
  const file = join(root, 'docs', 'bench.svg');
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, svg);
  renameSync(temporary, file);
  return file;
}
