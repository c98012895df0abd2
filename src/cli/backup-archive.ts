/**
 * The backup file: a POSIX ustar archive (`tar tf` lists it, `tar xf` unpacks it), written and read
 * here in a few lines so that no archive dependency is needed. The first member is manifest.json;
 * the others are data-directory files under their own relative names. The file is created 0600:
 * with keys it is a secret, and without them it still holds every tenant's records.
 *
 * Reading treats the file as untrusted input: header checksums are checked, and only the names a
 * backup writes are accepted (no absolute path, no "..", no link), so unpacking cannot write
 * outside the directory it is given.
 */
import { createHash } from 'node:crypto';
import { closeSync, fchmodSync, fsyncSync, mkdirSync, openSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { CliError } from './common.js';

const BLOCK = 512;
const CHUNK = 1 << 20;

/** The relative names a backup may hold. */
const MEMBER_NAME =
  /^(manifest\.json|ppn\.sqlite|ledger\.pub|ledger\.state|admin\.token|database\.url|keys\/(ledger\.pem|admin\.pem|keyset\.kek|platform\.active|platform-[A-Za-z0-9_-]+\.pem))$/;

export function isMemberName(name: string): boolean {
  return MEMBER_NAME.test(name);
}

/** A member to write: its bytes, or a file to copy in chunks. */
export type Member = { name: string; data: Buffer } | { name: string; file: string; size: number };

function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, '0')}\0`;
}

function header(name: string, size: number, mtime: number): Buffer {
  if (!isMemberName(name)) throw new RangeError(`not a backup member: ${name}`);
  const block = Buffer.alloc(BLOCK);
  block.write(name, 0, 100, 'utf8');
  block.write(octal(0o600, 8), 100);
  block.write(octal(0, 8), 108);
  block.write(octal(0, 8), 116);
  block.write(octal(size, 12), 124);
  block.write(octal(mtime, 12), 136);
  block.write('        ', 148);
  block.write('0', 156);
  block.write('ustar\0', 257);
  block.write('00', 263);
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return block;
}

/**
 * Writes the archive to `file` (0600 whatever the umask) through a temporary file renamed into
 * place, so an interrupted backup never leaves a file that looks whole. Returns its size in bytes.
 */
export function writeArchive(file: string, members: readonly Member[], now: Date): number {
  const temporary = `${file}.partial`;
  const fd = openSync(temporary, 'w', 0o600);
  let bytes = 0;
  const put = (data: Buffer) => {
    writeSync(fd, data);
    bytes += data.length;
  };
  try {
    fchmodSync(fd, 0o600);
    const mtime = Math.floor(now.getTime() / 1000);
    for (const member of members) {
      const size = 'data' in member ? member.data.length : member.size;
      put(header(member.name, size, mtime));
      if ('data' in member) put(member.data);
      else copyInto(member.file, size, put);
      if (size % BLOCK) put(Buffer.alloc(BLOCK - (size % BLOCK)));
    }
    put(Buffer.alloc(2 * BLOCK));
    fsyncSync(fd);
  } catch (error) {
    closeSync(fd);
    rmSync(temporary, { force: true });
    throw error;
  }
  closeSync(fd);
  renameSync(temporary, file);
  return bytes;
}

function copyInto(file: string, size: number, put: (data: Buffer) => void): void {
  const fd = openSync(file, 'r');
  try {
    const buffer = Buffer.alloc(CHUNK);
    for (let done = 0; done < size;) {
      const n = readSync(fd, buffer, 0, Math.min(CHUNK, size - done), done);
      if (n === 0) throw new Error(`${file} shrank while it was copied`);
      put(buffer.subarray(0, n));
      done += n;
    }
  } finally {
    closeSync(fd);
  }
}

export interface Unpacked {
  /** Member names in archive order, each with its size and SHA-256 (hex). */
  members: Map<string, { bytes: number; sha256: string }>;
}

/**
 * Unpacks `archive` into `dir` (which must exist), files 0600. Throws a CliError naming the problem
 * when the file is not a backup: a bad header, an unexpected name, a member cut short.
 */
export function unpackArchive(archive: string, dir: string): Unpacked {
  const members = new Map<string, { bytes: number; sha256: string }>();
  const fd = openSync(archive, 'r');
  try {
    const block = Buffer.alloc(BLOCK);
    let offset = 0;
    for (;;) {
      if (readSync(fd, block, 0, BLOCK, offset) !== BLOCK) throw notBackup(archive, `it ends inside a header at byte ${offset}`);
      offset += BLOCK;
      if (block.every((byte) => byte === 0)) break;
      const { name, size } = parseHeader(block, archive, offset - BLOCK);
      if (members.has(name)) throw notBackup(archive, `it holds ${name} twice`);
      const target = join(dir, name);
      mkdirSync(dirname(target), { recursive: true, mode: 0o700 });
      const out = openSync(target, 'wx', 0o600);
      const hash = createHash('sha256');
      try {
        const buffer = Buffer.alloc(CHUNK);
        for (let done = 0; done < size;) {
          const n = readSync(fd, buffer, 0, Math.min(CHUNK, size - done), offset + done);
          if (n === 0) throw notBackup(archive, `${name} is cut short`);
          writeSync(out, buffer, 0, n);
          hash.update(buffer.subarray(0, n));
          done += n;
        }
        fsyncSync(out);
      } finally {
        closeSync(out);
      }
      members.set(name, { bytes: size, sha256: hash.digest('hex') });
      offset += Math.ceil(size / BLOCK) * BLOCK;
    }
  } finally {
    closeSync(fd);
  }
  return { members };
}

function parseHeader(block: Buffer, archive: string, at: number): { name: string; size: number } {
  const field = (start: number, length: number) => block.toString('latin1', start, start + length).replace(/\0.*$/s, '');
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i]!;
  if (Number.parseInt(field(148, 8).trim(), 8) !== sum) throw notBackup(archive, `the header at byte ${at} has a bad checksum`);
  const name = field(0, 100);
  if (!isMemberName(name)) throw notBackup(archive, `it holds "${name.slice(0, 100)}", which no backup holds`);
  const type = field(156, 1);
  if (type !== '0' && type !== '') throw notBackup(archive, `${name} is not a regular file`);
  const size = Number.parseInt(field(124, 12).trim(), 8);
  if (!Number.isSafeInteger(size) || size < 0) throw notBackup(archive, `${name} has no valid size`);
  return { name, size };
}

function notBackup(archive: string, why: string): CliError {
  return new CliError(`${archive} is not a service-vm-tenant backup: ${why}`);
}

/** The SHA-256 (hex) of a file, read in chunks. */
export function hashFile(file: string): string {
  const hash = createHash('sha256');
  const fd = openSync(file, 'r');
  try {
    const buffer = Buffer.alloc(CHUNK);
    for (let at = 0; ;) {
      const n = readSync(fd, buffer, 0, CHUNK, at);
      if (n === 0) break;
      hash.update(buffer.subarray(0, n));
      at += n;
    }
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}
