/**
 * The server's side of TLS (`serve --tls-cert --tls-key [--tls-client-ca]`): reading and checking
 * the files before the server listens, and taking a renewed certificate on SIGHUP. A reload changes
 * only what new connections are offered; connections already open, and requests in flight on them,
 * carry on with the certificate they began with.
 */
import { createSecureContext, type SecureContextOptions, type Server as TlsServer } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { ServerOptions } from 'node:https';

export interface ServerTlsFiles {
  cert: string;
  key: string;
  /** The CA whose client certificates platform-admin requests must present. */
  clientCa?: string | undefined;
}

/** What `serve` hands buildApp: the https server options, and whether platform admins need a client certificate. */
export interface ServerTls {
  https: ServerOptions;
  clientCertificateForPlatformAdmin: boolean;
  /** The serving certificate's SHA-256 fingerprint, for the log. */
  fingerprint: string;
}

function readFile(file: string, option: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new Error(`${option} ${file}: ${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (error as Error).message}`, { cause: error });
  }
}

function certificateOf(pem: Buffer, what: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch {
    throw new Error(`${what} holds no PEM certificate`);
  }
}

/** Reads and checks the files: each readable, the certificate PEM, the key the certificate's. */
function readContext(files: ServerTlsFiles): { context: SecureContextOptions; fingerprint: string } {
  const cert = readFile(files.cert, '--tls-cert');
  const key = readFile(files.key, '--tls-key');
  const served = certificateOf(cert, `--tls-cert ${files.cert}`);
  const context: SecureContextOptions = { cert, key };
  if (files.clientCa !== undefined) {
    context.ca = readFile(files.clientCa, '--tls-client-ca');
    certificateOf(context.ca, `--tls-client-ca ${files.clientCa}`);
  }
  try {
    createSecureContext(context);
  } catch (error) {
    throw new Error(`--tls-cert ${files.cert} and --tls-key ${files.key} do not go together: ${(error as Error).message}`, { cause: error });
  }
  return { context, fingerprint: served.fingerprint256 };
}

export function readServerTls(files: ServerTlsFiles): ServerTls {
  const { context, fingerprint } = readContext(files);
  const clientCa = files.clientCa !== undefined;
  // The certificate is asked for but not required of every connection: tenant routes work without
  // one, and the auth plugin refuses platform-admin tokens on a connection that did not verify.
  return { https: { ...context, requestCert: clientCa, rejectUnauthorized: false }, clientCertificateForPlatformAdmin: clientCa, fingerprint };
}

export interface ReloadLog {
  info(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

/**
 * Re-reads the files and gives new connections the new certificate. A pair that does not load is
 * logged and the one in use kept.
 */
export function reloadTls(server: TlsServer, files: ServerTlsFiles, log: ReloadLog): void {
  try {
    const { context, fingerprint } = readContext(files);
    server.setSecureContext(context);
    log.info({ cert: files.cert, fingerprint }, 'reloaded the TLS certificate and key: new connections get them');
  } catch (error) {
    log.error({ cert: files.cert, key: files.key, err: error }, `kept the TLS certificate in use: ${(error as Error).message}`);
  }
}

/** Reloads on SIGHUP (reloadTls). Returns a function that stops listening for the signal. */
export function reloadOnSighup(server: TlsServer, files: ServerTlsFiles, log: ReloadLog): () => void {
  const reload = () => reloadTls(server, files, log);
  process.on('SIGHUP', reload);
  return () => process.off('SIGHUP', reload);
}
