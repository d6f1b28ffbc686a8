// A vCPU file descriptor and its shared kvm_run page. KVM_RUN, register
// access (ioctls, or the kvm_run sync area that saves a syscall per access),
// and the opaque state blobs a snapshot saves and restores.
import {
  IOCTL,
  type IoctlName,
  KVM_SYNC_X86_EVENTS,
  KVM_SYNC_X86_REGS,
  KVM_SYNC_X86_SREGS,
  RUN,
  RUN_CR8,
  SIZEOF,
} from './constants.js';
import { KvmIoctlError } from './errors.js';
import { decodeExit, INTERRUPTED, type VcpuExit } from './exit.js';
import * as libc from './libc.js';
import {
  type CpuidEntry,
  REG_OFFSET,
  decodeMsrs,
  decodeRegs,
  decodeSregs,
  encodeCpuid2,
  encodeMsrs,
  encodeRegs,
  encodeSregs,
  type Regs,
  SREGS_CR3_OFFSET,
  SREGS_CR8_OFFSET,
  type Sregs,
} from './structs.js';
import { VcpuThread } from './vcpu-thread.js';
import type { Vm } from './vm.js';

/** State KVM keeps per vCPU that kvmtest saves as opaque bytes and restores as-is. */
export type StateBlob = 'fpu' | 'xsave' | 'xcrs' | 'events' | 'debugregs' | 'lapic' | 'mpState';

const BLOB_IOCTLS: Record<StateBlob, { get: IoctlName; set: IoctlName; size: number }> = {
  fpu: { get: 'KVM_GET_FPU', set: 'KVM_SET_FPU', size: SIZEOF.kvm_fpu },
  xsave: { get: 'KVM_GET_XSAVE', set: 'KVM_SET_XSAVE', size: SIZEOF.kvm_xsave },
  xcrs: { get: 'KVM_GET_XCRS', set: 'KVM_SET_XCRS', size: SIZEOF.kvm_xcrs },
  events: { get: 'KVM_GET_VCPU_EVENTS', set: 'KVM_SET_VCPU_EVENTS', size: SIZEOF.kvm_vcpu_events },
  debugregs: { get: 'KVM_GET_DEBUGREGS', set: 'KVM_SET_DEBUGREGS', size: SIZEOF.kvm_debugregs },
  // With an in-kernel interrupt controller: the local APIC's registers (its timer included) and the run state.
  lapic: { get: 'KVM_GET_LAPIC', set: 'KVM_SET_LAPIC', size: SIZEOF.kvm_lapic_state },
  mpState: { get: 'KVM_GET_MP_STATE', set: 'KVM_SET_MP_STATE', size: SIZEOF.kvm_mp_state },
};

/** The SysV integer argument registers, in order. */
const ARG_REGS = ['rdi', 'rsi', 'rdx', 'rcx', 'r8', 'r9'] as const;

/** Encoded CPUID tables, by the entries array they came from (the host's rarely changes). */
const encodedCpuid = new WeakMap<readonly CpuidEntry[], Uint8Array>();

export class Vcpu {
  /** The kvm_run structure shared with the kernel (only this file and exit.ts read its layout). */
  private readonly area: DataView;
  private readonly runAddress: bigint;
  private readonly runSize: number;
  private readonly regsBuf = new Uint8Array(SIZEOF.kvm_regs);
  /** The sync area's kvm_regs, kvm_sregs and kvm_vcpu_events, as bytes. */
  private readonly syncRegsBytes: Uint8Array;
  private readonly syncSregsBytes: Uint8Array;
  private readonly syncEventsBytes: Uint8Array;
  private readonly sregsBuf = new Uint8Array(SIZEOF.kvm_sregs);
  private closed = false;

  constructor(
    readonly vm: Vm,
    readonly fd: number,
    readonly id: number,
  ) {
    this.runSize = vm.kvm.vcpuMmapSize;
    this.runAddress = libc.mmap(this.runSize, libc.PROT_READ | libc.PROT_WRITE, libc.MAP_SHARED, fd, 0);
    const runBuffer = libc.view(this.runAddress, this.runSize);
    this.area = new DataView(runBuffer);
    this.syncRegsBytes = new Uint8Array(runBuffer, RUN.sync_regs, SIZEOF.kvm_regs);
    this.syncSregsBytes = new Uint8Array(runBuffer, RUN.sync_sregs, SIZEOF.kvm_sregs);
    this.syncEventsBytes = new Uint8Array(runBuffer, RUN.sync_events, SIZEOF.kvm_vcpu_events);
    // Ask KVM to copy the general registers and sregs into kvm_run on every
    // exit: reading them then costs no system call.
    this.area.setBigUint64(
      RUN.kvm_valid_regs,
      BigInt(KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS | KVM_SYNC_X86_EVENTS),
      true,
    );
  }

  /**
   * The host thread of its own this vCPU runs on (vcpu-thread.ts), when it
   * is not the owner's: a machine's vCPUs other than 0.
   */
  private thread: VcpuThread | undefined;

  /** Runs this vCPU on a thread of its own from now on; `wakeRunAddress` as VcpuThread takes it. */
  startThread(wakeRunAddress: bigint): void {
    this.thread ??= new VcpuThread(this.fd, this.runAddress, wakeRunAddress);
  }

  /** kvm_run's address, for another vCPU's thread to interrupt this one (see VcpuThread). */
  get runAreaAddress(): bigint {
    return this.runAddress;
  }

  /** KVM_RUN, and what the guest did to end it: the typed exit (exit.ts). On its own thread, waited for. */
  run(): VcpuExit {
    this.hasRun = true;
    if (this.thread) return this.exitFrom(this.thread.runSync());
    return this.exitFrom(libc.ioctlValueOnce(this.fd, IOCTL.KVM_RUN, 0) === 0 ? 0 : libc.errno());
  }

  /** On its own thread: starts a KVM_RUN and returns at once; pollRun() tells when it ended. */
  startRun(): void {
    if (!this.thread) throw new Error('internal: startRun() on a vCPU without a thread of its own');
    this.hasRun = true;
    this.thread.start();
  }

  /** On its own thread: the exit of the KVM_RUN startRun() began, or undefined while it runs. */
  pollRun(): VcpuExit | undefined {
    const thread = this.thread!;
    return thread.exited() ? this.exitFrom(thread.take()) : undefined;
  }

  /** True while a KVM_RUN startRun() began has not been collected by pollRun(). */
  get running(): boolean {
    return this.thread?.busy() ?? false;
  }

  /**
   * On its own thread: ends a KVM_RUN under way (it returns EINTR, or the
   * exit it had reached) and returns that exit; undefined if none was under way.
   */
  stopRun(): VcpuExit | undefined {
    const result = this.thread?.stop();
    this.clearImmediateExit();
    return result === undefined ? undefined : this.exitFrom(result);
  }

  /** After an interruption by another vCPU's thread (VcpuThread's wake): KVM_RUN may block again. */
  clearImmediateExit(): void {
    this.area.setUint8(RUN.immediate_exit, 0);
  }

  /** What a KVM_RUN that returned `code` (0 or an errno) means. */
  private exitFrom(code: number): VcpuExit {
    if (code === 0) return decodeExit(this.area);
    if (code === libc.EINTR || code === libc.EAGAIN) return INTERRUPTED;
    throw new KvmIoctlError('KVM_RUN', code);
  }

  /**
   * Lets KVM finish what it still owes the last exit without running the
   * guest: KVM_RUN with immediate_exit set, as api.rst prescribes before
   * saving a vCPU's state. An access KVM split in fragments (16 bytes to
   * MMIO, or across pages) exits once per fragment, so each further port or
   * MMIO exit is answered (reads with zeros) until KVM returns EINTR, its
   * sign that nothing is left. Returns false if KVM still wants more after
   * `maxRounds`, or exits for another reason: the vCPU is then not to be
   * trusted with another run.
   */
  settlePendingExit(maxRounds = 32): boolean {
    this.area.setUint8(RUN.immediate_exit, 1);
    try {
      for (let round = 0; round < maxRounds; round++) {
        const exit = this.run();
        if (exit.reason === 'interrupted') return true;
        if (exit.reason === 'io') {
          if (exit.direction === 'in') new Uint8Array(exit.data.buffer, exit.data.byteOffset, exit.data.byteLength).fill(0);
        } else if (exit.reason === 'mmio') {
          if (!exit.isWrite) exit.data.fill(0);
        } else {
          return false;
        }
      }
      return false;
    } finally {
      this.area.setUint8(RUN.immediate_exit, 0);
    }
  }

  /** False until the first KVM_RUN: before it, the sync area holds nothing KVM wrote. */
  private hasRun = false;

  /** The registers as of the last exit (from the kvm_run sync area). */
  syncedRegs(): Regs {
    return decodeRegs(this.area, RUN.sync_regs);
  }

  /** A KVM_EXIT_X86_WRMSR or RDMSR exit: the MSR and (for a write) the value. */
  msrExit(): { index: number; data: bigint } {
    return { index: this.area.getUint32(RUN.msr_index, true), data: this.area.getBigUint64(RUN.msr_data, true) };
  }

  /** Answers an MSR exit: 0 lets the access complete, 1 makes KVM inject #GP. */
  setMsrExitError(error: 0 | 1): void {
    this.area.setUint8(RUN.msr_error, error);
  }

  /** Answers an MSR exit: with `error` 0 the access completes (an rdmsr with `data`), with 1 KVM injects #GP. */
  answerMsrExit(error: 0 | 1, data?: bigint): void {
    this.area.setUint8(RUN.msr_error, error);
    if (data !== undefined) this.area.setBigUint64(RUN.msr_data, BigInt.asUintN(64, data), true);
  }

  /** The sync area's kvm_vcpu_events, copied. */
  syncedEvents(): Uint8Array {
    return this.syncEventsBytes.slice();
  }

  /** Stages every general register in the sync area; KVM loads them on the next KVM_RUN. */
  stageRegs(regs: Regs): void {
    encodeRegs(regs, this.area, RUN.sync_regs);
    this.markDirty(KVM_SYNC_X86_REGS);
  }

  /** The special registers as of the last exit (from the kvm_run sync area). */
  syncedSregs(): Sregs {
    return decodeSregs(this.area, RUN.sync_sregs);
  }

  /** rip as of the last exit, without decoding the other registers. */
  syncedRip(): bigint {
    return this.area.getBigUint64(RUN.sync_regs + REG_OFFSET.rip, true);
  }

  /** cr3 as of the last exit, without decoding the other special registers. */
  syncedCr3(): bigint {
    return this.area.getBigUint64(RUN.sync_sregs + SREGS_CR3_OFFSET, true);
  }

  /**
   * Stages the registers a function call starts with: all zero but rip,
   * rsp, rflags and up to six SysV integer arguments (rdi, rsi, rdx, rcx,
   * r8, r9). Writes kvm_run directly: this runs once per test.
   */
  stageEntry(rip: bigint, rsp: bigint, rflags: bigint, args: readonly bigint[]): void {
    this.syncRegsBytes.fill(0);
    const run = this.area;
    run.setBigUint64(RUN.sync_regs + REG_OFFSET.rip, rip, true);
    run.setBigUint64(RUN.sync_regs + REG_OFFSET.rsp, rsp, true);
    run.setBigUint64(RUN.sync_regs + REG_OFFSET.rflags, rflags, true);
    for (let i = 0; i < args.length && i < ARG_REGS.length; i++) {
      run.setBigUint64(RUN.sync_regs + REG_OFFSET[ARG_REGS[i]!], BigInt.asUintN(64, args[i]!), true);
    }
    this.markDirty(KVM_SYNC_X86_REGS);
  }

  /** Stages special registers in the sync area; KVM loads them on the next KVM_RUN. */
  stageSregs(sregs: Sregs): void {
    encodeSregs(sregs, this.area, RUN.sync_sregs);
    this.markDirty(KVM_SYNC_X86_SREGS);
    this.stageCr8();
  }

  /**
   * Stages raw kvm_vcpu_events bytes unless the sync area already holds
   * them (the snapshot fast path). Returns whether anything was staged.
   */
  stageRawEvents(raw: Uint8Array): boolean {
    return this.stageRawIfChanged(raw, this.syncEventsBytes, KVM_SYNC_X86_EVENTS);
  }

  /**
   * Stages raw kvm_sregs bytes unless the sync area already holds them:
   * loading special registers makes KVM reset its MMU context, which is
   * worth skipping when nothing changed. Returns whether anything was staged.
   */
  stageRawSregs(raw: Uint8Array): boolean {
    const staged = this.stageRawIfChanged(raw, this.syncSregsBytes, KVM_SYNC_X86_SREGS);
    this.stageCr8();
    return staged;
  }

  /**
   * Without an in-kernel local APIC, KVM_RUN loads CR8 from kvm_run.cr8
   * after the synced sregs, and kvm_run.cr8 still holds the value of the
   * last exit: copy the staged sregs' cr8 there, or a guest's CR8 outlives
   * a restore.
   */
  private stageCr8(): void {
    this.area.setBigUint64(RUN_CR8, this.area.getBigUint64(RUN.sync_sregs + SREGS_CR8_OFFSET, true), true);
  }

  private stageRawIfChanged(raw: Uint8Array, current: Uint8Array, bit: number): boolean {
    if (!this.hasRun || !equalBytes(current, raw)) {
      current.set(raw);
      this.markDirty(bit);
      return true;
    }
    return false;
  }

  private markDirty(bits: number): void {
    // The sync flags live in the low byte of the 64-bit kvm_dirty_regs.
    const low = this.area.getUint32(RUN.kvm_dirty_regs, true);
    this.area.setUint32(RUN.kvm_dirty_regs, low | bits, true);
  }

  getRegs(): Regs {
    this.ioctl('KVM_GET_REGS', this.regsBuf);
    return decodeRegs(new DataView(this.regsBuf.buffer));
  }

  setRegs(regs: Regs): void {
    encodeRegs(regs, new DataView(this.regsBuf.buffer));
    this.ioctl('KVM_SET_REGS', this.regsBuf);
  }

  getSregs(): Sregs {
    this.ioctl('KVM_GET_SREGS', this.sregsBuf);
    return decodeSregs(new DataView(this.sregsBuf.buffer));
  }

  /**
   * KVM_SET_SREGS from raw kvm_sregs bytes, at once (not staged), and the
   * sync area updated to match, so that it stages nothing older.
   */
  setRawSregs(raw: Uint8Array): void {
    this.ioctl('KVM_SET_SREGS', raw);
    this.syncSregsBytes.set(raw);
    this.area.setUint32(RUN.kvm_dirty_regs, this.area.getUint32(RUN.kvm_dirty_regs, true) & ~KVM_SYNC_X86_SREGS, true);
  }

  setSregs(sregs: Sregs): void {
    encodeSregs(sregs, new DataView(this.sregsBuf.buffer));
    this.ioctl('KVM_SET_SREGS', this.sregsBuf);
  }

  setCpuid(entries: readonly CpuidEntry[]): void {
    let encoded = encodedCpuid.get(entries);
    if (!encoded) encodedCpuid.set(entries, (encoded = encodeCpuid2(entries)));
    this.ioctl('KVM_SET_CPUID2', encoded);
  }

  /** KVM_GET_MSRS for the given indices; returns only the MSRs KVM could read, in order. */
  getMsrs(indices: readonly number[]): Array<[number, bigint]> {
    const buf = encodeMsrs(indices.map((index) => [index, 0n] as const));
    const read = libc.ioctlBuffer(this.fd, IOCTL.KVM_GET_MSRS, buf);
    if (read < 0) throw new KvmIoctlError('KVM_GET_MSRS', libc.errno());
    return decodeMsrs(buf, read);
  }

  /** KVM_SET_MSRS from a buffer made by encodeMsrs; returns how many were written. */
  setMsrs(encoded: Uint8Array): number {
    const written = libc.ioctlBuffer(this.fd, IOCTL.KVM_SET_MSRS, encoded);
    if (written < 0) throw new KvmIoctlError('KVM_SET_MSRS', libc.errno());
    return written;
  }

  /** Reads one of the opaque state blobs (FPU, XSAVE, XCRs, events, debug registers). */
  getBlob(blob: StateBlob): Uint8Array {
    const { get, size } = BLOB_IOCTLS[blob];
    const buf = new Uint8Array(size);
    this.ioctl(get, buf);
    return buf;
  }

  setBlob(blob: StateBlob, data: Uint8Array): void {
    this.ioctl(BLOB_IOCTLS[blob].set, data);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.thread?.close();
    libc.munmap(this.runAddress, this.runSize);
    libc.close(this.fd);
  }

  private ioctl(name: IoctlName, buf: Uint8Array): void {
    if (libc.ioctlBuffer(this.fd, IOCTL[name], buf) < 0) {
      throw new KvmIoctlError(name, libc.errno());
    }
  }
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
