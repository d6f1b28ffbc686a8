// openMachine(): runGuest's machine, kept between runs. It is built once and
// its state recorded (a snapshot) before the first run; every later run
// starts from that state restored, so that each sees what a fresh runGuest
// would see, for the cost of putting back what the last run changed rather
// than of a new VM. Where a restore cannot be trusted (this KVM lacks what
// snapshots need, or the last run left the machine in a state no restore
// covers), the next run gets a new machine instead, without the caller
// noticing but for the time it takes.
import type { Stop } from './devices/device.js';
import {
  buildMachine,
  finishRun,
  type GuestHost,
  guestHost,
  type GuestPlan,
  planGuest,
  type RunGuestOptions,
  skipStop,
  startRun,
} from './guest-plan.js';
import type { Machine } from './machine/machine.js';
import { bringUpSecondaries } from './session/bring-up.js';
import { Snapshot, snapshotUnsupportedReason } from './machine/snapshot.js';
import type { GuestResult } from './result.js';
import { applyOverrides, type RunOverrides } from './run-overrides.js';
import { reusableAfter } from './session/reuse.js';

export type { RunOverrides } from './run-overrides.js';

/** A machine kept between runs: each run starts on it as loaded, as a fresh runGuest would. */
export interface GuestMachine {
  /**
   * Runs the guest once, with `overrides` for this run only, and resolves
   * with its result (the same as runGuest's). One run at a time: a call
   * before the last run has settled rejects.
   */
  run(overrides?: RunOverrides): Promise<GuestResult>;
  /** Releases the machine's KVM resources (once a run under way has ended); closing again does nothing. */
  close(): void;
}

/**
 * Builds a machine for `options` (runGuest's) and keeps it for runs to come.
 * Throws what runGuest rejects with, at once: bad options, an image or
 * layout that cannot be loaded, an unusable /dev/kvm, a worker thread.
 */
export function openMachine(options: RunGuestOptions): GuestMachine {
  const plan = planGuest(options, 'openMachine');
  const host = guestHost();
  return new KeptMachine(plan, host, snapshotUnsupportedReason(host.kvm) === undefined);
}

/** A machine as built, with its state at load when snapshots are trusted here. */
interface Built {
  machine: Machine;
  snapshot: Snapshot | undefined;
  /** True once a run has used it: the next one restores it first. */
  used: boolean;
}

/**
 * openMachine's machine. `snapshots` false (a KVM without an MSR filter, or
 * a test of that fallback) gives every run a machine of its own.
 */
export class KeptMachine implements GuestMachine {
  private built: Built | undefined;
  /** Set when this KVM cannot run the plan's hardware faithfully: every run's result, without running. */
  private readonly skip: Stop | undefined;
  private running = false;
  private closed = false;

  constructor(
    private readonly plan: GuestPlan,
    private readonly host: GuestHost,
    private readonly snapshots: boolean,
  ) {
    this.skip = skipStop(host.kvm, plan.hardware);
    // Built now, so that a machine that cannot be built is refused by openMachine itself.
    this.built = this.build();
  }

  async run(overrides?: RunOverrides): Promise<GuestResult> {
    if (this.closed) throw new Error('run() after close(): this machine is closed; open another with openMachine');
    if (this.running) {
      // Two runs cannot share one vCPU, and queueing them would make each
      // result depend on which call came first: a missing await, most often.
      throw new Error(
        'run() while the last run of this machine has not settled: await each run before starting the next ' +
          '(or open one machine per concurrent test)',
      );
    }
    this.running = true;
    try {
      return await this.runOnce(overrides);
    } finally {
      this.running = false;
      if (this.closed) this.release();
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    // A run waiting for a device's Promise still uses the machine: run() releases it when that run ends.
    if (!this.running) this.release();
  }

  private async runOnce(overrides: RunOverrides | undefined): Promise<GuestResult> {
    const started = process.hrtime.bigint();
    const { entry, hardware, timeoutMs, mirroredFunction } = applyOverrides(this.plan, overrides);
    if (!this.built) {
      // A new VM is coming: first, as runGuest does, give the event loop a
      // turn, in which the native memory behind the last one is released.
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (this.closed) throw new Error('close() came before this run could start: this machine is closed; open another with openMachine');
    }
    let reusable = false;
    try {
      const machine = this.pristineMachine();
      const session = startRun(machine, hardware, entry, this.host.timer, mirroredFunction);
      const stop = this.skip ?? (await session.runAsync(timeoutMs));
      reusable = this.snapshots && reusableAfter(machine, stop.outcome);
      return finishRun(session, this.host.timer, stop, started);
    } finally {
      if (!reusable) this.release();
    }
  }

  /** The machine as loaded: restored from its snapshot after a run, or built anew. */
  private pristineMachine(): Machine {
    let built = (this.built ??= this.build());
    if (built.used && built.snapshot!.restore(built.machine).discard !== undefined) {
      // The last run left what a restore cannot put right (see RestoreStats): start over.
      this.release();
      built = this.built = this.build();
    }
    built.used = true;
    return built.machine;
  }

  private build(): Built {
    const machine = buildMachine(this.host.kvm, this.plan, this.snapshots);
    try {
      if (this.snapshots) bringUpSecondaries(machine, this.host.timer);
      return { machine, snapshot: this.snapshots ? Snapshot.capture(machine) : undefined, used: false };
    } catch (err) {
      machine.close();
      throw err;
    }
  }

  private release(): void {
    this.built?.machine.close();
    this.built = undefined;
  }
}
