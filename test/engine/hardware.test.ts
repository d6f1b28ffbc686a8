// Hardware described in TypeScript, through runGuest: ports served by
// functions (at once or through a Promise), MMIO regions, MSRs, CPUID
// overrides, preloaded memory, registers and arguments; what a callback sees
// of the guest, and every way a callback can go wrong, each a result that
// names the callback and the access.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { gp, OptionError, PlacementError, runGuest, runGuestSync, type GuestContext } from '../../src/index.js';
import { guestSkipReason, guestTest } from '../helpers/kvm.js';
import { flatAll } from '../helpers/toolchain.js';

const LOAD = 0x200000n;
const MMIO = 0x4000_0000n;

const SOURCES = {
  /** in from 0x60 into r12 (8 bits) and r13 (16 bits), out of 0xab to 0x61, then ret. */
  ports: `
    xor %eax, %eax
    in $0x60, %al
    mov %rax, %r12
    xor %eax, %eax
    mov $0x60, %dx
    in %dx, %ax
    mov %rax, %r13
    mov $0xab, %al
    out %al, $0x61
    ret
  `,
  /** One 8-bit in from 0x60 into rax, then ret. */
  in60: `
    xor %eax, %eax
    in $0x60, %al
    ret
  `,
  /** One 8-bit out of 0x5a to 0x61, then ret. */
  out61: `
    mov $0x5a, %al
    out %al, $0x61
    ret
  `,
  /** Reads 4 bytes at MMIO+8 into r12, writes 0x1122334455667788 at MMIO+0x10, then ret. */
  mmio: `
    movabs $${MMIO}, %rbx
    mov 8(%rbx), %r12d
    movabs $0x1122334455667788, %rax
    mov %rax, 0x10(%rbx)
    ret
  `,
  /** rdmsr 0x10000 into r12, wrmsr 0x10000 with edx:eax = 0x5:0x6, then ret. */
  msr: `
    mov $0x10000, %ecx
    rdmsr
    shl $32, %rdx
    or %rdx, %rax
    mov %rax, %r12
    mov $0x10000, %ecx
    mov $6, %eax
    mov $5, %edx
    wrmsr
    ret
  `,
  /** cpuid leaf 0x40000100 into r12 (eax) and r13 (ebx), then ret. */
  cpuid: `
    mov $0x40000100, %eax
    xor %ecx, %ecx
    cpuid
    mov %rax, %r12
    mov %rbx, %r13
    ret
  `,
  /** Returns the quadword at 0x30000000 plus rdi plus rsi, and r15 as it was at entry in r14. */
  memory: `
    mov %r15, %r14
    mov $0x30000000, %eax
    mov (%rax), %rax
    add %rdi, %rax
    add %rsi, %rax
    ret
  `,
  /** Spins forever reading port 0x60. */
  spinIn: `
  1:
    in $0x60, %al
    jmp 1b
  `,
};

let code: Record<keyof typeof SOURCES, Uint8Array>;
const image = (name: keyof typeof SOURCES) => ({ flat: code[name], loadAddress: LOAD });

describe('hardware from TypeScript', { skip: guestSkipReason() }, () => {
  before(() => {
    code = flatAll(SOURCES);
  });

  describe('ports', () => {
    test('read and write handlers get the port, the size and the value', guestTest(), async () => {
      const calls: string[] = [];
      const result = await runGuest({
        image: image('ports'),
        ports: {
          0x60: { read: (port, size) => (calls.push(`in ${port.toString(16)}/${size}`), size === 1 ? 0x12 : 0x3456) },
          0x61: { write: (port, value, size) => void calls.push(`out ${port.toString(16)}=${value.toString(16)}/${size}`) },
        },
      });
      assert.equal(result.outcome, 'returned', result.message);
      assert.deepEqual(calls, ['in 60/1', 'in 60/2', 'out 61=ab/1']);
      assert.equal(result.regs.r12, 0x12n);
      assert.equal(result.regs.r13, 0x3456n);
    });

    test('a handler may return a Promise: the guest waits for it', guestTest(), async () => {
      const result = await runGuest({
        image: image('in60'),
        ports: { 0x60: { read: async () => { await new Promise((r) => setTimeout(r, 30)); return 0x77; } } },
      });
      assert.equal(result.outcome, 'returned', result.message);
      assert.equal(result.returnValue, 0x77n);
    });

    test("a Promise that never settles is the guest's timeout, and a late answer reaches nothing", guestTest(), async () => {
      let answer!: (value: number) => void;
      const result = await runGuest({
        image: image('in60'),
        timeoutMs: 100,
        ports: { 0x60: { read: () => new Promise<number>((resolve) => (answer = resolve)) } },
      });
      assert.equal(result.outcome, 'timeout');
      assert.match(result.message!, /timed out after 100 ms/);
      answer(1); // after the machine is gone: nothing happens
      await new Promise((r) => setTimeout(r, 10));
    });

    test('runGuestSync cannot wait for a Promise, and says what to use instead', guestTest(), () => {
      const result = runGuestSync({ image: image('in60'), ports: { 0x60: { read: async () => 1 } } });
      assert.equal(result.outcome, 'error');
      assert.equal(result.error?.kind, 'device');
      assert.match(result.message!, /runGuestSync cannot wait.*use runGuest/);
    });

    test('a handler that throws fails the run naming the handler, the access and where the guest was', guestTest(), async () => {
      const result = await runGuest({ image: image('in60'), ports: { 0x60: { read: () => { throw new Error('no data yet'); } } } });
      assert.equal(result.outcome, 'error');
      assert.equal(result.error?.kind, 'device');
      assert.match(result.message!, /^ports\[0x60\]\.read threw during the guest's 8-bit in from port 0x60 at 0x200002: Error: no data yet\n\s+at /);
    });

    test('a rejected Promise is reported like a throw', guestTest(), async () => {
      const result = await runGuest({ image: image('out61'), ports: { 0x61: { write: async () => { throw new TypeError('bad state'); } } } });
      assert.equal(result.outcome, 'error');
      assert.match(result.message!, /^ports\[0x61\]\.write threw during the guest's 8-bit out of 0x5a to port 0x61 at .*: TypeError: bad state/);
    });

    test('an answer of the wrong type or too wide for the access fails the run, saying why', guestTest(), async () => {
      const wrong: Array<[unknown, RegExp]> = [
        [0x100, /answered the guest's 8-bit in from port 0x60 at .* with 256, which does not fit 8 bits \(0 to 0xff\)/],
        [-1, /with -1, which does not fit 8 bits/],
        ['1', /with "1"; a read must give a whole number or a bigint/],
        [undefined, /with undefined; a read must give a whole number or a bigint/],
        [1.5, /with 1\.5; a read must give/],
      ];
      for (const [value, message] of wrong) {
        const result = await runGuest({ image: image('in60'), ports: { 0x60: { read: () => value as number } } });
        assert.equal(result.outcome, 'error', String(value));
        assert.match(result.message!, message);
      }
      const written = await runGuest({ image: image('out61'), ports: { 0x61: { write: () => 5 as unknown as void } } });
      assert.match(written.message!, /ports\[0x61\]\.write answered .* with 5; a write handler returns nothing/);
    });

    test('a direction with no handler is unexpected I/O', guestTest(), async () => {
      const result = await runGuest({ image: image('in60'), ports: { 0x60: { write: () => {} } } });
      assert.equal(result.outcome, 'unexpected-io');
      assert.match(result.message!, /unexpected 8-bit read \(in\) from port 0x60: ports\[0x60\] has no read handler/);
    });

    test('bad port options are refused before any VM exists', () => {
      const bad: Array<[object, RegExp]> = [
        [{ ports: { 0xf4: { read: () => 0 } } }, /ports\[0xf4\]: port 0xf4 belongs to the exit port/],
        [{ ports: { 0x60: { reed: () => 0 } } }, /ports\[0x60\]: unknown key "reed"; known: read, write/],
        [{ ports: { 0x60: {} } }, /ports\[0x60\] has neither read nor write/],
        [{ ports: { 0x60: { read: 5 } } }, /ports\[0x60\]\.read must be a function/],
        [{ ports: { 0x10000: { read: () => 0 } } }, /ports: "65536" is not a number from 0 to 0xffff/],
        [{ ports: { 0x60: { read: () => 0 } }, ioports: { 0x60: 1 } }, /port 0x60 is also in ioports/],
      ];
      for (const [options, message] of bad) {
        assert.throws(() => runGuestSync({ image: { flat: Uint8Array.of(0xc3), loadAddress: LOAD }, ...options }), (err: Error) => {
          assert.ok(err instanceof OptionError, err.message);
          assert.match(err.message, message);
          return true;
        });
      }
    });
  });

  describe('what a callback sees of the guest', () => {
    test('the registers at the exit, memory to read and write, and registers to set', guestTest(), async () => {
      let seen: bigint | undefined;
      const result = await runGuest({
        image: image('memory'),
        memory: [{ address: 0x30000000, data: [1, 0, 0, 0, 0, 0, 0, 0] }],
        regs: { r15: 0x99n },
        ports: {},
        args: [0x10, 0x20],
      });
      assert.equal(result.outcome, 'returned', result.message);
      assert.equal(result.returnValue, 0x31n);
      assert.equal(result.regs.r14, 0x99n);

      const dma = await runGuest({
        image: image('in60'),
        memory: [{ address: 0x30000000, data: [0xaa] }],
        ports: {
          0x60: {
            read: (_port, _size, guest: GuestContext) => {
              seen = guest.regs.rip;
              const byte = guest.memory.read(0x30000000, 1)[0]!;
              guest.memory.write(0x30000001, [byte + 1]);
              guest.memory.writePhysical(0x30000002, Uint8Array.of(0xcc));
              assert.deepEqual([...guest.memory.readPhysical(0x30000000, 3)], [0xaa, 0xab, 0xcc]);
              guest.setRegs({ rbx: 0x1234n });
              return 7;
            },
          },
        },
      });
      assert.equal(dma.outcome, 'returned', dma.message);
      assert.equal(seen, LOAD + 2n, 'rip at the in: KVM moves past it once the read is answered');
      assert.equal(dma.returnValue, 7n, 'the in still lands in rax');
      assert.equal(dma.regs.rbx, 0x1234n);
    });

    test('memory that is not mapped is an error inside the callback, reported as its failure', guestTest(), async () => {
      const result = await runGuest({ image: image('in60'), ports: { 0x60: { read: (_p, _s, guest) => guest.memory.read(0x7000_0000n, 4)[0]! } } });
      assert.equal(result.outcome, 'error');
      assert.match(result.message!, /ports\[0x60\]\.read threw .*memory\.read: guest-virtual 0x70000000 is not mapped/);
    });

    test('a context kept past its exit cannot reach the machine', guestTest(), async () => {
      let kept: GuestContext | undefined;
      const result = await runGuest({ image: image('in60'), ports: { 0x60: { read: (_p, _s, guest) => ((kept = guest), 1) } } });
      assert.equal(result.outcome, 'returned');
      assert.throws(() => kept!.memory.read(LOAD, 1), /belongs to an exit that is over/);
      assert.throws(() => kept!.regs, /belongs to an exit that is over/);
    });
  });

  describe('MMIO', () => {
    test('reads and writes of the region call the handlers with the offset, size and value', guestTest(), async () => {
      const calls: string[] = [];
      const result = await runGuest({
        image: image('mmio'),
        mmio: [{
          address: MMIO,
          size: 0x1000,
          name: 'uart',
          read: (offset, size) => (calls.push(`read ${offset}/${size}`), 0xdeadbeef),
          write: (offset, value, size) => void calls.push(`write ${offset}=${value.toString(16)}/${size}`),
        }],
      });
      assert.equal(result.outcome, 'returned', result.message);
      assert.deepEqual(calls, ['read 8/4', 'write 16=1122334455667788/8']);
      assert.equal(result.regs.r12, 0xdeadbeefn);
    });

    test('a read handler that throws names the region and the offset', guestTest(), async () => {
      const result = await runGuest({ image: image('mmio'), mmio: [{ address: MMIO, size: 0x100, name: 'uart', read: () => { throw new Error('x'); } }] });
      assert.match(result.message!, /^uart\.read threw during the guest's 4-byte read at uart offset 0x8 \(physical 0x40000008\)/);
    });

    test('regions that overlap RAM, the engine area or each other are refused', () => {
      const region = (address: bigint | number, size = 0x1000) => ({ address, size, read: () => 0 });
      const run = (options: object) => runGuestSync({ image: { flat: Uint8Array.of(0xc3), loadAddress: LOAD }, ...options });
      assert.throws(() => run({ mmio: [region(0xb8000)] }), /mmio\[0\] at 0xb8000 lies in the first megabyte, which kvmtest reserves/);
      assert.throws(() => run({ mmio: [region(MMIO), region(MMIO + 0x800n)] }), /mmio\[1\] overlaps mmio\[0\]/);
      assert.throws(
        () => run({ mmio: [region(LOAD, 0x10)] }),
        (err: Error) => err instanceof PlacementError && /mmio\[0\] \[0x200000, 0x200010\) shares memory or a 4 KiB page with flat image/.test(err.message),
      );
      assert.throws(() => run({ ram: [[0x4000_0000, 0x4000_1000]], mmio: [region(MMIO + 0x800n, 0x10)] }), /shares memory or a 4 KiB page with RAM range 0/);
    });
  });

  describe('MSRs', () => {
    test('handlers serve rdmsr and wrmsr of the MSRs named; a value reads as given', guestTest(), async () => {
      const written: bigint[] = [];
      const result = await runGuest({ image: image('msr'), msrs: { 0x10000: { read: () => 0x1_0000_0002n, write: (v) => void written.push(v) } } });
      assert.equal(result.outcome, 'returned', result.message);
      assert.equal(result.regs.r12, 0x1_0000_0002n);
      assert.deepEqual(written, [0x5_0000_0006n]);

      const fixed = await runGuest({ image: image('msr'), msrs: { 0x10000: 0x5_0000_0006n } });
      assert.equal(fixed.outcome, 'returned', fixed.message);
      assert.equal(fixed.regs.r12, 0x5_0000_0006n);
    });

    test('gp() raises #GP in the guest, thrown or returned, at once or through a Promise', guestTest(), async () => {
      for (const read of [() => { throw gp(); }, () => gp() as unknown as bigint, async () => { throw gp(); }]) {
        const result = await runGuest({ image: image('msr'), msrs: { 0x10000: { read } } });
        assert.equal(result.outcome, 'fault', result.message);
        assert.equal(result.fault?.name, '#GP');
      }
    });

    test('writing another value to an MSR given as a value is unexpected', guestTest(), async () => {
      const result = await runGuest({ image: image('msr'), msrs: { 0x10000: 7n } });
      assert.equal(result.outcome, 'unexpected-io');
      assert.match(result.message!, /unexpected wrmsr of 0x500000006 to MSR 0x10000: msrs\[0x10000\] is given as 0x7, so only that value may be written/);
    });

    test('MSRs the test does not serve stay KVM\'s', guestTest(), async () => {
      const result = await runGuest({ image: image('msr'), msrs: { 0x10001: 1n } });
      assert.equal(result.outcome, 'fault', 'KVM has no MSR 0x10000: #GP');
      assert.equal(result.fault?.name, '#GP');
    });

    test('the x2APIC MSRs cannot be served', () => {
      assert.throws(() => runGuestSync({ image: image('msr'), msrs: { 0x830: 1n } }), /x2APIC's MSRs \(0x800-0x8ff\) cannot be served/);
    });
  });

  describe('CPUID', () => {
    test('the registers given replace what KVM reports for that leaf', guestTest(), async () => {
      const result = await runGuest({ image: image('cpuid'), cpuid: [{ leaf: 0x40000100, eax: 0x1234, ebx: 0x5678 }] });
      assert.equal(result.outcome, 'returned', result.message);
      assert.equal(result.regs.r12, 0x1234n);
      assert.equal(result.regs.r13, 0x5678n);
    });

    test('bad overrides are refused', () => {
      const run = (cpuid: unknown) => runGuestSync({ image: image('cpuid'), cpuid: cpuid as [] });
      assert.throws(() => run([{ leaf: 1 }]), /cpuid\[0\] gives no register/);
      assert.throws(() => run([{ leaf: 1, ecx: -1 }]), /cpuid\[0\]\.ecx must be a 32-bit unsigned integer/);
      assert.throws(() => run([{ leaf: 1, eax: 1 }, { leaf: 1, eax: 2 }]), /cpuid\[1\]: leaf 0x1 is given twice/);
    });
  });

  describe('memory, registers, arguments', () => {
    test('bytes preloaded where there is no RAM yet become RAM; the rest is checked', () => {
      assert.throws(() => runGuestSync({ image: image('memory'), memory: [{ address: 0x1000, data: [1] }] }), /memory\[0\] at 0x1000 lies in the first megabyte/);
      assert.throws(() => runGuestSync({ image: image('memory'), memory: [{ address: 0x3000_0000, data: [] }] }), /memory\[0\]\.data is empty/);
      assert.throws(() => runGuestSync({ image: image('memory'), regs: { rzz: 1 } as object }), /regs: unknown key "rzz"/);
      assert.throws(() => runGuestSync({ image: image('memory'), args: [1, 2, 3, 4, 5, 6, 7] }), /at most 6 register arguments/);
    });
  });

  test('a callback that is slow to answer still counts against the time limit', guestTest(), async () => {
    const result = await runGuest({
      image: image('spinIn'),
      timeoutMs: 200,
      ports: { 0x60: { read: async () => { await new Promise((r) => setTimeout(r, 20)); return 0; } } },
    });
    assert.equal(result.outcome, 'timeout');
  });
});
