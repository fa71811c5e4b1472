// warmpool's adapters. The library is loaded with a dynamic import so that the rest of the bench still
// runs (and says so) when the library fails to load.
import { basename, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
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

/** warmpool's module; throws the Error that kept it from loading. */
export async function wp(): Promise<Warmpool> {
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

export const warmpoolClient: ClientSpec = clientOf('warmpool Client', wp, false);

/**
 * `Client` of the warmpool built in another checkout (`--compare=<dir>`: its build/src/index.js), as a
 * row of its own: an A/B of two builds, interleaved round by round with everything else in one run.
 */
export function comparedClients(dir: string): { h1: ClientSpec; h2: ClientSpec } {
  const url = pathToFileURL(resolve(dir, 'build/src/index.js')).href;
  let mod: Promise<Warmpool> | undefined;
  const load = (): Promise<Warmpool> => {
    mod ??= import(url) as Promise<Warmpool>;
    return mod;
  };
  const name = `warmpool Client B (${basename(resolve(dir))})`;
  return { h1: clientOf(name, load, false), h2: clientOf(name, load, true) };
}

/** A Client on an Agent of its own, capped at C connections; `h2`: over TLS, trusting the bench CA. */
function clientOf(name: string, load: () => Promise<Warmpool>, h2: boolean): ClientSpec {
  return {
    name,
    async create(origin, connections) {
      const { Agent, Client } = await load();
      const agent = new Agent(
        h2
          ? { maxConnectionsPerOrigin: connections, tls: { ca: benchCa() } }
          : { maxConnectionsPerOrigin: connections },
      );
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
}

/**
 * HTTP/2 over TLS: the same Client, its agent trusting the bench certificate. warmpool opens one
 * session (ALPN h2) and carries the C requests as streams on it, up to the server's stream limit.
 */
export const warmpoolH2Client: ClientSpec = clientOf('warmpool Client', wp, true);
