/**
 * The pure parts of src/tls: which hosts count as this machine for the --insecure rule, and which
 * --trust-proxy values are addresses or CIDR blocks. The processes that use them are tested in
 * test/e2e/tls.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { isLoopbackHost, plainHttpRefusal } from '../../src/tls/client.js';
import { parseTrustedProxies } from '../../src/tls/proxies.js';

describe('plain http:// and the --insecure rule', () => {
  it.each(['127.0.0.1', '127.8.9.10', 'localhost', 'LOCALHOST', '[::1]', '::1'])('%s is this machine', (host) => {
    expect(isLoopbackHost(host)).toBe(true);
  });

  it.each(['10.0.0.5', '128.0.0.1', '::ffff:7f00:1', 'localhost.example.com', '127.0.0.1.example.com', 'ppn.internal', '[2001:db8::1]'])(
    '%s is another machine',
    (host) => {
      expect(isLoopbackHost(host)).toBe(false);
    },
  );

  it('refuses http:// to another machine unless insecure; never https:// or loopback', () => {
    expect(plainHttpRefusal(new URL('http://10.0.0.5:9221'), false)).toMatch(/^refusing plain http:\/\/ to 10\.0\.0\.5:9221: .*--insecure/);
    expect(plainHttpRefusal(new URL('http://10.0.0.5:9221'), true)).toBeNull();
    expect(plainHttpRefusal(new URL('https://10.0.0.5:9221'), false)).toBeNull();
    expect(plainHttpRefusal(new URL('http://127.0.0.1:9221'), false)).toBeNull();
    expect(plainHttpRefusal(new URL('http://[::1]:9221'), false)).toBeNull();
  });
});

describe('--trust-proxy values', () => {
  it('takes addresses and CIDR blocks, repeated or comma-separated', () => {
    expect(parseTrustedProxies(['10.0.0.5', '10.1.0.0/16, 192.168.0.1', '2001:db8::/32', '::1'])).toEqual([
      '10.0.0.5',
      '10.1.0.0/16',
      '192.168.0.1',
      '2001:db8::/32',
      '::1',
    ]);
  });

  it.each(['10.0.0.0/33', '2001:db8::/129', 'proxy.internal', '10.0.0.1/8/8', '', '10.0.0.0/', '10.0.0.0/x'])('refuses "%s"', (value) => {
    expect(() => parseTrustedProxies([value])).toThrow(/--trust-proxy wants IP addresses or CIDR blocks/);
  });
});
