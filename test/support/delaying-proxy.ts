/**
 * A TCP proxy (node:net) in front of PostgreSQL that can make the database slow to reach, as it is
 * while it restarts or the network stalls, and count the connections made through it.
 *
 * - `holdNewConnections(ms, atMostMs)`: a new connection is accepted but not forwarded. The first one
 *   held opens a batch; every connection arriving while it is open joins it, and the whole batch is
 *   forwarded at once when no connection has arrived for `ms`, or `atMostMs` after it opened. So
 *   each connect takes at least `ms`, and clients that kept trying meanwhile all get through
 *   together, as after a database restart or a network stall.
 * - `stall()` / `unstall()`: the database's answers on open connections wait until unstalled.
 * - `cut()`: every open connection is broken, as when the network drops.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

interface Pair {
  client: Socket;
  upstream: Socket | null;
  /** What the client sent before the connection was forwarded. */
  early: Buffer[];
  /** Answers held back while stalled. */
  pending: Buffer[];
}

export class DelayingProxy {
  /** Connections whose client side is open now, forwarded or held. */
  open = 0;
  /** The most connections ever open at once. */
  maxOpen = 0;
  accepted = 0;
  private holdMs = 0;
  private holdAtMostMs = 0;
  private batch: { pairs: Pair[]; opened: number; timer?: NodeJS.Timeout } | null = null;
  private stalled = false;
  private readonly pairs = new Set<Pair>();
  private settledWaiters: (() => void)[] = [];

  private constructor(
    private readonly server: Server,
    private readonly target: { host: string; port: number },
  ) {}

  /** A proxy on a free loopback port in front of the server of `databaseUrl`. */
  static async start(databaseUrl: string): Promise<DelayingProxy> {
    const url = new URL(databaseUrl);
    const server = createServer((socket) => proxy.accept(socket));
    const proxy = new DelayingProxy(server, { host: url.hostname, port: Number(url.port || 5432) });
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    return proxy;
  }

  /** `databaseUrl` with the proxy's address instead of the server's. */
  urlFor(databaseUrl: string): string {
    const url = new URL(databaseUrl);
    const address = this.server.address();
    if (!address || typeof address === 'string') throw new Error('the proxy is not listening');
    url.hostname = '127.0.0.1';
    url.port = String(address.port);
    return url.toString();
  }

  /** From now on, hold new connections in batches as described above (0: forward them at once). */
  holdNewConnections(ms: number, atMostMs = 3 * ms): void {
    this.holdMs = ms;
    this.holdAtMostMs = atMostMs;
  }

  /** Resolves once no connection is held, whether forwarded or closed by its client. */
  async settled(): Promise<void> {
    if (!this.batch) return;
    await new Promise<void>((done) => this.settledWaiters.push(done));
  }

  stall(): void {
    this.stalled = true;
  }

  unstall(): void {
    this.stalled = false;
    for (const pair of this.pairs) {
      for (const chunk of pair.pending.splice(0)) pair.client.write(chunk);
    }
  }

  /** Breaks every open connection. */
  cut(): void {
    for (const pair of this.pairs) {
      pair.client.destroy();
      pair.upstream?.destroy();
    }
  }

  async close(): Promise<void> {
    this.cut();
    if (this.batch) clearTimeout(this.batch.timer);
    await new Promise<void>((done) => this.server.close(() => done()));
  }

  private accept(client: Socket): void {
    const pair: Pair = { client, upstream: null, early: [], pending: [] };
    this.accepted++;
    this.open++;
    this.maxOpen = Math.max(this.maxOpen, this.open);
    this.pairs.add(pair);
    client.on('error', () => undefined);
    client.on('data', (chunk: Buffer) => (pair.upstream ? pair.upstream.write(chunk) : pair.early.push(chunk)));
    client.on('end', () => pair.upstream?.end());
    client.on('close', () => {
      this.open--;
      this.pairs.delete(pair);
      pair.upstream?.destroy();
      if (this.batch) {
        this.batch.pairs = this.batch.pairs.filter((p) => p !== pair);
        if (this.batch.pairs.length === 0) this.endBatch();
      }
    });
    if (this.holdMs === 0) return this.forward(pair);
    const now = Date.now();
    const batch = (this.batch ??= { pairs: [], opened: now });
    batch.pairs.push(pair);
    clearTimeout(batch.timer);
    batch.timer = setTimeout(() => this.release(), Math.min(this.holdMs, batch.opened + this.holdAtMostMs - now));
  }

  private release(): void {
    const pairs = this.batch?.pairs ?? [];
    this.endBatch();
    for (const held of pairs) this.forward(held);
  }

  private endBatch(): void {
    if (this.batch) clearTimeout(this.batch.timer);
    this.batch = null;
    for (const done of this.settledWaiters.splice(0)) done();
  }

  private forward(pair: Pair): void {
    const { client } = pair;
    if (client.destroyed) return;
    const upstream = connect(this.target.port, this.target.host);
    pair.upstream = upstream;
    upstream.on('error', () => client.destroy());
    upstream.on('close', () => client.destroy());
    upstream.on('data', (chunk: Buffer) => {
      if (this.stalled) pair.pending.push(chunk);
      else client.write(chunk);
    });
    for (const chunk of pair.early.splice(0)) upstream.write(chunk);
    if (client.readableEnded) upstream.end();
  }
}
