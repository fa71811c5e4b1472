// warmpool's adapters. The library is loaded with a dynamic import so that the rest of the bench still
// runs (and says so) when the library fails to load.
import { type ClientSpec, urls } from './clients.js';
import { benchCa, checkBodyLength } from './common.js';

export type Warmpool = typeof import('../src/index.js');

let loaded: Promise<Warmpool | Error> | undefined;

/** warmpool's module, or the Error that kept it from loading. */
export function loadWarmpool(): Promise<Warmpool | Error> {
  loaded ??= import('../src/index.js').then(
    (m) => m,
    (e: unknown) => (e instanceof Error ? e : new Error(String(e))),
  );
  return loaded;
}

async function wp(): Promise<Warmpool> {
  const m = await loadWarmpool();
  if (m instanceof Error) throw m;
  return m;
}

/** Top-level request(): the global agent, with its default cap of 64 connections per origin. */
export const warmpoolRequest: ClientSpec = {
  name: 'warmpool request()',
  async create(origin) {
    const { request } = await wp();
    const url = urls(origin);
    return {
      async request(path, _w, headers) {
        const res = await (headers ? request(url(path), { headers }) : request(url(path)));
        checkBodyLength(path, (await res.body.bytes()).length);
      },
      // The global agent is shared by the whole process and lives on: nothing to close.
      async close() {},
    };
  },
};

export const warmpoolClient: ClientSpec = {
  name: 'warmpool Client',
  async create(origin, connections) {
    const { Agent, Client } = await wp();
    const agent = new Agent({ maxConnectionsPerOrigin: connections });
    const client = new Client({ agent, baseUrl: origin });
    return {
      async request(path, _w, headers) {
        const res = await (headers ? client.request(path, { headers }) : client.request(path));
        checkBodyLength(path, (await res.body.bytes()).length);
      },
      close: () => agent.close(),
    };
  },
};

/**
 * HTTP/2 over TLS: the same Client, its agent trusting the bench certificate. warmpool opens one
 * session (ALPN h2) and carries the C requests as streams on it, up to the server's stream limit.
 */
export const warmpoolH2Client: ClientSpec = {
  name: 'warmpool Client',
  async create(origin, connections) {
    const { Agent, Client } = await wp();
    const agent = new Agent({ maxConnectionsPerOrigin: connections, tls: { ca: benchCa() } });
    const client = new Client({ agent, baseUrl: origin });
    return {
      async request(path, _w, headers) {
        const res = await (headers ? client.request(path, { headers }) : client.request(path));
        checkBodyLength(path, (await res.body.bytes()).length);
      },
      close: () => agent.close(),
    };
  },
};
