/**
 * Which backend a store runs on; the few statements that differ between SQLite and PostgreSQL
 * branch on it. A module of its own so that migrations.ts need not import store.ts, which imports it.
 */
export type Dialect = 'sqlite' | 'postgres';
