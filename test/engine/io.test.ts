// Port I/O: configured ports (reads at every size, writes of the same value),
// unexpected accesses that end the run naming what happened, option checks,
// and the hypercall port (console writes, assertion and panic reports).
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { OptionError, runGuest } from '../../src/index.js';
import { guestSkipReason, guestTest } from '../helpers/kvm.js';
import { assemble, flatAll } from '../helpers/toolchain.js';

const LOAD = 0x100000n;
const PORT = 0x60;
const VALUE = 0x12345678;

const SOURCES = {
  /** Reads port 0x60 as 8, 16 and 32 bits into r12, r13, r14, then writes the same value back at each size. */
  sizes: `
    mov $${PORT}, %dx
    xor %eax, %eax
    in %dx, %al
    mov %rax, %r12
    xor %eax, %eax
    in %dx, %ax
    mov %rax, %r13
    in %dx, %eax
    mov %rax, %r14
    mov $0x78, %al
    out %al, %dx
    mov $0x5678, %ax
    out %ax, %dx
    mov $0x12345678, %eax
    out %eax, %dx
    ret
  `,
  /** A 16-bit write of 0x1234 to port 0x60. */
  writeOther: `
    mov $${PORT}, %dx
    mov $0x1234, %ax
    out %ax, %dx
    ret
  `,
  /** A 16-bit write to the hypercall port (it takes 32-bit writes only). */
  hypercall16: `
    mov $0xf5, %dx
    mov $1, %ax
    out %ax, %dx
    ret
  `,
  /** Hypercall number 99, which does not exist. */
  hypercall99: `
    mov $0xf5, %dx
    mov $99, %eax
    out %eax, %dx
    ret
  `,
  /** A 32-bit read from port 0x99. */
  inUnconfigured: `
    mov $0x99, %dx
    in %dx, %eax
    ret
  `,
  /** An 8-bit write of 0x42 to port 0x99. */
  outUnconfigured: `
    mov $0x99, %dx
    mov $0x42, %al
    out %al, %dx
    ret
  `,
} as const;

// Hypercalls: write (1) twice with a serial byte between them, the
// report (2) records of the three kinds (struct kt_report, sdk/include/kvmtest/abi.h),
// and skip (3) with a reason, an empty one and buffers the host cannot read.
const HYPERCALL_ELF = `
  .text
  .globl _start, report_assert, report_assert_eq, report_panic
  .globl skip_with_reason, skip_without_reason, skip_unmapped, skip_noncanonical
_start:
  lea first(%rip), %rdi
  mov $first_len, %esi
  mov $1, %eax
  mov $0xf5, %dx
  out %eax, %dx
  mov $0x3f8, %dx
  mov $'|', %al
  out %al, %dx
  lea second(%rip), %rdi
  mov $second_len, %esi
  mov $1, %eax
  mov $0xf5, %dx
  out %eax, %dx
  ret
report_assert:
  lea rec_assert(%rip), %rdi
  jmp report
report_assert_eq:
  lea rec_assert_eq(%rip), %rdi
  jmp report
report_panic:
  lea rec_panic(%rip), %rdi
report:
  mov $2, %eax
  mov $0xf5, %dx
  out %eax, %dx
  hlt
skip_with_reason:
  lea first(%rip), %rdi
  mov $first_len, %esi
  mov $1, %eax
  mov $0xf5, %dx
  out %eax, %dx
  lea reason(%rip), %rdi
  mov $reason_len, %esi
  jmp skip
skip_without_reason:
  xor %edi, %edi
  xor %esi, %esi
  jmp skip
skip_unmapped:
  mov $0x40000000, %edi
  mov $8, %esi
  jmp skip
skip_noncanonical:
  mov $0x800000000000, %rdi
  mov $8, %esi
skip:
  mov $3, %eax
  mov $0xf5, %dx
  out %eax, %dx
  /* Never reached: the host ends the run at the skip. */
  mov $0x3f8, %dx
  mov $'!', %al
  out %al, %dx
  ret

  .data
first: .ascii "first message, "
  .set first_len, . - first
second: .ascii "second message\\n"
  .set second_len, . - second
file: .asciz "guest.c"
expr: .asciz "x == 1"
message: .asciz "x was 3"
eq_expr: .asciz "inw(0x1) == 0xfe"
left_expr: .asciz "inw(0x1)"
right_expr: .asciz "0xfe"
panic_message: .asciz "out of frames"
reason: .ascii "no x2APIC here \\xc3\\xa9"
  .set reason_len, . - reason

  .balign 8
rec_assert:
  .long 1, 42
  .quad file, expr, message, 0, 0, 0, 0
rec_assert_eq:
  .long 2, 57
  .quad file, eq_expr, 0, left_expr, right_expr, 0xffffffffffffffff, 0xfe
rec_panic:
  .long 3, 7
  .quad file, 0, panic_message, 0, 0, 0, 0
`;

let bin: Record<keyof typeof SOURCES, Uint8Array>;
let hypercalls: string;

before(() => {
  if (guestSkipReason()) return;
  bin = flatAll(SOURCES);
  hypercalls = assemble(HYPERCALL_ELF, { name: 'hypercalls' });
});

const image = (bytes: Uint8Array) => ({ flat: bytes, loadAddress: LOAD });

describe('configured ports', () => {
  test('8, 16 and 32-bit reads return the low bytes; writing the same value is accepted', guestTest(), async () => {
    const r = await runGuest({ image: image(bin.sizes), ioports: { [PORT]: VALUE } });
    assert.equal(r.outcome, 'returned', r.message);
    assert.equal(r.regs.r12, 0x78n, 'inb');
    assert.equal(r.regs.r13, 0x5678n, 'inw');
    assert.equal(r.regs.r14, 0x12345678n, 'inl');
  });

  test('ioports given as a Map or as pairs work the same', guestTest(), async () => {
    for (const ioports of [new Map([[PORT, VALUE]]), [[PORT, VALUE]] as Array<[number, number]>]) {
      const r = await runGuest({ image: image(bin.sizes), ioports });
      assert.equal(r.outcome, 'returned', r.message);
      assert.equal(r.regs.r14, 0x12345678n);
    }
  });

  test('writing a different value gives unexpected-io naming port, direction, size and value', guestTest(), async () => {
    const r = await runGuest({ image: image(bin.writeOther), ioports: { [PORT]: VALUE } });
    assert.equal(r.outcome, 'unexpected-io');
    const m = r.message ?? '';
    assert.match(m, /port 0x60\b/);
    assert.match(m, /write \(out\)/);
    assert.match(m, /16-bit/);
    assert.match(m, /of 0x1234\b/);
  });
});

describe('unexpected port I/O', () => {
  test('a read from an unconfigured port names port, direction and size', guestTest(), async () => {
    const r = await runGuest({ image: image(bin.inUnconfigured) });
    assert.equal(r.outcome, 'unexpected-io');
    const m = r.message ?? '';
    assert.match(m, /port 0x99\b/);
    assert.match(m, /read \(in\)/);
    assert.match(m, /32-bit/);
    assert.match(m, /ioports/, 'says how to configure the port');
  });

  test('a write to an unconfigured port names port, direction, size and value', guestTest(), async () => {
    const r = await runGuest({ image: image(bin.outUnconfigured) });
    assert.equal(r.outcome, 'unexpected-io');
    const m = r.message ?? '';
    assert.match(m, /port 0x99\b/);
    assert.match(m, /write \(out\)/);
    assert.match(m, /8-bit/);
    assert.match(m, /of 0x42\b/);
  });
});

describe('misused engine ports', () => {
  test('a 16-bit write to the hypercall port gives unexpected-io', guestTest(), async () => {
    const r = await runGuest({ image: image(bin.hypercall16) });
    assert.equal(r.outcome, 'unexpected-io');
    assert.match(r.message ?? '', /hypercall port 0xf5 takes a 32-bit out, not 16-bit/);
  });

  test('an unknown hypercall number gives unexpected-io naming it', guestTest(), async () => {
    const r = await runGuest({ image: image(bin.hypercall99) });
    assert.equal(r.outcome, 'unexpected-io');
    assert.match(r.message ?? '', /unknown hypercall 99\b/);
  });
});

describe('ioports options are checked', () => {
  // Checked before any VM exists: these need no /dev/kvm.
  const bad: Array<{ what: string; ioports: Record<number, number> | Array<[number, number]>; message: RegExp }> = [
    { what: 'a port above 0xffff', ioports: { 0x10000: 1 }, message: /port 65536 is not a port number/ },
    { what: 'a negative port', ioports: [[-1, 1]], message: /port -1 is not a port number/ },
    { what: 'a negative value', ioports: { 0x60: -1 }, message: /value for port 0x60 must be an integer from 0 to 0xffffffff/ },
    { what: 'a value above 32 bits', ioports: { 0x60: 0x100000000 }, message: /must be an integer from 0 to 0xffffffff/ },
    { what: 'a fractional value', ioports: { 0x60: 1.5 }, message: /must be an integer/ },
    ...[0x3f8, 0x3f9, 0x3fa, 0x3fb, 0x3fc, 0x3fd, 0x3fe, 0x3ff].map((port) => ({
      what: `the serial port 0x${port.toString(16)}`,
      ioports: { [port]: 0 },
      message: new RegExp(`0x${port.toString(16)} belongs to the serial console`),
    })),
    { what: 'the exit port 0xf4', ioports: { 0xf4: 0 }, message: /0xf4 belongs to the exit port/ },
    { what: 'the hypercall port 0xf5', ioports: { 0xf5: 0 }, message: /0xf5 belongs to the hypercall port/ },
    { what: 'a port given twice', ioports: [[0x60, 1], [0x60, 2]], message: /0x60 is configured twice/ },
  ];
  for (const { what, ioports, message } of bad) {
    test(`refused: ${what}`, async () => {
      await assert.rejects(runGuest({ image: { flat: Uint8Array.of(0xc3), loadAddress: LOAD }, ioports }), (err: Error) => {
        assert.ok(err instanceof OptionError, `an OptionError, got ${err.name}: ${err.message}`);
        assert.match(err.message, message);
        return true;
      });
    });
  }
});

describe('hypercalls', () => {
  test('write appends whole messages to the output, in order with serial bytes', guestTest(), async () => {
    const r = await runGuest({ image: { elf: hypercalls } });
    assert.equal(r.outcome, 'returned', r.message);
    assert.equal(r.output, 'first message, |second message\n');
  });

  test('report kind 1 (kassert) gives assert-failed with file, line, expression and message', guestTest(), async () => {
    const r = await runGuest({ image: { elf: hypercalls }, entry: 'report_assert' });
    assert.equal(r.outcome, 'assert-failed', r.message);
    assert.deepEqual(r.assertion, { kind: 'assert', file: 'guest.c', line: 42, expression: 'x == 1', message: 'x was 3' });
    assert.match(r.message ?? '', /guest\.c:42/);
    assert.match(r.message ?? '', /x == 1/);
    assert.match(r.message ?? '', /x was 3/);
  });

  test('report kind 2 (kassert_eq) carries both sides, shown in hex and decimal', guestTest(), async () => {
    const r = await runGuest({ image: { elf: hypercalls }, entry: 'report_assert_eq' });
    assert.equal(r.outcome, 'assert-failed', r.message);
    assert.deepEqual(r.assertion, {
      kind: 'assert-eq',
      file: 'guest.c',
      line: 57,
      expression: 'inw(0x1) == 0xfe',
      left: { expression: 'inw(0x1)', value: 0xffffffffffffffffn },
      right: { expression: '0xfe', value: 0xfen },
    });
    const m = r.message ?? '';
    assert.match(m, /guest\.c:57/);
    assert.match(m, /inw\(0x1\) = 0xffffffffffffffff \(18446744073709551615 or -1\)/);
    assert.match(m, /0xfe = 0xfe \(254\)/);
  });

  test('report kind 3 (kpanic) gives panicked with file, line and message', guestTest(), async () => {
    const r = await runGuest({ image: { elf: hypercalls }, entry: 'report_panic' });
    assert.equal(r.outcome, 'panicked', r.message);
    assert.deepEqual(r.assertion, { kind: 'panic', file: 'guest.c', line: 7, message: 'out of frames' });
    assert.match(r.message ?? '', /guest\.c:7: out of frames/);
  });

  test('skip ends the run at once as skipped, its UTF-8 reason as the message, the output kept', guestTest(), async () => {
    const r = await runGuest({ image: { elf: hypercalls }, entry: 'skip_with_reason' });
    assert.equal(r.outcome, 'skipped', r.message);
    assert.equal(r.message, 'no x2APIC here \u00e9');
    assert.equal(r.output, 'first message, ', 'what the test printed before, and nothing after');
    assert.equal(r.assertion, undefined);
  });

  test('skip with an empty reason (length 0) reads nothing', guestTest(), async () => {
    const r = await runGuest({ image: { elf: hypercalls }, entry: 'skip_without_reason' });
    assert.deepEqual([r.outcome, r.message, r.output], ['skipped', '', '']);
  });

  test('skip with a reason the host cannot read is an error, not a skip', guestTest(), async () => {
    const unmapped = await runGuest({ image: { elf: hypercalls }, entry: 'skip_unmapped' });
    assert.deepEqual([unmapped.outcome, unmapped.error?.kind], ['error', 'host']);
    assert.match(unmapped.message ?? '', /skip hypercall: 8 bytes at 0x40000000 are not all mapped/);
    const wild = await runGuest({ image: { elf: hypercalls }, entry: 'skip_noncanonical' });
    assert.deepEqual([wild.outcome, wild.error?.kind], ['error', 'host']);
    assert.match(wild.message ?? '', /skip hypercall: the buffer at 0x800000000000 \(8 bytes\) is not at canonical addresses/);
  });
});
