// Guests that attack the host side of the protocol: pointers that are not
// canonical, and single exits that ask the host for unbounded work. Each
// must end as a clear result, within its deadline.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { runGuest } from '../../src/index.js';
import { guestSkipReason, guestTest } from '../helpers/kvm.js';
import { flatAll } from '../helpers/toolchain.js';

const LOAD = 0x100000n;
const RAM = 0x10000000n;
const MIB = 1n << 20n;

const SOURCES = {
  /**
   * A write hypercall whose pointer is the address of `secret` with bit 62
   * set: not canonical, but the same page-table indices.
   */
  nonCanonical: `
    lea secret(%rip), %rdi
    mov $1, %rax
    shl $62, %rax
    or %rax, %rdi
    mov $6, %esi
    mov $1, %eax
    mov $0xf5, %dx
    out %eax, %dx
    ret
  secret: .ascii "secret"
  `,
  /**
   * rep outsl of 1024 write-hypercall numbers from a RAM range, over and
   * over. Each asks for the bytes at rdi (the RAM range) with rsi (the
   * string pointer, some 256 MiB) as the length, cut to 1 MiB: every exit
   * asks for 1 GiB of copying.
   */
  hugeStringWrites: `
    mov $0x10000000, %r8
    mov $1024, %ecx
  1:
    movl $1, (%r8)
    add $4, %r8
    loop 1b
  2:
    mov $0x10000000, %rsi
    mov $0x10000000, %rdi
    mov $1024, %ecx
    mov $0xf5, %dx
    rep outsl
    jmp 2b
  `,
} as const;

let bin: Record<keyof typeof SOURCES, Uint8Array>;

before(() => {
  if (guestSkipReason()) return;
  bin = flatAll(SOURCES);
});

describe('hypercalls with hostile arguments', () => {
  test('a write hypercall with a non-canonical pointer fails the test instead of reading the memory it aliases', guestTest(), async () => {
    const r = await runGuest({ image: { flat: bin.nonCanonical, loadAddress: LOAD } });
    assert.equal(r.output, '', 'nothing was read through the alias');
    assert.equal(r.outcome, 'error');
    assert.match(r.message ?? '', /^write hypercall: the buffer at 0x4[0-9a-f]+ \(6 bytes\) is not at canonical addresses$/);
  });

  test('one rep outsl asking for a gigabyte of console writes stops at the deadline, with the console cut at its limit', guestTest(), async () => {
    const timeoutMs = 1500;
    const r = await runGuest({ image: { flat: bin.hugeStringWrites, loadAddress: LOAD }, ram: [[RAM, RAM + MIB]], timeoutMs });
    assert.equal(r.outcome, 'timeout', r.message);
    assert.ok(r.durationMs < timeoutMs + 250, `the run lasted ${Math.round(r.durationMs)} ms with a ${timeoutMs} ms timeout`);
    assert.match(r.output, /\[kvmtest: output truncated at 1048576 bytes\]\n$/);
  });
});
