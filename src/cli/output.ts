/**
 * How `ppn` prints: tables for people (aligned, fitted to the terminal's width, bold headings only
 * on a terminal and never with NO_COLOR), `--json` for scripts (the API's objects as they are), and
 * `-q/--quiet` for ids alone, one a line.
 */

export interface OutputOptions {
  json?: boolean;
  quiet?: boolean;
}

export interface Column<T> {
  heading: string;
  value: (row: T) => string;
  /** May be cut (with "…") to fit the terminal; ids are never cut. */
  shrink?: boolean;
}

/** The width to fit tables in: the terminal's, or unbounded when stdout is not a terminal. */
export function terminalWidth(stream: NodeJS.WriteStream = process.stdout): number {
  return stream.isTTY && stream.columns > 0 ? stream.columns : Infinity;
}

function colourful(stream: NodeJS.WriteStream = process.stdout): boolean {
  return stream.isTTY === true && (process.env.NO_COLOR ?? '') === '';
}

/** Printable on one line: control characters (a VM's reason, a token's name…) become spaces. */
const CONTROL_PATTERN = '[\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029]';
const CONTROL_CHARACTERS = new RegExp(CONTROL_PATTERN, 'g');

function oneLine(text: string): string {
  return text.replace(CONTROL_CHARACTERS, ' ');
}

/**
 * Lays out `rows` under `columns` in at most `width` characters a line: when the natural widths do
 * not fit, the widest shrinkable column is narrowed a character at a time (not below its heading or
 * 8 characters), and cells longer than their column end in "…".
 */
export function formatTable<T>(columns: Column<T>[], rows: T[], width: number, bold = false): string[] {
  const cells = rows.map((row) => columns.map((column) => oneLine(column.value(row))));
  const widths = columns.map((column, i) => Math.max(column.heading.length, ...cells.map((line) => line[i]!.length)));
  const total = () => widths.reduce((sum, w) => sum + w, 0) + 2 * (columns.length - 1);
  while (total() > width) {
    let widest = -1;
    columns.forEach((column, i) => {
      const floor = Math.max(column.heading.length, 8);
      if (column.shrink && widths[i]! > floor && (widest < 0 || widths[i]! > widths[widest]!)) widest = i;
    });
    if (widest < 0) break;
    widths[widest]!--;
  }
  const cut = (text: string, w: number) => (text.length <= w ? text.padEnd(w) : `${text.slice(0, w - 1)}…`);
  const line = (values: string[]) =>
    values
      .map((v, i) => cut(v, widths[i]!))
      .join('  ')
      .trimEnd();
  const heading = line(columns.map((c) => c.heading));
  return [bold ? `\u001b[1m${heading}\u001b[0m` : heading, ...cells.map(line)];
}

export function printTable<T>(columns: Column<T>[], rows: T[]): void {
  process.stdout.write(`${formatTable(columns, rows, terminalWidth(), colourful()).join('\n')}\n`);
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** A list: JSON as the API gave it, ids alone, or a table (its headings alone when the list is empty). */
export function printList<T>(options: OutputOptions, rows: T[], columns: Column<T>[], id: (row: T) => string, json: unknown = rows): void {
  if (options.json) printJson(json);
  else if (options.quiet) process.stdout.write(rows.map((row) => `${id(row)}\n`).join(''));
  else printTable(columns, rows);
}

/** One object: JSON as the API gave it, its id alone, or `key  value` lines followed by any tables. */
export function printRecord(options: OutputOptions, record: unknown, id: string, fields: [string, string][], after?: () => void): void {
  if (options.json) return printJson(record);
  if (options.quiet) return void process.stdout.write(`${id}\n`);
  const width = Math.max(...fields.map(([key]) => key.length));
  process.stdout.write(fields.map(([key, value]) => `${key.padEnd(width)}  ${oneLine(value)}\n`).join(''));
  after?.();
}

/** A progress line on stderr: rewritten in place on a terminal, one line per change otherwise. */
export class Progress {
  private last = '';
  private readonly live = process.stderr.isTTY === true;

  show(text: string, changed: boolean): void {
    if (this.live) {
      const width = terminalWidth(process.stderr);
      const fitted = text.length < width ? text : `${text.slice(0, width - 2)}…`;
      process.stderr.write(`\r\u001b[2K${fitted}`);
    } else if (changed) {
      process.stderr.write(`${text}\n`);
    }
    this.last = text;
  }

  done(): void {
    if (this.live && this.last !== '') process.stderr.write('\n');
  }
}
