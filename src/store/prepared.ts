/**
 * Statements the hot path runs on every request (the tenant lookup of every authenticated request;
 * the tenant lock, name check, VM insert, usage updates and ledger append of every create), built and
 * compiled by Kysely once per store and then run with new parameter values: building and compiling a
 * query costs more than SQLite's own lookup. The driver keeps the prepared statement by its text
 * (sqlite/open.ts), so the database does not parse it again either. Kysely builds everything else,
 * and the migrations.
 */
import type { CompiledQuery, Compilable, QueryResult } from 'kysely';
import type { Db } from './schema.js';

/** Stands for the i-th argument when the query is built; replaced by the argument on every run. */
const PREFIX = '\u0000ppn-parameter-';
const placeholder = (i: number): string => `${PREFIX}${i}`;

/** What an argument may be: a value bound as a parameter. */
export type Argument = string | number | null;

export type PreparedQuery<R, A extends Argument[]> = (db: Db, ...args: A) => Promise<QueryResult<R>>;

/**
 * `build` receives a placeholder (a string) in place of each argument and returns the query; the query
 * runs on whichever connection or transaction it is given, with the arguments in the placeholders'
 * places and the query's own constants kept. So `build` may only pass its arguments on as values to
 * bind, never compute with them or compare them with null (`= null` is not `is null`): an argument
 * that may be null belongs in an inserted or set value only.
 */
export function prepareQuery<R, A extends Argument[]>(build: (db: Db, ...args: A) => Compilable<R>): PreparedQuery<R, A> {
  // Keyed by the store's query compiler, which its transactions and connections share.
  const compiled = new WeakMap<object, { query: CompiledQuery<R>; slots: (number | null)[] }>();
  return (db, ...args) => {
    const executor = db.getExecutor();
    let template = compiled.get(executor.adapter);
    if (!template) {
      const query = build(db, ...(args.map((_, i) => placeholder(i)) as A)).compile();
      const slots = query.parameters.map((value) => (typeof value === 'string' && value.startsWith(PREFIX) ? Number(value.slice(PREFIX.length)) : null));
      template = { query, slots };
      compiled.set(executor.adapter, template);
    }
    const { query, slots } = template;
    const parameters = query.parameters.map((value, i) => (slots[i] === null ? value : args[slots[i]!]));
    return db.executeQuery<R>({ ...query, parameters });
  };
}
