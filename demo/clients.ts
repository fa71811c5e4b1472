/**
 * One GET through node:http(s) or undici, its body read to the end: the ways the panels call the
 * clients people use. warmpool's are one line each and written where they are used.
 */
import http from 'node:http';
import https from 'node:https';
import type { Dispatcher } from 'undici';

/** A GET through node:http or node:https (by the URL's scheme) on `agent`; resolves at the body's end. */
export function nodeGet(url: string, agent: http.Agent, headers?: http.OutgoingHttpHeaders): Promise<void> {
  const get = url.startsWith('https:') ? https.get : http.get;
  return new Promise<void>((resolve, reject) => {
    get(url, { agent, headers }, (res) => {
      res.on('data', () => {});
      res.on('end', resolve);
      res.on('error', reject);
    }).on('error', reject);
  });
}

/** A GET of `path` through an undici Pool or Client; resolves at the body's end. */
export async function undiciGet(
  dispatcher: Dispatcher,
  path: string,
  headers?: Record<string, string>,
): Promise<void> {
  const { body } = await dispatcher.request({ path, method: 'GET', headers });
  await body.arrayBuffer();
}

/** A rejection's code as the clients give it (ECONNRESET, UND_ERR_SOCKET, ...), for the tables. */
export function errorCode(err: unknown): string {
  const e = err as { code?: unknown; name?: unknown; cause?: { code?: unknown } };
  return String(e.code ?? e.cause?.code ?? e.name ?? err);
}
