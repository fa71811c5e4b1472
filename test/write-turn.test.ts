/**
 * src/h1/write-turn.ts: the first request written in a loop turn goes at once, the others of that
 * turn together right after the turn's I/O; nothing is lost, reordered or written on a closed socket,
 * and a write that throws neither stops the others nor leaves later turns queuing forever.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { writeInTurn } from '../src/h1/write-turn.js';
import { Agent, request } from '../src/index.js';

/** A server that records, per connection, every read it got; and n client sockets connected to it. */
async function connected(
  n: number,
): Promise<{ sockets: net.Socket[]; reads: string[][]; close(): Promise<void> }> {
  const reads: string[][] = [];
  const accepted: net.Socket[] = [];
  const server = net.createServer((c) => {
    const mine: string[] = [];
    reads.push(mine);
    accepted.push(c);
    c.on('data', (d) => mine.push(d.toString('latin1')));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const sockets: net.Socket[] = [];
  for (let i = 0; i < n; i++) {
    sockets.push(
      await new Promise<net.Socket>((resolve) => {
        const s = net.connect({ port, host: '127.0.0.1', noDelay: true }, () => resolve(s));
      }),
    );
    while (reads.length < sockets.length) await new Promise((r) => setImmediate(r));
  }
  return {
    sockets,
    reads,
    close: async () => {
      for (const s of [...sockets, ...accepted]) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

const turn = () => new Promise((resolve) => setImmediate(resolve));
async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 5));
}

test('write-turn: the first write of a turn goes at once, the rest after the turn, each whole and in order', async () => {
  const { sockets, reads, close } = await connected(3);
  try {
    writeInTurn(sockets[0]!, 'first');
    writeInTurn(sockets[1]!, Buffer.from('second'));
    writeInTurn(sockets[2]!, 'third');
    assert.equal(sockets[0]!.bytesWritten, 5, 'the first was handed to the socket at once');
    assert.equal(sockets[1]!.bytesWritten, 0, 'the second waits for the end of the turn');
    assert.equal(sockets[2]!.bytesWritten, 0);
    await turn();
    assert.deepEqual(
      sockets.map((s) => s.bytesWritten),
      [5, 6, 5],
    );
    await until(() => reads.every((r) => r.length > 0));
    assert.deepEqual(reads, [['first'], ['second'], ['third']]);
    // A new turn: its first write goes at once again.
    writeInTurn(sockets[1]!, 'again');
    assert.equal(sockets[1]!.bytesWritten, 11);
  } finally {
    await close();
  }
});

test('write-turn: a socket closed while its write waited is skipped; a write that throws does not stop the others or later turns', async () => {
  const { sockets, reads, close } = await connected(4);
  try {
    writeInTurn(sockets[0]!, 'a');
    writeInTurn(sockets[1]!, 'b');
    writeInTurn(sockets[2]!, 'c');
    writeInTurn(sockets[3]!, 'd');
    sockets[1]!.destroy(); // e.g. the caller aborted before the turn ended
    const boom = new Error('write failed');
    sockets[2]!.write = () => {
      throw boom;
    };
    let destroyedWith: unknown;
    sockets[2]!.once('error', (err) => {
      destroyedWith = err;
    });
    await turn();
    assert.equal(sockets[2]!.destroyed, true, 'the socket whose write threw is destroyed');
    await until(() => destroyedWith !== undefined && reads[3]!.length > 0);
    assert.equal(destroyedWith, boom);
    assert.deepEqual(reads[3], ['d'], 'the write after the one that threw still went');
    assert.deepEqual(reads[1], [], 'nothing written on the closed socket');
    // The next turn is not stuck queuing: its first write goes at once.
    writeInTurn(sockets[0]!, 'next');
    assert.equal(sockets[0]!.bytesWritten, 5);
  } finally {
    await close();
  }
});

test('write-turn under the pool: 16 requests started in one turn on 16 warm connections all get their answers', async () => {
  let served = 0;
  const server = net.createServer((c) => {
    c.on('data', (d) => {
      for (let i = d.indexOf('\r\n\r\n'); i !== -1; i = d.indexOf('\r\n\r\n', i + 4)) {
        served++;
        c.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}/`;
  const agent = new Agent({ maxConnectionsPerOrigin: 16 });
  try {
    const all = () =>
      Promise.all(Array.from({ length: 16 }, async () => (await request(url, { agent })).body.text()));
    assert.deepEqual(await all(), Array(16).fill('ok')); // opens the 16 connections
    const aborted = new AbortController();
    const pending = all();
    const gaveUp = request(url, { agent, signal: aborted.signal });
    aborted.abort();
    await assert.rejects(gaveUp, { code: 'WARMPOOL_ABORTED' });
    assert.deepEqual(await pending, Array(16).fill('ok'));
    assert.equal(served, 32, 'every request written once, the abandoned one not at all');
  } finally {
    await agent.destroy();
    await new Promise((resolve) => server.close(resolve));
  }
});
