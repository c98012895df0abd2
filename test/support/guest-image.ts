/**
 * A guest small enough to write by hand: a 512-byte x86 boot sector that prints one line to the
 * first serial port (COM1, I/O port 0x3F8) and then halts with interrupts off, so it costs no CPU.
 * The BIOS loads it at 0000:7C00 and jumps to it (it ends in the 0x55 0xAA boot signature).
 */
import { execFileSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const GUEST_LINE = 'ppn-test-guest ok';

export function bootSector(line = GUEST_LINE): Buffer {
  const LOAD = 0x7c00;
  const code = [
    0xfa, //             cli
    0xfc, //             cld                  (lodsb counts up)
    0x31, 0xc0, //       xor ax, ax
    0x8e, 0xd8, //       mov ds, ax
    0xbe, 0x00, 0x00, // mov si, message     (patched below)
    0xba, 0xf8, 0x03, // mov dx, 0x3f8
    0xac, //             next: lodsb
    0x84, 0xc0, //       test al, al
    0x74, 0x03, //       jz done             (+3: over out and jmp)
    0xee, //             out dx, al
    0xeb, 0xf8, //       jmp next            (-8)
    0xf4, //             done: hlt
    0xeb, 0xfd, //       jmp done            (-3)
  ]; // prettier-ignore
  const message = LOAD + code.length;
  code[7] = message & 0xff;
  code[8] = message >> 8;
  const sector = Buffer.alloc(512);
  Buffer.from(code).copy(sector, 0);
  Buffer.from(`${line}\r\n\0`, 'latin1').copy(sector, code.length);
  sector[510] = 0x55;
  sector[511] = 0xaa;
  return sector;
}

/** Writes the boot sector as a qcow2 base image `name` in `imagesDir`. */
export function writeGuestImage(imagesDir: string, name: string): void {
  const raw = join(imagesDir, `${name}.raw`);
  // SeaBIOS does not boot a disk of one sector: pad it to 1 MiB.
  const disk = Buffer.alloc(1024 * 1024);
  bootSector().copy(disk);
  writeFileSync(raw, disk);
  execFileSync('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'qcow2', raw, join(imagesDir, name)]);
  rmSync(raw);
}
