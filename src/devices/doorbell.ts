// The engine's doorbell: its stubs store one byte into an MMIO page to say
// "the entry function returned" or "exception N arrived" without touching a
// register. For an exception, the CPU's frame on the exception stack tells
// where the guest was (rip, rsp, rflags) and the error code.
import { hex, type GuestAccess, type MmioDevice, type Stop } from './device.js';
import { DOORBELL } from '../machine/layout.js';
import { VECTOR_DESCRIPTIONS, VECTORS_WITH_ERROR_CODE, vectorName } from '../machine/descriptors.js';
import type { FaultInfo } from '../result.js';

const PF = 14;
const GP = 13;
const DF = 8;

export class Doorbell implements MmioDevice {
  readonly name = 'the engine doorbell';

  constructor(private readonly base: bigint) {}

  write(address: bigint, _size: number, value: bigint, guest: GuestAccess): Stop {
    const offset = Number(address - this.base);
    if (offset === DOORBELL.returned) return { outcome: 'returned' };
    if (offset === DOORBELL.exception) return exceptionStop(Number(value & 0xffn), guest);
    return { outcome: 'error', error: { kind: 'host' }, message: `unexpected write at doorbell offset ${hex(offset)}` };
  }
}

function exceptionStop(vector: number, guest: GuestAccess): Stop {
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
  const rflags = frame.getBigUint64(at + 16, true);
  const rsp = frame.getBigUint64(at + 24, true);
  const fault: FaultInfo = { vector, name, rip, location: guest.describe(rip) };
  if (errorCode !== undefined) fault.errorCode = errorCode;
  if (vector === PF) fault.cr2 = guest.sregs().cr2;
  return {
    outcome: 'fault',
    fault,
    regs: { ...regs, rip, rsp, rflags },
    message: describeFault(fault),
  };
}

/** "#PF (page fault) at f+0x3 (0x...): write to a not-present page at 0x0" */
export function describeFault(f: FaultInfo): string {
  const what = f.vector < 32 ? `${f.name} (${VECTOR_DESCRIPTIONS[f.vector]})` : `unexpected ${f.name}`;
  let text = `${what} at ${f.location}`;
  if (f.vector === PF && f.errorCode !== undefined) {
    text += `: ${describePageFault(f.errorCode)} at ${hex(f.cr2 ?? 0n)}`;
  } else if (f.vector === GP && f.errorCode) {
    text += `: error code ${hex(f.errorCode)} (selector index ${f.errorCode >> 3})`;
  } else if (f.vector === DF) {
    text += ': an exception arrived while another one was being delivered';
  } else if (f.errorCode !== undefined) {
    text += `: error code ${hex(f.errorCode)}`;
  }
  return text;
}

function describePageFault(code: number): string {
  const access = code & 0x10 ? 'instruction fetch' : code & 0x2 ? 'write' : 'read';
  const cause = code & 0x8 ? 'a page-table entry with reserved bits set' : code & 0x1 ? 'a page that does not allow it' : 'a not-present page';
  return `${access} ${code & 0x10 ? 'from' : code & 0x2 ? 'to' : 'from'} ${cause} (error code ${hex(code)})`;
}
