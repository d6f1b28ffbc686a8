// A session: one machine, the devices its guest talks to, and the run timer,
// driven exit by exit. `step()` enters the vCPU once and handles what comes
// back, so a caller may stop between exits (a debugger, a device that waits)
// with every exit fully answered; `run()` steps until something ends the
// run; `result()` turns the end into the plain GuestResult. The library
// (runGuest) and the runner's executor both drive guests through this, and
// nothing above it reads KVM's structures.
import type { Stop } from '../devices/device.js';
import type { Regs } from '../kvm/structs.js';
import type { Machine } from '../machine/machine.js';
import type { RunTimer } from '../machine/timeout.js';
import type { GuestResult } from '../result.js';
import type { DeviceSet } from './devices.js';
import { type ExitContext, handleExit, unsettled } from './exits.js';
import { GuestView } from './guest-view.js';

export class Session {
  private readonly guest: GuestView;
  private readonly exits: ExitContext;
  private timeoutMs = 0;

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
    };
  }

  /** Runs the guest until something ends the run, or `timeoutMs` pass. */
  run(timeoutMs: number): Stop {
    this.start(timeoutMs);
    try {
      for (;;) {
        const stop = this.step();
        if (stop) return stop;
      }
    } finally {
      this.timer.disarm();
    }
  }

  /** Starts the run's clock; then call step() until it returns a Stop, and finish(). */
  start(timeoutMs: number): void {
    this.timeoutMs = timeoutMs;
    this.timer.arm(timeoutMs);
  }

  /** Ends the run's clock. */
  finish(): void {
    this.timer.disarm();
  }

  /**
   * One KVM_RUN and the exit it ended with, handled: undefined when the
   * guest may go on, or the Stop that ends the run (a timeout included).
   */
  step(): Stop | undefined {
    const { machine, timer } = this;
    const exit = machine.vcpu.run();
    if (exit.reason === 'interrupted') {
      // After EINTR the sync area may be stale: ask KVM for the registers.
      return timer.expired() ? this.timeoutStop(machine.vcpu.getRegs()) : undefined;
    }
    this.guest.newExit();
    const stop = handleExit(this.exits, exit);
    if (stop) return stop;
    // A guest that exits back to back spends its time here rather than in
    // KVM_RUN, so the timer's signal rarely interrupts KVM_RUN: check the
    // deadline after every exit too.
    if (timer.expired()) return unsettled(this.exits, this.timeoutStop(machine.vcpu.syncedRegs()));
    return undefined;
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
    return result;
  }

  private timeoutStop(regs: Regs): Stop {
    return {
      outcome: 'timeout',
      regs,
      message: `timed out after ${this.timeoutMs} ms; the guest was at ${this.guest.describe(regs.rip)}`,
    };
  }
}
