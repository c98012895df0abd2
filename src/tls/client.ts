/**
 * How the clients (`ppn`, `service-fs --url`, `service-vm-host`) reach the server: over HTTPS with
 * the server's certificate verified, against the system's CAs or the one `--ca FILE` names; plain
 * http:// only to this machine unless the caller says `--insecure`, since every request carries a
 * bearer token.
 *
 * Requests go through node:https rather than the global fetch: Node's bundled fetch takes a custom
 * CA only through an undici dispatcher, which Node does not export. The answer is a web `Response`
 * all the same, so callers read it as they would fetch's.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { isIPv4 } from 'node:net';

/** What a client trusts and presents: the CA for the server's certificate, and its own certificate for `--tls-client-ca`. */
export interface ClientTls {
  /** PEM of the CA(s) that sign the server's certificate; absent: the system's CAs. */
  ca?: string | undefined;
  /** PEM of a client certificate and its key, for a server that asks platform admins for one. */
  cert?: string | undefined;
  key?: string | undefined;
}

/** Reads a PEM file of one or more CA certificates, refusing one that holds none. */
export function readCaFile(file: string, option = '--ca'): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new Error(`${option} ${file}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message}`, { cause: error });
  }
  try {
    new X509Certificate(text);
  } catch {
    throw new Error(`${option} ${file} holds no PEM certificate`);
  }
  return text;
}

/** 127.0.0.0/8, ::1 and localhost: a plain http:// there never leaves the machine. */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (host === 'localhost' || host === '::1') return true;
  return isIPv4(host) && host.startsWith('127.');
}

/**
 * Why a request to `url` must not be sent, or null: plain http:// to another machine would carry
 * the bearer token in the clear, so it needs `--insecure`.
 */
export function plainHttpRefusal(url: URL, insecure: boolean): string | null {
  if (url.protocol !== 'http:' || insecure || isLoopbackHost(url.hostname)) return null;
  return `refusing plain http:// to ${url.host}: the token would cross the network unencrypted; use https:// (with --ca FILE for a private CA), or pass --insecure to send it in the clear anyway`;
}

/** OpenSSL's and Node's codes for a server certificate that does not verify. */
const CERTIFICATE_ERRORS = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_SIGNATURE_FAILURE',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** True for an error (or a fetch-style error whose cause is one) saying the server's certificate was refused. */
export function isCertificateError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && CERTIFICATE_ERRORS.has(code)) return true;
  const cause = (error as { cause?: unknown } | null)?.cause;
  return cause !== undefined && cause !== error && isCertificateError(cause);
}

const agents = new Map<string, https.Agent>();

/** One keep-alive agent per set of TLS options, so repeated calls reuse connections as fetch does. */
function agentFor(tls: ClientTls): https.Agent {
  if (tls.ca === undefined && tls.cert === undefined) return https.globalAgent;
  const key = `${tls.ca ?? ''}\0${tls.cert ?? ''}`;
  let agent = agents.get(key);
  if (!agent) {
    agent = new https.Agent({ keepAlive: true, ca: tls.ca, cert: tls.cert, key: tls.key });
    agents.set(key, agent);
  }
  return agent;
}

export interface SendInit {
  method?: string;
  headers?: Record<string, string>;
  body?: Buffer | string | undefined;
  signal?: AbortSignal;
}

const BODYLESS = new Set([204, 205, 304]);

/**
 * Sends one request and answers the whole response, as fetch would; a failure to connect (a
 * certificate refused included) rejects with a TypeError whose `cause` says why, as fetch's does.
 * No request is sent to a server whose certificate does not verify: the handshake fails first.
 */
export function send(url: URL | string, init: SendInit = {}, tls: ClientTls = {}): Promise<Response> {
  const target = typeof url === 'string' ? new URL(url) : url;
  const secure = target.protocol === 'https:';
  const options: https.RequestOptions = { method: init.method ?? 'GET', headers: init.headers, signal: init.signal };
  if (secure) options.agent = agentFor(tls);
  return new Promise((resolve, reject) => {
    const request = (secure ? https : http).request(target, options, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('error', (error) => reject(new TypeError('fetch failed', { cause: error })));
      response.on('end', () => {
        const status = response.statusCode ?? 500;
        const headers = new Headers();
        for (const [name, value] of Object.entries(response.headers)) {
          for (const one of [value ?? []].flat()) headers.append(name, one);
        }
        const body = BODYLESS.has(status) || options.method === 'HEAD' ? null : Buffer.concat(chunks);
        resolve(new Response(body, { status, statusText: response.statusMessage ?? '', headers }));
      });
    });
    request.on('error', (error) => reject(new TypeError('fetch failed', { cause: explained(error, target) })));
    request.end(init.body);
  });
}

/** A refused certificate, worded so the user knows what to do about it. */
function explained(error: Error, url: URL): Error {
  if (!isCertificateError(error)) return error;
  const hint =
    (error as NodeJS.ErrnoException).code === 'ERR_TLS_CERT_ALTNAME_INVALID' ? `the certificate is not for ${url.hostname}` : 'give the CA that signed it with --ca FILE';
  return Object.assign(new Error(`the server's certificate is not trusted (${error.message}): ${hint}; nothing was sent`), {
    code: (error as NodeJS.ErrnoException).code,
  });
}
