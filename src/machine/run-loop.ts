// Runs a machine until something ends the run: enters the vCPU, hands port
// I/O and MMIO exits to the buses, and turns every other exit (HLT, triple
// fault, emulation failure, failed entry, timeout) into a Stop that says
// what happened. Nothing a guest does makes this throw.
import type { IoBus, MmioBus } from '../devices/bus.js';
import { type AccessSize, type GuestAccess, hex, isStop, type Stop } from '../devices/device.js';
import { EXIT, EXIT_NAMES, INTERNAL_ERROR, KVM_EXIT_IO_OUT, RUN } from '../kvm/constants.js';
import type { Regs, Sregs } from '../kvm/structs.js';
import { RUN_INTERRUPTED } from '../kvm/vcpu.js';
import type { ConsoleBuffer } from '../devices/console.js';
import { inEngineStubs } from './descriptors.js';
import { ENGINE_CR3, LAYOUT } from './layout.js';
import type { Machine } from './machine.js';
import { readVirtual, translate } from './paging.js';
import type { RunTimer } from './timeout.js';

export interface RunContext {
  machine: Machine;
  io: IoBus;
  mmio: MmioBus;
  console: ConsoleBuffer;
  timer: RunTimer;
  timeoutMs: number;
}

const SYSTEM_EVENT_NAMES: Record<number, string> = { 1: 'shutdown', 2: 'reset', 3: 'crash' };
const MAX_INSTRUCTION_BYTES = 15;

export function runUntilStop(ctx: RunContext): Stop {
  const { machine, timer } = ctx;
  const guest = new ExitView(ctx);
  timer.arm(ctx.timeoutMs);
  try {
    for (;;) {
      if (machine.vcpu.enter() === RUN_INTERRUPTED) {
        // After EINTR the sync area may be stale: ask KVM for the registers.
        if (timer.expired()) return timeoutStop(ctx, guest, machine.vcpu.getRegs());
        continue;
      }
      guest.newExit();
      const stop = handleExit(ctx, guest);
      if (stop) return stop;
      // A guest that exits back to back spends its time here rather than in
      // KVM_RUN, so the timer's signal rarely interrupts KVM_RUN: check the
      // deadline after every exit too.
      if (timer.expired()) return unsettled(ctx, timeoutStop(ctx, guest, machine.vcpu.syncedRegs()));
    }
  } finally {
    timer.disarm();
  }
}

function handleExit(ctx: RunContext, guest: ExitView): Stop | undefined {
  const run = ctx.machine.vcpu.run;
  const reason = run.getUint32(RUN.exit_reason, true);
  switch (reason) {
    case EXIT.KVM_EXIT_IO:
      return handleIo(ctx, guest);
    case EXIT.KVM_EXIT_MMIO:
      return handleMmio(ctx, guest);
    case EXIT.KVM_EXIT_HLT:
      return haltStop(guest);
    case EXIT.KVM_EXIT_SHUTDOWN:
      return {
        outcome: 'triple-fault',
        message: 'triple fault: an exception could not be delivered, even as a double fault ' +
          `(a broken IDT, GDT, TSS or exception stack?); the vCPU shut down${engineAreaHint(guest)}\n` +
          registerDump(guest.regs(), guest.sregs()),
      };
    case EXIT.KVM_EXIT_INTERNAL_ERROR:
      return internalError(guest, run.getUint32(RUN.exit, true));
    case EXIT.KVM_EXIT_FAIL_ENTRY: {
      const code = run.getBigUint64(RUN.exit, true);
      return {
        outcome: 'error',
        error: { kind: 'entry-failed' },
        message: `KVM could not enter the guest (hardware entry failure reason ${hex(code)}); the vCPU state is invalid`,
      };
    }
    case EXIT.KVM_EXIT_X86_WRMSR:
      if (ctx.machine.letTrappedMsrWriteThrough()) return undefined;
      return {
        outcome: 'error',
        error: { kind: 'host' },
        message: `KVM did not complete the guest's write to MSR ${hex(ctx.machine.unrestoredMsrWrite ?? 0)} at ${guest.describe(guest.rip())}`,
      };
    case EXIT.KVM_EXIT_SYSTEM_EVENT: {
      const type = run.getUint32(RUN.exit, true);
      return {
        outcome: 'error',
        error: { kind: 'unexpected-exit' },
        message: `the guest requested a system ${SYSTEM_EVENT_NAMES[type] ?? `event ${type}`}`,
      };
    }
    default:
      return {
        outcome: 'error',
        error: { kind: 'unexpected-exit' },
        message: `unexpected KVM exit ${EXIT_NAMES.get(reason) ?? reason} at ${guest.describe(guest.regs().rip)}`,
      };
  }
}

function handleIo(ctx: RunContext, guest: ExitView): Stop | undefined {
  const run = ctx.machine.vcpu.run;
  const at = RUN.exit;
  const direction = run.getUint8(at);
  const size = run.getUint8(at + 1) as AccessSize;
  const port = run.getUint16(at + 2, true);
  const count = run.getUint32(at + 4, true);
  const dataOffset = Number(run.getBigUint64(at + 8, true));
  // String I/O (rep outsb/insb) carries `count` items back to back. Each
  // may cost a device real work (a hypercall copies up to a megabyte), so
  // the deadline is checked between them.
  for (let i = 0; i < count; i++) {
    if (i > 0 && ctx.timer.expired()) return unsettled(ctx, timeoutStop(ctx, guest, guest.regs()));
    const offset = dataOffset + i * size;
    if (direction === KVM_EXIT_IO_OUT) {
      const value = size === 1 ? run.getUint8(offset) : size === 2 ? run.getUint16(offset, true) : run.getUint32(offset, true);
      const stop = ctx.io.write(port, size, value, guest);
      if (stop) return stop.settled ? stop : unsettled(ctx, stop);
    } else {
      const value = ctx.io.read(port, size, guest);
      if (isStop(value)) return stopInsideRead(ctx, guest, value);
      if (size === 1) run.setUint8(offset, value & 0xff);
      else if (size === 2) run.setUint16(offset, value & 0xffff, true);
      else run.setUint32(offset, value >>> 0, true);
    }
  }
  return undefined;
}

function handleMmio(ctx: RunContext, guest: ExitView): Stop | undefined {
  const run = ctx.machine.vcpu.run;
  const at = RUN.exit;
  const address = run.getBigUint64(at, true);
  const length = run.getUint32(at + 16, true);
  const isWrite = run.getUint8(at + 20) !== 0;
  if (isWrite) {
    let value = 0n;
    for (let i = length - 1; i >= 0; i--) value = (value << 8n) | BigInt(run.getUint8(at + 8 + i));
    const stop = ctx.mmio.write(address, length, value, guest);
    return stop ? unsettled(ctx, stop) : undefined;
  }
  const value = ctx.mmio.read(address, length, guest);
  if (isStop(value)) return stopInsideRead(ctx, guest, value);
  for (let i = 0; i < length; i++) run.setUint8(at + 8 + i, Number((value >> BigInt(8 * i)) & 0xffn));
  return undefined;
}

/**
 * A stop during a port or MMIO exit: KVM still expects to finish the access
 * on the next KVM_RUN (complete a read into the registers, send the next
 * fragment of a split access, advance rip), which would act on whatever
 * runs next. The machine finishes it before it is reused.
 */
function unsettled(ctx: RunContext, stop: Stop): Stop {
  ctx.machine.exitPending = true;
  return stop;
}

/** A stop in the middle of a read: keep the registers as they are now. */
function stopInsideRead(ctx: RunContext, guest: ExitView, stop: Stop): Stop {
  return unsettled(ctx, { regs: guest.regs(), ...stop });
}

function haltStop(guest: ExitView): Stop {
  const at = guest.rip() - 1n;
  if (inEngineStubs(at)) {
    // The stubs halt only after their doorbell, which ends the run first: the
    // guest got here some other way (a jump into the stub), and the halt is
    // not the test's own.
    return {
      outcome: 'error',
      error: { kind: 'host' },
      message: `the guest reached the HLT inside the engine's stub at ${hex(at)} without ringing its doorbell ` +
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
function engineAreaHint(guest: ExitView): string {
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

function internalError(guest: ExitView, suberror: number): Stop {
  const regs = guest.regs();
  if (suberror === INTERNAL_ERROR.KVM_INTERNAL_ERROR_EMULATION) {
    const bytes = Array.from(guest.readVirtual(regs.rip, MAX_INSTRUCTION_BYTES));
    const shown = bytes.length > 0 ? bytes.map((b) => b.toString(16).padStart(2, '0')).join(' ') : 'unreadable';
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

function timeoutStop(ctx: RunContext, guest: ExitView, regs: Regs): Stop {
  return {
    outcome: 'timeout',
    regs,
    message: `timed out after ${ctx.timeoutMs} ms; the guest was at ${guest.describe(regs.rip)}`,
  };
}

export function registerDump(regs: Regs, sregs?: Sregs): string {
  const h = (v: bigint) => v.toString(16).padStart(16, '0');
  const rows = [
    `rax ${h(regs.rax)} rbx ${h(regs.rbx)} rcx ${h(regs.rcx)} rdx ${h(regs.rdx)}`,
    `rsi ${h(regs.rsi)} rdi ${h(regs.rdi)} rbp ${h(regs.rbp)} rsp ${h(regs.rsp)}`,
    `r8  ${h(regs.r8)} r9  ${h(regs.r9)} r10 ${h(regs.r10)} r11 ${h(regs.r11)}`,
    `r12 ${h(regs.r12)} r13 ${h(regs.r13)} r14 ${h(regs.r14)} r15 ${h(regs.r15)}`,
    `rip ${h(regs.rip)} rflags ${h(regs.rflags)}`,
  ];
  if (sregs) {
    rows.push(`cr0 ${h(sregs.cr0)} cr2 ${h(sregs.cr2)} cr3 ${h(sregs.cr3)} cr4 ${h(sregs.cr4)} efer ${h(sregs.efer)}`);
  }
  return rows.join('\n');
}

/** GuestAccess for one exit: registers decoded once, memory read through the guest's CR3. */
class ExitView implements GuestAccess {
  private regsCache: Regs | undefined;
  private sregsCache: Sregs | undefined;

  constructor(private readonly ctx: RunContext) {}

  newExit(): void {
    this.regsCache = undefined;
    this.sregsCache = undefined;
  }

  regs(): Regs {
    return (this.regsCache ??= this.ctx.machine.vcpu.syncedRegs());
  }

  rip(): bigint {
    return this.regsCache?.rip ?? this.ctx.machine.vcpu.syncedRip();
  }

  sregs(): Sregs {
    return (this.sregsCache ??= this.ctx.machine.vcpu.syncedSregs());
  }

  cr3(): bigint {
    return this.sregsCache?.cr3 ?? this.ctx.machine.vcpu.syncedCr3();
  }

  translate(address: bigint): bigint | undefined {
    return translate(this.ctx.machine.memory, this.cr3(), address);
  }

  readVirtual(address: bigint, length: number): Uint8Array {
    return readVirtual(this.ctx.machine.memory, this.cr3(), address, length);
  }

  readCString(address: bigint, max = 4096): string | undefined {
    const bytes = this.readVirtual(address, max);
    const end = bytes.indexOf(0);
    if (end < 0 && bytes.length < max) return undefined;
    return new TextDecoder().decode(bytes.subarray(0, end < 0 ? bytes.length : end));
  }

  print(bytes: Uint8Array): void {
    this.ctx.console.push(bytes);
  }

  consoleRoom(): number {
    return this.ctx.console.room;
  }

  dropOutput(count: number): void {
    this.ctx.console.drop(count);
  }

  describe(address: bigint): string {
    return this.ctx.machine.image.symbols.describe(address);
  }
}
