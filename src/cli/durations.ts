/** Durations as people write them: `90d`, `12h`, `30m`, `45s`, combined (`1h30m`), or bare seconds. */
import { InvalidArgumentError } from 'commander';

const UNIT_SECONDS: Record<string, number> = { d: 86_400, h: 3_600, m: 60, s: 1 };

/** The seconds `text` names, or undefined when it is no duration. */
export function durationSeconds(text: string): number | undefined {
  const trimmed = text.trim().toLowerCase();
  if (/^\d{1,12}$/.test(trimmed)) return Number(trimmed);
  if (!/^(\d{1,9}[dhms])+$/.test(trimmed)) return undefined;
  let total = 0;
  for (const [, n, unit] of trimmed.matchAll(/(\d+)([dhms])/g)) total += Number(n) * UNIT_SECONDS[unit!]!;
  return total;
}

/** A Commander parser for an option taking a duration from 1 s to `maxSeconds`. */
export function parseDuration(name: string, maxSeconds: number): (value: string) => number {
  return (value) => {
    const seconds = durationSeconds(value);
    if (seconds === undefined) throw new InvalidArgumentError(`${name} wants a duration such as 90d, 12h, 30m, 45s or 1h30m (or seconds)`);
    if (seconds < 1 || seconds > maxSeconds) throw new InvalidArgumentError(`${name} must be from 1s to ${formatDuration(maxSeconds)}`);
    return seconds;
  };
}

/** Seconds in at most two whole units, the largest first, e.g. 5400 → "1h30m", 86399 → "23h59m". */
export function formatDuration(seconds: number): string {
  let rest = Math.round(seconds);
  if (rest <= 0) return '0s';
  const parts: string[] = [];
  for (const [unit, size] of Object.entries(UNIT_SECONDS)) {
    if (rest >= size && parts.length < 2) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    } else if (parts.length > 0) {
      break;
    }
  }
  return parts.join('');
}
