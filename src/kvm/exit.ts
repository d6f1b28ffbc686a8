// What a KVM_RUN returned, decoded from kvm_run into a typed value (as
// kvm-ioctls' VcpuExit): the only place besides vcpu.ts that knows the
// per-exit union's layout. Data that the host answers (a port or MMIO read)
// is a view into kvm_run, so writing it answers the guest without a copy.
import { EXIT, EXIT_NAMES, KVM_EXIT_IO_OUT, RUN } from './constants.js';

export type AccessSize = 1 | 2 | 4 | 8;

export type VcpuExit =
  /** Port I/O: `count` items of `size` bytes each (more than one for rep ins/outs), back to back in `data`. */
  | { reason: 'io'; direction: 'in' | 'out'; port: number; size: 1 | 2 | 4; count: number; data: DataView }
  /** MMIO: `length` bytes (at most 8) at a guest-physical address; a read is answered by filling `data`. */
  | { reason: 'mmio'; isWrite: boolean; address: bigint; length: number; data: Uint8Array }
  | { reason: 'hlt' }
  /** A triple fault. */
  | { reason: 'shutdown' }
  | { reason: 'internal-error'; suberror: number }
  | { reason: 'fail-entry'; hardwareReason: bigint }
  | { reason: 'system-event'; type: number }
  /** A WRMSR or RDMSR the MSR filter sent to user space; answer with Vcpu.setMsrExitError. */
  | { reason: 'wrmsr'; index: number; value: bigint }
  | { reason: 'rdmsr'; index: number }
  /** KVM_RUN returned EINTR: a signal (the run timer's tick) interrupted it. */
  | { reason: 'interrupted' }
  | { reason: 'other'; code: number; name: string };

export const INTERRUPTED: VcpuExit = { reason: 'interrupted' };
const HLT: VcpuExit = { reason: 'hlt' };
const SHUTDOWN: VcpuExit = { reason: 'shutdown' };

/** The exit in `run` (the vCPU's kvm_run mapping) after a KVM_RUN that returned 0. */
export function decodeExit(run: DataView): VcpuExit {
  const code = run.getUint32(RUN.exit_reason, true);
  const at = RUN.exit;
  switch (code) {
    case EXIT.KVM_EXIT_IO: {
      const size = run.getUint8(at + 1) as 1 | 2 | 4;
      const count = run.getUint32(at + 4, true);
      const offset = Number(run.getBigUint64(at + 8, true));
      const bytes = Math.max(0, Math.min(size * count, run.byteLength - offset));
      return {
        reason: 'io',
        direction: run.getUint8(at) === KVM_EXIT_IO_OUT ? 'out' : 'in',
        port: run.getUint16(at + 2, true),
        size,
        count: Math.floor(bytes / size),
        data: new DataView(run.buffer, run.byteOffset + offset, bytes),
      };
    }
    case EXIT.KVM_EXIT_MMIO:
      return {
        reason: 'mmio',
        address: run.getBigUint64(at, true),
        data: new Uint8Array(run.buffer, run.byteOffset + at + 8, 8),
        length: Math.min(8, run.getUint32(at + 16, true)),
        isWrite: run.getUint8(at + 20) !== 0,
      };
    case EXIT.KVM_EXIT_HLT:
      return HLT;
    case EXIT.KVM_EXIT_SHUTDOWN:
      return SHUTDOWN;
    case EXIT.KVM_EXIT_INTERNAL_ERROR:
      return { reason: 'internal-error', suberror: run.getUint32(at, true) };
    case EXIT.KVM_EXIT_FAIL_ENTRY:
      return { reason: 'fail-entry', hardwareReason: run.getBigUint64(at, true) };
    case EXIT.KVM_EXIT_SYSTEM_EVENT:
      return { reason: 'system-event', type: run.getUint32(at, true) };
    case EXIT.KVM_EXIT_X86_WRMSR:
      return { reason: 'wrmsr', index: run.getUint32(RUN.msr_index, true), value: run.getBigUint64(RUN.msr_data, true) };
    case EXIT.KVM_EXIT_X86_RDMSR:
      return { reason: 'rdmsr', index: run.getUint32(RUN.msr_index, true) };
    default:
      return { reason: 'other', code, name: EXIT_NAMES.get(code) ?? String(code) };
  }
}

/** A port read's or write's item `i` (of `size` bytes, little-endian). */
export function ioItem(exit: { size: 1 | 2 | 4; data: DataView }, i: number): number {
  const at = i * exit.size;
  return exit.size === 1 ? exit.data.getUint8(at) : exit.size === 2 ? exit.data.getUint16(at, true) : exit.data.getUint32(at, true);
}

/** Sets a port read's item `i` (its low `size` bytes of `value`). */
export function setIoItem(exit: { size: 1 | 2 | 4; data: DataView }, i: number, value: number): void {
  const at = i * exit.size;
  if (exit.size === 1) exit.data.setUint8(at, value & 0xff);
  else if (exit.size === 2) exit.data.setUint16(at, value & 0xffff, true);
  else exit.data.setUint32(at, value >>> 0, true);
}

/** An MMIO write's value (its `length` bytes, little-endian). */
export function mmioValue(exit: { length: number; data: Uint8Array }): bigint {
  let value = 0n;
  for (let i = exit.length - 1; i >= 0; i--) value = (value << 8n) | BigInt(exit.data[i]!);
  return value;
}

/** Answers an MMIO read with the low `length` bytes of `value`. */
export function setMmioValue(exit: { length: number; data: Uint8Array }, value: bigint): void {
  for (let i = 0; i < exit.length; i++) exit.data[i] = Number((value >> BigInt(8 * i)) & 0xffn);
}
