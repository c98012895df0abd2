/**
 * `ppn api METHOD PATH [--data JSON]`: one request to the API from a shell, as the holder of a
 * token. With a key, the request carries the proof of possession a `pop` token needs (RFC 9421,
 * signed by src/httpsig/sign.ts); a server that does not need one ignores it. Prints the response
 * body; on an error status it also prints the problem on stderr and exits 1.
 */
import { systemClock } from '../clock.js';
import { signRequest } from '../httpsig/sign.js';
import { CliError, EXIT_UNREACHABLE, readCaOption } from './command-line.js';
import { readPrivateKey, readToken } from './holder.js';
import { plainHttpRefusal, send } from '../tls/client.js';

export interface ApiOptions {
  server?: string | undefined;
  token?: string | undefined;
  key?: string | undefined;
  data?: string | undefined;
  /** The program's --ca and --insecure. */
  ca?: string | undefined;
  insecure?: boolean | undefined;
}

export async function callApi(method: string, path: string, options: ApiOptions): Promise<void> {
  const server = options.server ?? process.env.PPN_SERVER;
  if (!server) throw new CliError('no server: pass --server URL or set PPN_SERVER', 2);
  const tokenGiven = options.token ?? process.env.PPN_TOKEN;
  const keyFile = options.key ?? process.env.PPN_KEY;
  if (!/^[A-Za-z]+$/.test(method)) throw new CliError(`METHOD wants an HTTP method such as GET or POST; got "${method}"`, 2);
  if (!path.startsWith('/')) throw new CliError(`PATH must start with "/", e.g. /v1/whoami; got "${path}"`, 2);
  let url: URL;
  try {
    url = new URL(`${server.replace(/\/+$/, '')}${path}`);
  } catch {
    throw new CliError(`--server wants an http(s) URL such as http://127.0.0.1:9221; got "${server}"`, 2);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new CliError(`--server wants an http(s) URL; got "${server}"`, 2);
  const refusal = plainHttpRefusal(url, options.insecure === true);
  if (refusal) throw new CliError(refusal, 2);
  const ca = readCaOption(options.ca);
  if (options.data !== undefined) {
    try {
      JSON.parse(options.data);
    } catch {
      throw new CliError('--data is not JSON', 2);
    }
  }

  // fetch upper-cases only some methods; sign exactly what is sent.
  const verb = method.toUpperCase();
  const body = options.data === undefined ? undefined : Buffer.from(options.data);
  const headers: Record<string, string> = body ? { 'content-type': 'application/json' } : {};
  if (tokenGiven) headers.authorization = `Bearer ${readToken(tokenGiven, '--token')}`;
  if (keyFile) {
    const request = { method: verb, path: url.pathname, query: url.search.slice(1), body };
    Object.assign(headers, signRequest(request, { privateKey: readPrivateKey(keyFile), clock: systemClock }));
  }

  let response: Response;
  try {
    response = await send(url, { method: verb, headers, body }, { ca });
  } catch (error) {
    const cause = (error as Error).cause instanceof Error ? ((error as Error).cause as Error).message : (error as Error).message;
    throw new CliError(`cannot reach ${url.origin}: ${cause}`, EXIT_UNREACHABLE);
  }
  const text = await response.text();
  let problem: { title?: string; detail?: string } | undefined;
  let printed = text;
  try {
    const parsed: unknown = JSON.parse(text);
    printed = JSON.stringify(parsed, null, 2);
    if (typeof parsed === 'object' && parsed !== null) problem = parsed;
  } catch {
    // not JSON: print it as it came
  }
  if (printed !== '') process.stdout.write(`${printed}\n`);
  if (!response.ok) {
    const why = problem?.detail ?? problem?.title ?? (text.trim().slice(0, 500) || response.statusText);
    throw new CliError(`${verb} ${url.pathname}${url.search}: ${response.status} ${why}`);
  }
}
