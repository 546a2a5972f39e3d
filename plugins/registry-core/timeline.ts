/** The start-up timeline: real elapsed time since the process started (performance.now() counts from there). */
export function formatBootMark(label: string, elapsedMs: number): string {
  return `[boot +${elapsedMs.toFixed(1).padStart(7)} ms] ${label}`;
}

export function bootMark(label: string): void {
  process.stdout.write(`${formatBootMark(label, performance.now())}\n`);
}
