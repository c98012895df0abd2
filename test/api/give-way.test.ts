/**
 * giveWay() (src/api/give-way.ts): a background request that gives way lets I/O that became ready
 * while it ran go first. Real sockets: a worker thread writes "a" on one connection; the server's
 * handler for "a" holds the event loop until the worker has written "b" on another (they signal
 * through shared memory), so "b" is ready, but not yet polled, when the handler gives way.
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { giveWay } from '../../src/api/give-way.js';

const WRITER = `
const net = require('node:net');
const { parentPort, workerData } = require('node:worker_threads');
const flags = new Int32Array(workerData.flags);
const a = net.connect(workerData.port);
a.on('connect', () => {
  const b = net.connect(workerData.port);
  b.on('connect', () => parentPort.postMessage('connected'));
  parentPort.on('message', () => {
    a.write('a');
    Atomics.wait(flags, 0, 0, 10000); // until the server's handler for "a" runs
    b.write('b', () => Atomics.store(flags, 1, 1)); // called once "b" is in the kernel
  });
});
`;

/** Holds the event loop, as a long request does, until the worker says "b" was sent. */
function holdUntilSent(flags: Int32Array): void {
  Atomics.store(flags, 0, 1);
  Atomics.notify(flags, 0);
  const until = performance.now() + 10_000;
  while (Atomics.load(flags, 1) === 0) {
    if (performance.now() > until) throw new Error('the worker never wrote "b"');
  }
}

let server: Server | undefined;
let worker: Worker | undefined;
afterEach(async () => {
  await worker?.terminate();
  await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
  server = worker = undefined;
});

/** The order in which "b"'s data event and the handler of "a" (resumed by `pause`) ran. */
async function orderAfter(pause: () => Promise<void>): Promise<string[]> {
  const order: string[] = [];
  const sockets: Socket[] = [];
  const flags = new Int32Array(new SharedArrayBuffer(8));
  let done!: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));
  server = createServer((socket) => {
    sockets.push(socket);
    socket.on('data', (data) => {
      if (data.toString() === 'b') {
        order.push('b arrived');
        if (order.length === 2) done();
        return;
      }
      holdUntilSent(flags);
      void pause().then(() => {
        order.push('a resumed');
        if (order.length === 2) done();
      });
    });
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  worker = new Worker(WRITER, { eval: true, workerData: { port: (server.address() as AddressInfo).port, flags: flags.buffer } });
  await new Promise((resolve) => worker!.once('message', resolve));
  worker.postMessage('go');
  await finished;
  for (const socket of sockets) socket.destroy();
  return order;
}

describe('giveWay', () => {
  it('resumes only after I/O that became ready meanwhile has been handled', async () => {
    expect(await orderAfter(giveWay)).toEqual(['b arrived', 'a resumed']);
  });

  it('is needed: one setImmediate resumes before that I/O is polled', async () => {
    const once = () => new Promise<void>((resolve) => setImmediate(resolve));
    expect(await orderAfter(once)).toEqual(['a resumed', 'b arrived']);
  });
});
