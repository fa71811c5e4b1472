/**
 * The environment's proxy rules as a table: which variable names the proxy for an origin (lowercase
 * first, as curl), and which origins NO_PROXY sends directly (`*`, domains with their subdomains with
 * or without a leading dot, host:port, IP literals compared as addresses, CIDR ranges).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ProxyRoutes, parseProxy } from '../src/dial/proxy-config.js';
import { Agent, Client, InvalidArgumentError, matchesNoProxy, proxyFromEnv } from '../src/index.js';

const P = 'http://proxy:3128';

// [env, url, expected proxy (undefined: direct)]
const cases: Array<[Record<string, string>, string, string | undefined]> = [
  // which variable
  [{ HTTPS_PROXY: P }, 'https://a.com', P],
  [{ HTTPS_PROXY: P }, 'http://a.com', undefined],
  [{ HTTP_PROXY: P }, 'http://a.com', P],
  [{ HTTP_PROXY: P }, 'https://a.com', undefined],
  [{ https_proxy: 'http://lower:1', HTTPS_PROXY: 'http://upper:2' }, 'https://a.com', 'http://lower:1'],
  [{ http_proxy: 'http://lower:1', HTTP_PROXY: 'http://upper:2' }, 'http://a.com', 'http://lower:1'],
  [{ https_proxy: '', HTTPS_PROXY: 'http://upper:2' }, 'https://a.com', 'http://upper:2'],
  [{ https_proxy: '  ' }, 'https://a.com', undefined],
  [{}, 'https://a.com', undefined],
  // NO_PROXY: lowercase first
  [{ HTTP_PROXY: P, no_proxy: 'a.com', NO_PROXY: 'b.com' }, 'http://a.com', undefined],
  [{ HTTP_PROXY: P, no_proxy: 'a.com', NO_PROXY: 'b.com' }, 'http://b.com', P],
  [{ HTTP_PROXY: P, NO_PROXY: 'b.com' }, 'http://b.com', undefined],
  // '*'
  [{ HTTP_PROXY: P, NO_PROXY: '*' }, 'http://anything.example', undefined],
  [{ HTTP_PROXY: P, NO_PROXY: 'x.com, *' }, 'http://anything.example', undefined],
  [{ HTTP_PROXY: P, NO_PROXY: '*.x.com' }, 'http://anything.example', P],
  // domains and subdomains, with or without a leading dot, never a lookalike
  [{ HTTP_PROXY: P, NO_PROXY: 'example.com' }, 'http://example.com', undefined],
  [{ HTTP_PROXY: P, NO_PROXY: 'example.com' }, 'http://api.example.com', undefined],
  [{ HTTP_PROXY: P, NO_PROXY: 'example.com' }, 'http://a.b.example.com:8080', undefined],
  [{ HTTP_PROXY: P, NO_PROXY: '.example.com' }, 'http://example.com', undefined],
  [{ HTTP_PROXY: P, NO_PROXY: '.example.com' }, 'http://api.example.com', undefined],
  [{ HTTP_PROXY: P, NO_PROXY: '*.example.com' }, 'http://api.example.com', undefined],
  [{ HTTP_PROXY: P, NO_PROXY: 'example.com' }, 'http://badexample.com', P],
  [{ HTTP_PROXY: P, NO_PROXY: 'example.com' }, 'http://example.com.evil.net', P],
  [{ HTTP_PROXY: P, NO_PROXY: 'EXAMPLE.com' }, 'http://Api.Example.COM', undefined],
  [{ HTTP_PROXY: P, NO_PROXY: 'example.com.' }, 'http://example.com', undefined],
  [{ HTTP_PROXY: P, NO_PROXY: ' a.com ,, b.com ' }, 'http://b.com', undefined],
  [{ HTTP_PROXY: P, NO_PROXY: 'a.com b.com' }, 'http://b.com', undefined],
  [{ HTTP_PROXY: P, NO_PROXY: 'localhost' }, 'http://localhost:3000', undefined],
  // host:port
  [{ HTTP_PROXY: P, NO_PROXY: 'example.com:8080' }, 'http://example.com:8080', undefined],
  [{ HTTP_PROXY: P, NO_PROXY: 'example.com:8080' }, 'http://example.com:8081', P],
  [{ HTTP_PROXY: P, NO_PROXY: 'example.com:80' }, 'http://example.com', undefined],
  [{ HTTPS_PROXY: P, NO_PROXY: 'example.com:80' }, 'https://example.com', P],
  [{ HTTPS_PROXY: P, NO_PROXY: 'example.com:443' }, 'https://api.example.com', undefined],
  // IP literals, as addresses
  [{ HTTP_PROXY: P, NO_PROXY: '127.0.0.1' }, 'http://127.0.0.1:9000', undefined],
  [{ HTTP_PROXY: P, NO_PROXY: '127.0.0.1' }, 'http://127.0.0.2', P],
  [{ HTTP_PROXY: P, NO_PROXY: '127.0.0.1:9000' }, 'http://127.0.0.1:9000', undefined],
  [{ HTTP_PROXY: P, NO_PROXY: '127.0.0.1:9000' }, 'http://127.0.0.1:9001', P],
  [{ HTTP_PROXY: P, NO_PROXY: '::1' }, 'http://[::1]:8080', undefined],
  [{ HTTP_PROXY: P, NO_PROXY: '0:0::1' }, 'http://[::1]/', undefined],
  [{ HTTP_PROXY: P, NO_PROXY: '[::1]' }, 'http://[::1]/', undefined],
  [{ HTTP_PROXY: P, NO_PROXY: '[::1]:8080' }, 'http://[::1]:8080', undefined],
  [{ HTTP_PROXY: P, NO_PROXY: '[::1]:8080' }, 'http://[::1]:8081', P],
  [{ HTTP_PROXY: P, NO_PROXY: '::2' }, 'http://[::1]/', P],
  // an IP entry is not a domain suffix
  [{ HTTP_PROXY: P, NO_PROXY: '0.0.1' }, 'http://10.0.0.1', P],
  // CIDR
  [{ HTTP_PROXY: P, NO_PROXY: '10.0.0.0/8' }, 'http://10.200.3.4', undefined],
  [{ HTTP_PROXY: P, NO_PROXY: '10.0.0.0/8' }, 'http://11.0.0.1', P],
  [{ HTTP_PROXY: P, NO_PROXY: '192.168.1.0/25' }, 'http://192.168.1.127', undefined],
  [{ HTTP_PROXY: P, NO_PROXY: '192.168.1.0/25' }, 'http://192.168.1.128', P],
  [{ HTTP_PROXY: P, NO_PROXY: '0.0.0.0/0' }, 'http://8.8.8.8', undefined],
  [{ HTTP_PROXY: P, NO_PROXY: '10.0.0.0/8' }, 'http://ten.example', P],
  [{ HTTP_PROXY: P, NO_PROXY: 'fd00::/8' }, 'http://[fd12::1]', undefined],
  [{ HTTP_PROXY: P, NO_PROXY: 'fd00::/8' }, 'http://[fe80::1]', P],
  [{ HTTP_PROXY: P, NO_PROXY: '[fd00::]/8' }, 'http://[fd12::1]', undefined],
  [{ HTTP_PROXY: P, NO_PROXY: '10.0.0.0/8' }, 'http://[::1]', P],
  [{ HTTP_PROXY: P, NO_PROXY: '10.0.0.0/8:8080' }, 'http://10.1.1.1:8080', undefined],
  [{ HTTP_PROXY: P, NO_PROXY: '10.0.0.0/8:8080' }, 'http://10.1.1.1:80', P],
  [{ HTTP_PROXY: P, NO_PROXY: '::ffff:10.0.0.0/104' }, 'http://[::ffff:10.1.2.3]', undefined],
  // unreadable entries match nothing (and do not stop the list)
  [{ HTTP_PROXY: P, NO_PROXY: '10.0.0.0/33, a.com:99999, [::1' }, 'http://10.0.0.1', P],
  [{ HTTP_PROXY: P, NO_PROXY: 'a.com:x, b.com' }, 'http://b.com', undefined],
];

test('proxyFromEnv: the table of cases', () => {
  for (const [env, url, expected] of cases) {
    const u = new URL(url);
    const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
    const port = u.port === '' ? (u.protocol === 'https:' ? 443 : 80) : Number(u.port);
    const got = proxyFromEnv(env, u.protocol === 'https:', host, port);
    assert.equal(got, expected, `${JSON.stringify(env)} ${url}`);
  }
});

test('matchesNoProxy takes bracketed and trailing-dot host names too', () => {
  assert.equal(matchesNoProxy('::1', '[::1]', 80), true);
  assert.equal(matchesNoProxy('example.com', 'api.example.com.', 80), true);
});

test('parseProxy: credentials become Proxy-Authorization: Basic; headers follow; the key names them by digest', () => {
  const p = parseProxy({ url: 'http://us%40er:p%3Ass@proxy.local:3128', headers: { 'X-Team': 'a' } });
  assert.equal(p.display, 'http://proxy.local:3128');
  assert.equal(p.port, 3128);
  assert.deepEqual(p.headerPairs, [
    ['Proxy-Authorization', `Basic ${Buffer.from('us@er:p:ss').toString('base64')}`],
    ['X-Team', 'a'],
  ]);
  assert.ok(!p.key.includes('p:ss') && !p.key.includes(Buffer.from('us@er:p:ss').toString('base64')));
  const other = parseProxy('http://us%40er:other@proxy.local:3128');
  const none = parseProxy('http://proxy.local:3128');
  const https = parseProxy('https://proxy.local');
  assert.equal(https.port, 443);
  assert.equal(https.secure, true);
  assert.equal(new Set([p.key, other.key, none.key, https.key]).size, 4);
});

test('bad proxy options are InvalidArgumentError, at new Agent()', () => {
  for (const proxy of [
    'socks5://proxy:1080',
    'not a url',
    { url: 'http://p:1', headers: { 'Bad Name': 'x' } },
    { url: 'http://p:1', headers: { 'x-a': 'line\r\nbreak' } },
    { url: 42 },
    42,
  ]) {
    assert.throws(
      () => new Agent({ proxy: proxy as never }),
      (err: unknown) => err instanceof InvalidArgumentError,
      JSON.stringify(proxy),
    );
  }
});

test("NODE_USE_ENV_PROXY=1 makes 'env' the default; null turns it off; the environment is read once", () => {
  const env = { NODE_USE_ENV_PROXY: '1', HTTPS_PROXY: 'proxy.local:8080', NO_PROXY: 'internal' };
  const routes = ProxyRoutes.from(undefined, env);
  assert.ok(routes !== undefined);
  // A value without a scheme is http://, as curl reads it.
  assert.equal(routes.route(true, 'api.example.com', 443)?.display, 'http://proxy.local:8080');
  assert.equal(routes.route(true, 'a.internal', 443), undefined);
  assert.equal(routes.route(false, 'api.example.com', 80), undefined);
  env.HTTPS_PROXY = 'http://changed:1';
  assert.equal(routes.route(true, 'api.example.com', 443)?.display, 'http://proxy.local:8080');
  assert.equal(ProxyRoutes.from(null, env), undefined);
  assert.equal(ProxyRoutes.from(undefined, { HTTPS_PROXY: 'http://p:1' }), undefined);
  assert.ok(ProxyRoutes.from('env', { HTTPS_PROXY: 'http://p:1' })?.route(true, 'a', 443));
});

test('a bad per-request proxy rejects the request with InvalidArgumentError; nothing is dialed', async () => {
  const agent = new Agent();
  try {
    for (const proxy of ['ftp://p:1', { url: 'http://p:1', headers: { 'x-a': 'a\nb' } }, 7]) {
      await assert.rejects(
        new Client({ agent }).request('http://127.0.0.1:9/', { proxy: proxy as never }),
        (err: unknown) => err instanceof InvalidArgumentError,
      );
    }
    assert.equal(agent.stats().origins.length, 0);
  } finally {
    await agent.destroy();
  }
});
