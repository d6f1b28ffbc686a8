// What each kind of exit means for a run: port I/O, MMIO and the MSRs a
// test serves go to the devices, a trapped MSR write goes back to the guest,
// and everything else (HLT, a triple fault, an emulation failure, a failed
// entry) becomes a Stop that says what happened. Nothing a guest does makes
// these throw.
//
// A device may answer later (a Promise, from a device model written in
// TypeScript): the handler then returns a Promise too, which continues the
// exit where it left off once the answer comes, through ctx.wait (which
// gives up when the run's deadline passes).
import { type AccessSize, type Answer, hex, isPromise, isStop, type Stop } from '../devices/device.js';
import { INTERNAL_ERROR } from '../kvm/constants.js';
import { ioItem, mmioValue, setIoItem, setMmioValue, type VcpuExit } from '../kvm/exit.js';
import type { Regs, Sregs } from '../kvm/structs.js';
import { mirroredSystemCall, systemCallAt } from '../devices/doorbell.js';
import { inEngineStubs } from '../machine/descriptors.js';
import { ENGINE_CR3, LAYOUT } from '../machine/layout.js';
import type { Machine } from '../machine/machine.js';
import type { Vcpu } from '../kvm/vcpu.js';
import type { DeviceSet } from './devices.js';
import type { GuestView } from './guest-view.js';

/** What handling an exit needs. */
export interface ExitContext {
  machine: Machine;
  /** The vCPU that exited. */
  vcpu: Vcpu;
  devices: DeviceSet;
  guest: GuestView;
  /** True once the run's deadline has passed (checked between the items of one exit). */
  expired(): boolean;
  /** The stop for a run that overstayed its deadline, with the registers given. */
  timeout(regs: Regs): Stop;
  /**
   * A device's late answer: resolves with it, or with a Stop when the run's
   * deadline passes first (what the device answers after that is ignored);
   * a Stop at once when this run cannot wait.
   */
  wait<T>(answer: Promise<T>): Promise<T | Stop> | Stop;
}

/** What handling an exit gives: undefined to go on running, or the Stop that ends the run; maybe later. */
export type Handled = Answer<Stop | undefined>;

/** Goes on with `next` once a late answer comes (or the run ends without it). */
function later<T>(ctx: ExitContext, answer: Promise<T>, next: (value: NoInfer<T> | Stop) => Handled): Handled {
  const waited = ctx.wait(answer);
  return isPromise(waited) ? waited.then(next) : waited;
}

const SYSTEM_EVENT_NAMES: Record<number, string> = { 1: 'shutdown', 2: 'reset', 3: 'crash' };
const MAX_INSTRUCTION_BYTES = 15;

/** Handles one exit: undefined to go on running, or the Stop that ends the run. */
export function handleExit(ctx: ExitContext, exit: VcpuExit): Handled {
  const { guest } = ctx;
  switch (exit.reason) {
    case 'io':
      return handleIo(ctx, exit);
    case 'mmio':
      return handleMmio(ctx, exit);
    case 'hlt':
      return haltStop(guest);
    case 'shutdown':
      return {
        outcome: 'triple-fault',
        message: 'triple fault: an exception could not be delivered, even as a double fault ' +
          `(a broken IDT, GDT, TSS or exception stack?); the vCPU shut down${engineAreaHint(guest)}\n` +
          registerDump(guest.regs(), guest.sregs(), (address) => guest.describe(address)),
      };
    case 'internal-error':
      return internalError(guest, exit.suberror);
    case 'fail-entry':
      return {
        outcome: 'error',
        error: { kind: 'entry-failed' },
        message: `KVM could not enter the guest (hardware entry failure reason ${hex(exit.hardwareReason)}); the vCPU state is invalid`,
      };
    case 'wrmsr':
      if (ctx.devices.msrs.serves(exit.index)) return handleMsr(ctx, exit);
      if (ctx.machine.letTrappedMsrWriteThrough(ctx.vcpu)) return undefined;
      return {
        outcome: 'error',
        error: { kind: 'host' },
        message: `KVM did not complete the guest's write to MSR ${hex(exit.index)} at ${guest.describe(guest.rip())}`,
      };
    case 'rdmsr':
      if (ctx.devices.msrs.serves(exit.index)) return handleMsr(ctx, exit);
      return {
        outcome: 'error',
        error: { kind: 'unexpected-exit' },
        message: `unexpected KVM exit KVM_EXIT_X86_RDMSR (MSR ${hex(exit.index)}) at ${guest.describe(guest.rip())}`,
      };
    case 'system-event':
      return {
        outcome: 'error',
        error: { kind: 'unexpected-exit' },
        message: `the guest requested a system ${SYSTEM_EVENT_NAMES[exit.type] ?? `event ${exit.type}`}`,
      };
    case 'other':
    case 'interrupted': {
      const name = exit.reason === 'other' ? exit.name : 'EINTR';
      return {
        outcome: 'error',
        error: { kind: 'unexpected-exit' },
        message: `unexpected KVM exit ${name} at ${guest.describe(guest.regs().rip)}`,
      };
    }
  }
}

/**
 * A port exit, from item `from` on. String I/O (rep outsb/insb) carries
 * `count` items back to back. Each may cost a device real work (a hypercall
 * copies up to a megabyte), so the deadline is checked between them.
 */
function handleIo(ctx: ExitContext, exit: Extract<VcpuExit, { reason: 'io' }>, from = 0): Handled {
  const { devices, guest } = ctx;
  const size = exit.size as AccessSize;
  for (let i = from; i < exit.count; i++) {
    if (i > 0 && ctx.expired()) return unsettled(ctx, ctx.timeout(guest.regs()));
    if (exit.direction === 'out') {
      const answer = devices.io.write(exit.port, size, ioItem(exit, i), guest);
      if (isPromise(answer)) return later(ctx, answer, (late) => afterWrite(ctx, late) ?? handleIo(ctx, exit, i + 1));
      const stop = afterWrite(ctx, answer);
      if (stop) return stop;
    } else {
      const answer = devices.io.read(exit.port, size, guest);
      const answerRead = (value: number | Stop) => {
        if (isStop(value)) return stopInsideRead(ctx, value);
        setIoItem(exit, i, value);
        return undefined;
      };
      if (isPromise(answer)) return later(ctx, answer, (late) => answerRead(late) ?? handleIo(ctx, exit, i + 1));
      const stop = answerRead(answer);
      if (stop) return stop;
    }
  }
  return undefined;
}

/** What a device's answer to a write means: go on (undefined) or stop. */
function afterWrite(ctx: ExitContext, answer: Stop | void): Stop | undefined {
  if (!answer) return undefined;
  return answer.settled ? answer : unsettled(ctx, answer);
}

function handleMmio(ctx: ExitContext, exit: Extract<VcpuExit, { reason: 'mmio' }>): Handled {
  const { devices, guest } = ctx;
  if (exit.isWrite) {
    const answer = devices.mmio.write(exit.address, exit.length, mmioValue(exit), guest);
    return isPromise(answer) ? later(ctx, answer, (late) => afterWrite(ctx, late)) : afterWrite(ctx, answer);
  }
  const answer = devices.mmio.read(exit.address, exit.length, guest);
  const answerRead = (value: bigint | Stop) => {
    if (isStop(value)) return stopInsideRead(ctx, value);
    setMmioValue(exit, value);
    return undefined;
  };
  return isPromise(answer) ? later(ctx, answer, answerRead) : answerRead(answer);
}

/** An rdmsr or wrmsr of an MSR the test serves: the value, success, or #GP. */
function handleMsr(ctx: ExitContext, exit: Extract<VcpuExit, { reason: 'rdmsr' | 'wrmsr' }>): Handled {
  const { devices, guest } = ctx;
  const answerAccess = (value: bigint | 'gp' | Stop | void) => {
    if (isStop(value)) return stopInsideRead(ctx, value);
    if (value === 'gp') ctx.vcpu.answerMsrExit(1);
    else ctx.vcpu.answerMsrExit(0, typeof value === 'bigint' ? value : undefined);
    return undefined;
  };
  const answer: Answer<bigint | 'gp' | Stop | void> =
    exit.reason === 'rdmsr' ? devices.msrs.read(exit.index, guest) : devices.msrs.write(exit.index, exit.value, guest);
  return isPromise(answer) ? later(ctx, answer, answerAccess) : answerAccess(answer);
}

/**
 * A stop during a port, MMIO or MSR exit: KVM still expects to finish the access
 * on the next KVM_RUN (complete a read into the registers, send the next
 * fragment of a split access, advance rip), which would act on whatever
 * runs next. The machine finishes it before it is reused.
 */
export function unsettled(ctx: ExitContext, stop: Stop): Stop {
  ctx.machine.markExitPending(ctx.vcpu);
  return stop;
}

/** A stop in the middle of a read: keep the registers as they are now. */
function stopInsideRead(ctx: ExitContext, stop: Stop): Stop {
  return unsettled(ctx, { regs: ctx.guest.regs(), ...stop });
}

export function haltStop(guest: GuestView, rip = guest.rip()): Stop {
  const at = rip - 1n;
  if (inEngineStubs(at)) {
    // The stubs halt only after their doorbell, which ends the run first: the
    // guest got here some other way (a jump into the stub), and the halt is
    // not the test's own.
    return {
      outcome: 'error',
      error: { kind: 'host' },
      message: `the guest reached the HLT inside ${guest.describe(at)} without ringing its doorbell ` +
        "(a jump into the engine's stubs?); it does not count as the test halting",
    };
  }
  return { outcome: 'halted', message: `the guest executed HLT at ${guest.describe(at)}` };
}

/** The engine's pages that exception delivery and reporting go through. */
const ENGINE_PAGES: ReadonlyArray<readonly [string, bigint, bigint]> = [
  ['GDT and TSS', LAYOUT.gdt, LAYOUT.idt],
  ['IDT', LAYOUT.idt, LAYOUT.stubs],
  ['exception stubs', LAYOUT.stubs, LAYOUT.istStackBottom],
  ['exception stack', LAYOUT.istStackBottom, LAYOUT.istStackTop],
];

/**
 * When page tables of the test's own are loaded, says which engine page
 * they fail to map at virtual = physical: a likely cause of a triple fault.
 */
function engineAreaHint(guest: GuestView): string {
  const cr3 = guest.cr3();
  if ((cr3 & ~0xfffn) === ENGINE_CR3) return '';
  for (const [what, from, to] of ENGINE_PAGES) {
    for (let page = from; page < to; page += 0x1000n) {
      if (guest.translate(page) !== page) {
        return `. The page tables loaded (cr3 ${hex(cr3)}) are not the engine's, and they do not map the engine's ` +
          `${what} at ${hex(page)} to itself: exceptions are delivered through 0x1000-0x9000, so page tables of a ` +
          "test's own must identity-map that area (or the test must install an IDT of its own)";
      }
    }
  }
  return '';
}

function internalError(guest: GuestView, suberror: number): Stop {
  const regs = guest.regs();
  if (suberror === INTERNAL_ERROR.KVM_INTERNAL_ERROR_EMULATION) {
    const bytes = Array.from(guest.readVirtual(regs.rip, MAX_INSTRUCTION_BYTES));
    const shown = bytes.length > 0 ? bytes.map((b) => b.toString(16).padStart(2, '0')).join(' ') : 'unreadable';
    const fn = guest.mirroredFunction();
    const systemCall = fn === undefined ? undefined : systemCallAt(Uint8Array.from(bytes));
    if (fn !== undefined && systemCall) {
      // A software-assisted KVM cannot emulate int n: the system call ends here rather than at vector 0x80.
      return { outcome: 'error', error: { kind: 'emulation-failure', instructionBytes: bytes }, message: mirroredSystemCall(fn, systemCall, guest.describe(regs.rip)) };
    }
    return {
      outcome: 'error',
      error: { kind: 'emulation-failure', instructionBytes: bytes },
      message: `emulation failure: this host's KVM could not emulate the instruction at ${guest.describe(regs.rip)} ` +
        `(bytes: ${shown}). Software-assisted KVMs (such as PVM) lack many SSE/AVX/x87 instructions, int n and int3; ` +
        'hardware-virtualized KVM (Intel VT-x, AMD-V) runs them. `kvmtest doctor` lists what this host can run.',
    };
  }
  const names: Record<number, string> = {
    [INTERNAL_ERROR.KVM_INTERNAL_ERROR_SIMUL_EX]: 'an exception occurred while KVM was delivering another one',
    [INTERNAL_ERROR.KVM_INTERNAL_ERROR_DELIVERY_EV]: 'KVM could not deliver an event to the guest',
    [INTERNAL_ERROR.KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON]: 'the hardware exited for a reason KVM does not handle',
  };
  return {
    outcome: 'error',
    error: { kind: 'internal-error' },
    message: `KVM internal error ${suberror}: ${names[suberror] ?? 'unknown'}, at ${guest.describe(regs.rip)}`,
  };
}

export function registerDump(regs: Regs, sregs?: Sregs, describe?: (address: bigint) => string): string {
  const h = (v: bigint) => v.toString(16).padStart(16, '0');
  const rows = [
    `rax ${h(regs.rax)} rbx ${h(regs.rbx)} rcx ${h(regs.rcx)} rdx ${h(regs.rdx)}`,
    `rsi ${h(regs.rsi)} rdi ${h(regs.rdi)} rbp ${h(regs.rbp)} rsp ${h(regs.rsp)}`,
    `r8  ${h(regs.r8)} r9  ${h(regs.r9)} r10 ${h(regs.r10)} r11 ${h(regs.r11)}`,
    `r12 ${h(regs.r12)} r13 ${h(regs.r13)} r14 ${h(regs.r14)} r15 ${h(regs.r15)}`,
    `rip ${h(regs.rip)} rflags ${h(regs.rflags)}${describe ? ` (rip at ${describe(regs.rip)})` : ''}`,
  ];
  if (sregs) {
    rows.push(`cr0 ${h(sregs.cr0)} cr2 ${h(sregs.cr2)} cr3 ${h(sregs.cr3)} cr4 ${h(sregs.cr4)} efer ${h(sregs.efer)}`);
  }
  return rows.join('\n');
}
