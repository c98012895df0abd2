/**
 * What every command line shares, with no store behind it: the error that carries an exit code,
 * the runner that prints it, and the parsers for numbers and enumerated values. `ppn` is built on
 * this alone (it reaches the server over the public API only).
 */
import { InvalidArgumentError } from 'commander';
import { readCaFile } from '../tls/client.js';

/** Exit codes: 1 the server or the command refused, 2 the command line itself is wrong, 3 the server cannot be reached. */
export const EXIT_REFUSED = 1;
export const EXIT_USAGE = 2;
export const EXIT_UNREACHABLE = 3;

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = EXIT_REFUSED,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export function parsePositiveInt(name: string, max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isSafeInteger(n) || n < 1 || n > max) throw new InvalidArgumentError(`${name} must be a whole number from 1 to ${max}`);
    return n;
  };
}

/**
 * A parser for an option taking one of `values`, in any case; a wrong value is refused with the
 * list of valid ones. Returns the value as `values` spells it.
 */
export function oneOf<T extends string>(name: string, values: readonly T[]): (value: string) => T {
  return (value) => {
    const found = values.find((v) => v.toLowerCase() === value.trim().toLowerCase());
    if (found === undefined) throw new InvalidArgumentError(`${name} must be one of ${values.join(', ')}`);
    return found;
  };
}

/** Runs a command's action, turning errors into a message on stderr and an exit code. */
export async function runCli(main: () => Promise<void>): Promise<void> {
  try {
    await main();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`error: ${message}\n`);
    process.exitCode = error instanceof CliError ? error.exitCode : EXIT_REFUSED;
  }
}

/** The CA that `--ca` (else PPN_CA) names, read now: a missing or non-PEM file is a wrong command line. */
export function readCaOption(given: string | undefined): string | undefined {
  const file = given ?? (process.env.PPN_CA || undefined);
  if (file === undefined) return undefined;
  try {
    return readCaFile(file, given !== undefined ? '--ca' : 'PPN_CA');
  } catch (error) {
    throw new CliError((error as Error).message, EXIT_USAGE);
  }
}
