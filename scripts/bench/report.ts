/**
 * Pure helpers of `npm run bench`: medians, ratios, target evaluation and the table. No I/O, so the
 * smoke test can check them without servers.
 *
 * Target convention (every bench module follows it, so ✓/✗ needs no per-row code):
 *   - a number followed by `×` (or `x`) compares `ratio` = ours / stock, e.g. `≥ 1.5× stock req/s`, `≤ 1.05× stock time`;
 *   - a number followed by anything else compares `ours` in the row's unit, e.g. `≤ 100 ns`, `p50 ≤ 5 ms`;
 *   - no comparison at all (e.g. `info`) → the row is informative and gets no mark.
 */
import type { BenchRow } from './types';

export type Verdict = 'pass' | 'fail' | 'info' | 'error';

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

export function ratioOf(ours: number, baseline: number | null): number | null {
  if (baseline === null || !Number.isFinite(baseline) || baseline === 0 || !Number.isFinite(ours)) return null;
  return ours / baseline;
}

export function makeRow(name: string, ours: number, baseline: number | null, unit: string, target: string): BenchRow {
  return { name, ours, baseline, unit, ratio: ratioOf(ours, baseline), target };
}

interface ParsedTarget {
  op: '>=' | '<=';
  value: number;
  on: 'ratio' | 'ours';
}

export function parseTarget(target: string): ParsedTarget | null {
  const match = /(≥|>=|≤|<=)\s*([0-9]+(?:\.[0-9]+)?)\s*(×|x(?![a-z]))?/i.exec(target);
  if (!match) return null;
  return { op: match[1] === '≥' || match[1] === '>=' ? '>=' : '<=', value: Number(match[2]), on: match[3] ? 'ratio' : 'ours' };
}

export function evaluateRow(row: BenchRow, notes: readonly string[] = []): Verdict {
  if (notes.some((note) => note.startsWith('ERROR'))) return 'error';
  const target = parseTarget(row.target);
  if (!target) return 'info';
  const actual = target.on === 'ratio' ? row.ratio : row.ours;
  if (actual === null || !Number.isFinite(actual)) return 'error';
  return (target.op === '>=' ? actual >= target.value : actual <= target.value) ? 'pass' : 'fail';
}

/** Three significant digits without exponent noise: 0.0123, 1.23, 12.3, 1234. */
export function formatNumber(value: number | null): string {
  if (value === null) return '—';
  if (!Number.isFinite(value)) return 'n/a';
  const abs = Math.abs(value);
  if (abs >= 1000) return Math.round(value).toString();
  if (abs >= 100) return value.toFixed(0);
  if (abs >= 10) return value.toFixed(1);
  if (abs >= 1) return value.toFixed(2);
  if (abs === 0) return '0';
  return value.toPrecision(3);
}

export function formatRatio(ratio: number | null): string {
  return ratio === null || !Number.isFinite(ratio) ? '—' : `${ratio.toFixed(2)}×`;
}

const MARKS: Record<Verdict, string> = { pass: '✓', fail: '✗', info: '·', error: '✗ (error)' };

/** Display width that counts ✓/✗/×/≤ as one column (they are one code point each). */
function width(text: string): number {
  return [...text].length;
}

function pad(text: string, size: number, right = false): string {
  const fill = ' '.repeat(Math.max(0, size - width(text)));
  return right ? fill + text : text + fill;
}

export interface TableOptions {
  notes?: Readonly<Record<string, readonly string[]>>;
  /** Markdown for the README; plain aligned text otherwise. */
  markdown?: boolean;
}

export function formatTable(rows: readonly BenchRow[], options: TableOptions = {}): string {
  const header = ['row', 'stock', 'ours', 'unit', 'ratio (ours/stock)', 'target', ''];
  const body = rows.map((row) => [
    row.name,
    formatNumber(row.baseline),
    formatNumber(row.ours),
    row.unit,
    formatRatio(row.ratio),
    row.target,
    MARKS[evaluateRow(row, options.notes?.[row.name])],
  ]);
  if (options.markdown) {
    const line = (cells: string[]): string => `| ${cells.map((cell) => cell.replace(/\|/g, '\\|')).join(' | ')} |`;
    return [line(header), line(header.map((_, i) => (i >= 1 && i <= 2) || i === 4 ? '---:' : '---')), ...body.map(line)].join('\n');
  }
  const widths = header.map((cell, i) => Math.max(width(cell), ...body.map((cells) => width(cells[i]))));
  const numeric = new Set([1, 2, 4]);
  const line = (cells: string[]): string => cells.map((cell, i) => pad(cell, widths[i], numeric.has(i))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

export function summarize(rows: readonly BenchRow[], notes: Readonly<Record<string, readonly string[]>> = {}): Record<Verdict, number> {
  const counts: Record<Verdict, number> = { pass: 0, fail: 0, info: 0, error: 0 };
  for (const row of rows) counts[evaluateRow(row, notes[row.name])] += 1;
  return counts;
}
