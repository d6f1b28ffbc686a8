// Inputs that would exhaust the host are refused before they cost anything:
// guest memory beyond the limit (before any memory slot exists), page
// tables that do not fit their pool, segments that would map the engine's
// first megabyte, and files that are not test binaries.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, ftruncateSync } from 'node:fs';
import { runGuest, type RunGuestOptions } from '../../src/index.js';
import { Kvm } from '../../src/kvm/kvm.js';
import { guestTest, toolchainTest } from '../helpers/kvm.js';
import { assemble, tempPath } from '../helpers/toolchain.js';

const GIB = 1n << 30n;
const TIB = 1n << 40n;
const RET = { flat: Uint8Array.of(0xc3), loadAddress: 0x200000 };

/** Counts VMs created in this process, to show that refusals come before any. */
let vmsCreated = 0;
const originalCreateVm = Kvm.prototype.createVm;
before(async () => {
  // The CPUID probe builds VMs of its own, once per process: let it run first.
  if (!guestTest().skip) await runGuest({ image: RET });
  Kvm.prototype.createVm = function (this: Kvm) {
    vmsCreated++;
    return originalCreateVm.call(this);
  };
});
after(() => {
  Kvm.prototype.createVm = originalCreateVm;
});

async function assertRefusedBeforeAnyVm(options: RunGuestOptions, name: string, ...patterns: RegExp[]): Promise<void> {
  const before = vmsCreated;
  await assert.rejects(runGuest(options), (err: Error) => {
    assert.equal(err.name, name, `${err.name}: ${err.message}`);
    for (const p of patterns) assert.match(err.message, p);
    return true;
  });
  assert.equal(vmsCreated, before, 'no VM was created');
}

describe('guest memory limits', () => {
  test('a 32 TiB RAM range is refused at once, naming the size and the limit', guestTest(), async () => {
    await assertRefusedBeforeAnyVm(
      { image: RET, ram: [[0x100000000n, 0x100000000n + 32n * TIB]] },
      'PlacementError',
      /would have 32\.0 TiB of guest memory/,
      /RAM range 0 \[0x100000000, 0x200100000000\)/,
      /more than the limit of 16 GiB/,
      /--max-guest-memory/,
    );
  });

  test('the limit can be raised, and lowered', guestTest(), async () => {
    const ram = [[0x100000000n, 0x100000000n + 17n * GIB]] as const;
    await assertRefusedBeforeAnyVm({ image: RET, ram }, 'PlacementError', /limit of 16 GiB/);
    const r = await runGuest({ image: RET, ram, maxGuestMemory: 18n * GIB });
    assert.equal(r.outcome, 'returned', r.message);
    await assertRefusedBeforeAnyVm({ image: RET, ram: [[0x10000000, 0x10200000]], maxGuestMemory: 2 * 2 ** 20 }, 'PlacementError', /limit of 2 MiB/);
  });

  test('a RAM range beyond the physical address width is refused', guestTest(), async () => {
    await assertRefusedBeforeAnyVm({ image: RET, ram: [[1n << 60n, (1n << 60n) + 0x1000n]], maxGuestMemory: 1n << 62n }, 'PlacementError', /physical address space/);
  });

  test('mappings whose page tables overflow the pool are refused before any VM exists', guestTest(), async () => {
    // 200 pages, each in a 2 MiB block of its own: 200 page tables, more than the pool holds.
    const ram = Array.from({ length: 200 }, (_, i) => [0x10000000 + i * 0x200000, 0x10001000 + i * 0x200000] as const);
    await assertRefusedBeforeAnyVm({ image: RET, ram }, 'PlacementError', /need more than \d+ page-table pages/);
  });

  test('an impossible limit is an option error', async () => {
    await assert.rejects(runGuest({ image: RET, maxGuestMemory: 1.5 }), /maxGuestMemory must be a whole number of bytes/);
  });
});

describe('segments in the first megabyte of virtual memory', () => {
  let lowVirtual: string;
  let zeroVirtual: string;
  before(() => {
    if (toolchainTest().skip) return;
    const script = (virt: number) => `SECTIONS { . = 0x${virt.toString(16)}; .text : AT(0x200000) { *(.text) } }`;
    lowVirtual = assemble('.text\n.globl _start\n_start: ret\n', { name: 'low-virtual', linkerScript: script(0x1000) });
    zeroVirtual = assemble('.text\n.globl _start\n_start: ret\n', { name: 'zero-virtual', linkerScript: script(0) });
  });

  test('a segment at virtual 0x1000 loaded at physical 0x200000 is refused', guestTest(), async () => {
    await assertRefusedBeforeAnyVm({ image: { elf: lowVirtual } }, 'PlacementError', /segment at virtual 0x1000 \(loaded at physical 0x200000\) lies in the first megabyte/, /0x100000 or above/);
  });

  test('a segment at virtual 0 is refused: page 0 stays unmapped', guestTest(), async () => {
    await assertRefusedBeforeAnyVm({ image: { elf: zeroVirtual } }, 'PlacementError', /segment at virtual 0x0 /, /page 0 stays unmapped/);
  });
});

describe('files that are not test binaries', () => {
  test('a character device such as /dev/zero is refused without reading it', async () => {
    await assertRefusedBeforeAnyVm({ image: { elf: '/dev/zero' } }, 'ImageError', /\/dev\/zero: it is a character device, not a regular file/);
  });

  test('a directory and a named pipe are refused', async () => {
    const dir = tempPath('a-directory');
    mkdirSync(dir);
    await assertRefusedBeforeAnyVm({ image: { elf: dir } }, 'ImageError', /it is a directory, not a regular file/);
    const fifo = tempPath('a-fifo');
    execFileSync('mkfifo', [fifo]);
    await assertRefusedBeforeAnyVm({ image: { elf: fifo } }, 'ImageError', /it is a named pipe \(FIFO\), not a regular file/);
  });

  test('a file larger than 1 GiB is refused by its size, without reading it', async () => {
    const big = tempPath('huge.elf');
    const fd = openSync(big, 'w');
    ftruncateSync(fd, 2 ** 31); // sparse: no disk space used
    closeSync(fd);
    await assertRefusedBeforeAnyVm({ image: { elf: big } }, 'ImageError', /huge\.elf: it is 2147483648 bytes, more than the 1024 MiB/);
  });
});
