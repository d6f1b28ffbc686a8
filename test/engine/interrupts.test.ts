// Interrupt controllers and several vCPUs through runGuest (issue 12), with
// flat images and no runtime: HLT that waits, a machine that halts with
// nothing to wake it, interrupts from the LAPIC timer, from a device's
// irq() and msi(), timeouts that say where each vCPU was, and the options'
// checks. The guest library's side is tested in test/sdk and examples/.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { OptionError, runGuest, runGuestSync } from '../../src/index.js';
import { guestSkipReason, guestTest } from '../helpers/kvm.js';
import { flatAll } from '../helpers/toolchain.js';

const LOAD = 0x200000n;

const SOURCES = {
  cliHlt: 'cli\n hlt\n ret',
  stiHlt: 'sti\n hlt\n ret',
  /** A one-shot LAPIC timer on vector 0x40 (no handler: the engine reports it), then waits. */
  timer: `
    mov $0xfee00000, %eax
    movl $0xb, 0x3e0(%rax)
    movl $0x40, 0x320(%rax)
    movl $20000, 0x380(%rax)
    sti
  1: hlt
    jmp 1b
  `,
  /** Routes IOAPIC pin 3 to vector 0x50, writes a command to port 0x60, waits. */
  deviceIrq: `
    mov $0xfec00000, %eax
    movl $0x16, (%rax)
    movl $0x50, 0x10(%rax)
    movl $0x17, (%rax)
    movl $0, 0x10(%rax)
    mov $1, %al
    out %al, $0x60
    sti
  1: hlt
    jmp 1b
  `,
  /** Writes to port 0x60, waits with interrupts enabled. */
  commandThenWait: `
    mov $1, %al
    out %al, $0x60
    sti
  1: hlt
    jmp 1b
  `,
  /** Writes to port 0x60 and returns. */
  command: 'mov $1, %al\n out %al, $0x60\n ret',
  spin: '1: jmp 1b',
};

let code: Record<keyof typeof SOURCES, Uint8Array>;
const image = (name: keyof typeof SOURCES) => ({ flat: code[name], loadAddress: LOAD });

describe('interrupt controllers and several vCPUs', { skip: guestSkipReason() }, () => {
  before(() => {
    code = flatAll(SOURCES);
  });

  test('with apic, cli; hlt halts the machine at once, not at the time limit', guestTest(), async () => {
    const result = await runGuest({ image: image('cliHlt'), apic: true, timeoutMs: 10_000 });
    assert.equal(result.outcome, 'halted', result.message);
    assert.match(result.message!, /executed HLT at .* with interrupts disabled/);
    assert.ok(result.durationMs < 5_000, `took ${result.durationMs} ms`);
  });

  test('sti; hlt with no timer armed and no device is halted too (nothing can wake it), in runGuestSync as well', guestTest(), () => {
    const result = runGuestSync({ image: image('stiHlt'), apic: true, timeoutMs: 10_000 });
    assert.equal(result.outcome, 'halted', result.message);
    assert.match(result.message!, /interrupts enabled and no timer armed/);
  });

  test('the LAPIC timer wakes a halted vCPU; its vector without a handler is reported', guestTest(), async () => {
    const result = await runGuest({ image: image('timer'), apic: true, timeoutMs: 5_000 });
    assert.equal(result.outcome, 'fault', result.message);
    assert.match(result.message!, /unexpected interrupt 0x40/);
  });

  test("a device's irq() reaches the guest through the IOAPIC; the device sees which vCPU exited", guestTest(), async () => {
    const cpus: number[] = [];
    const result = await runGuest({
      image: image('deviceIrq'),
      apic: true,
      ports: { 0x60: { write: (_port, _value, _size, guest) => { cpus.push(guest.cpu); guest.irq(3); } } },
    });
    assert.match(result.message!, /unexpected interrupt 0x50/);
    assert.deepEqual(cpus, [0]);
  });

  test('a device may raise its interrupt later, from a timer, while the guest waits in HLT', guestTest(), async () => {
    const result = await runGuest({
      image: image('commandThenWait'),
      apic: true,
      ports: { 0x60: { write: (_port, _value, _size, guest) => void setTimeout(() => guest.msi(0xfee00000n, 0x51), 5) } },
    });
    assert.match(result.message!, /unexpected interrupt 0x51/);
  });

  test('irq() without apic, out-of-range lines and bad MSI addresses fail the test, naming the mistake', guestTest(), async () => {
    const cases: Array<[boolean, (guest: { irq(l: number, v?: boolean): void; msi(a: bigint, d: number): void }) => void, RegExp]> = [
      [false, (g) => g.irq(1), /irq\(\) needs interrupt controllers: give the test apic: true/],
      [true, (g) => g.irq(24), /the line must be an IOAPIC pin, 0 to 23/],
      [true, (g) => g.msi(0x1000n, 0x30), /an MSI's address is 0xfeeXXXXX/],
    ];
    for (const [apic, call, message] of cases) {
      const result = await runGuest({ image: image('command'), apic, ports: { 0x60: { write: (_p, _v, _s, guest) => call(guest) } } });
      assert.equal(result.outcome, 'error', result.message);
      assert.match(result.message!, message);
    }
  });

  test('a timeout with several vCPUs says where each one was (without the runtime, vCPU 1 waits for a start-up IPI at the reset vector)', guestTest(), async () => {
    const result = await runGuest({ image: image('spin'), cpus: 2, timeoutMs: 200 });
    assert.equal(result.outcome, 'timeout', result.message);
    assert.match(result.message!, /timed out after 200 ms; CPU 0 was at 0x200000, CPU 1 at 0xfff0/);
  });

  test('several vCPUs that can no longer run are halted, and say where each one is', guestTest(), async () => {
    const result = await runGuest({ image: image('cliHlt'), cpus: 3, timeoutMs: 10_000 });
    assert.equal(result.outcome, 'halted', result.message);
    assert.match(result.message!, /CPU 1 at 0xfff0, CPU 2 at 0xfff0, halted too/);
  });

  test('bad apic and cpus options are refused before anything runs', async () => {
    const bad: Array<[Record<string, unknown>, RegExp]> = [
      [{ cpus: 0 }, /cpus must be a whole number from 1 to 16 \(got 0\)/],
      [{ cpus: 17 }, /from 1 to 16 \(got 17\)/],
      [{ cpus: 1.5 }, /got 1.5/],
      [{ apic: 'yes' }, /apic must be true or false/],
      [{ cpus: 2, apic: false }, /cpus: 2 needs the interrupt controllers/],
      [{ cpus: 2, args: [1] }, /cpus: 2 with args/],
    ];
    for (const [options, message] of bad) {
      await assert.rejects(runGuest({ image: { flat: new Uint8Array([0xc3]), loadAddress: LOAD }, ...options }), (err: Error) => err instanceof OptionError && message.test(err.message));
    }
  });
});
