// warmpool's adapters. The library is loaded with a dynamic import so that the rest of the bench still
// runs (and says so) when the library does not build yet.
import { type ClientSpec, urls } from './clients.js';

// The slice of warmpool's public API (docs/architecture.md) the bench uses.
interface WpResponse {
  status: number;
  body: { bytes(): Promise<Uint8Array>; dump(): unknown };
}
interface WpInit {
  method?: string;
  headers?: Record<string, string>;
}
interface WpAgent {
  close(): Promise<void>;
  stats(): unknown;
}
interface WpClient {
  request(path: string, init?: WpInit): Promise<WpResponse>;
}
export interface Warmpool {
  request(url: string, init?: WpInit): Promise<WpResponse>;
  Agent: new (opts: { maxConnectionsPerOrigin?: number }) => WpAgent;
  Client: new (opts?: { agent?: WpAgent; baseUrl?: string }) => WpClient;
  getGlobalAgent(): WpAgent;
}

let loaded: Promise<Warmpool | Error> | undefined;

/** warmpool's module, or the Error that kept it from loading. */
export function loadWarmpool(): Promise<Warmpool | Error> {
  const spec = '../src/index.js'; // a variable, so tsc does not require the file to exist
  loaded ??= import(spec).then(
    (m) => m as Warmpool,
    (e: unknown) => (e instanceof Error ? e : new Error(String(e))),
  );
  return loaded;
}

async function wp(): Promise<Warmpool> {
  const m = await loadWarmpool();
  if (m instanceof Error) throw m;
  return m;
}

/** Top-level request(): the global agent, whose per-origin cap is its default (see the label). */
export const warmpoolRequest: ClientSpec = {
  name: 'warmpool request()',
  async create(origin) {
    const { request } = await wp();
    const url = urls(origin);
    return {
      async request(path, _w, headers) {
        const res = await (headers ? request(url(path), { headers }) : request(url(path)));
        await res.body.bytes();
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
        await res.body.bytes();
      },
      close: () => agent.close(),
    };
  },
};
