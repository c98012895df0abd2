/**
 * Reading Prometheus text exposition (format 0.0.4) as a scraper does: each sample by its metric
 * name and labels, whatever order the labels are written in.
 */

/** The value of the sample `name{labels}` (exactly those labels), or undefined when there is none. */
export function sampleValue(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const wanted = seriesKey(name, labels);
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) continue;
    const found: Record<string, string> = {};
    for (const label of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) found[label[1]!] = label[2]!;
    if (seriesKey(match[1]!, found) === wanted) return Number(match[3]);
  }
  return undefined;
}

/** The metric names the text declares with `# TYPE`. */
export function declaredMetrics(text: string): Set<string> {
  return new Set([...text.matchAll(/^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) /gm)].map((m) => m[1]!));
}

function seriesKey(name: string, labels: Record<string, string>): string {
  return JSON.stringify([name, Object.entries(labels).sort(([a], [b]) => a.localeCompare(b))]);
}
