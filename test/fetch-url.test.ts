/**
 * fetch()'s shortcut past the URL parser (src/fetch/url.ts): it may say "already normalized" only
 * for a string the WHATWG parser would give back unchanged, so res.url and the request line are the
 * same as with the parser. Each case is checked against `new URL()` itself.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isNormalizedHttpUrl } from '../src/fetch/url.js';

const PARSER_REWRITES = [
  'HTTP://example.com/', // scheme case
  'http://EXAMPLE.com/', // host case
  'http://example.com:80/a', // default port
  'https://example.com:443/a',
  'http://127.1/', // IPv4 shorthand
  'http://0x7f.0.0.1/', // hex IPv4
  'http://example.com/a/./b', // dot segments
  'http://example.com/a/../b',
  'http://example.com/a/%2e%2E/b',
  'http://example.com/a/%2E/b',
  'http://example.com/a/..',
  'http://example.com/a b', // percent-encoded
  'http://example.com/a"b',
  'http://example.com/a<b>',
  'http://example.com/a{b}',
  'http://example.com/a`b',
  "http://example.com/?q='x'", // quote in a special URL's query
  'http://example.com/a\\b', // backslash is a slash
  'http://example.com/a\tb', // tab removed
  'http://example.com/é', // non-ASCII
  'http://bücher.example/', // IDN
  'http://example.com', // path added
  'http://example.com?x/y', // query before the first slash
  'http://example.com#x/y',
  'http://user:pa ss@example.com/',
  'http://example.com./a/../b',
];

const KEPT = [
  'http://example.com/',
  'http://127.0.0.1:8080/12',
  'https://api.example.com/v1/items?limit=10&after=abc%20d',
  'http://[::1]:3000/path/to/x.json',
  'http://example.com/a.b/c..d/?x=/../y',
  'http://example.com/%7Euser/a+b;c=d:e@f!$&()*,',
];

test('isNormalizedHttpUrl: true only where new URL(input).href is the input itself', () => {
  for (const input of [...PARSER_REWRITES, ...KEPT]) {
    let href: string | null = null;
    try {
      href = new URL(input).href;
    } catch {}
    if (isNormalizedHttpUrl(input)) {
      assert.equal(href, input, `said normalized but the parser gives ${href}`);
    }
  }
});

test('isNormalizedHttpUrl: the plain URLs code usually passes skip the parser', () => {
  for (const input of KEPT) assert.equal(isNormalizedHttpUrl(input), true, input);
  for (const input of PARSER_REWRITES) {
    if (new URL(input).href !== input) assert.equal(isNormalizedHttpUrl(input), false, input);
  }
});

test('isNormalizedHttpUrl: only http and https', () => {
  for (const input of ['ftp://example.com/', 'data:,x', 'file:///etc/passwd', 'ws://example.com/']) {
    assert.equal(isNormalizedHttpUrl(input), false, input);
  }
});

test('isNormalizedHttpUrl: the answer for a URL asked again (remembered) is the same, and others are still checked', () => {
  for (const input of KEPT) {
    assert.equal(isNormalizedHttpUrl(input), true, input);
    assert.equal(isNormalizedHttpUrl(input), true, `${input} again`);
    for (const rewritten of PARSER_REWRITES) {
      if (new URL(rewritten).href !== rewritten)
        assert.equal(isNormalizedHttpUrl(rewritten), false, rewritten);
    }
  }
});
