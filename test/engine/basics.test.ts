// The machine a guest starts in (long mode, ring 0, paging), how a run ends
// (return, HLT, the exit port) and the serial console.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { runGuest } from '../../src/index.js';
import { guestSkipReason, guestTest } from '../helpers/kvm.js';
import { flatAll } from '../helpers/toolchain.js';

const LOAD = 0x100000n;
const CR0_PE = 1n << 0n;
const CR0_PG = 1n << 31n;
const EFER_LME = 1n << 8n;
const EFER_LMA = 1n << 10n;

const SOURCES = {
  // The seed's example: `in ax, dx` from port 1 configured as 0xfe; then
  // what the guest itself sees of CR0, EFER and its privilege level.
  machineState: `
    xor %eax, %eax
    mov $1, %dx
    in %dx, %ax
    mov %rax, %r12
    mov %cr0, %r13
    mov $0xc0000080, %ecx
    rdmsr
    shl $32, %rdx
    or %rdx, %rax
    mov %rax, %r14
    mov %cs, %r15
    mov %r12, %rax
    ret
  `,
  // Known values in the registers the caller sees, then return.
  registers: `
    movabs $0x1111111111111111, %rax
    movabs $0x2222222222222222, %rbx
    movabs $0xc0c0c0c0c0c0c0c0, %r12
    movabs $0xd0d0d0d0d0d0d0d0, %r13
    movabs $0xe0e0e0e0e0e0e0e0, %r14
    movabs $0xf0f0f0f0f0f0f0f0, %r15
    ret
  `,
  halt: `
    hlt
  `,
  // CPUID.1:ECX as the guest sees it (r12) beside CR4 (r13).
  xsaveState: `
    mov $1, %eax
    xor %ecx, %ecx
    cpuid
    mov %rcx, %r12
    mov %cr4, %r13
    ret
  `,
  // A polled 16550 driver: wait for THRE in the line status register, send a byte.
  serial: `
    lea msg(%rip), %rsi
    mov $0x3fd, %dx
    in %dx, %al
    movzbl %al, %ebx
  next:
    movzbl (%rsi), %ecx
    test %ecx, %ecx
    jz done
  wait:
    mov $0x3fd, %dx
    in %dx, %al
    test $0x20, %al
    jz wait
    mov $0x3f8, %dx
    mov %cl, %al
    out %al, %dx
    inc %rsi
    jmp next
  done:
    mov %rbx, %rax
    ret
  msg: .asciz "hello from COM1\\n"
  `,
  // rdi = code: a 16-bit write to the exit port.
  exitPort: `
    mov %edi, %eax
    mov $0xf4, %dx
    out %ax, %dx
    hlt
  `,
} as const;

let bin: Record<keyof typeof SOURCES, Uint8Array>;

before(() => {
  if (guestSkipReason()) return;
  bin = flatAll(SOURCES);
});

const image = (bytes: Uint8Array) => ({ flat: bytes, loadAddress: LOAD });

describe('the machine a guest starts in', () => {
  test('in from a configured port, long mode with paging, CPL 0', guestTest(), async () => {
    const r = await runGuest({ image: image(bin.machineState), ioports: { 1: 0xfe } });
    assert.equal(r.outcome, 'returned', r.message);
    assert.equal(r.regs.rax, 0xfen, 'in ax, dx from port 1 reads the configured 0xfe');
    const cr0 = r.regs.r13;
    const efer = r.regs.r14;
    assert.equal(cr0 & CR0_PE, CR0_PE, `CR0.PE set (cr0 = 0x${cr0.toString(16)})`);
    assert.equal(cr0 & CR0_PG, CR0_PG, `CR0.PG set (cr0 = 0x${cr0.toString(16)})`);
    assert.equal(efer & EFER_LME, EFER_LME, `EFER.LME set (efer = 0x${efer.toString(16)})`);
    assert.equal(efer & EFER_LMA, EFER_LMA, `EFER.LMA set (efer = 0x${efer.toString(16)})`);
    assert.equal(r.regs.r15 & 3n, 0n, `CPL 0 (cs = 0x${r.regs.r15.toString(16)})`);
    // The result's control registers agree with what the guest read.
    assert.equal(r.sregs.cr0, cr0);
    assert.equal(r.sregs.efer, efer);
    assert.equal(r.sregs.cr0 & (CR0_PE | CR0_PG), CR0_PE | CR0_PG);
    assert.equal(r.sregs.efer & (EFER_LME | EFER_LMA), EFER_LME | EFER_LMA);
  });

  test("XSAVE is set up as the guest's own CPUID shows it: CR4.OSXSAVE where CPUID.1:ECX.XSAVE, and CPUID.1:ECX.OSXSAVE agrees", guestTest(), async () => {
    const r = await runGuest({ image: image(bin.xsaveState) });
    assert.equal(r.outcome, 'returned', r.message);
    const xsave = (r.regs.r12 >> 26n) & 1n;
    const osxsaveBit = (r.regs.r12 >> 27n) & 1n;
    const cr4Osxsave = (r.regs.r13 >> 18n) & 1n;
    assert.equal(cr4Osxsave, xsave, `CR4.OSXSAVE (cr4 0x${r.regs.r13.toString(16)}) follows CPUID.1:ECX.XSAVE (ecx 0x${r.regs.r12.toString(16)})`);
    assert.equal(osxsaveBit, cr4Osxsave, 'CPUID.1:ECX.OSXSAVE reflects CR4.OSXSAVE');
  });
});

describe('how a run ends', () => {
  test('returning from the entry function gives returned with the registers intact', guestTest(), async () => {
    const r = await runGuest({ image: image(bin.registers) });
    assert.equal(r.outcome, 'returned', r.message);
    assert.equal(r.message, undefined);
    assert.equal(r.regs.rax, 0x1111111111111111n);
    assert.equal(r.regs.rbx, 0x2222222222222222n);
    assert.equal(r.regs.r12, 0xc0c0c0c0c0c0c0c0n);
    assert.equal(r.regs.r13, 0xd0d0d0d0d0d0d0d0n);
    assert.equal(r.regs.r14, 0xe0e0e0e0e0e0e0e0n);
    assert.equal(r.regs.r15, 0xf0f0f0f0f0f0f0f0n);
  });

  test('HLT gives halted, naming where', guestTest(), async () => {
    const r = await runGuest({ image: image(bin.halt) });
    assert.equal(r.outcome, 'halted', r.message);
    assert.match(r.message ?? '', /HLT/);
    assert.match(r.message ?? '', new RegExp(`0x${LOAD.toString(16)}\\b`));
    // KVM reports rip after the one-byte hlt.
    assert.equal(r.regs.rip, LOAD + 1n);
  });

  const exitCases = [
    { code: 0, outcome: 'returned' },
    { code: 1, outcome: 'assert-failed' },
    { code: 2, outcome: 'panicked' },
    { code: 7, outcome: 'panicked' },
  ] as const;
  for (const { code, outcome } of exitCases) {
    test(`a 16-bit write of ${code} to the exit port 0xf4 gives ${outcome}`, guestTest(), async () => {
      const r = await runGuest({ image: image(bin.exitPort), args: [code] });
      assert.equal(r.outcome, outcome, r.message);
      assert.equal(r.exitCode, code);
      if (code === 7) assert.match(r.message ?? '', /exit code 7\b/);
      if (code !== 0) assert.match(r.message ?? '', /0xf4/);
    });
  }
});

describe('the serial console', () => {
  test('bytes written to 0x3f8 appear in output; 0x3fd reads 0x60', guestTest(), async () => {
    const r = await runGuest({ image: image(bin.serial) });
    assert.equal(r.outcome, 'returned', r.message);
    assert.equal(r.output, 'hello from COM1\n');
    assert.equal(r.regs.rax, 0x60n, 'line status: transmitter empty (bits 5 and 6)');
  });
});
