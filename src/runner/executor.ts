// Runs the tests of one test binary in this process, each on a pristine
// machine (reusable-machines.ts: with 'snapshot' isolation a machine is
// reused and restored from its snapshot between tests; with 'vm' isolation
// every test gets a new VM, the seed's way). Every guest failure becomes a
// TestResult; only host problems (no /dev/kvm, a broken binary) throw.
import type { GuestImage } from '../image/image.js';
import { RUNTIME_ENTRY } from '../image/test-table.js';
import type { Kvm } from '../kvm/kvm.js';
import { PlacementError } from '../machine/placement.js';
import type { RunTimer } from '../machine/timeout.js';
import type { Outcome } from '../result.js';
import { standardDevices } from '../session/devices.js';
import { Session } from '../session/session.js';
import { type MachineLease, ReusableMachines } from './reusable-machines.js';
import type { TestCase, TestResult } from './types.js';
import { hostFailure, judge } from './verdict.js';

export type Isolation = 'snapshot' | 'vm';
export const ISOLATION_MODES: readonly Isolation[] = ['snapshot', 'vm'];

/**
 * How tests are run: one definition that the runner hands, unchanged,
 * through the pool and the worker protocol to each worker's executor.
 */
export interface ExecutionOptions {
  isolation: Isolation;
  /** Timeout for tests that do not set their own. */
  defaultTimeoutMs: number;
  /** Most guest memory a test's machine may have (default: placement.ts's DEFAULT_MAX_GUEST_MEMORY). */
  maxGuestMemory?: bigint;
}

/** Machines kept per binary (one per distinct set of RAM ranges). */
const MACHINE_CACHE_SIZE = 4;

export class BinaryExecutor {
  private readonly entry: bigint;
  private readonly machines: ReusableMachines;

  constructor(
    kvm: Kvm,
    private readonly timer: RunTimer,
    private readonly image: GuestImage,
    private readonly options: ExecutionOptions,
  ) {
    const symbol = image.symbols.byName(RUNTIME_ENTRY);
    // preflight.ts explains this to users before a run; this is the last guard.
    if (!symbol) throw new Error(`${image.source} has no ${RUNTIME_ENTRY} function`);
    this.entry = symbol.value;
    this.machines = new ReusableMachines(kvm, options.isolation === 'snapshot', MACHINE_CACHE_SIZE);
  }

  run(test: TestCase): TestResult {
    const started = performance.now();
    const timeoutMs = test.timeoutMs > 0 ? test.timeoutMs : this.options.defaultTimeoutMs;
    let lease: MachineLease;
    try {
      lease = this.machines.take(ramKey(test), () => ({ image: this.image, ram: test.ram, maxGuestMemory: this.options.maxGuestMemory }));
    } catch (err) {
      // The test's own options (its RAM ranges) do not fit: that test fails, the others run.
      if (err instanceof PlacementError) return hostFailure(test, `cannot build this test's machine: ${err.message}`);
      throw err;
    }
    let outcome: Outcome | undefined;
    try {
      const { machine } = lease;
      machine.setEntry(this.entry, [test.fn, test.record]);
      // Devices are made for each test, so that none keeps state from the last one.
      const session = new Session(machine, standardDevices(test.ioports), this.timer);
      const stop = session.run(timeoutMs);
      outcome = stop.outcome;
      // No register dumps: a test's result does not carry them.
      return judge(test, { ...stop, output: session.devices.console.text(), durationMs: performance.now() - started });
    } finally {
      lease.release(outcome);
    }
  }

  close(): void {
    this.machines.close();
  }
}

// The machine cache's key. A worker reads each test's record afresh and
// drops it after the run, so there is nothing to memoize it on; the common
// case (no RAM ranges) costs nothing.
export function ramKey(test: TestCase): string {
  return test.ram.length === 0 ? '' : test.ram.map(([from, to]) => `${from}-${to}`).join(',');
}
