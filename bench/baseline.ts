/**
 * The baselines of the issue 11 benchmark, each run as its own process so that it gets a process of
 * its own as the product does (bench/issue11.ts spawns them):
 *
 *   node baseline.js bare PORT FILE      a bare Fastify server (no logger, no hooks) answering
 *                                        GET /v1/vms with the status, headers and body in FILE,
 *                                        captured once from the product's own answer
 *   node baseline.js constant PORT       the same server answering GET /v1/vms with a constant JSON
 *   node baseline.js sqlite FILE SECONDS a raw better-sqlite3 loop, one row inserted and committed
 *                                        per iteration, with the product's pragmas (WAL, FULL)
 *   node baseline.js pg URL SECONDS N    N raw `pg` clients, each inserting one row per commit
 *
 * The commit loops print one JSON line: commits, seconds, their own CPU time in µs (process.cpuUsage),
 * and p50 and p99 of one commit in ms.
 */
import { readFileSync } from 'node:fs';
import BetterSqlite3 from 'better-sqlite3';
import Fastify from 'fastify';
import pg from 'pg';
import { SQLITE_PRAGMAS } from '../src/store/sqlite/open.js';

/** What the product answered, as the bare server replays it. */
export interface CapturedAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export interface CommitLoop {
  commits: number;
  seconds: number;
  cpuMicros: number;
  p50: number;
  p99: number;
}

/** A table shaped like the product's vms rows, for the commit loops. */
const VMS_TABLE = `CREATE TABLE vms (vm_id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, name TEXT NOT NULL, vcpus INTEGER NOT NULL,
  memory_mb INTEGER NOT NULL, disk_gb INTEGER NOT NULL, state TEXT NOT NULL, created_at TEXT NOT NULL, UNIQUE (tenant_id, name))`;

export function percentile(sorted: Float64Array | number[], fraction: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(sorted.length * fraction) - 1))]!;
}

function summarise(latencies: number[], seconds: number, cpu: NodeJS.CpuUsage): CommitLoop {
  const sorted = Float64Array.from(latencies).sort();
  return { commits: latencies.length, seconds, cpuMicros: cpu.user + cpu.system, p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99) };
}

const now = (): number => Number(process.hrtime.bigint()) / 1e6;

function sqliteLoop(file: string, seconds: number): CommitLoop {
  const db = new BetterSqlite3(file);
  for (const pragma of SQLITE_PRAGMAS) db.pragma(pragma);
  db.exec(VMS_TABLE);
  const insert = db.prepare("INSERT INTO vms VALUES (?, 'raw', ?, 1, 1024, 10, 'pending', ?)");
  const insertOne = db.transaction((i: number) => insert.run(`vm-${i}`, `name-${i}`, new Date().toISOString()));
  const latencies: number[] = [];
  const cpu = process.cpuUsage();
  const start = now();
  const deadline = start + seconds * 1000;
  for (let i = 0, t = start; t < deadline; i++) {
    insertOne(i);
    const done = now();
    latencies.push(done - t);
    t = done;
  }
  const result = summarise(latencies, (now() - start) / 1000, process.cpuUsage(cpu));
  db.close();
  return result;
}

async function pgLoop(url: string, seconds: number, clients: number): Promise<CommitLoop> {
  const table = `raw_commits_${process.pid}`;
  const setup = new pg.Client({ connectionString: url });
  await setup.connect();
  await setup.query(VMS_TABLE.replace('CREATE TABLE vms', `CREATE TABLE ${table}`));
  await setup.end();
  const latencies: number[] = [];
  const cpu = process.cpuUsage();
  const start = now();
  const deadline = start + seconds * 1000;
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      const text = `INSERT INTO ${table} VALUES ($1, 'raw', $2, 1, 1024, 10, 'pending', $3)`;
      for (let i = 0, t = now(); t < deadline; i++) {
        // One statement outside a transaction block: its own durable commit.
        await client.query({ name: 'raw-insert', text, values: [`vm-${c}-${i}`, `name-${c}-${i}`, new Date().toISOString()] });
        const done = now();
        latencies.push(done - t);
        t = done;
      }
      await client.end();
    }),
  );
  const result = summarise(latencies, (now() - start) / 1000, process.cpuUsage(cpu));
  const cleanup = new pg.Client({ connectionString: url });
  await cleanup.connect();
  await cleanup.query(`DROP TABLE ${table}`);
  await cleanup.end();
  return result;
}

async function serveBare(port: number, answer: CapturedAnswer | null): Promise<void> {
  const app = Fastify({ logger: false });
  const constant = { items: [], next_cursor: null };
  app.get('/v1/vms', async (_request, reply) => {
    if (!answer) return constant;
    return reply.code(answer.status).headers(answer.headers).send(answer.body);
  });
  await app.listen({ host: '127.0.0.1', port });
  process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
}

const [mode, ...args] = process.argv.slice(2);
if (mode === 'bare') await serveBare(Number(args[0]), JSON.parse(readFileSync(args[1]!, 'utf8')) as CapturedAnswer);
else if (mode === 'constant') await serveBare(Number(args[0]), null);
else if (mode === 'sqlite') process.stdout.write(`${JSON.stringify(sqliteLoop(args[0]!, Number(args[1])))}\n`);
else if (mode === 'pg') process.stdout.write(`${JSON.stringify(await pgLoop(args[0]!, Number(args[1]), Number(args[2])))}\n`);
else if (mode !== undefined) throw new Error(`unknown baseline mode ${mode}`);
