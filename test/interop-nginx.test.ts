/**
 * nginx interop across keep-alive boundaries: `keepalive_timeout 1s; keepalive_requests 3;`, a storm
 * of bursts (more than 3 requests per connection per burst, so nginx closes after every third) with
 * pauses of 0.9 to 1.1 s between bursts (so idle connections are reused just before nginx's timeout,
 * or just after it closed them). nginx sends no Keep-Alive hint: the client learns nothing but what
 * the sockets tell it. Zero requests may fail.
 *
 * Skipped, with a message, only when nginx is absent outside CI (helpers/nginx.ts: nginxOrSkip).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Agent, Client, type WarmpoolError } from '../src/index.js';
import { nginxOrSkip, startNginx } from './helpers/nginx.js';
import { prng } from './helpers/prng.js';

const BURSTS = 12;
const WORKERS = 4;
const PER_WORKER_PER_BURST = 5;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

test(
  'nginx keepalive_timeout 1s / keepalive_requests 3: a storm across both boundaries, zero failures',
  {
    timeout: 60_000,
  },
  async (t) => {
    const bin = nginxOrSkip(t);
    if (!bin) return;
    const nginx = await startNginx({ bin, keepaliveTimeout: '1s', keepaliveRequests: 3 });
    const agent = new Agent();
    const client = new Client({ agent, headersTimeout: 5000, bodyTimeout: 5000 });
    const random = prng(0xbeef);
    const failures: string[] = [];
    const ids: string[] = [];
    let retriedResponses = 0;
    let reusedResponses = 0;
    const methods = ['GET', 'GET', 'HEAD', 'PUT', 'DELETE'] as const;
    try {
      for (let burst = 0; burst < BURSTS; burst++) {
        await Promise.all(
          Array.from({ length: WORKERS }, async (_, w) => {
            for (let i = 0; i < PER_WORKER_PER_BURST; i++) {
              const id = `b${burst}-w${w}-${i}`;
              const method = methods[(burst + w + i) % methods.length]!;
              ids.push(id);
              try {
                const res = await client.request(`${nginx.url}${method === 'PUT' ? '/echo' : '/'}`, {
                  method,
                  headers: { 'x-request-id': id },
                  body: method === 'PUT' ? `put ${id}` : undefined,
                });
                const text = await res.body.text();
                assert.equal(res.status, 200);
                assert.equal(text, method === 'HEAD' ? '' : method === 'PUT' ? 'echo\n' : 'ok\n');
                if (res.retried) retriedResponses++;
                if (res.connection.reused) reusedResponses++;
              } catch (err) {
                failures.push(
                  `${id} ${method}: ${(err as WarmpoolError).code ?? ''} ${(err as Error).message}`,
                );
              }
            }
          }),
        );
        if (burst < BURSTS - 1) await sleep(900 + Math.floor(random() * 201));
      }

      const stats = agent.originStats(nginx.url)!;
      const log = await nginx.accessLog();
      const perConnection = new Map<number, number>();
      for (const e of log)
        perConnection.set(e.connection, Math.max(perConnection.get(e.connection) ?? 0, e.connectionRequests));
      const seen = new Set(log.map((e) => e.requestId));
      const missing = ids.filter((id) => !seen.has(id));
      t.diagnostic(
        `${ids.length} requests in ${BURSTS} bursts; nginx: ${perConnection.size} connections, ` +
          `at most ${Math.max(...perConnection.values())} requests on one; client: created ${stats.created}, ` +
          `reused responses ${reusedResponses}, retries ${stats.retried}, closed ${JSON.stringify(stats.closed)}`,
      );

      assert.deepEqual(failures, [], 'no request may fail');
      assert.deepEqual(missing, [], 'every request reached nginx');
      assert.ok(Math.max(...perConnection.values()) <= 3);
      assert.ok(reusedResponses > 0, 'connections were reused within bursts');
      assert.ok(
        stats.closed['not-reusable'] > 0,
        "nginx's Connection: close at keepalive_requests was honoured",
      );
      assert.ok(retriedResponses <= stats.retried);
    } finally {
      await agent.destroy();
      await nginx.stop();
    }
  },
);

/**
 * POSTs cannot be retried, so one written as nginx's keep-alive timer fires is lost; liveness checks
 * cannot see a close that has not happened yet. The pool learns the timeout from nginx's idle closes
 * (nginx announces none) and keeps POSTs off connections near it. Each lane is its own origin (nginx
 * listens on several loopback addresses), so each learns on its own, and runs one POST at a time:
 * the first pause outlasts the timeout (nginx closes the idle connection: the lesson), the rest straddle
 * it (0.9 to 1.1 s). Then pauses well inside the timeout must still reuse connections.
 */
const LANES = Number(process.env.WARMPOOL_NGINX_LANES ?? 10);
const POSTS_PER_LANE = Number(process.env.WARMPOOL_NGINX_POSTS ?? 30);
const REUSE_POSTS_PER_LANE = 20;

test(
  `nginx keepalive_timeout 1s: ${LANES * POSTS_PER_LANE} POSTs paced across the timeout lose none; POSTs 0.2-0.4 s apart reuse at least 90 % of the time`,
  { timeout: 60_000 + POSTS_PER_LANE * 1500 },
  async (t) => {
    const bin = nginxOrSkip(t);
    if (!bin) return;
    const hosts = Array.from({ length: LANES }, (_, i) => `127.0.0.${i + 1}`);
    const nginx = await startNginx({ bin, keepaliveTimeout: '1s', alsoListenOn: hosts.slice(1) });
    const agent = new Agent();
    const client = new Client({ agent, headersTimeout: 5000, bodyTimeout: 5000 });
    const random = prng(0x1d1e);
    const failures: string[] = [];
    let reused = 0;
    const post = async (url: string, id: string): Promise<boolean> => {
      try {
        const res = await client.request(`${url}/echo`, {
          method: 'POST',
          body: id,
          headers: { 'x-request-id': id },
        });
        assert.equal(await res.body.text(), 'echo\n');
        return res.connection.reused;
      } catch (err) {
        failures.push(`${id}: ${(err as WarmpoolError).code ?? ''} ${(err as Error).message}`);
        return false;
      }
    };
    try {
      await Promise.all(
        hosts.map(async (host, lane) => {
          const url = `http://${host}:${nginx.port}`;
          for (let i = 0; i < POSTS_PER_LANE; i++) {
            await post(url, `l${lane}-${i}`);
            await sleep(i === 0 ? 1500 : 900 + Math.floor(random() * 201));
          }
          for (let i = 0; i < REUSE_POSTS_PER_LANE; i++) {
            if (await post(url, `l${lane}-reuse-${i}`)) reused++;
            await sleep(200 + Math.floor(random() * 201));
          }
        }),
      );
      const learned = agent.stats().origins.map((o) => o.serverIdleTimeoutMs);
      const closed = agent.stats().origins.map((o) => o.closed);
      t.diagnostic(
        `${LANES * POSTS_PER_LANE} paced POSTs, ${failures.length} failed; reuse at 0.2-0.4 s: ${reused} of ` +
          `${LANES * REUSE_POSTS_PER_LANE}; learned per origin: ${learned.join(', ')} ms; ` +
          `closed (first origin): ${JSON.stringify(closed[0])}`,
      );
      assert.deepEqual(failures, [], 'no POST may be lost');
      assert.ok(reused >= 0.9 * LANES * REUSE_POSTS_PER_LANE, `reused ${reused}`);
    } finally {
      await agent.destroy();
      await nginx.stop();
    }
  },
);
