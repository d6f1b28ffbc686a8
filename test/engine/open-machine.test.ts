// openMachine: one machine kept between runs. Each run must see what a fresh
// runGuest sees, whatever the last run did to memory, MSRs, control
// registers, descriptor tables or devices, and whichever way it ended;
// overrides last one run; misuse is refused with a message saying what to
// do; and closing gives every KVM resource back. Counting Machine.create
// tells a restored machine from a new one.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { type GuestResult, ImageError, openMachine, OptionError, PlacementError, runGuest, type RunGuestOptions } from '../../src/index.js';
import { guestHost, planGuest } from '../../src/guest-plan.js';
import { guestCpuid } from '../../src/machine/guest-cpuid.js';
import { Machine } from '../../src/machine/machine.js';
import { KeptMachine } from '../../src/open-machine.js';
import { getKvm, getRunTimer } from '../../src/session/host.js';
import { ROOT } from '../cli/helpers.js';
import { guestSkipReason, guestTest } from '../helpers/kvm.js';
import { flat, tempDir } from '../helpers/toolchain.js';

const LOAD = 0x200000n;
const RAM = 0x1000_0000;

/**
 * One flat image, one function every 0x100 bytes (entered through `entry`):
 * each reports in registers what it found at entry, then changes it.
 */
const GUEST = `
  .org 0x000  /* bump: adds 1 to a quadword of the image and one of RAM; returns their sum */
    incq counter(%rip)
    mov $${RAM}, %ecx
    incq (%rcx)
    mov counter(%rip), %rax
    add (%rcx), %rax
    ret
  .org 0x100  /* msrs: IA32_LSTAR and IA32_EFER at entry in r12 and r13; then writes both */
    mov $0xc0000082, %ecx
    rdmsr
    shl $32, %rdx
    or %rdx, %rax
    mov %rax, %r12
    mov $0xc0000080, %ecx
    rdmsr
    shl $32, %rdx
    or %rdx, %rax
    mov %rax, %r13
    mov $0xc0000082, %ecx
    mov $0x81000000, %eax
    mov $0xffffffff, %edx
    wrmsr
    rdmsr
    shl $32, %rdx
    or %rdx, %rax
    mov %rax, %r14       /* IA32_LSTAR as written, in r14 */
    mov $0xc0000080, %ecx
    rdmsr
    or $1, %eax        /* EFER.SCE */
    wrmsr
    ret
  .org 0x200  /* cregs: cr0, cr4, cr2, cr8 at entry in r12-r15, the IDT's limit in rbx; then changes them all */
    mov %cr0, %r12
    mov %cr4, %r13
    mov %cr2, %r14
    mov %cr8, %r15
    sub $16, %rsp
    sidt (%rsp)
    movzwl (%rsp), %ebx
    mov %r12, %rax
    and $~0x10000, %rax  /* CR0.WP off */
    or $0x40000, %rax    /* CR0.AM on */
    mov %rax, %cr0
    mov %r13, %rax
    or $0x4, %rax        /* CR4.TSD on */
    mov %rax, %cr4
    mov $0xdead000, %eax
    mov %rax, %cr2
    mov $5, %eax
    mov %rax, %cr8
    movw $0, (%rsp)
    lidt (%rsp)          /* an IDT with limit 0: no exception can be delivered */
    add $16, %rsp
    ret
  .org 0x300  /* spin */
    jmp .
  .org 0x400  /* triple: an IDT with limit 0, then #UD */
    sub $16, %rsp
    movw $0, (%rsp)
    movq $0, 2(%rsp)
    lidt (%rsp)
    ud2
  .org 0x500  /* ports: 'A' to the serial console, then returns an 8-bit in from 0x60 */
    mov $0x41, %al
    mov $0x3f8, %dx
    out %al, %dx
    xor %eax, %eax
    in $0x60, %al
    ret
  .org 0x600  /* add: rdi + rsi + rbx */
    mov %rdi, %rax
    add %rsi, %rax
    add %rbx, %rax
    ret
  .org 0x700  /* ud: #UD */
    ud2
  .org 0x800  /* msrOutside: writes an MSR of KVM's paravirtual block that no snapshot restores */
    mov $0x4b564d10, %ecx
    mov $1, %eax
    xor %edx, %edx
    wrmsr
    ret
  .org 0xf00
  counter: .quad 0
`;

const ENTRY = { bump: 0x000, msrs: 0x100, cregs: 0x200, spin: 0x300, triple: 0x400, ports: 0x500, add: 0x600, ud: 0x700, msrOutside: 0x800 };
const at = (name: keyof typeof ENTRY) => LOAD + BigInt(ENTRY[name]);

let image: RunGuestOptions['image'];
/** Machines built since the last call. */
let machinesBuilt: () => number;
const originalCreate = Machine.create;

/** A result without what differs from run to run (the time it took). */
function comparable(result: GuestResult): Omit<GuestResult, 'durationMs'> {
  const { durationMs, ...rest } = result;
  assert.equal(typeof durationMs, 'number');
  return rest;
}

const openFds = () => readdirSync('/proc/self/fd').length;

describe('openMachine', { skip: guestSkipReason() }, () => {
  before(() => {
    image = { flat: flat(GUEST), loadAddress: LOAD };
    // The CPUID probe builds machines of its own, once per process: not counted.
    guestCpuid(getKvm());
    let built = 0;
    Machine.create = (...args: Parameters<typeof Machine.create>) => {
      built++;
      return originalCreate.apply(Machine, args);
    };
    machinesBuilt = () => {
      const count = built;
      built = 0;
      return count;
    };
  });

  after(() => {
    Machine.create = originalCreate;
    getRunTimer().stop();
  });

  const options = (): RunGuestOptions => ({ image, ram: [[RAM, RAM + 0x1000]], ports: { 0x60: { read: () => 7 } }, args: [1, 2], regs: { rbx: 10 } });

  test('every run returns what runGuest returns for the same guest, run after run, on one machine', guestTest(), async () => {
    const machine = openMachine(options());
    try {
      machinesBuilt();
      for (const name of ['bump', 'msrs', 'cregs', 'ports', 'add', 'ud'] as const) {
        const fresh = comparable(await runGuest({ ...options(), entry: at(name) }));
        for (let round = 0; round < 3; round++) {
          assert.deepEqual(comparable(await machine.run({ entry: at(name) })), fresh, `${name}, run ${round + 1}`);
        }
      }
      assert.equal(machinesBuilt(), 6, 'one per runGuest: the open machine was restored, not rebuilt');
    } finally {
      machine.close();
    }
  });

  test('what a run changes (memory, MSRs, control registers, the IDT) does not reach the next run', guestTest(), async () => {
    const machine = openMachine(options());
    try {
      machinesBuilt();
      for (let round = 0; round < 3; round++) {
        const bumped = await machine.run({ entry: at('bump') });
        assert.equal(bumped.returnValue, 2n, `run ${round + 1}: the image's and RAM's counters start at 0 again`);
      }

      const msrs = [await machine.run({ entry: at('msrs') }), await machine.run({ entry: at('msrs') })];
      assert.equal(msrs[0]!.outcome, 'returned', msrs[0]!.message);
      assert.equal(msrs[0]!.regs.r14, 0xffffffff81000000n, 'the run did write IA32_LSTAR');
      assert.notEqual(msrs[1]!.regs.r12, 0xffffffff81000000n, 'IA32_LSTAR as loaded, not as the last run left it');
      assert.equal(msrs[1]!.regs.r12, msrs[0]!.regs.r12);
      assert.equal(msrs[1]!.regs.r13 & 1n, 0n, 'EFER.SCE off again');
      assert.equal(msrs[1]!.regs.r13, msrs[0]!.regs.r13);
      assert.equal(msrs[1]!.sregs.efer & 1n, 1n, 'the result shows EFER as the run left it');

      const cregs = [await machine.run({ entry: at('cregs') }), await machine.run({ entry: at('cregs') })];
      assert.equal(cregs[0]!.outcome, 'returned', cregs[0]!.message);
      const atEntry = (r: GuestResult) => [r.regs.r12, r.regs.r13, r.regs.r14, r.regs.r15, r.regs.rbx];
      assert.deepEqual(atEntry(cregs[1]!), atEntry(cregs[0]!), 'cr0, cr4, cr2, cr8 and the IDT limit as loaded');
      assert.equal(cregs[1]!.regs.r14, 0n, 'cr2 as loaded');
      assert.equal(cregs[1]!.sregs.cr2, 0xdead000n, 'the result shows cr2 as the run left it');
      assert.equal(cregs[1]!.sregs.cr8, 5n);
      assert.equal(cregs[1]!.sregs.cr0 & 0x10000n, 0n, 'CR0.WP off at the end');
      assert.equal(cregs[1]!.regs.r12 & 0x10000n, 0x10000n, 'CR0.WP on at entry');
      assert.equal(cregs[1]!.sregs.cr4 & 4n, 4n, 'CR4.TSD on at the end');
      assert.equal(cregs[1]!.regs.r13 & 4n, 0n, 'CR4.TSD off at entry');

      const ud = await machine.run({ entry: at('ud') });
      assert.equal(ud.outcome, 'fault', 'the IDT is back: #UD is delivered');
      assert.equal(ud.fault?.name, '#UD');
      assert.equal(machinesBuilt(), 0, 'all on the machine openMachine built');
    } finally {
      machine.close();
    }
  });

  test("devices are made per run: the console and the ports' handlers start afresh", guestTest(), async () => {
    const machine = openMachine(options());
    try {
      for (let round = 0; round < 3; round++) {
        const result = await machine.run({ entry: at('ports') });
        assert.equal(result.output, 'A', `run ${round + 1}: only this run's console output`);
        assert.equal(result.returnValue, 7n);
      }
    } finally {
      machine.close();
    }
  });

  test('after a timeout, a triple fault or a write to an MSR no restore covers, the next run gets a new machine and is right', guestTest(), async () => {
    const machine = openMachine({ ...options(), timeoutMs: 100 });
    try {
      machinesBuilt();
      const breaking: Array<[keyof typeof ENTRY, string | undefined]> = [
        ['spin', 'timeout'],
        ['triple', 'triple-fault'],
        // Accepted on PVM, #GP elsewhere: either way the machine is not restored afterwards.
        ['msrOutside', undefined],
      ];
      for (const [name, outcome] of breaking) {
        const broken = await machine.run({ entry: at(name) });
        if (outcome) assert.equal(broken.outcome, outcome, `${name}: ${broken.message}`);
        const bumped = await machine.run({ entry: at('bump') });
        assert.equal(bumped.returnValue, 2n, `after ${name}: ${bumped.message}`);
        const ud = await machine.run({ entry: at('ud') });
        assert.equal(ud.fault?.name, '#UD', `after ${name}: ${ud.message}`);
        assert.equal(machinesBuilt(), 1, `after ${name}: one new machine, then restored`);
      }
    } finally {
      machine.close();
    }
  });

  test('a timeoutMs override holds for its run only', guestTest(), async () => {
    const machine = openMachine({ ...options(), timeoutMs: 60_000 });
    try {
      const spun = await machine.run({ entry: at('spin'), timeoutMs: 50 });
      assert.equal(spun.outcome, 'timeout', spun.message);
      assert.match(spun.message ?? '', /50 ms/);
      assert.equal((await machine.run({ entry: at('bump') })).returnValue, 2n);
    } finally {
      machine.close();
    }
  });

  test('overrides change one run only: entry, args, regs (by register) and ports (by port)', guestTest(), async () => {
    const machine = openMachine({ ...options(), entry: at('add') });
    try {
      const value = async (overrides?: Parameters<typeof machine.run>[0]) => {
        const result = await machine.run(overrides);
        assert.equal(result.outcome, 'returned', result.message);
        return result.returnValue;
      };
      assert.equal(await value(), 13n, '1 + 2 + rbx 10');
      assert.equal(await value({ args: [5, 6] }), 21n);
      assert.equal(await value(), 13n);
      assert.equal(await value({ regs: { rbx: 100 } }), 103n);
      assert.equal(await value({ regs: { rdi: 40 } }), 52n, 'regs apply after args; rbx stays the machine\'s');
      assert.equal(await value(), 13n);
      assert.equal(await value({ entry: at('ports'), ports: { 0x60: { read: () => 9 } } }), 9n);
      assert.equal(await value({ entry: at('ports') }), 7n);
    } finally {
      machine.close();
    }

    const bare = openMachine({ image, entry: at('ports') });
    try {
      assert.equal((await bare.run()).outcome, 'unexpected-io');
      assert.equal((await bare.run({ ports: { 0x60: { read: () => 3 } } })).returnValue, 3n, 'a port added for one run');
      assert.equal((await bare.run()).outcome, 'unexpected-io');
    } finally {
      bare.close();
    }
  });

  test('bad overrides are refused with what to do, and the machine goes on', guestTest(), async () => {
    const machine = openMachine({ ...options(), ioports: { 0x64: 1 } });
    try {
      const bad: Array<[unknown, RegExp]> = [
        [5, /^run\(\) takes an object of overrides such as \{ args: \[1, 2\] \} \(got 5\)$/],
        [[1], /^run\(\) takes an object of overrides .*\(got an array\)$/],
        [{ ram: [[RAM, RAM + 0x2000]] }, /^run\(\) cannot override "ram": it shapes the machine itself, which openMachine builds once; open another machine \(openMachine\) with the ram this run needs$/],
        [{ image }, /^run\(\) cannot override "image": it shapes the machine itself/],
        [{ mmio: [] }, /^run\(\) cannot override "mmio"/],
        [{ memory: [] }, /^run\(\) cannot override "memory"/],
        [{ cpuid: [] }, /^run\(\) cannot override "cpuid"/],
        [{ msrs: {} }, /^run\(\) cannot override "msrs": it is set once, for every run, by openMachine; a run may override entry, args, regs, ports, timeoutMs$/],
        [{ timeoutMs: 0 }, /^timeoutMs must be a positive number of milliseconds \(got 0\)$/],
        [{ ioports: { 0x61: 1 } }, /^run\(\) cannot override "ioports": it is set once/],
        [{ argz: [1] }, /^unknown run\(\) override "argz"; known: entry, args, regs, ports, timeoutMs$/],
        [{ ports: { 0xf4: { read: () => 0 } } }, /^ports\[0xf4\]: port 0xf4 belongs to the exit port/],
        [{ ports: { 0x64: { read: () => 0 } } }, /^ports\[0x64\]: port 0x64 is also in ioports; give it one or the other$/],
        [{ ports: { 0x60: { reed: () => 0 } } }, /^ports\[0x60\]: unknown key "reed"; known: read, write$/],
        [{ regs: { rzz: 1 } }, /^regs: unknown key "rzz"/],
        [{ args: [1, 2, 3, 4, 5, 6, 7] }, /^args: at most 6 register arguments/],
      ];
      for (const [overrides, message] of bad) {
        await assert.rejects(machine.run(overrides as object), (err: Error) => {
          assert.ok(err instanceof OptionError, `${err.name}: ${err.message}`);
          assert.match(err.message, message);
          return true;
        });
      }
      await assert.rejects(machine.run({ entry: 'add' }), (err: Error) => err instanceof ImageError && /a flat image has no symbols/.test(err.message));
      assert.equal((await machine.run({ entry: at('add') })).returnValue, 13n);
    } finally {
      machine.close();
    }
  });

  test('bad options are refused by openMachine itself, before any VM exists', () => {
    assert.throws(() => openMachine({ image, timeout: 5 } as RunGuestOptions), (err: Error) => {
      assert.ok(err instanceof OptionError);
      assert.match(err.message, /^unknown openMachine option "timeout"; known: image, entry, timeoutMs, /);
      return true;
    });
    assert.throws(() => openMachine(undefined as unknown as RunGuestOptions), /^OptionError: openMachine needs an options object: \{ image, \.\.\. \}$/);
    assert.throws(() => openMachine({ image, ports: { 0x60: {} } }), /ports\[0x60\] has neither read nor write/);
  });

  test('options the machine cannot be built with are refused by openMachine', guestTest(), () => {
    assert.throws(() => openMachine({ image, stackSize: 100 }), (err: Error) => err instanceof PlacementError && /stackSize must be a multiple of 4096/.test(err.message));
  });

  test('one run at a time: a run before the last has settled is refused; that run still ends well', guestTest(), async () => {
    const machine = openMachine({ image, entry: at('ports'), ports: { 0x60: { read: () => new Promise<number>((resolve) => setTimeout(() => resolve(3), 20)) } } });
    try {
      const first = machine.run();
      await assert.rejects(machine.run(), /^Error: run\(\) while the last run of this machine has not settled: await each run before starting the next \(or open one machine per concurrent test\)$/);
      assert.equal((await first).returnValue, 3n);
      assert.equal((await machine.run()).returnValue, 3n, 'and the machine takes the next run');
    } finally {
      machine.close();
    }
  });

  test('close(): runs after it are refused, closing twice is fine, a run under way ends first', guestTest(), async () => {
    const before = openFds();
    const machine = openMachine({ image, entry: at('ports'), ports: { 0x60: { read: () => new Promise<number>((resolve) => setTimeout(() => resolve(4), 20)) } } });
    const under = machine.run();
    machine.close();
    assert.ok(openFds() > before, 'the run under way still has its machine');
    const result = await under;
    assert.equal(result.outcome, 'returned', result.message);
    assert.equal(result.returnValue, 4n);
    assert.equal(openFds(), before, 'released once the run ended');
    machine.close();
    await assert.rejects(machine.run(), /^Error: run\(\) after close\(\): this machine is closed; open another with openMachine$/);
  });

  test('close() gives back every KVM resource, after runs that rebuilt the machine too', guestTest({ timeout: 60_000 }), async () => {
    // Warm up: the first machine of a process opens what every later one shares.
    openMachine({ image }).close();
    const before = openFds();
    for (let i = 0; i < 200; i++) {
      const machine = openMachine(options());
      assert.equal((await machine.run({ entry: at('bump') })).returnValue, 2n);
      if (i % 10 === 0) assert.equal((await machine.run({ entry: at('triple') })).outcome, 'triple-fault');
      assert.equal((await machine.run({ entry: at('bump') })).returnValue, 2n);
      machine.close();
    }
    assert.equal(openFds(), before);

    const kept = openMachine(options());
    const open = openFds();
    for (let i = 0; i < 500; i++) {
      const result = await kept.run({ entry: at(i % 50 === 0 ? 'triple' : 'bump') });
      assert.ok(result.outcome === (i % 50 === 0 ? 'triple-fault' : 'returned'), result.message);
    }
    assert.equal(openFds(), open, 'a machine rebuilt after a triple fault replaces the old one');
    kept.close();
    assert.equal(openFds(), before);
  });

  test('without snapshots (a KVM without an MSR filter), every run gets a machine of its own, with the same results', guestTest(), async () => {
    const plan = planGuest(options(), 'openMachine');
    const fresh = comparable(await runGuest({ ...options(), entry: at('bump') }));
    machinesBuilt();
    const machine = new KeptMachine(plan, guestHost(), false);
    try {
      for (let round = 0; round < 3; round++) assert.deepEqual(comparable(await machine.run({ entry: at('bump') })), fresh);
      assert.equal(machinesBuilt(), 3, 'the one built at open, then one per run');
    } finally {
      machine.close();
    }
  });

  test('CPUID overrides this KVM ignores skip every run, as they skip runGuest', guestTest(), async () => {
    // PVM passes leaf 1 through from the host: there this override cannot hold, and both skip; elsewhere both run.
    const cpuid = [{ leaf: 1, ecx: 0 }];
    const fresh = await runGuest({ ...options(), cpuid, entry: at('bump') });
    const machine = openMachine({ ...options(), cpuid, entry: at('bump') });
    try {
      for (let round = 0; round < 2; round++) {
        const result = await machine.run();
        assert.equal(result.outcome, fresh.outcome);
        assert.equal(result.message, fresh.message);
        if (result.outcome === 'returned') assert.equal(result.returnValue, 2n);
      }
    } finally {
      machine.close();
    }
  });

  test("in a worker thread, openMachine throws runGuest's error: use the main thread (Vitest: pool: 'forks')", async () => {
    const script = join(tempDir(), 'open-in-a-worker.mjs');
    writeFileSync(
      script,
      [
        "import { parentPort } from 'node:worker_threads';",
        `import { openMachine } from ${JSON.stringify(join(ROOT, 'dist', 'src', 'index.js'))};`,
        'try {',
        '  openMachine({ image: { flat: Uint8Array.of(0xc3), loadAddress: 0x200000 } });',
        "  parentPort.postMessage({ opened: true });",
        '} catch (err) {',
        '  parentPort.postMessage({ error: err.message });',
        '}',
        '',
      ].join('\n'),
    );
    const message = await new Promise<{ opened?: boolean; error?: string }>((resolve, reject) => {
      const worker = new Worker(script);
      worker.once('message', (m: { opened?: boolean; error?: string }) => {
        resolve(m);
        void worker.terminate();
      });
      worker.once('error', reject);
    });
    assert.equal(message.opened, undefined);
    assert.match(message.error ?? '', /^kvmtest runs guests on a process's main thread only \(its timeouts are a signal aimed at that thread\), not in a worker thread\./);
    assert.match(message.error ?? '', /Under Vitest, set pool: 'forks' in vitest\.config/);
  });
});
