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
import { type ExitContext, haltStop, handleExit, unsettled } from './exits.js';
import { OtherCpus } from './other-cpus.js';
import { IrqLinePort } from '../devices/irq-line-port.js';
import { IRQ_LINE_PORT } from '../devices/ports.js';
import { InterruptController } from '../machine/interrupt-controller.js';
import { MP_STATE } from '../kvm/constants.js';
import type { Vcpu } from '../kvm/vcpu.js';
import { GuestView } from './guest-view.js';

const EFAULT = 14;
const RFLAGS_IF = 1n << 9n;
/**
 * How long a machine whose vCPUs are all halted with nothing to wake them
 * stays so before it counts as halted, in a run that waits for devices
 * (runAsync): time for a device's timer to raise the interrupt it promised.
 */
const HALT_GRACE_MS = 50;
/** A word to fence on (Atomics.add is a full barrier). */
const FENCE = new Int32Array(new SharedArrayBuffer(4));

export class Session {
  private readonly guest: GuestView;
  private readonly exits: ExitContext;
  /** vCPUs other than 0, in a machine with several. */
  private readonly others: OtherCpus | undefined;
  private timeoutMs = 0;
  /** When the machine was first seen halted with nothing to wake it (haltCheck). */
  private stuckSince: number | undefined;
  /** False while run() drives the session: a device's Promise cannot be waited for. */
  private canWait = true;

  constructor(
    readonly machine: Machine,
    readonly devices: DeviceSet,
    private readonly timer: RunTimer,
  ) {
    this.guest = new GuestView(machine, devices.console);
    this.exits = this.exitContext(machine.vcpu, this.guest);
    if (machine.vcpus.length > 1) this.others = new OtherCpus(machine, devices, (vcpu, guest) => this.exitContext(vcpu, guest));
    // The MSRs the test serves exit to user space; every other stays KVM's.
    machine.serveMsrs(devices.msrs.indices());
    if (machine.interrupts) devices.io.registerIfFree(new IrqLinePort(), IRQ_LINE_PORT, machine.interrupts.lineCount);
  }

  private exitContext(vcpu: Vcpu, guest: GuestView): ExitContext {
    return {
      machine: this.machine,
      vcpu,
      devices: this.devices,
      guest,
      expired: () => this.timer.expired(),
      timeout: (regs) => this.timeoutStop(regs),
      wait: (answer) => this.wait(answer, guest),
    };
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
    this.others?.start();
  }

  /** Ends the run's clock; what devices were handed of the guest is no longer usable. */
  finish(): void {
    this.timer.disarm();
    this.others?.stopAll(this.machine);
    this.guest.endRun();
    for (const cpu of this.others?.cpus ?? []) cpu.guest.endRun();
  }

  /**
   * One KVM_RUN and the exit it ended with, handled: undefined when the
   * guest may go on, or the Stop that ends the run (a timeout included);
   * a Promise of one of those when a device answers later.
   */
  step(): Answer<Stop | undefined> {
    const { machine, timer, others } = this;
    if (others) {
      const stop = others.service((cpu, stop) => this.afterExit(stop, cpu.exits));
      if (stop) return stop;
    }
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
    if (others) {
      // Another vCPU's thread may have cut this run short to be looked at
      // (VcpuThread's wake). A fence orders the reset before the next look.
      machine.vcpu.clearImmediateExit();
      Atomics.add(FENCE, 0, 0);
    }
    if (exit.reason === 'interrupted') {
      // After EINTR the sync area may be stale: ask KVM for the registers.
      if (timer.expired()) return this.timeoutStop(machine.vcpu.getRegs());
      if (!machine.interrupts) return undefined;
      // A device's timer may raise an interrupt: let the event loop run (when the run can wait).
      if (this.canWait) return new Promise<Stop | undefined>((resolve) => setImmediate(() => resolve(this.haltCheck())));
      return this.haltCheck();
    }
    this.stuckSince = undefined;
    this.guest.newExit();
    const handled = handleExit(this.exits, exit);
    return isPromise(handled) ? handled.then((stop) => this.afterExit(stop)) : this.afterExit(handled);
  }

  /**
   * With interrupt controllers, HLT does not exit: a halted vCPU waits in
   * KVM for an interrupt. The machine counts as halted (the test's
   * should_halt) once vCPU 0 and every other vCPU are halted with nothing
   * that can wake them; this is asked at each of the timer's ticks.
   */
  private haltCheck(): Stop | undefined {
    const { machine, others } = this;
    const vcpu = machine.vcpu;
    const stuck = () => {
      if (InterruptController.mpState(vcpu) !== MP_STATE.HALTED) return undefined;
      const regs = vcpu.getRegs();
      if (!InterruptController.stuckHalted(vcpu, regs.rflags)) return undefined;
      if (others && !others.allStuckHalted()) return undefined;
      return regs;
    };
    const regs = stuck();
    if (!regs) {
      this.stuckSince = undefined;
      return undefined;
    }
    // A device's timer or Promise may still raise an interrupt: when the
    // run can wait for devices, the machine must stay stuck for a while,
    // with the event loop running, before it counts as halted.
    if (this.canWait) {
      const now = performance.now();
      this.stuckSince ??= now;
      if (now - this.stuckSince < HALT_GRACE_MS) return undefined;
    }
    const stop = haltStop(this.guest, regs.rip);
    if (stop.outcome !== 'halted') return { ...stop, regs };
    const where = others ? `; ${others.locations(machine).join(', ')}, halted too, with nothing to wake them` : '';
    const why = (regs.rflags & RFLAGS_IF) === 0n ? 'with interrupts disabled' : 'with interrupts enabled and no timer armed';
    return { ...stop, regs, message: `${stop.message}, ${why}${where}` };
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
    const { checks } = this.devices;
    if (checks.failed.length > 0 || checks.dropped > 0) {
      result.failedChecks = [...checks.failed];
      if (checks.dropped > 0) result.failedChecksDropped = checks.dropped;
    }
    return result;
  }

  /** After an exit was answered: register writes devices asked for, then the deadline. */
  private afterExit(stop: Stop | undefined, ctx: ExitContext = this.exits): Stop | undefined {
    const { machine, timer } = this;
    const { vcpu, guest } = ctx;
    if (stop) return stop;
    const writes = guest.takeRegisterWrites();
    if (writes) {
      // KVM finishes the access first (an `in` lands in rax), then the writes apply.
      if (!vcpu.settlePendingExit()) {
        return { outcome: 'error', error: { kind: 'host' }, message: 'KVM did not complete the access before a device changed registers' };
      }
      vcpu.stageRegs({ ...vcpu.getRegs(), ...writes });
    }
    // A guest that exits back to back spends its time here rather than in
    // KVM_RUN, so the timer's signal rarely interrupts KVM_RUN: check the
    // deadline after every exit too.
    if (timer.expired()) return unsettled(ctx, this.timeoutStop(vcpu === machine.vcpu ? vcpu.syncedRegs() : machine.vcpu.getRegs()));
    return undefined;
  }

  private wait<T>(answer: Promise<T>, guest: GuestView): Promise<T | Stop> | Stop {
    if (!this.canWait) {
      answer.catch(() => {});
      return unsettled(this.exits, {
        outcome: 'error',
        error: { kind: 'device' },
        message: 'a device answered with a Promise, which runGuestSync cannot wait for: use runGuest (or answer with the value itself)',
      });
    }
    const regs = guest.regs();
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
    const where = this.others
      ? `CPU 0 was at ${this.guest.describe(regs.rip)}, ${this.others.locations(this.machine).join(', ')}`
      : `the guest was at ${this.guest.describe(regs.rip)}`;
    return { outcome: 'timeout', regs, message: `timed out after ${this.timeoutMs} ms; ${where}` };
  }
}
