/**
 * Certificates made for a test with the `openssl` command, as an operator would make them: a CA, a
 * server certificate for 127.0.0.1 and localhost (subjectAltName) that CA signed, a client
 * certificate it signed, and a second, unrelated CA that signed nothing the server uses.
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface KeyPair {
  cert: string;
  key: string;
}

export interface TestPki {
  dir: string;
  /** The CA's certificate file, and its PEM. */
  caFile: string;
  ca: string;
  /** A CA that signed none of these: trusting it alone must refuse the server. */
  otherCaFile: string;
  server: KeyPair;
  client: KeyPair;
  /** Another server certificate from the same CA, with a serial of its own (for a reload). */
  issueServer(name: string): KeyPair;
  /** A client certificate the other CA signed. */
  strangerClient: KeyPair;
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

function makeCa(dir: string, name: string): void {
  openssl(dir, [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
    '-keyout', `${name}.key`, '-out', `${name}.pem`, '-subj', `/CN=${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]); // prettier-ignore
}

let serial = 0x1000;

function issue(dir: string, ca: string, name: string, extensions: string): KeyPair {
  writeFileSync(join(dir, `${name}.ext`), `${extensions}\n`);
  openssl(dir, ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`]);
  serial += 1;
  openssl(dir, [
    'x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-set_serial', String(serial),
    '-days', '2', '-out', `${name}.pem`, '-extfile', `${name}.ext`,
  ]); // prettier-ignore
  return { cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) };
}

const SERVER_EXTENSIONS = 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth';
const CLIENT_EXTENSIONS = 'extendedKeyUsage=clientAuth';

export function makeTestPki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'ppn-pki-'));
  makeCa(dir, 'ca');
  makeCa(dir, 'other-ca');
  return {
    dir,
    caFile: join(dir, 'ca.pem'),
    ca: readFileSync(join(dir, 'ca.pem'), 'utf8'),
    otherCaFile: join(dir, 'other-ca.pem'),
    server: issue(dir, 'ca', 'server', SERVER_EXTENSIONS),
    client: issue(dir, 'ca', 'admin-client', CLIENT_EXTENSIONS),
    issueServer: (name) => issue(dir, 'ca', name, SERVER_EXTENSIONS),
    strangerClient: issue(dir, 'other-ca', 'stranger-client', CLIENT_EXTENSIONS),
  };
}

/** A certificate file's SHA-256 fingerprint, as Node prints it (AA:BB:…). */
export function fingerprintOf(certFile: string): string {
  return new X509Certificate(readFileSync(certFile)).fingerprint256;
}
