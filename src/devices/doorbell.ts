// The engine's doorbell: its return stub and exception stubs do a one-byte
// `out` to the doorbell port, and the address of that `out` says what
// happened ("the entry function returned" or "exception N arrived"), so no
// register or memory is touched. For an exception, the CPU's frame on the
// exception stack tells where the guest was (rip, rsp, rflags) and the
// error code. Any other use of the port is the test's doing and is reported
// as such: it must never pass for a return or an exception.
import { hex, type AccessSize, type GuestAccess, type PortDevice, type Stop } from './device.js';
import { DOORBELL_OUT_LENGTH, stubAt, VECTOR_DESCRIPTIONS, VECTORS_WITH_ERROR_CODE, vectorName } from '../machine/descriptors.js';
import { ENGINE_CR3 } from '../machine/layout.js';
import type { FaultInfo } from '../result.js';

const PF = 14;
const GP = 13;
const DF = 8;
const CR3_ADDRESS = 0x000f_ffff_ffff_f000n;
/** The SDK runtime's stack for handle_exception's handlers (sdk/runtime/desc.c). */
const HANDLER_STACK_SYMBOL = 'kt_handler_stack';

export class DoorbellPort implements PortDevice {
  readonly name = "the engine's doorbell port";

  write(port: number, size: AccessSize, value: number, guest: GuestAccess): Stop | undefined {
    const rip = guest.rip();
    // KVM reports rip at the `out` (hardware exits) or just past it (when
    // its emulator ran the instruction).
    const at = stubAt(rip) ? rip : rip - BigInt(DOORBELL_OUT_LENGTH);
    const signal = size === 1 ? stubAt(at) : undefined;
    if (!signal) return notTheEngine(port, size, value, rip, guest);
    const remapped = remappedStub(at, guest);
    if (remapped) return remapped;
    if (signal.kind === 'returned') return { outcome: 'returned', settled: true };
    const stop = exceptionStop(signal.vector, guest);
    // No stop: mirror mode mapped the page the guest faulted on, and the guest retries.
    return stop && { ...stop, settled: true };
  }
}

/**
 * With page tables of the test's own loaded, the stub's virtual address
 * must still lead to the engine's stub: otherwise the code that rang is not
 * the engine's, and its signal means nothing.
 */
function remappedStub(stub: bigint, guest: GuestAccess): Stop | undefined {
  if ((guest.cr3() & CR3_ADDRESS) === ENGINE_CR3) return undefined;
  const phys = guest.translate(stub);
  if (phys === stub) return undefined;
  return {
    outcome: 'error',
    error: { kind: 'host' },
    message:
      `the doorbell rang from ${guest.describe(stub)}, but the page tables loaded (cr3 ${hex(guest.cr3())}) map that address ` +
      `to ${phys === undefined ? 'nothing' : `physical ${hex(phys)}`}, not to the engine's stubs: ` +
      "page tables of a test's own must map the engine's area (0x1000-0x9000) at virtual = physical",
  };
}

function notTheEngine(port: number, size: AccessSize, value: number, rip: bigint, guest: GuestAccess): Stop {
  return {
    outcome: 'unexpected-io',
    message:
      `unexpected ${size * 8}-bit write (out) of ${hex(value)} to port ${hex(port)} at ${guest.describe(rip)}: ` +
      "the port is the engine's doorbell, which only the engine's own stubs may use",
  };
}

function exceptionStop(vector: number, guest: GuestAccess): Stop | undefined {
  const regs = guest.regs();
  const hasErrorCode = VECTORS_WITH_ERROR_CODE.has(vector);
  const frameBytes = guest.readVirtual(regs.rsp, hasErrorCode ? 48 : 40);
  const name = vectorName(vector);
  if (frameBytes.length < (hasErrorCode ? 48 : 40)) {
    return { outcome: 'fault', message: `${name} raised, but its exception frame at ${hex(regs.rsp)} is unreadable` };
  }
  const frame = new DataView(frameBytes.buffer, frameBytes.byteOffset, frameBytes.byteLength);
  let at = 0;
  const errorCode = hasErrorCode ? Number(frame.getBigUint64(0, true) & 0xffffffffn) : undefined;
  if (hasErrorCode) at = 8;
  const rip = frame.getBigUint64(at, true);
  const cs = frame.getBigUint64(at + 8, true);
  const rflags = frame.getBigUint64(at + 16, true);
  const rsp = frame.getBigUint64(at + 24, true);
  if (vector === PF && errorCode !== undefined && cs === BigInt(guest.sregs().cs.selector)) {
    // Mirror mode maps the process's memory on first touch. The stub
    // changed no register, so the guest resumes at the faulting
    // instruction with the frame's rip, rsp and rflags (and the same cs
    // and ss: no privilege change happened) and retries the access.
    const mirrored = guest.mapOnDemand(guest.sregs().cr2, errorCode);
    if (mirrored === 'mapped') {
      guest.setRegs({ rip, rsp, rflags });
      return undefined;
    }
    if (mirrored) return { outcome: 'error', error: { kind: 'host' }, message: mirrored.error };
  }
  const fault: FaultInfo = { vector, name, rip, location: guest.describe(rip) };
  if (errorCode !== undefined) fault.errorCode = errorCode;
  if (vector === PF) fault.cr2 = guest.sregs().cr2;
  // The runtime runs handle_exception's handlers on a stack of their own:
  // a fault there is a handler's, not the test's.
  const inHandler = guest.describe(rsp).startsWith(`${HANDLER_STACK_SYMBOL}+`);
  return {
    outcome: 'fault',
    fault,
    regs: { ...regs, rip, rsp, rflags },
    message:
      systemCallMessage(vector, rip, guest) ??
      describeFault(fault) + (inHandler ? " (inside an exception handler: rsp is on the runtime's handler stack)" : ''),
  };
}

const UD = 6;
const INT_0X80 = 0x80;

/**
 * Mirror mode: a fault that is a system call instruction in ring 0 (no
 * kernel is there to take it): `syscall` raises #UD (EFER.SCE is off),
 * `sysenter` #UD or #GP (no SYSENTER_CS), `int 0x80` arrives at vector 0x80
 * with rip past it.
 */
function systemCallMessage(vector: number, rip: bigint, guest: GuestAccess): string | undefined {
  const fn = guest.mirroredFunction();
  if (fn === undefined) return undefined;
  const at = vector === INT_0X80 ? rip - 2n : rip;
  const instruction = vector === UD || vector === GP || vector === INT_0X80 ? systemCallAt(guest.readVirtual(at, 2)) : undefined;
  if (!instruction) return undefined;
  return mirroredSystemCall(fn, instruction, guest.describe(at));
}

/** The system call instruction these bytes start with, if any. */
export function systemCallAt(bytes: Uint8Array): string | undefined {
  if (bytes[0] === 0x0f && bytes[1] === 0x05) return 'syscall';
  if (bytes[0] === 0x0f && bytes[1] === 0x34) return 'sysenter';
  if (bytes[0] === 0xcd && bytes[1] === 0x80) return 'int 0x80';
  return undefined;
}

export function mirroredSystemCall(fn: string, instruction: string, where: string): string {
  return `mirrored function ${fn} made a system call (${instruction} at ${where}); mirrored code must not make system calls ` +
    '(there is no kernel in the guest: no I/O, allocation, locks or time through libc; pass in what it needs, or serve ports from TypeScript)';
}

/** "#PF (page fault) at f+0x3 (0x...): supervisor-mode write to a not-present page (error code 0x2) at 0x0" */
export function describeFault(f: FaultInfo): string {
  const what = f.vector < 32 ? `${f.name} (${VECTOR_DESCRIPTIONS[f.vector]})` : `unexpected ${f.name}`;
  let text = `${what} at ${f.location}`;
  if (f.vector === PF && f.errorCode !== undefined) {
    text += `: ${describePageFault(f.errorCode)} at ${hex(f.cr2 ?? 0n)}`;
  } else if (SELECTOR_ERROR_VECTORS.has(f.vector) && f.errorCode) {
    text += `: error code ${hex(f.errorCode)} (${describeSelectorError(f.errorCode)})`;
  } else if (f.vector === DF) {
    text += ': an exception arrived while another one was being delivered';
  } else if (f.errorCode !== undefined) {
    text += `: error code ${hex(f.errorCode)}`;
  }
  return text;
}

/** #TS, #NP, #SS and #GP push a selector error code: EXT, IDT, TI and the index. */
const SELECTOR_ERROR_VECTORS: ReadonlySet<number> = new Set([10, 11, 12, GP]);
const ERROR_EXT = 0x1;
const ERROR_IDT = 0x2;
const ERROR_TI = 0x4;

/** "IDT vector 0x80", "LDT selector 0x1234", "GDT selector 0x28", and "an external event" when EXT is set. */
export function describeSelectorError(code: number): string {
  const index = code >>> 3;
  const where =
    code & ERROR_IDT
      ? `IDT vector ${hex(index & 0xff)}`
      : `${code & ERROR_TI ? 'LDT' : 'GDT'} selector ${hex(code & 0xfffc)} (index ${index & 0x1fff})`;
  return code & ERROR_EXT ? `${where}, during the delivery of an external event` : where;
}

const PF_PRESENT = 0x1;
const PF_WRITE = 0x2;
const PF_USER = 0x4;
const PF_RESERVED = 0x8;
const PF_FETCH = 0x10;
const PF_PK = 0x20;
const PF_SHADOW_STACK = 0x40;
const PF_SGX = 0x8000;

/** "user-mode instruction fetch from a page that does not allow it (error code 0x15)" */
export function describePageFault(code: number): string {
  const mode = code & PF_USER ? 'user-mode' : 'supervisor-mode';
  const access = code & PF_SHADOW_STACK ? 'shadow-stack access' : code & PF_FETCH ? 'instruction fetch' : code & PF_WRITE ? 'write' : 'read';
  const to = !(code & PF_FETCH) && code & PF_WRITE ? 'to' : 'from';
  const cause =
    code & PF_RESERVED
      ? 'a page-table entry with reserved bits set'
      : code & PF_PK
        ? "a page its protection key forbids (PKRU/PKRS)"
        : code & PF_PRESENT
          ? 'a page that does not allow it'
          : 'a not-present page';
  const sgx = code & PF_SGX ? ', an SGX access-control violation' : '';
  return `${mode} ${access} ${to} ${cause}${sgx} (error code ${hex(code)})`;
}
