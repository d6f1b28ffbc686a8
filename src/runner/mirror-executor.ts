// Runs the tests of a shared object built with `kvmtest cc -shared` in
// mirror mode: the object is loaded into this worker (dlopen), and each test
// enters its runtime's kvmtest_entry(fn, record) at their addresses here,
// on a machine that shows the guest this process's memory (but where the
// test's RAM ranges lie). Machines are kept and restored between tests as
// for a test binary (reusable-machines.ts).
import { threadFsBase } from '../kvm/libc.js';
import type { Kvm } from '../kvm/kvm.js';
import { PlacementError } from '../machine/placement.js';
import type { RunTimer } from '../machine/timeout.js';
import type { MirrorLibrary } from '../mirror/library.js';
import type { Outcome } from '../result.js';
import { standardDevices } from '../session/devices.js';
import { Session } from '../session/session.js';
import { type ExecutionOptions, ramKey } from './executor.js';
import { type MachineLease, ReusableMachines } from './reusable-machines.js';
import type { TestCase, TestResult } from './types.js';
import { hostFailure, judge } from './verdict.js';

/** Machines kept per shared object (one per distinct set of RAM ranges). */
const MACHINE_CACHE_SIZE = 4;

export class SharedObjectExecutor {
  private readonly machines: ReusableMachines;

  constructor(
    kvm: Kvm,
    private readonly timer: RunTimer,
    private readonly library: MirrorLibrary,
    /** kvmtest_entry's link-time address (the object's own, before the load base). */
    private readonly runtimeEntry: bigint,
    private readonly options: ExecutionOptions,
  ) {
    this.machines = new ReusableMachines(kvm, options.isolation === 'snapshot', MACHINE_CACHE_SIZE, timer);
  }

  /** Runs one test; its record's fn and record addresses are link-time, as the test table gives them. */
  run(test: TestCase): TestResult {
    const started = performance.now();
    // A heap, CPUID edits and interrupt controllers shape an image test's
    // machine; mirror mode's has none yet, and running without them would
    // judge another test.
    const unsupported = test.heap !== undefined ? '.heap' : test.cpuid !== undefined ? '.cpuid' : test.cpus !== undefined ? '.cpus' : test.apic ? '.apic' : undefined;
    if (unsupported) {
      return hostFailure(test, `${unsupported} is not available to a shared object's tests (mirror mode) yet: build this test into a test binary with kvmtest cc (without -shared)`);
    }
    const timeoutMs = test.timeoutMs > 0 ? test.timeoutMs : this.options.defaultTimeoutMs;
    const { base } = this.library;
    let lease: MachineLease;
    try {
      // RAM ranges keep their addresses; the process's memory there is not shown to the guest (setup.ts).
      lease = this.machines.take(ramKey(test), () => ({
        image: this.library.image,
        ram: test.ram,
        maxGuestMemory: this.options.maxGuestMemory,
        mirror: { fsBase: threadFsBase() },
      }));
    } catch (err) {
      if (err instanceof PlacementError) return hostFailure(test, `cannot build this test's machine: ${err.message}`);
      throw err;
    }
    let outcome: Outcome | undefined;
    try {
      const { machine } = lease;
      const fn = test.fn + base;
      machine.mirror!.beginRun(this.library.image.symbols.lookup(fn)?.symbol.name ?? test.name);
      machine.setEntry(this.runtimeEntry + base, [fn, test.record + base]);
      const session = new Session(machine, standardDevices(test.ioports), this.timer);
      const stop = session.run(timeoutMs);
      outcome = stop.outcome;
      return judge(test, { ...stop, output: session.devices.console.text(), durationMs: performance.now() - started });
    } finally {
      lease.release(outcome);
    }
  }

  close(): void {
    this.machines.close();
  }
}
