/**
 * Soak: at least 20 000 mixed GETs and POSTs, each with a unique x-request-id, through a FaultServer
 * that closes and resets connections at random, closes them at a request cap (announced or not), and
 * closes idle ones at its keep-alive timeout (300 ms, not advertised) while clients pause around that
 * boundary (all together in lulls, and one at a time). Loopback only; bounded by count and by time.
 *
 * What must hold:
 *   - every GET succeeds (a stale connection is either never used, or the GET is retried);
 *   - every POST succeeds or fails with a WarmpoolError code, and is never processed twice;
 *   - no request is lost: every request that succeeded was seen by the server;
 *   - POSTs the client saw fail but the server processed are reported (they are the ambiguous ones).
 * The figures are printed as test diagnostics.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Agent, Client, WarmpoolError } from '../src/index.js';
import { type FaultAction, startFaultServer } from './helpers/fault-server.js';
import { prng } from './helpers/prng.js';

const TARGET_REQUESTS = 20_000;
const TIME_CAP_MS = 50_000;
const WORKERS = 24;
const KEEP_ALIVE_MS = 300;
const CAP_PER_CONNECTION = 40;
const PAUSE_PROBABILITY = 0.01;
/** Every this many requests, all workers pause together (a lull) for KEEP_ALIVE_MS +- 50 ms. */
const LULL_EVERY = 400;
const POST_SHARE = 0.4;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

type FaultKind =
  | 'reset-before-response'
  | 'close-before-response'
  | 'reset-after-response'
  | 'close-after-response (announced)'
  | 'close-after-response (silent)'
  | 'request cap, announced'
  | 'request cap, silent';

interface Outcome {
  method: 'GET' | 'POST';
  ok: boolean;
  code?: string;
  message?: string;
  retried?: boolean;
}

test(
  `soak: >= ${TARGET_REQUESTS} mixed requests through random closes, resets and keep-alive boundaries`,
  {
    timeout: TIME_CAP_MS + 30_000,
  },
  async (t) => {
    const seed = Number(process.env.WARMPOOL_SOAK_SEED ?? 0x5eed);
    const serverRandom = prng(seed);
    const clientRandom = prng(seed ^ 0x9e3779b9);
    const faults = new Map<FaultKind, number>();
    const fault = (k: FaultKind, action: FaultAction): FaultAction => {
      faults.set(k, (faults.get(k) ?? 0) + 1);
      return action;
    };

    const srv = await startFaultServer({
      keepAliveTimeoutMs: KEEP_ALIVE_MS,
      keepBodies: false,
      lingerMs: 2000,
      handler: (req) => {
        const body = `ok ${req.requestId}`;
        // Faults only on reused connections (seq >= 2): a first request on a new connection is never
        // harmed, so a GET's one retry (always on a new connection) can succeed, as it would against a
        // server that is merely closing stale connections.
        if (req.seq >= CAP_PER_CONNECTION) {
          return serverRandom() < 0.5
            ? fault('request cap, announced', { type: 'respond', body, after: 'close' })
            : fault('request cap, silent', { type: 'respond', body, after: 'close-silently' });
        }
        if (req.seq < 2) return { type: 'respond', body };
        const r = serverRandom();
        if (r < 0.01) return fault('reset-before-response', { type: 'reset' });
        if (r < 0.02) return fault('close-before-response', { type: 'close' });
        if (r < 0.03) return fault('reset-after-response', { type: 'respond', body, after: 'reset' });
        if (r < 0.04)
          return fault('close-after-response (announced)', { type: 'respond', body, after: 'close' });
        if (r < 0.05)
          return fault('close-after-response (silent)', { type: 'respond', body, after: 'close-silently' });
        return { type: 'respond', body };
      },
    });
    const agent = new Agent();
    const client = new Client({ agent, headersTimeout: 10_000, bodyTimeout: 10_000 });
    const outcomes = new Map<string, Outcome>();
    let issued = 0;
    let pauses = 0;
    let lulls = 0;
    let lullEnd = 0;
    let nextLullAt = LULL_EVERY;
    const started = Date.now();
    const deadline = started + TIME_CAP_MS;

    async function worker(w: number): Promise<void> {
      for (let i = 0; issued < TARGET_REQUESTS && Date.now() < deadline; i++) {
        // A lull: every connection goes idle for about the server's keep-alive timeout, then all
        // workers come back at once, some just before the server closes, some just after.
        if (issued >= nextLullAt) {
          nextLullAt += LULL_EVERY;
          lulls++;
          lullEnd = Date.now() + KEEP_ALIVE_MS - 50 + Math.floor(clientRandom() * 100);
        }
        const wait = lullEnd - Date.now();
        if (wait > 0) await sleep(wait);
        issued++;
        const id = `w${w}-${i}`;
        const method = clientRandom() < POST_SHARE ? 'POST' : 'GET';
        try {
          const res = await client.request(`${srv.url}/${method.toLowerCase()}/${id}`, {
            method,
            headers: { 'x-request-id': id },
            body: method === 'POST' ? `payload ${id}` : undefined,
          });
          const text = await res.body.text();
          assert.equal(text, `ok ${id}`, `response mismatch for ${id}`);
          outcomes.set(id, { method, ok: true, retried: res.retried });
        } catch (err) {
          if (err instanceof assert.AssertionError) throw err;
          outcomes.set(id, {
            method,
            ok: false,
            code: err instanceof WarmpoolError ? err.code : `not a WarmpoolError: ${err}`,
            message: (err as Error).message,
          });
        }
        if (clientRandom() < PAUSE_PROBABILITY) {
          pauses++;
          // Around the server's keep-alive timeout: some come back just before it closes, some after.
          await sleep(KEEP_ALIVE_MS - 40 + Math.floor(clientRandom() * 80));
        }
      }
    }

    try {
      await Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(w)));
      const elapsed = Date.now() - started;
      await sleep(200); // late bytes reach the server log

      const stats = agent.originStats(srv.url)!;
      const requests = outcomes.size;
      const getFailures: string[] = [];
      const failuresByCode = new Map<string, number>();
      const postFailedButProcessed: string[] = [];
      const lost: string[] = [];
      let retriedResponses = 0;
      let gets = 0;
      let posts = 0;
      for (const [id, o] of outcomes) {
        if (o.method === 'GET') gets++;
        else posts++;
        if (o.ok) {
          if (o.retried) retriedResponses++;
          if (!srv.requestIdCounts.has(id)) lost.push(id);
          continue;
        }
        failuresByCode.set(`${o.method} ${o.code}`, (failuresByCode.get(`${o.method} ${o.code}`) ?? 0) + 1);
        if (o.method === 'GET') {
          const seen = srv.log.filter((e) => e.requestId === id).map((e) => `${e.kind}@conn${e.connId}`);
          getFailures.push(`${id}: ${o.code} ${o.message}; server: ${seen.join(', ') || 'never saw it'}`);
        } else if (srv.requestIdCounts.has(id)) postFailedButProcessed.push(id);
      }
      const duplicates = srv.duplicateRequestIds();
      const postDuplicates = duplicates.filter((id) => outcomes.get(id)?.method === 'POST');
      const idleCloses = srv
        .events('close-by-server')
        .filter((e) => e.detail === 'keep-alive timeout').length;
      const writesAfterClose = srv.stats.writesAfterClose;
      // Which server close each write-after-close followed (the races no client can win: a close the
      // server did not announce, that crossed the request on the wire or in the same loop turn).
      const closeReason = new Map<number, string>();
      for (const e of srv.log)
        if (e.kind === 'close-by-server' && e.detail) closeReason.set(e.connId, e.detail);
      const wacByReason = new Map<string, number>();
      for (const e of srv.events('write-after-close')) {
        const why = closeReason.get(e.connId) ?? 'unknown';
        wacByReason.set(why, (wacByReason.get(why) ?? 0) + 1);
      }

      const figures = [
        `seed ${seed}; ${requests} requests (${gets} GET, ${posts} POST) in ${(elapsed / 1000).toFixed(1)} s, ${WORKERS} workers, ${lulls} lulls of ${KEEP_ALIVE_MS - 50}-${KEEP_ALIVE_MS + 50} ms, ${pauses} single-worker pauses of ${KEEP_ALIVE_MS - 40}-${KEEP_ALIVE_MS + 40} ms`,
        `faults injected: ${[...faults].map(([k, n]) => `${k} ${n}`).join(', ')}, keep-alive timeout closes ${idleCloses}`,
        `connections: server accepted ${srv.stats.connectionsAccepted}, client created ${stats.created}; closed by reason ${JSON.stringify(stats.closed)}`,
        `retries: ${stats.retried} (responses marked retried: ${retriedResponses})`,
        `failures: ${failuresByCode.size === 0 ? 'none' : [...failuresByCode].map(([k, n]) => `${k} ${n}`).join(', ')}`,
        `POSTs that failed at the client but were processed by the server: ${postFailedButProcessed.length}${
          postFailedButProcessed.length > 0
            ? ` (${postFailedButProcessed.slice(0, 10).join(', ')}${postFailedButProcessed.length > 10 ? ', ...' : ''})`
            : ''
        }`,
        `duplicates: POST ${postDuplicates.length}, GET ${duplicates.length - postDuplicates.length} (GET retries); lost: ${lost.length}; writes after server close: ${writesAfterClose}${
          wacByReason.size > 0 ? ` (after ${[...wacByReason].map(([k, n]) => `${k}: ${n}`).join(', ')})` : ''
        }`,
      ];
      for (const line of figures) t.diagnostic(line);
      if (process.env.WARMPOOL_SOAK_PRINT) for (const line of figures) console.log(line);

      assert.ok(requests >= TARGET_REQUESTS, `only ${requests} requests within ${TIME_CAP_MS} ms`);
      assert.deepEqual(getFailures, [], 'every GET must succeed');
      for (const code of failuresByCode.keys()) assert.match(code, /^POST WARMPOOL_[A-Z_]+$/);
      assert.deepEqual(postDuplicates, [], 'a POST was processed twice');
      assert.deepEqual(lost, [], 'a request the client saw succeed never reached the server');
      assert.ok(retriedResponses <= stats.retried);
      assert.ok(faults.size >= 5 && idleCloses > 0, 'the soak must actually inject faults');
    } finally {
      await agent.destroy();
      await srv.close();
    }
  },
);
