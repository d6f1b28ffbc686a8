// Loading images: static ELF64 executables (segments at their virtual
// addresses, .bss zeroed, .data initialized, W^X page permissions, low,
// higher-half and LMA links), flat binaries at a load address, and the three
// ways to name an entry point.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { runGuest } from '../../src/index.js';
import { guestSkipReason, guestTest } from '../helpers/kvm.js';
import { addressOf, assemble, compileGuest, flat, HIGHER_HALF_LINK, symbolTable } from '../helpers/toolchain.js';

const PF = 14;
const PF_PRESENT = 0x1;
const PF_WRITE = 0x2;
const PF_FETCH = 0x10;
const BSS_BYTES = 256 * 1024;

// Linked at 0x200000 (identity-mapped). _start checks .bss and .data.
const LOW_ELF = `
  .text
  .globl _start, write_text, exec_data, write_rodata, exec_stack, answer
_start:
  # OR every quadword of .bss together (it must stay 0) and count them.
  lea bss_start(%rip), %rsi
  lea bss_end(%rip), %rdi
  xor %eax, %eax
  xor %r12d, %r12d
1:
  cmp %rdi, %rsi
  jae 2f
  or (%rsi), %rax
  add $8, %rsi
  inc %r12
  jmp 1b
2:
  # Absolute addressing reads the right bytes only if the segment sits at its link address.
  mov initialized, %rbx
  # .data is writable.
  movq $0x5a5a, scratch
  mov scratch, %r13
  lea _start(%rip), %r14
  ret

write_text:
  lea patch_me(%rip), %rax
patch_me:
  movb $0x90, (%rax)
  ret

exec_data:
  jmp data_code

write_rodata:
  movb $1, constant
  ret

exec_stack:
  push $0xc3                # ret, on the stack
  call *%rsp

answer:
  mov $42, %eax
  ret

  .section .rodata
constant: .byte 7

  .data
  .balign 8
initialized: .quad 0x1122334455667788
scratch: .quad 0
data_code: .byte 0xc3

  .bss
  .balign 8
bss_start: .skip ${BSS_BYTES}
bss_end:
`;

// Linked at 0xffffffff80000000: addresses as sign-extended 32-bit
// displacements and immediates (what -mcmodel=kernel code uses), rip-relative
// and 64-bit absolute.
const HIGH_ELF = `
  .text
  .globl _start
_start:
  mov value, %rax
  movq $value, %rbx
  lea value(%rip), %rcx
  movabs $value, %rdx
  ret
  .data
  .balign 8
value: .quad 0xfeedfacecafebeef
`;

// The same in C, built with gcc -mcmodel=kernel.
const HIGH_C = `
unsigned long table[4] = { 11, 22, 33, 44 };
static volatile unsigned long index_ = 2;
unsigned long zeroed[1024];

unsigned long _start(void) {
  unsigned long sum = 0;
  for (unsigned long i = 0; i < 1024; i++) sum += zeroed[i];
  return table[index_] + sum;
}
unsigned long *table_address(void) { return table; }
`;

// Virtual addresses in the higher half, physical load addresses (LMA) at 2 MiB.
const LMA_SCRIPT = `
ENTRY(_start)
SECTIONS {
  . = 0xffffffff80000000;
  .text : AT(0x200000) { *(.text*) }
  . = ALIGN(0x1000);
  .data : AT(0x200000 + (ADDR(.data) - 0xffffffff80000000)) { *(.data*) }
}
`;
const LMA_ELF = `
  .text
  .globl _start, read_phys
_start:
  mov value, %rax
  lea _start(%rip), %rbx
  ret
read_phys:
  # The physical load address is not mapped: only the virtual one is.
  mov 0x200000, %rax
  ret
  .data
value: .quad 0x0123456789abcdef
`;

// Flat: returns its own address; a second function 16 bytes in.
const FLAT = `
  lea 0(%rip), %rax
  sub $7, %rax
  ret
  .balign 16
  mov $2, %eax
  ret
`;

let low: { elf: string; syms: Map<string, bigint> };
let high: { elf: string; syms: Map<string, bigint> };
let highC: { elf: string; syms: Map<string, bigint> };
let lma: { elf: string; syms: Map<string, bigint> };
let flatBytes: Uint8Array;

const built = (elf: string) => ({ elf, syms: symbolTable(elf) });

before(() => {
  if (guestSkipReason()) return;
  low = built(assemble(LOW_ELF, { name: 'low' }));
  high = built(assemble(HIGH_ELF, { name: 'high', higherHalf: true }));
  highC = built(compileGuest(HIGH_C, ['-mcmodel=kernel'], { name: 'high-c', higherHalf: true }));
  lma = built(assemble(LMA_ELF, { name: 'lma', linkerScript: LMA_SCRIPT }));
  flatBytes = flat(FLAT);
});

describe('static ELF executables', () => {
  test('segments at their virtual addresses, .bss zeroed, .data initialized and writable', guestTest(), async () => {
    const r = await runGuest({ image: { elf: low.elf } });
    assert.equal(r.outcome, 'returned', r.message);
    assert.equal(r.regs.r12, BigInt(BSS_BYTES / 8), 'the guest checked every quadword of .bss');
    assert.equal(r.regs.rax, 0n, '.bss reads as zero');
    assert.equal(r.regs.rbx, 0x1122334455667788n, '.data holds its initial value');
    assert.equal(r.regs.r13, 0x5a5an, '.data is writable');
    assert.equal(r.regs.r14, addressOf(low.syms, '_start'), 'code runs at its link address');
  });

  test('writing to its own .text faults with a protection error', guestTest(), async () => {
    const r = await runGuest({ image: { elf: low.elf }, entry: 'write_text' });
    assert.equal(r.outcome, 'fault', r.message);
    const target = addressOf(low.syms, 'patch_me');
    assert.equal(r.fault?.vector, PF);
    assert.equal(r.fault?.errorCode, PF_PRESENT | PF_WRITE, 'a write to a present, read-only page');
    assert.equal(r.fault?.cr2, target);
    assert.equal(r.fault?.rip, target);
    assert.equal(r.regs.rip, target);
  });

  test('executing from .data faults on the instruction fetch', guestTest(), async () => {
    const r = await runGuest({ image: { elf: low.elf }, entry: 'exec_data' });
    assert.equal(r.outcome, 'fault', r.message);
    const target = addressOf(low.syms, 'data_code');
    assert.equal(r.fault?.vector, PF);
    assert.equal(r.fault?.errorCode, PF_PRESENT | PF_FETCH, 'an instruction fetch from a present, no-execute page');
    assert.equal(r.fault?.cr2, target);
    assert.equal(r.fault?.rip, target);
    assert.equal(r.regs.rip, target);
  });

  test('read-only data is not writable', guestTest(), async () => {
    const r = await runGuest({ image: { elf: low.elf }, entry: 'write_rodata' });
    assert.equal(r.outcome, 'fault', r.message);
    assert.equal(r.fault?.vector, PF);
    assert.equal(r.fault?.errorCode, PF_PRESENT | PF_WRITE);
    assert.equal(r.fault?.cr2, addressOf(low.syms, 'constant'));
    assert.equal(r.fault?.rip, addressOf(low.syms, 'write_rodata'));
  });

  test('the stack is not executable', guestTest(), async () => {
    const r = await runGuest({ image: { elf: low.elf }, entry: 'exec_stack' });
    assert.equal(r.outcome, 'fault', r.message);
    assert.equal(r.fault?.vector, PF);
    assert.equal(r.fault?.errorCode, PF_PRESENT | PF_FETCH);
    assert.equal(r.fault?.rip, r.fault?.cr2, 'the fetch at the pushed byte faulted');
    assert.equal(r.regs.rip, r.fault?.rip);
  });

  test('entry by symbol name and by address', guestTest(), async () => {
    const bySymbol = await runGuest({ image: { elf: low.elf }, entry: 'answer' });
    assert.equal(bySymbol.outcome, 'returned', bySymbol.message);
    assert.equal(bySymbol.regs.rax, 42n);
    const address = addressOf(low.syms, 'answer');
    for (const entry of [address, Number(address)]) {
      const byAddress = await runGuest({ image: { elf: low.elf }, entry });
      assert.equal(byAddress.outcome, 'returned', byAddress.message);
      assert.equal(byAddress.regs.rax, 42n);
    }
  });

  test('an ELF given as bytes runs like one given as a path', guestTest(), async () => {
    const { readFileSync } = await import('node:fs');
    const r = await runGuest({ image: { elfBytes: readFileSync(low.elf), name: 'low.elf' }, entry: 'answer' });
    assert.equal(r.outcome, 'returned', r.message);
    assert.equal(r.regs.rax, 42n);
  });

  test('a higher-half link (0xffffffff80000000) with sign-extended absolute addressing', guestTest(), async () => {
    const r = await runGuest({ image: { elf: high.elf } });
    assert.equal(r.outcome, 'returned', r.message);
    const value = addressOf(high.syms, 'value');
    assert.ok(value >= HIGHER_HALF_LINK, `value is in the higher half (0x${value.toString(16)})`);
    assert.equal(r.regs.rax, 0xfeedfacecafebeefn, 'mov value, %rax (disp32) read the data');
    assert.equal(r.regs.rbx, value, 'movq $value (imm32, sign-extended)');
    assert.equal(r.regs.rcx, value, 'lea value(%rip)');
    assert.equal(r.regs.rdx, value, 'movabs $value');
  });

  test('C built with -mcmodel=kernel runs in the higher half', guestTest(), async () => {
    const r = await runGuest({ image: { elf: highC.elf } });
    assert.equal(r.outcome, 'returned', r.message);
    assert.equal(r.regs.rax, 33n, 'table[2] + the sum of a zeroed .bss array');
    const t = await runGuest({ image: { elf: highC.elf }, entry: 'table_address' });
    assert.equal(t.outcome, 'returned', t.message);
    assert.equal(t.regs.rax, addressOf(highC.syms, 'table'));
    assert.ok(t.regs.rax >= HIGHER_HALF_LINK);
  });

  test('an ELF whose segments have load addresses (AT() in the linker script)', guestTest(), async () => {
    const headers = execFileSync('readelf', ['-lW', lma.elf], { encoding: 'utf8' });
    const load = headers.split('\n').find((l) => /^\s*LOAD\s/.test(l)) ?? '';
    const [, , vaddr, paddr] = load.trim().split(/\s+/);
    assert.equal(BigInt(vaddr!), HIGHER_HALF_LINK, 'the first segment is linked in the higher half');
    assert.equal(BigInt(paddr!), 0x200000n, 'and loads at physical 0x200000');

    const r = await runGuest({ image: { elf: lma.elf } });
    assert.equal(r.outcome, 'returned', r.message);
    assert.equal(r.regs.rax, 0x0123456789abcdefn);
    assert.equal(r.regs.rbx, addressOf(lma.syms, '_start'));

    const phys = await runGuest({ image: { elf: lma.elf }, entry: 'read_phys' });
    assert.equal(phys.outcome, 'fault', phys.message);
    assert.equal(phys.fault?.vector, PF);
    assert.equal(phys.fault?.cr2, 0x200000n, 'the physical address is not identity-mapped');
  });
});

describe('flat binaries', () => {
  for (const loadAddress of [0x100000n, 0x7654000n, 0x300800n]) {
    test(`run at their load address (0x${loadAddress.toString(16)})`, guestTest(), async () => {
      const r = await runGuest({ image: { flat: flatBytes, loadAddress } });
      assert.equal(r.outcome, 'returned', r.message);
      assert.equal(r.regs.rax, loadAddress, 'the code found itself at the load address');
    });
  }

  test('entry at an address inside the image', guestTest(), async () => {
    const r = await runGuest({ image: { flat: flatBytes, loadAddress: 0x100000 }, entry: 0x100010 });
    assert.equal(r.outcome, 'returned', r.message);
    assert.equal(r.regs.rax, 2n);
  });
});
