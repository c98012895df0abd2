/**
 * The pieces of `ppn` that need no server: durations as people write them, tables fitted to a
 * width, `tenant set`'s KEY=VALUE, and the console's follow. Each input case is its own assertion.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { durationSeconds, formatDuration, parseDuration } from '../../src/cli/durations.js';
import { formatTable, type Column } from '../../src/cli/output.js';
import { parseSetting } from '../../src/cli/ppn-tenant.js';
import { addedOutput } from '../../src/cli/ppn-vm.js';

describe('durations', () => {
  it('takes days, hours, minutes, seconds, combinations and bare seconds, in any case', () => {
    expect(durationSeconds('90d')).toBe(90 * 86_400);
    expect(durationSeconds('12h')).toBe(43_200);
    expect(durationSeconds('30m')).toBe(1_800);
    expect(durationSeconds('45s')).toBe(45);
    expect(durationSeconds('1h30m')).toBe(5_400);
    expect(durationSeconds('1H')).toBe(3_600);
    expect(durationSeconds('3600')).toBe(3_600);
  });

  it('refuses what is no duration, and one out of bounds, saying what it takes', () => {
    for (const text of ['', '1w', 'h', '1.5h', '-1h', '1h 30m', 'soon']) expect(durationSeconds(text), text).toBeUndefined();
    const parse = parseDuration('--expires-in', 90 * 86_400);
    expect(() => parse('3 weeks')).toThrow('--expires-in wants a duration such as 90d, 12h, 30m, 45s or 1h30m (or seconds)');
    expect(() => parse('91d')).toThrow('--expires-in must be from 1s to 90d');
    expect(() => parse('0s')).toThrow('--expires-in must be from 1s to 90d');
  });

  it('formats in at most two units, and reads back to within the dropped unit', () => {
    expect(formatDuration(5_400)).toBe('1h30m');
    expect(formatDuration(86_399)).toBe('23h59m');
    expect(formatDuration(3_601)).toBe('1h');
    expect(formatDuration(0)).toBe('0s');
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 90 * 86_400 }), (seconds) => {
        const back = durationSeconds(formatDuration(seconds))!;
        expect(back).toBeLessThanOrEqual(seconds);
        expect(seconds - back).toBeLessThan(seconds >= 86_400 ? 3_600 : seconds >= 3_600 ? 60 : 1);
      }),
    );
  });
});

describe('tables', () => {
  interface Row {
    id: string;
    name: string;
    reason: string;
  }
  const columns: Column<Row>[] = [
    { heading: 'ID', value: (r) => r.id },
    { heading: 'NAME', value: (r) => r.name, shrink: true },
    { heading: 'REASON', value: (r) => r.reason, shrink: true },
  ];
  const rows: Row[] = [
    { id: 'vm-01m8ft8btc7tvq8ag3w1aceh4q', name: 'a-very-long-name-that-does-not-fit-beside-the-others', reason: 'no ready node has room for 2 vCPU, 2048 MB' },
    { id: 'vm-01m8ft8btc7tvq8ag3w1aceh4r', name: 'web-1', reason: '' },
  ];

  it('are aligned at their natural widths when they fit', () => {
    expect(formatTable(columns, [rows[1]!], 80)).toEqual(['ID                             NAME   REASON', 'vm-01m8ft8btc7tvq8ag3w1aceh4r  web-1']);
  });

  it('fit the width by narrowing the shrinkable columns, cutting with "…" and never cutting an id', () => {
    const lines = formatTable(columns, rows, 80);
    for (const line of lines) expect(line.length, line).toBeLessThanOrEqual(80);
    expect(lines[1]).toMatch(/^vm-01m8ft8btc7tvq8ag3w1aceh4q {2}a-very-long-name\S*… {2}no ready node[^…]*…$/);
    fc.assert(
      fc.property(fc.integer({ min: 50, max: 200 }), (width) => {
        for (const line of formatTable(columns, rows, width)) expect(line.length).toBeLessThanOrEqual(width);
      }),
    );
  });

  it('print control characters of a cell as spaces, so a name cannot forge a line', () => {
    const [, line] = formatTable(columns, [{ id: 'x', name: 'evil\nID  forged', reason: '\u001b[31mred' }], 200);
    expect(line).toBe('x   evil ID  forged   [31mred');
  });
});

describe('tenant set KEY=VALUE', () => {
  it('reads numbers, unlimited, booleans and states in any case', () => {
    expect(parseSetting('max_vms=20')).toEqual(['max_vms', 20]);
    expect(parseSetting('max_vcpus=unlimited')).toEqual(['max_vcpus', null]);
    expect(parseSetting('require_pop=TRUE')).toEqual(['require_pop', true]);
    expect(parseSetting('state=Suspended')).toEqual(['state', 'suspended']);
    expect(parseSetting('display_name=Acme = Rockets')).toEqual(['display_name', 'Acme = Rockets']);
  });

  it('refuses an unknown key or a bad value, listing what is valid', () => {
    expect(() => parseSetting('max_vm=2')).toThrow(/KEY=VALUE wants KEY one of display_name, max_vms, storage_quota_gb/);
    expect(() => parseSetting('state=paused')).toThrow('state must be one of active, suspended');
    expect(() => parseSetting('max_vms=unlimited')).toThrow('max_vms wants a whole number; got "unlimited"');
  });
});

describe('vm console --follow', () => {
  it('prints only what the console added, also when its 64 KiB window has slid', () => {
    const before = Buffer.from('boot\nlogin: ');
    expect(addedOutput(Buffer.alloc(0), before).toString()).toBe('boot\nlogin: ');
    expect(addedOutput(before, Buffer.from('boot\nlogin: root\n')).toString()).toBe('root\n');
    expect(addedOutput(before, Buffer.from('ot\nlogin: root\n')).toString()).toBe('root\n');
    expect(addedOutput(before, Buffer.from('something else')).toString()).toBe('something else');
  });
});
