/**
 * Which proxy the environment names for an origin: `HTTPS_PROXY` / `HTTP_PROXY` and `NO_PROXY`,
 * each read lowercase first (curl's order; the lowercase names are the older convention). Pure
 * functions of an env object and the origin, tested with a table of cases.
 *
 * NO_PROXY is a comma (or space) separated list; an entry is
 * - `*`: no origin is proxied;
 * - a host name: that host and its subdomains (`example.com`, `.example.com` and `*.example.com` all
 *   match `example.com` and `a.example.com`, never `badexample.com`);
 * - an IP literal (`10.0.0.1`, `::1`, `[::1]`): that address, compared as an address (`::1` equals
 *   `0:0::1`), not as text;
 * - a CIDR range (`10.0.0.0/8`, `fd00::/8`): any address in it;
 * - any of these with `:port`: only that port (`[::1]:8080` for IPv6).
 */
import net from 'node:net';

export type ProxyEnv = Readonly<Record<string, string | undefined>>;

/** The first of `names` set to something other than '' (after trimming), or undefined. */
function firstSet(env: ProxyEnv, lower: string, upper: string): string | undefined {
  for (const name of [lower, upper]) {
    const v = env[name]?.trim();
    if (v !== undefined && v !== '') return v;
  }
  return undefined;
}

/**
 * The proxy URL the environment names for an origin (`secure`: https), or undefined when it is to
 * be reached directly (no proxy variable for its scheme, or NO_PROXY matches it).
 */
export function proxyFromEnv(
  env: ProxyEnv,
  secure: boolean,
  hostname: string,
  port: number,
): string | undefined {
  const proxy = secure
    ? firstSet(env, 'https_proxy', 'HTTPS_PROXY')
    : firstSet(env, 'http_proxy', 'HTTP_PROXY');
  if (proxy === undefined) return undefined;
  const noProxy = firstSet(env, 'no_proxy', 'NO_PROXY');
  if (noProxy !== undefined && matchesNoProxy(noProxy, hostname, port)) return undefined;
  return proxy;
}

/** Whether a NO_PROXY list says `hostname:port` is reached directly. `hostname`: bracketless for IPv6. */
export function matchesNoProxy(list: string, hostname: string, port: number): boolean {
  let host = hostname.toLowerCase();
  if (host.endsWith('.')) host = host.slice(0, -1);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  const hostIp = parseIp(host);
  for (const raw of list.split(/[\s,]+/)) {
    const entry = raw.trim().toLowerCase();
    if (entry === '') continue;
    if (entry === '*') return true;
    const parsed = splitEntry(entry);
    if (parsed === undefined) continue;
    if (parsed.port !== undefined && parsed.port !== port) continue;
    if (parsed.cidr !== undefined) {
      if (hostIp !== undefined && inCidr(hostIp, parsed.cidr.ip, parsed.cidr.bits)) return true;
      continue;
    }
    const ip = parseIp(parsed.host);
    if (ip !== undefined) {
      if (hostIp !== undefined && equalBytes(ip, hostIp)) return true;
      continue;
    }
    if (hostIp !== undefined) continue; // an address is never a subdomain ('0.0.1' is no suffix of 10.0.0.1)
    let domain = parsed.host;
    if (domain.startsWith('*.')) domain = domain.slice(2);
    else if (domain.startsWith('.')) domain = domain.slice(1);
    if (domain.endsWith('.')) domain = domain.slice(0, -1);
    if (domain === '') continue;
    if (
      host === domain ||
      (host.endsWith(domain) && host.charCodeAt(host.length - domain.length - 1) === 0x2e)
    ) {
      return true;
    }
  }
  return false;
}

interface Entry {
  host: string;
  port: number | undefined;
  cidr: { ip: Uint8Array; bits: number } | undefined;
}

/** An entry's host (bracketless), port and CIDR range; undefined for what cannot be read. */
function splitEntry(entry: string): Entry | undefined {
  let host = entry;
  let port: number | undefined;
  if (host.startsWith('[')) {
    const close = host.indexOf(']');
    if (close === -1) return undefined;
    const rest = host.slice(close + 1);
    host = host.slice(1, close);
    if (rest.startsWith(':')) port = portOf(rest.slice(1));
    else if (rest.startsWith('/'))
      host += rest; // [fd00::]/8
    else if (rest !== '') return undefined;
    if (port === -1) return undefined;
  } else {
    const colon = host.indexOf(':');
    // One colon: host:port. More: a bare IPv6 address (with its port only in brackets).
    if (colon !== -1 && host.indexOf(':', colon + 1) === -1) {
      port = portOf(host.slice(colon + 1));
      if (port === -1) return undefined;
      host = host.slice(0, colon);
    }
  }
  const slash = host.indexOf('/');
  if (slash === -1) return { host, port, cidr: undefined };
  const ip = parseIp(host.slice(0, slash));
  const bitsText = host.slice(slash + 1);
  const bits = /^[0-9]{1,3}$/.test(bitsText) ? Number(bitsText) : -1;
  if (ip === undefined || bits < 0 || bits > ip.length * 8) return undefined;
  return { host, port, cidr: { ip, bits } };
}

function portOf(s: string): number {
  if (!/^[0-9]{1,5}$/.test(s)) return -1;
  const n = Number(s);
  return n > 65535 ? -1 : n;
}

/** An IPv4 (4 bytes) or IPv6 (16 bytes) address, or undefined for anything else. */
export function parseIp(s: string): Uint8Array | undefined {
  const kind = net.isIP(s);
  if (kind === 4) return Uint8Array.from(s.split('.').map(Number));
  if (kind !== 6) return undefined;
  let text = s;
  const out = new Uint8Array(16);
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes its two groups.
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (tail.includes('.')) {
    const b = tail.split('.').map(Number);
    text = `${text.slice(0, lastColon + 1)}${((b[0] << 8) | b[1]).toString(16)}:${((b[2] << 8) | b[3]).toString(16)}`;
  }
  const [head, rest] = text.includes('::') ? text.split('::') : [text, undefined];
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = rest === undefined || rest === '' ? [] : rest.split(':');
  const groups =
    rest === undefined
      ? headGroups
      : [
          ...headGroups,
          ...new Array<string>(8 - headGroups.length - tailGroups.length).fill('0'),
          ...tailGroups,
        ];
  for (let i = 0; i < 8; i++) {
    const g = Number.parseInt(groups[i], 16);
    out[i * 2] = g >> 8;
    out[i * 2 + 1] = g & 0xff;
  }
  return out;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Whether `ip` lies in `range`/`bits` (of the same family). */
function inCidr(ip: Uint8Array, range: Uint8Array, bits: number): boolean {
  if (ip.length !== range.length) return false;
  let i = 0;
  for (; bits >= 8; i++, bits -= 8) if (ip[i] !== range[i]) return false;
  if (bits === 0) return true;
  const mask = (0xff << (8 - bits)) & 0xff;
  return (ip[i] & mask) === (range[i] & mask);
}
