// The machines a worker keeps between tests. With snapshot isolation a
// machine is built once per kind (its key: the image and whatever shapes
// the machine, such as RAM ranges), captured, and restored before each
// later test; with 'vm' isolation, or where this KVM cannot keep the
// snapshot's guarantee, every test gets a fresh machine. After a test
// that leaves a machine untrustworthy (session/reuse.ts), the machine is
// dropped and the next test of that kind gets a new one.
import type { Kvm } from '../kvm/kvm.js';
import { Machine, type MachineOptions } from '../machine/machine.js';
import { Snapshot, snapshotUnsupportedReason } from '../machine/snapshot.js';
import type { Outcome } from '../result.js';
import type { RunTimer } from '../machine/timeout.js';
import { bringUpSecondaries } from '../session/bring-up.js';
import { reusableAfter } from '../session/reuse.js';

interface CachedMachine {
  machine: Machine;
  snapshot: Snapshot;
  /** False until it has run a test (nothing to restore yet). */
  used: boolean;
}

/** A machine lent for one test: give it back with release(). */
export interface MachineLease {
  machine: Machine;
  /** Ends the lease: the machine is kept for the next test, unless this outcome (or an MSR write no restore undoes) rules that out. */
  release(outcome: Outcome | undefined): void;
}

export class ReusableMachines {
  private readonly machines = new Map<string, CachedMachine>();
  /** Snapshot isolation, where this KVM can keep its guarantee (otherwise a fresh VM per test). */
  readonly snapshots: boolean;

  constructor(
    private readonly kvm: Kvm,
    snapshots: boolean,
    /** Machines kept at most (the oldest goes first). */
    private readonly limit: number,
    /** The worker's run timer: a machine with several vCPUs runs once before its snapshot (session/bring-up.ts). */
    private readonly timer: RunTimer,
  ) {
    this.snapshots = snapshots && snapshotUnsupportedReason(kvm) === undefined;
  }

  /**
   * A pristine machine of kind `key`, built from `options()` when none is
   * kept. Throws what Machine.create throws (a PlacementError for options
   * that do not fit).
   */
  take(key: string, options: () => MachineOptions): MachineLease {
    if (!this.snapshots) {
      const machine = Machine.create(this.kvm, options());
      return { machine, release: () => machine.close() };
    }
    let cached = this.machines.get(key);
    if (cached?.used && cached.snapshot.restore(cached.machine).discard !== undefined) {
      // The last test left the machine unfit for reuse: start over (see RestoreStats).
      this.forget(key);
      cached = undefined;
    }
    if (!cached) {
      if (this.machines.size >= this.limit) this.forget(this.machines.keys().next().value!);
      const machine = Machine.create(this.kvm, { ...options(), logDirty: true });
      try {
        bringUpSecondaries(machine, this.timer);
        cached = { machine, snapshot: Snapshot.capture(machine), used: false };
      } catch (err) {
        machine.close();
        throw err;
      }
      this.machines.set(key, cached);
    }
    cached.used = true;
    const { machine } = cached;
    return {
      machine,
      release: (outcome) => {
        if (outcome === undefined || !reusableAfter(machine, outcome)) this.forget(key);
      },
    };
  }

  close(): void {
    for (const { machine } of this.machines.values()) machine.close();
    this.machines.clear();
  }

  private forget(key: string): void {
    this.machines.get(key)?.machine.close();
    this.machines.delete(key);
  }
}
