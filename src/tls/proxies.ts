/**
 * `serve --trust-proxy CIDR…`: the reverse proxies whose X-Forwarded-For the server believes. A
 * client can write any X-Forwarded-For it likes, so the header names the client only when the peer
 * that sent it is one of these; from anyone else it is ignored, and the client is the peer.
 */
import { isIP } from 'node:net';

/** Addresses and CIDR blocks from repeated options and comma lists, each checked. */
export function parseTrustedProxies(values: readonly string[]): string[] {
  const entries = values.flatMap((value) => value.split(',')).map((entry) => entry.trim());
  for (const entry of entries) {
    const [address = '', prefix, extra] = entry.split('/');
    const family = isIP(address);
    const bits = family === 4 ? 32 : 128;
    const prefixOk = prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= bits);
    if (family === 0 || !prefixOk || extra !== undefined) {
      throw new Error(`--trust-proxy wants IP addresses or CIDR blocks such as 10.0.0.5 or 10.0.0.0/24, separated by commas; got "${entry}"`);
    }
  }
  return entries;
}
