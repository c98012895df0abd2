import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Replica tests need a shared PostgreSQL database, and test/postgres/ a PostgreSQL server, so they run in the PostgreSQL half only.
    exclude: [...configDefaults.exclude, ...(process.env.PPN_TEST_STORE === 'postgres' ? [] : ['test/replicas/**', 'test/postgres/**'])],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
