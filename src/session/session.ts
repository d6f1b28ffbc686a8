// A session: one machine, the devices its guest talks to, and the run timer,
// driven exit by exit. `step()` enters the vCPU once and handles what comes
// back, so a caller may stop between exits (a debugger, a device that waits)
// with every exit fully answered; `run()` and `runAsync()` step until
// something ends the run; `result()` turns the end into the plain
// GuestResult. The library (runGuest) and the runner's executors drive
// guests through this, and nothing above it reads KVM's structures.
//
// A device may answer an exit later (a Promise). `runAsync()` waits for it,
// with the run's deadline still running; `run()` cannot wait, and ends the
// run with a message saying so. Either way, once a run has ended, a late
// answer is dropped and the guest a device was handed is closed: neither
// reaches the machine, which may be running the next test by then.
import { type Answer, isPromise, type Stop } from '../devices/device.js';
import { KvmIoctlError } from '../kvm/errors.js';
import type { Regs } from '../kvm/structs.js';
import type { Machine } from '../machine/machine.js';
import type { RunTimer } from '../machine/timeout.js';
import type { GuestResult } from '../result.js';
import type { DeviceSet } from './devices.js';
import { type ExitContext, handleExit, unsettled } from './exits.js';
import { GuestView } from './guest-view.js';

const EFAULT = 14;

export class Session {
  private readonly guest: GuestView;
  private readonly exits: ExitContext;
  private timeoutMs = 0;
  /** False while run() drives the session: a device's Promise cannot be waited for. */
  private canWait = true;

  constructor(
    readonly machine: Machine,
    readonly devices: DeviceSet,
    private readonly timer: RunTimer,
  ) {
    this.guest = new GuestView(machine, devices.console);
    this.exits = {
      machine,
      devices,
      guest: this.guest,
      expired: () => timer.expired(),
      timeout: (regs) => this.timeoutStop(regs),
      wait: (answer) => this.wait(answer),
    };
    // The MSRs the test serves exit to user space; every other stays KVM's.
    machine.serveMsrs(devices.msrs.indices());
  }

  /** Runs the guest until something ends the run, or `timeoutMs` pass. Devices must answer at once. */
  run(timeoutMs: number): Stop {
    this.start(timeoutMs);
    this.canWait = false;
    try {
      for (;;) {
        const stop = this.step();
        if (isPromise(stop)) throw new Error('internal: a step that cannot wait returned a Promise');
        if (stop) return stop;
      }
    } finally {
      this.canWait = true;
      this.finish();
    }
  }

  /** Runs the guest until something ends the run, or `timeoutMs` pass, waiting for devices that answer later. */
  async runAsync(timeoutMs: number): Promise<Stop> {
    this.start(timeoutMs);
    try {
      for (;;) {
        let stop = this.step();
        if (isPromise(stop)) stop = await stop;
        if (stop) return stop;
      }
    } finally {
      this.finish();
    }
  }

  /** Starts the run's clock; then call step() until it gives a Stop, and finish(). */
  start(timeoutMs: number): void {
    this.timeoutMs = timeoutMs;
    this.timer.arm(timeoutMs);
  }

  /** Ends the run's clock; what devices were handed of the guest is no longer usable. */
  finish(): void {
    this.timer.disarm();
    this.guest.endRun();
  }

  /**
   * One KVM_RUN and the exit it ended with, handled: undefined when the
   * guest may go on, or the Stop that ends the run (a timeout included);
   * a Promise of one of those when a device answers later.
   */
  step(): Answer<Stop | undefined> {
    const { machine, timer } = this;
    let exit;
    try {
      exit = machine.vcpu.run();
    } catch (err) {
      // Mirror mode: the guest reached process memory that the process no
      // longer maps (unmapped while the run was under way), which KVM cannot back.
      if (!(err instanceof KvmIoctlError && err.errno === EFAULT && machine.mirror)) throw err;
      return {
        outcome: 'error',
        error: { kind: 'host' },
        message: `KVM could not reach the process memory the guest accessed near ${this.guest.describe(machine.vcpu.getRegs().rip)} (${err.message}): ` +
          'the process unmapped memory the guest had mapped, during the run',
      };
    }
    if (exit.reason === 'interrupted') {
      // After EINTR the sync area may be stale: ask KVM for the registers.
      return timer.expired() ? this.timeoutStop(machine.vcpu.getRegs()) : undefined;
    }
    this.guest.newExit();
    const handled = handleExit(this.exits, exit);
    return isPromise(handled) ? handled.then((stop) => this.afterExit(stop)) : this.afterExit(handled);
  }

  /** The run's plain result: the stop, the console's text, the registers. */
  result(stop: Stop, durationMs: number): GuestResult {
    const vcpu = this.machine.vcpu;
    // After a timeout the sync area may be stale; the stop then carries the registers.
    const regs = stop.regs ?? vcpu.syncedRegs();
    const sregs = stop.outcome === 'timeout' ? vcpu.getSregs() : vcpu.syncedSregs();
    const result: GuestResult = {
      outcome: stop.outcome,
      output: this.devices.console.text(),
      regs: { ...regs },
      sregs: { cr0: sregs.cr0, cr2: sregs.cr2, cr3: sregs.cr3, cr4: sregs.cr4, cr8: sregs.cr8, efer: sregs.efer },
      durationMs,
    };
    if (stop.message !== undefined) result.message = stop.message;
    if (stop.fault) result.fault = stop.fault;
    if (stop.assertion) result.assertion = stop.assertion;
    if (stop.exitCode !== undefined) result.exitCode = stop.exitCode;
    if (stop.error) result.error = stop.error;
    if (stop.outcome === 'returned') result.returnValue = regs.rax;
    if (this.machine.mirror) result.mirror = { ...this.machine.mirror.stats };
    return result;
  }

  /** After an exit was answered: register writes devices asked for, then the deadline. */
  private afterExit(stop: Stop | undefined): Stop | undefined {
    const { machine, timer } = this;
    if (stop) return stop;
    const writes = this.guest.takeRegisterWrites();
    if (writes) {
      // KVM finishes the access first (an `in` lands in rax), then the writes apply.
      if (!machine.vcpu.settlePendingExit()) {
        return { outcome: 'error', error: { kind: 'host' }, message: 'KVM did not complete the access before a device changed registers' };
      }
      machine.vcpu.stageRegs({ ...machine.vcpu.getRegs(), ...writes });
    }
    // A guest that exits back to back spends its time here rather than in
    // KVM_RUN, so the timer's signal rarely interrupts KVM_RUN: check the
    // deadline after every exit too.
    if (timer.expired()) return unsettled(this.exits, this.timeoutStop(machine.vcpu.syncedRegs()));
    return undefined;
  }

  private wait<T>(answer: Promise<T>): Promise<T | Stop> | Stop {
    if (!this.canWait) {
      answer.catch(() => {});
      return unsettled(this.exits, {
        outcome: 'error',
        error: { kind: 'device' },
        message: 'a device answered with a Promise, which runGuestSync cannot wait for: use runGuest (or answer with the value itself)',
      });
    }
    const regs = this.guest.regs();
    return new Promise<T | Stop>((resolve) => {
      // The guest's time limit keeps running while the device works.
      const deadline = setTimeout(() => resolve(unsettled(this.exits, this.timeoutStop(regs))), Math.max(0, this.timer.remainingMs()));
      answer.then(
        (value) => {
          clearTimeout(deadline);
          // The answer came past the deadline (the timer is coarse): a timeout, as after any exit.
          resolve(this.timer.expired() ? unsettled(this.exits, this.timeoutStop(regs)) : value);
        },
        (err: unknown) => {
          clearTimeout(deadline);
          // Devices turn their own failures into Stops; this is the last guard.
          resolve(unsettled(this.exits, {
            outcome: 'error',
            error: { kind: 'device' },
            message: `a device's answer failed: ${(err as Error)?.stack ?? String(err)}`,
          }));
        },
      );
    });
  }

  private timeoutStop(regs: Regs): Stop {
    return {
      outcome: 'timeout',
      regs,
      message: `timed out after ${this.timeoutMs} ms; the guest was at ${this.guest.describe(regs.rip)}`,
    };
  }
}
