/** One line of the `npm run bench` table. `ratio` = ours / baseline (null without a baseline). */
export type BenchRow = { name: string; ours: number; baseline: number | null; unit: string; ratio: number | null; target: string };
