// Only what is needed is mapped: the null page, the page after the image,
// the stack's guard page and a RAM range's end all fault as #PF with the
// address in cr2. RAM ranges are identity-mapped and usable, and bad ones
// are refused with a message that says why.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { runGuest, type GuestResult } from '../../src/index.js';
import { guestSkipReason, guestTest } from '../helpers/kvm.js';
import { addressOf, assemble, flatAll, symbolTable } from '../helpers/toolchain.js';

const LOAD = 0x100000n;
const PAGE = 0x1000n;
const PF = 14;
const PF_WRITE = 0x2;
const pageCeil = (a: bigint) => (a + PAGE - 1n) & ~(PAGE - 1n);

const SOURCES = {
  /** rdi = address: returns the quadword there. */
  readAt: `
    mov (%rdi), %rax
    ret
  `,
  /** Returns the stack pointer at entry. */
  entryRsp: `
    mov %rsp, %rax
    ret
  `,
  /** Pushes until the stack runs out. */
  pushForever: `
  1:
    push %rax
    jmp 1b
  `,
  /**
   * rdi = from, rsi = to: writes at from and at to-8, reads both back into
   * rax and rbx, then reads at `to` (which must fault); r8 = that read's address.
   */
  ramEnds: `
    movabs $0xa5a5a5a5a5a5a5a5, %rcx
    mov %rcx, (%rdi)
    movabs $0x5a5a5a5a5a5a5a5a, %rdx
    mov %rdx, -8(%rsi)
    mov (%rdi), %rax
    mov -8(%rsi), %rbx
    lea 0(%rip), %r8
    mov (%rsi), %rcx
    ret
  `,
  /** rdi = RAM: writes `mov $42, %eax; ret` there and calls it. */
  runFromRam: `
    movl $0x00002ab8, (%rdi)
    movw $0xc300, 4(%rdi)
    call *%rdi
    ret
  `,
} as const;

// An ELF with .bss: `_end` (from ld) is where its memory ends; read_at as above.
const ELF = `
  .text
  .globl _start
_start:
  mov (%rdi), %rax
  ret
  .bss
  .skip 5000
`;

let bin: Record<keyof typeof SOURCES, Uint8Array>;
let elf: string;
let elfEnd: bigint;

before(() => {
  if (guestSkipReason()) return;
  bin = flatAll(SOURCES);
  elf = assemble(ELF, { name: 'with-bss' });
  elfEnd = addressOf(symbolTable(elf), '_end');
});

const image = (bytes: Uint8Array) => ({ flat: bytes, loadAddress: LOAD });

function assertPageFault(r: GuestResult, address: bigint, rip: bigint, what: string): void {
  assert.equal(r.outcome, 'fault', `${what}: ${r.message}`);
  assert.equal(r.fault?.vector, PF, what);
  assert.equal(r.fault?.name, '#PF');
  assert.equal(r.fault?.cr2, address, `${what}: cr2 is the address touched`);
  assert.equal((r.fault?.errorCode ?? -1) & 1, 0, `${what}: the page is not present`);
  assert.equal(r.fault?.rip, rip);
  assert.equal(r.regs.rip, rip);
  assert.match(r.message ?? '', new RegExp(`0x${address.toString(16)}\\b`));
}

describe('unmapped addresses fault', () => {
  test('the null page', guestTest(), async () => {
    const r = await runGuest({ image: image(bin.readAt), args: [0] });
    assertPageFault(r, 0n, LOAD, 'read at 0');
    assert.equal(r.fault?.errorCode, 0, 'a read from a not-present page');
  });

  test('the page just past a flat image', guestTest(), async () => {
    const end = pageCeil(LOAD + BigInt(bin.readAt.length));
    const inside = await runGuest({ image: image(bin.readAt), args: [end - 8n] });
    assert.equal(inside.outcome, 'returned', `the image's last page is mapped: ${inside.message}`);
    const past = await runGuest({ image: image(bin.readAt), args: [end] });
    assertPageFault(past, end, LOAD, 'read just past the image');
  });

  test('the page just past an ELF image (after .bss)', guestTest(), async () => {
    const entry = addressOf(symbolTable(elf), '_start');
    const end = pageCeil(elfEnd);
    const inside = await runGuest({ image: { elf }, args: [end - 8n] });
    assert.equal(inside.outcome, 'returned', `the last .bss page is mapped: ${inside.message}`);
    assert.equal(inside.regs.rax, 0n);
    const past = await runGuest({ image: { elf }, args: [end] });
    assertPageFault(past, end, entry, 'read just past .bss');
  });

  test("the stack's guard page and the page below it", guestTest(), async () => {
    const stackSize = 16 * 1024;
    const probe = await runGuest({ image: image(bin.entryRsp), stackSize });
    assert.equal(probe.outcome, 'returned', probe.message);
    const stackTop = probe.regs.rax + 8n; // the entry's return address sits at the top
    const bottom = stackTop - BigInt(stackSize);

    const lowest = await runGuest({ image: image(bin.readAt), args: [bottom], stackSize });
    assert.equal(lowest.outcome, 'returned', `the stack's lowest quadword is mapped: ${lowest.message}`);
    for (const address of [bottom - 8n, bottom - PAGE - 8n]) {
      const r = await runGuest({ image: image(bin.readAt), args: [address], stackSize });
      assertPageFault(r, address, LOAD, `read at 0x${address.toString(16)}`);
    }
  });

  test('a stack overflow faults on the guard page and is still reported', guestTest(), async () => {
    const stackSize = 8 * 1024;
    const probe = await runGuest({ image: image(bin.entryRsp), stackSize });
    const bottom = probe.regs.rax + 8n - BigInt(stackSize);
    const r = await runGuest({ image: image(bin.pushForever), stackSize });
    assertPageFault(r, bottom - 8n, LOAD, 'push below the stack');
    assert.equal(r.fault?.errorCode, PF_WRITE, 'a write to a not-present page');
    assert.equal(r.regs.rsp, bottom, 'rsp as it was before the faulting push');
  });
});

describe('RAM ranges', () => {
  const ranges: Array<[bigint, bigint]> = [
    [0x10000000n, 0x10200000n], // 2 MiB aligned: large pages
    [0x30001000n, 0x30004000n], // three 4 KiB pages
  ];
  for (const [from, to] of ranges) {
    test(`[0x${from.toString(16)}, 0x${to.toString(16)}) is usable and ends at its end`, guestTest(), async () => {
      const r = await runGuest({ image: image(bin.ramEnds), ram: [[from, to]], args: [from, to] });
      assert.equal(r.regs.rax, 0xa5a5a5a5a5a5a5a5n, 'wrote and read back the first quadword');
      assert.equal(r.regs.rbx, 0x5a5a5a5a5a5a5a5an, 'wrote and read back the last quadword');
      assertPageFault(r, to, r.regs.r8, 'read at the end');
    });
  }

  test('RAM is executable (code copied there runs)', guestTest(), async () => {
    const r = await runGuest({ image: image(bin.runFromRam), ram: [[0x10000000, 0x10001000]], args: [0x10000000] });
    assert.equal(r.outcome, 'returned', r.message);
    assert.equal(r.regs.rax, 0x2an);
  });

  test('two ranges side by side are both mapped', guestTest(), async () => {
    const ram: Array<[number, number]> = [[0x20000000, 0x20001000], [0x20001000, 0x20002000]];
    const r = await runGuest({ image: image(bin.ramEnds), ram, args: [0x20000000, 0x20002000] });
    assert.equal(r.regs.rax, 0xa5a5a5a5a5a5a5a5n);
    assert.equal(r.regs.rbx, 0x5a5a5a5a5a5a5a5an);
    assert.equal(r.fault?.cr2, 0x20002000n);
  });

  const refused: Array<{ what: string; ram: Array<[number, number]>; message: RegExp }> = [
    { what: 'overlapping ranges', ram: [[0x10000000, 0x10002000], [0x10001000, 0x10003000]], message: /overlapping RAM ranges: RAM range 1 \[0x10001000, 0x10003000\) overlaps RAM range 0 \[0x10000000, 0x10002000\)/ },
    { what: 'an unaligned start', ram: [[0x10000800, 0x10002000]], message: /multiples of 4 KiB/ },
    { what: 'an unaligned end', ram: [[0x10000000, 0x10000ff8]], message: /multiples of 4 KiB/ },
    { what: 'a range in the first MiB', ram: [[0x80000, 0x200000]], message: /first megabyte/ },
    { what: 'an empty range (to == from)', ram: [[0x10000000, 0x10000000]], message: /end must be above the start/ },
    { what: 'a reversed range (to < from)', ram: [[0x10002000, 0x10000000]], message: /end must be above the start/ },
    { what: 'a range over the image', ram: [[0x100000, 0x200000]], message: /overlaps.*flat image|flat image.*overlaps/ },
  ];
  for (const { what, ram, message } of refused) {
    test(`refused with a clear error: ${what}`, guestTest(), async () => {
      await assert.rejects(runGuest({ image: image(bin.readAt), ram }), (err: Error) => {
        assert.equal(err.name, 'PlacementError');
        assert.match(err.message, message);
        return true;
      });
    });
  }
});
