// Runs the tests of one test binary in this process, each on a pristine
// machine (reusable-machines.ts: with 'snapshot' isolation a machine is
// reused and restored from its snapshot between tests; with 'vm' isolation
// every test gets a new VM, the seed's way). Every guest failure becomes a
// TestResult; only host problems (no /dev/kvm, a broken binary) throw.
import type { GuestImage } from '../image/image.js';
import { RUNTIME_ENTRY, SMP_ENTRY } from '../image/test-table.js';
import { InterruptSupportError } from '../machine/interrupt-controller.js';
import type { Kvm } from '../kvm/kvm.js';
import { PlacementError } from '../machine/placement.js';
import type { RunTimer } from '../machine/timeout.js';
import type { Outcome } from '../result.js';
import { standardDevices } from '../session/devices.js';
import { Session } from '../session/session.js';
import { type MachineLease, ReusableMachines } from './reusable-machines.js';
import type { CpuidEdit, TestCase, TestResult } from './types.js';
import { applyCpuidOverrides, cpuidEditOverrides, cpuidOverridesIgnored } from '../hardware/cpuid.js';
import type { CpuidEntry } from '../kvm/structs.js';
import { guestCpuid } from '../machine/guest-cpuid.js';
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

/** Machines kept per binary (one per distinct set of RAM ranges, heap and CPUID edits). */
const MACHINE_CACHE_SIZE = 4;

export class BinaryExecutor {
  private readonly entry: bigint;
  private readonly machines: ReusableMachines;
  /** Per distinct set of .cpuid edits: the table and the probe's verdict. */
  private readonly cpuidPlans = new Map<string, CpuidPlan>();

  constructor(
    private readonly kvm: Kvm,
    private readonly timer: RunTimer,
    private readonly image: GuestImage,
    private readonly options: ExecutionOptions,
  ) {
    const symbol = image.symbols.byName(RUNTIME_ENTRY);
    // preflight.ts explains this to users before a run; this is the last guard.
    if (!symbol) throw new Error(`${image.source} has no ${RUNTIME_ENTRY} function`);
    this.entry = symbol.value;
    this.machines = new ReusableMachines(kvm, options.isolation === 'snapshot', MACHINE_CACHE_SIZE, timer);
  }

  run(test: TestCase): TestResult {
    const started = performance.now();
    const timeoutMs = test.timeoutMs > 0 ? test.timeoutMs : this.options.defaultTimeoutMs;
    const cpuid = this.cpuidFor(test);
    if (cpuid?.skip !== undefined) {
      // Never run against a CPUID other than the one the test declares.
      return judge(test, { outcome: 'skipped', message: cpuid.skip, output: '', durationMs: performance.now() - started });
    }
    let lease: MachineLease;
    try {
      lease = this.machines.take(machineKey(test), () => ({
        image: this.image,
        ram: test.ram,
        maxGuestMemory: this.options.maxGuestMemory,
        ...(test.heap !== undefined && { heap: test.heap }),
        ...(cpuid && { cpuid: cpuid.table }),
        ...(test.apic && { apic: true, cpus: test.cpus ?? 1 }),
      }));
    } catch (err) {
      // What this KVM cannot give (an interrupt controller, so many vCPUs): the test is skipped, saying why.
      if (err instanceof InterruptSupportError) return judge(test, { outcome: 'skipped', message: err.message, output: '', durationMs: performance.now() - started });
      // The test's own options (its RAM ranges) do not fit: that test fails, the others run.
      if (err instanceof PlacementError) return hostFailure(test, `cannot build this test's machine: ${err.message}`);
      throw err;
    }
    let outcome: Outcome | undefined;
    try {
      const { machine } = lease;
      const heap = machine.placement.heap;
      const entry = (test.cpus ?? 1) > 1 ? this.smpEntry() : this.entry;
      if (entry === undefined) {
        return hostFailure(test, `${this.image.source} has no ${SMP_ENTRY} function, which a test with .cpus needs: rebuild it with this version's \`kvmtest cc\``);
      }
      machine.setEntry(entry, [test.fn, test.record, heap?.phys ?? 0n, heap?.size ?? 0n, BigInt(test.cpus ?? 1)]);
      // Devices are made for each test, so that none keeps state from the last one.
      const session = new Session(machine, standardDevices(test.ioports), this.timer);
      const stop = session.run(timeoutMs);
      outcome = stop.outcome;
      // No register dumps: a test's result does not carry them.
      const { checks } = session.devices;
      return judge(test, {
        ...stop,
        output: session.devices.console.text(),
        durationMs: performance.now() - started,
        ...(checks.failed.length > 0 && { failedChecks: checks.failed }),
        ...(checks.dropped > 0 && { failedChecksDropped: checks.dropped }),
      });
    } finally {
      lease.release(outcome);
    }
  }

  close(): void {
    this.machines.close();
  }

  /** The runtime's entry for tests with several vCPUs (it brings the others up first), if the image has it. */
  private smpEntry(): bigint | undefined {
    return this.image.symbols.byName(SMP_ENTRY)?.value;
  }

  /** The CPUID table for a test's .cpuid edits, or why this KVM cannot give it; undefined without edits. */
  private cpuidFor(test: TestCase): CpuidPlan | undefined {
    if (!test.cpuid) return undefined;
    const key = cpuidKey(test.cpuid);
    let plan = this.cpuidPlans.get(key);
    if (!plan) {
      const overrides = cpuidEditOverrides(this.kvm, test.cpuid);
      const table = applyCpuidOverrides(guestCpuid(this.kvm).table, overrides);
      const reason = cpuidOverridesIgnored(this.kvm, table, overrides);
      plan = { table, ...(reason !== undefined && { skip: `.cpuid: ${reason}` }) };
      this.cpuidPlans.set(key, plan);
    }
    return plan;
  }
}

interface CpuidPlan {
  table: CpuidEntry[];
  /** Why the test is skipped: this KVM does not apply the edits. */
  skip?: string;
}

// The machine cache's key: what shapes the machine (RAM ranges, the heap,
// the CPUID table), so that a test never gets a machine built for another
// kind. A worker reads each test's record afresh and drops it after the
// run, so there is nothing to memoize it on; the common case (none of them)
// costs nothing.
function machineKey(test: TestCase): string {
  if (test.ram.length === 0 && test.heap === undefined && test.cpuid === undefined && !test.apic) return '';
  const ram = test.ram.map(([from, to]) => `${from}-${to}`).join(',');
  return `${ram}|heap=${test.heap ?? 0n}|cpuid=${test.cpuid ? cpuidKey(test.cpuid) : ''}|apic=${test.apic ? test.cpus ?? 1 : 0}`;
}

function cpuidKey(edits: readonly CpuidEdit[]): string {
  return edits.map((e) => `${e.leaf}.${e.subleaf}.${e.register}&${e.keep}|${e.set}`).join(',');
}

/** The key of a machine shaped by RAM ranges only (mirror mode's: it takes no heap or CPUID edits). */
export function ramKey(test: TestCase): string {
  return test.ram.length === 0 ? '' : test.ram.map(([from, to]) => `${from}-${to}`).join(',');
}
