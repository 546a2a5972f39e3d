/**
 * The bench's picture, as a hand-written SVG string (no dependency, pure — the smoke test checks
 * it without servers):
 *   1. one horizontal bar per row with a ratio: ours / baseline on a log scale around 1×, the
 *      target drawn as a tick where the target compares the ratio, coloured by verdict;
 *   2. one line chart per measured curve (e.g. publish latency vs version count), stock and ours.
 */
import type { Curve } from './http-bench';
import { evaluateRow, formatRatio, parseTarget, type Verdict } from './report';
import type { BenchRow } from './types';

export interface ChartInput {
  title: string;
  rows: readonly BenchRow[];
  notes?: Readonly<Record<string, readonly string[]>>;
  curves?: readonly Curve[];
}

const COLOURS: Record<Verdict, string> = { pass: '#2e7d32', fail: '#c62828', info: '#78909c', error: '#6a1b9a' };
const SIDE_COLOURS = { stock: '#1565c0', ours: '#ef6c00' } as const;
const WIDTH = 1000;
const LABEL_WIDTH = 560;
const BAR_HEIGHT = 14;
const ROW_HEIGHT = 20;
const FONT = 'font-family="system-ui, sans-serif" font-size="11"';

export function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function shorten(text: string, max: number): string {
  const chars = [...text];
  return chars.length <= max ? text : `${chars.slice(0, max - 1).join('')}…`;
}

function num(value: number): string {
  return Number.isFinite(value) ? (Math.round(value * 10) / 10).toString() : '0';
}

/** Log-scale axis from `lo` to `hi` (both > 0) onto [x0, x1]. */
function logScale(lo: number, hi: number, x0: number, x1: number): (value: number) => number {
  const a = Math.log10(lo);
  const b = Math.log10(hi);
  return (value) => x0 + ((Math.log10(Math.min(hi, Math.max(lo, value))) - a) / (b - a)) * (x1 - x0);
}

/** Decades and their halves between lo and hi: 0.1, 0.2, 0.5, 1, 2, 5, 10 … */
function logTicks(lo: number, hi: number): number[] {
  const ticks: number[] = [];
  for (let exp = Math.floor(Math.log10(lo)); exp <= Math.ceil(Math.log10(hi)); exp += 1) {
    for (const m of [1, 2, 5]) {
      const value = m * 10 ** exp;
      if (value >= lo * 0.999 && value <= hi * 1.001) ticks.push(Number(value.toPrecision(3)));
    }
  }
  return ticks;
}

function ratioPanel(rows: readonly BenchRow[], notes: ChartInput['notes'], top: number): { svg: string; height: number } {
  const shown = rows.filter((row) => row.ratio !== null && Number.isFinite(row.ratio) && row.ratio > 0);
  const ratios = shown.map((row) => row.ratio as number);
  const targets = shown.flatMap((row) => {
    const target = parseTarget(row.target);
    return target && target.on === 'ratio' && target.value > 0 ? [target.value] : [];
  });
  const lo = Math.min(0.1, ...ratios, ...targets) / 1.2;
  const hi = Math.max(10, ...ratios, ...targets) * 1.2;
  const x0 = LABEL_WIDTH;
  const x1 = WIDTH - 70;
  const x = logScale(lo, hi, x0, x1);
  const parts: string[] = [];
  parts.push(`<text x="10" y="${top + 14}" ${FONT} font-weight="bold">ours ÷ baseline per row (log scale; baseline = stock unless the row names another; | = target)</text>`);
  const axisTop = top + 24;
  const height = 24 + 18 + shown.length * ROW_HEIGHT + 10;
  for (const tick of logTicks(lo, hi)) {
    const tx = num(x(tick));
    parts.push(`<line x1="${tx}" y1="${axisTop + 14}" x2="${tx}" y2="${top + height - 10}" stroke="${tick === 1 ? '#000' : '#ddd'}" stroke-width="${tick === 1 ? 1.5 : 1}"/>`);
    parts.push(`<text x="${tx}" y="${axisTop + 10}" ${FONT} text-anchor="middle">${tick}×</text>`);
  }
  shown.forEach((row, i) => {
    const y = axisTop + 18 + i * ROW_HEIGHT;
    const ratio = row.ratio as number;
    const verdict = evaluateRow(row, notes?.[row.name]);
    const [from, to] = ratio >= 1 ? [x(1), x(ratio)] : [x(ratio), x(1)];
    parts.push(`<text x="10" y="${y + 11}" ${FONT}>${escapeXml(shorten(row.name, 92))}</text>`);
    parts.push(
      `<rect class="bar ${verdict}" x="${num(from)}" y="${y}" width="${num(Math.max(1, to - from))}" height="${BAR_HEIGHT}" fill="${COLOURS[verdict]}"><title>${escapeXml(
        `${row.name}: ${formatRatio(ratio)} (target ${row.target}, ${verdict})`,
      )}</title></rect>`,
    );
    const target = parseTarget(row.target);
    if (target && target.on === 'ratio' && target.value > 0) {
      const tx = num(x(target.value));
      parts.push(`<line class="target" x1="${tx}" y1="${y - 2}" x2="${tx}" y2="${y + BAR_HEIGHT + 2}" stroke="#000" stroke-width="2"/>`);
    }
    parts.push(`<text x="${num(x1 + 6)}" y="${y + 11}" ${FONT}>${formatRatio(ratio)}</text>`);
  });
  return { svg: parts.join('\n'), height };
}

function niceMax(value: number): number {
  if (!(value > 0)) return 1;
  const exp = 10 ** Math.floor(Math.log10(value));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * exp >= value) return m * exp;
  return 10 * exp;
}

function curvePanel(curve: Curve, top: number): { svg: string; height: number } {
  const height = 240;
  const [x0, x1, y0, y1] = [70, WIDTH - 160, top + height - 30, top + 30];
  const finite = (values: readonly number[]): number[] => values.filter((v) => Number.isFinite(v));
  const xMax = niceMax(Math.max(1, ...finite(curve.x)));
  const yMax = niceMax(Math.max(0, ...finite(curve.stock), ...finite(curve.ours)));
  const px = (v: number): number => x0 + (v / xMax) * (x1 - x0);
  const py = (v: number): number => y0 - (v / yMax) * (y0 - y1);
  const parts: string[] = [`<text x="10" y="${top + 16}" ${FONT} font-weight="bold">${escapeXml(curve.name)}</text>`];
  for (let i = 0; i <= 4; i += 1) {
    const yv = (yMax * i) / 4;
    const xv = (xMax * i) / 4;
    parts.push(`<line x1="${x0}" y1="${num(py(yv))}" x2="${x1}" y2="${num(py(yv))}" stroke="#eee"/>`);
    parts.push(`<text x="${x0 - 6}" y="${num(py(yv) + 4)}" ${FONT} text-anchor="end">${num(yv)}</text>`);
    parts.push(`<text x="${num(px(xv))}" y="${y0 + 16}" ${FONT} text-anchor="middle">${num(xv)}</text>`);
  }
  parts.push(`<line x1="${x0}" y1="${y0}" x2="${x1}" y2="${y0}" stroke="#000"/><line x1="${x0}" y1="${y0}" x2="${x0}" y2="${y1}" stroke="#000"/>`);
  parts.push(`<text x="${num((x0 + x1) / 2)}" y="${y0 + 28}" ${FONT} text-anchor="middle">${escapeXml(curve.xLabel)}</text>`);
  parts.push(`<text x="14" y="${num((y0 + y1) / 2)}" ${FONT} transform="rotate(-90 14 ${num((y0 + y1) / 2)})" text-anchor="middle">${escapeXml(curve.yLabel)}</text>`);
  (['stock', 'ours'] as const).forEach((side, i) => {
    const points = curve.x.flatMap((xv, j) => (Number.isFinite(xv) && Number.isFinite(curve[side][j]) ? [`${num(px(xv))},${num(py(curve[side][j]))}`] : []));
    parts.push(`<polyline class="curve ${side}" fill="none" stroke="${SIDE_COLOURS[side]}" stroke-width="2" points="${points.join(' ')}"/>`);
    const ly = y1 + i * 18;
    parts.push(`<line x1="${x1 + 16}" y1="${ly}" x2="${x1 + 40}" y2="${ly}" stroke="${SIDE_COLOURS[side]}" stroke-width="3"/>`);
    parts.push(`<text x="${x1 + 46}" y="${ly + 4}" ${FONT}>${side === 'stock' ? 'stock (JWT mode)' : 'ours'}</text>`);
  });
  return { svg: parts.join('\n'), height };
}

/** The whole picture: the ratio bars, then one line chart per curve. */
export function renderChart(input: ChartInput): string {
  const parts: string[] = [];
  let top = 30;
  const ratios = ratioPanel(input.rows, input.notes, top);
  parts.push(ratios.svg);
  top += ratios.height;
  for (const curve of input.curves ?? []) {
    const panel = curvePanel(curve, top);
    parts.push(panel.svg);
    top += panel.height;
  }
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${top + 10}" viewBox="0 0 ${WIDTH} ${top + 10}">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="10" y="20" font-family="system-ui, sans-serif" font-size="14" font-weight="bold">${escapeXml(input.title)}</text>`,
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}
