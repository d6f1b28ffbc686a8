// The vCPUs of a machine other than vCPU 0, during a run. Each runs on its
// own thread (kvm/vcpu-thread.ts); the session's thread, between two of
// vCPU 0's KVM_RUNs, collects their exits and handles them here, with the
// same devices and exit handling as vCPU 0's, so that callbacks run one at
// a time. A stop from one of them says which CPU it came from.
import { isPromise, type Stop } from '../devices/device.js';
import type { VcpuExit } from '../kvm/exit.js';
import type { Vcpu } from '../kvm/vcpu.js';
import { InterruptController } from '../machine/interrupt-controller.js';
import type { Machine } from '../machine/machine.js';
import type { DeviceSet } from './devices.js';
import { type ExitContext, type Handled, handleExit } from './exits.js';
import { GuestView } from './guest-view.js';

/** One vCPU as the session drives it: its view for devices and its exit context. */
export interface CpuContext {
  vcpu: Vcpu;
  guest: GuestView;
  exits: ExitContext;
}

export class OtherCpus {
  readonly cpus: CpuContext[];
  /** Exits collected while stopping a vCPU (halt checks), handled at the next service(). */
  private readonly held = new Map<CpuContext, VcpuExit>();

  constructor(
    machine: Machine,
    devices: DeviceSet,
    context: (vcpu: Vcpu, guest: GuestView) => ExitContext,
  ) {
    this.cpus = machine.vcpus.slice(1).map((vcpu) => {
      const guest = new GuestView(machine, devices.console, vcpu);
      return { vcpu, guest, exits: context(vcpu, guest) };
    });
  }

  /** Lets every vCPU run (at the start of a run). */
  start(): void {
    for (const cpu of this.cpus) if (!cpu.vcpu.running && !this.held.has(cpu)) cpu.vcpu.startRun();
  }

  /**
   * Handles every exit that came back since the last call, and lets those
   * vCPUs run again: undefined, or the Stop one of them ended the run with
   * (a Promise while a device answers later).
   */
  service(afterExit: (cpu: CpuContext, stop: Stop | undefined) => Stop | undefined): Handled {
    for (const cpu of this.cpus) {
      const exit = this.held.get(cpu) ?? cpu.vcpu.pollRun();
      this.held.delete(cpu);
      if (!exit) continue;
      if (exit.reason === 'interrupted') {
        cpu.vcpu.clearImmediateExit();
        cpu.vcpu.startRun();
        continue;
      }
      cpu.guest.newExit();
      const handled = handleExit(cpu.exits, exit);
      const finish = (stop: Stop | undefined): Handled => {
        const end = afterExit(cpu, stop === undefined ? undefined : this.fromCpu(cpu, stop));
        if (end) return end;
        cpu.vcpu.startRun();
        return this.service(afterExit);
      };
      return isPromise(handled) ? handled.then(finish) : finish(handled);
    }
    return undefined;
  }

  /** Stops every vCPU that runs (the end of a run); an exit one had reached stays pending for the machine to settle. */
  stopAll(machine: Machine): void {
    for (const cpu of this.cpus) {
      const exit = this.held.get(cpu) ?? cpu.vcpu.stopRun();
      this.held.delete(cpu);
      if (exit && exit.reason !== 'interrupted') machine.markExitPending(cpu.vcpu);
    }
  }

  /**
   * True when every one of these vCPUs is halted with nothing of its own
   * to wake it (InterruptController.stuckHalted). Each is stopped to be
   * asked, and runs again afterwards.
   */
  allStuckHalted(): boolean {
    for (const cpu of this.cpus) {
      const exit = this.held.get(cpu) ?? cpu.vcpu.stopRun();
      if (exit && exit.reason !== 'interrupted') {
        // It was doing something: handled at the next service().
        this.held.set(cpu, exit);
        return false;
      }
      const stuck = InterruptController.stuckHalted(cpu.vcpu, cpu.vcpu.getRegs().rflags);
      cpu.vcpu.startRun();
      if (!stuck) return false;
    }
    return true;
  }

  /** Where each vCPU is, for a timeout or a halt: "CPU 1 at f+0x3 at x.c:9". Stops them (the run is over). */
  locations(machine: Machine): string[] {
    this.stopAll(machine);
    return this.cpus.map((cpu) => `CPU ${cpu.vcpu.id} at ${cpu.guest.describe(cpu.vcpu.getRegs().rip)}`);
  }

  /** A stop from vCPU `cpu`: its message says so. Only CPU 0 ends a test by returning. */
  private fromCpu(cpu: CpuContext, stop: Stop): Stop {
    if (stop.outcome === 'returned') {
      return {
        ...stop,
        outcome: 'error',
        error: { kind: 'unexpected-exit' },
        message: `CPU ${cpu.vcpu.id} wrote "returned" to the exit port at ${cpu.guest.describe(cpu.guest.rip())}: ` +
          'only CPU 0 ends a test, by returning from the test function',
      };
    }
    const regs = stop.regs ?? cpu.guest.regs();
    return { ...stop, regs, cpu: cpu.vcpu.id, message: `on CPU ${cpu.vcpu.id}: ${stop.message ?? stop.outcome}` };
  }
}
