/**
 * `ppn remote`: saved servers, like `incus remote` or a kubeconfig. Kept in
 * `$XDG_CONFIG_HOME/ppn/config.json` (else `~/.config/ppn/config.json`), mode 0600 in a 0700
 * directory, since it may hold a token and a private key inline. Each remote has a URL and
 * optionally a token and the holder's key, each either a path (read at every call) or inline text,
 * and how to trust it: the CA that signs its certificate (`--ca`), a client certificate for a server
 * that asks platform admins for one, or `--insecure` for plain http:// to another machine.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import type { KeyObject } from 'node:crypto';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { writeSecretFile } from '../config/secret-file.js';
import { plainHttpRefusal, readCaFile, type ClientTls } from '../tls/client.js';
import { TOKEN_PREFIX } from '../tokens/format.js';
import { CliError, EXIT_USAGE, readCaOption } from './command-line.js';
import { parsePrivateKey, readKeyText, readPrivateKey, readToken } from './holder.js';

export interface Remote {
  url: string;
  token_file?: string;
  token?: string;
  key_file?: string;
  /** The private key's PEM, when stored inline. */
  key?: string;
  /** The CA that signs the server's certificate: a PEM file, or its text when stored inline. */
  ca_file?: string;
  ca?: string;
  /** A client certificate and its key (PEM files), presented to a server started with --tls-client-ca. */
  client_cert_file?: string;
  client_key_file?: string;
  /** Plain http:// to another machine was allowed when the remote was added. */
  insecure?: boolean;
}

export interface ClientConfig {
  current: string | null;
  remotes: Record<string, Remote>;
}

/** What one call talks to and as whom: the server, the token text and the holder's key (parsed once, refused in one line), each with where it came from. */
export interface Connection {
  url: string;
  /** e.g. `remote "prod"` or `PPN_SERVER`, for messages. */
  source: string;
  token?: string;
  key?: KeyObject;
  /** Where the key was read from, for messages: a path, or `the remote "prod"`. */
  keySource?: string;
  /** What the server's certificate is checked against, and the client certificate to present. */
  tls: ClientTls;
}

/** The overrides a single call takes: `--remote NAME`, `--ca FILE`, `--insecure`, and the environment. */
export interface ConnectionOptions {
  remote?: string | undefined;
  ca?: string | undefined;
  insecure?: boolean | undefined;
}

const REMOTE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

export function configFile(): string {
  const base = process.env.XDG_CONFIG_HOME || join(homedir(), '.config');
  return join(base, 'ppn', 'config.json');
}

export function loadConfig(): ClientConfig {
  const file = configFile();
  if (!existsSync(file)) return { current: null, remotes: {} };
  try {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as Partial<ClientConfig>;
    return { current: parsed.current ?? null, remotes: parsed.remotes ?? {} };
  } catch (error) {
    throw new CliError(`cannot read ${file}: ${(error as Error).message}; fix or remove it`);
  }
}

function saveConfig(config: ClientConfig): void {
  const file = configFile();
  mkdirSync(join(file, '..'), { recursive: true, mode: 0o700 });
  writeSecretFile(file, `${JSON.stringify(config, null, 2)}\n`);
}

function checkedUrl(url: string, source: string, insecure = true): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new CliError(`${source} wants an http(s) URL such as http://127.0.0.1:9221; got "${url}"`, EXIT_USAGE);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new CliError(`${source} wants an http(s) URL; got "${url}"`, EXIT_USAGE);
  const refusal = plainHttpRefusal(parsed, insecure);
  if (refusal) throw new CliError(refusal, EXIT_USAGE);
  return url.replace(/\/+$/, '');
}

/** A PEM certificate (or, for a key, any file) an option names, read now so that a wrong path fails here (exit 2). */
function readPemOption(file: string, option: string, kind: 'certificate' | 'key' = 'certificate'): string {
  try {
    return kind === 'key' ? readFileSync(file, 'utf8') : readCaFile(file, option);
  } catch (error) {
    throw new CliError(kind === 'key' ? `${option} ${file}: ${(error as Error).message}` : (error as Error).message, EXIT_USAGE);
  }
}

export interface AddRemoteOptions {
  token?: string;
  tokenFile?: string;
  key?: string;
  inline: boolean;
  use?: boolean;
  ca?: string;
  clientCert?: string;
  clientKey?: string;
  insecure?: boolean;
}

/**
 * Saves a remote. A token file and a key are stored by path unless `inline`, which copies their
 * text into the configuration. Each is read now, so a typo fails here rather than at the first call.
 */
export function addRemote(name: string, url: string, options: AddRemoteOptions): { name: string; remote: Remote; current: boolean } {
  if (!REMOTE_NAME.test(name)) throw new CliError(`a remote's name is 1 to 63 letters, digits, ".", "_" or "-"; got "${name}"`, EXIT_USAGE);
  if (options.token !== undefined && options.tokenFile !== undefined) throw new CliError('give --token or --token-file, not both', EXIT_USAGE);
  const remote: Remote = { url: checkedUrl(url, 'URL', options.insecure === true) };
  if (options.insecure === true) remote.insecure = true;
  if (options.ca !== undefined) {
    const pem = readPemOption(options.ca, '--ca');
    if (options.inline) remote.ca = pem;
    else remote.ca_file = resolve(options.ca);
  }
  if ((options.clientCert === undefined) !== (options.clientKey === undefined)) throw new CliError('give --client-cert and --client-key together', EXIT_USAGE);
  if (options.clientCert !== undefined && options.clientKey !== undefined) {
    readPemOption(options.clientCert, '--client-cert');
    readPemOption(options.clientKey, '--client-key', 'key');
    remote.client_cert_file = resolve(options.clientCert);
    remote.client_key_file = resolve(options.clientKey);
  }
  if (options.tokenFile !== undefined) {
    const text = readToken(options.tokenFile, '--token-file');
    if (options.inline || options.tokenFile.startsWith(`${TOKEN_PREFIX}.`)) remote.token = text;
    else remote.token_file = resolve(options.tokenFile);
  }
  if (options.token !== undefined) remote.token = readToken(options.token, '--token');
  if (options.key !== undefined) {
    const pem = readKeyFile(options.key);
    if (options.inline) remote.key = pem;
    else remote.key_file = resolve(options.key);
  }
  const config = loadConfig();
  config.remotes[name] = remote;
  const current = options.use === true || config.current === null || config.current === name;
  if (current) config.current = name;
  saveConfig(config);
  return { name, remote, current };
}

export function useRemote(name: string): void {
  const config = loadConfig();
  if (!config.remotes[name]) throw unknownRemote(name, config);
  config.current = name;
  saveConfig(config);
}

export function removeRemote(name: string): void {
  const config = loadConfig();
  if (!config.remotes[name]) throw unknownRemote(name, config);
  delete config.remotes[name];
  if (config.current === name) config.current = null;
  saveConfig(config);
}

function unknownRemote(name: string, config: ClientConfig): CliError {
  const known = Object.keys(config.remotes);
  return new CliError(
    `no remote named "${name}"; ${known.length > 0 ? `the remotes are ${known.join(', ')}` : 'there are none yet'} (add one with: ppn remote add ${name} URL --token-file FILE)`,
    EXIT_USAGE,
  );
}

/**
 * The connection for one call. `--remote NAME` picks a saved remote; otherwise PPN_SERVER, if set,
 * names the server, else the current remote does. PPN_TOKEN and PPN_KEY then override the token and
 * key (a token text or a file; a key file).
 */
export function resolveConnection(options: ConnectionOptions): Connection {
  const config = loadConfig();
  let remote: Remote | undefined;
  let source: string;
  if (options.remote !== undefined) {
    remote = config.remotes[options.remote];
    if (!remote) throw unknownRemote(options.remote, config);
    source = `remote "${options.remote}"`;
  } else if (process.env.PPN_SERVER) {
    remote = { url: checkedUrl(process.env.PPN_SERVER, 'PPN_SERVER') };
    source = 'PPN_SERVER';
  } else if (config.current !== null && config.remotes[config.current]) {
    remote = config.remotes[config.current]!;
    source = `remote "${config.current}"`;
  } else {
    throw new CliError('no server: add one with "ppn remote add NAME URL --token-file FILE", or set PPN_SERVER', EXIT_USAGE);
  }
  return { url: remote.url, source, tls: clientTls(remote, options, source), ...holderOf(remote, source, options.remote === undefined) };
}

/** A holder's token and key: what `ppn token delegate` signs with when not given --token and --key. */
export interface Holder {
  /** `remote "prod"` or `the environment`, for messages. */
  source: string;
  token?: string;
  key?: KeyObject;
  keySource?: string;
}

/**
 * The holder a call acts as, with no server involved: `--remote NAME`'s token and key; otherwise
 * the current remote's, PPN_TOKEN and PPN_KEY overriding them as for a call to the server.
 */
export function resolveHolder(remoteName: string | undefined): Holder {
  const config = loadConfig();
  if (remoteName !== undefined) {
    const remote = config.remotes[remoteName];
    if (!remote) throw unknownRemote(remoteName, config);
    const source = `remote "${remoteName}"`;
    return { source, ...holderOf(remote, source, false) };
  }
  const current = config.current !== null ? config.remotes[config.current] : undefined;
  const source = current ? `remote "${config.current}"` : 'the environment';
  return { source, ...holderOf(current, source, true) };
}

/** The token and key of `remote` (none without one), PPN_TOKEN and PPN_KEY overriding them when `useEnv`. */
function holderOf(remote: Remote | undefined, source: string, useEnv: boolean): Pick<Connection, 'token' | 'key' | 'keySource'> {
  const holder: Pick<Connection, 'token' | 'key' | 'keySource'> = {};
  const envToken = useEnv ? process.env.PPN_TOKEN : undefined;
  const envKey = useEnv ? process.env.PPN_KEY : undefined;
  if (envToken) holder.token = readToken(envToken, 'PPN_TOKEN');
  else if (remote?.token !== undefined) holder.token = remote.token;
  else if (remote?.token_file !== undefined) holder.token = readToken(remote.token_file, `the token file of ${source}`);
  // Parsed here, wherever the key came from, so every command refuses a bad one in the same line. An
  // inline key was checked by `remote add --inline`, but the configuration may have been edited since.
  if (envKey) Object.assign(holder, { key: readPrivateKey(envKey), keySource: envKey });
  else if (remote?.key !== undefined) Object.assign(holder, { key: parsePrivateKey(remote.key, `the key of ${source}`), keySource: `the key of ${source}` });
  else if (remote?.key_file !== undefined) Object.assign(holder, { key: readPrivateKey(remote.key_file), keySource: remote.key_file });
  return holder;
}

/**
 * How this call trusts the server: --ca (or PPN_CA) over the remote's own CA; plain http:// to
 * another machine only with --insecure, given now or when the remote was added.
 */
function clientTls(remote: Remote, options: ConnectionOptions, source: string): ClientTls {
  const refusal = plainHttpRefusal(new URL(remote.url), options.insecure === true || remote.insecure === true);
  if (refusal) throw new CliError(`${source}: ${refusal}`, EXIT_USAGE);
  const remoteCa = () => remote.ca ?? (remote.ca_file === undefined ? undefined : readPemOption(remote.ca_file, `the CA file of ${source}`));
  const tls: ClientTls = { ca: readCaOption(options.ca) ?? remoteCa() };
  if (remote.client_cert_file !== undefined && remote.client_key_file !== undefined) {
    tls.cert = readPemOption(remote.client_cert_file, `the client certificate of ${source}`);
    tls.key = readPemOption(remote.client_key_file, `the client key of ${source}`, 'key');
  }
  return tls;
}

/** A key file's PEM, read once and checked to be a private key: what `remote add --inline` saves. */
function readKeyFile(file: string): string {
  const pem = readKeyText(file);
  parsePrivateKey(pem, file);
  return pem;
}

/**
 * The remotes for `ppn remote list`, with which is current; tokens, keys and CAs shown only as where
 * they are, and whether plain http:// to another machine was allowed.
 */
export function listRemotes(): { name: string; url: string; current: boolean; token: string; key: string; ca: string; client_cert: string; insecure: boolean }[] {
  const config = loadConfig();
  return Object.entries(config.remotes).map(([name, r]) => ({
    name,
    url: r.url,
    current: config.current === name,
    token: r.token !== undefined ? '(inline)' : (r.token_file ?? '-'),
    key: r.key !== undefined ? '(inline)' : (r.key_file ?? '-'),
    ca: r.ca !== undefined ? '(inline)' : (r.ca_file ?? '-'),
    client_cert: r.client_cert_file ?? '-',
    insecure: r.insecure === true,
  }));
}
