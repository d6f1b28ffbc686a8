// A KVM virtual machine file descriptor: memory slots, dirty-page logs and
// vCPU creation. Closing the VM closes its vCPUs.
import { CAP, type CapName, IOCTL, KVM_MSR_FILTER_DEFAULT_ALLOW, KVM_MSR_FILTER_MAX_BITMAP_SIZE, KVM_MSR_FILTER_MAX_RANGES, SIZEOF } from './constants.js';
import { KvmIoctlError } from './errors.js';
import type { Kvm } from './kvm.js';
import * as libc from './libc.js';
import { encodeMemoryRegion, type MemoryRegion } from './structs.js';
import { Vcpu } from './vcpu.js';

/** One range of an MSR filter: `count` MSRs from `base`, one bit each in `bitmap`. */
export interface MsrFilterRange {
  /** KVM_MSR_FILTER_READ and/or KVM_MSR_FILTER_WRITE: which accesses the bitmap decides. */
  flags: number;
  base: number;
  count: number;
  bitmap: Uint8Array;
}

export class Vm {
  private readonly vcpus: Vcpu[] = [];
  private closed = false;

  constructor(
    readonly kvm: Kvm,
    readonly fd: number,
  ) {}

  /** KVM_SET_USER_MEMORY_REGION: adds, changes or (memorySize 0) removes a slot. */
  setUserMemoryRegion(region: MemoryRegion): void {
    if (libc.ioctlBuffer(this.fd, IOCTL.KVM_SET_USER_MEMORY_REGION, encodeMemoryRegion(region)) !== 0) {
      const where = `slot ${region.slot} at guest-physical 0x${region.guestPhysAddr.toString(16)}, ` +
        `${region.memorySize} bytes`;
      throw new KvmIoctlError('KVM_SET_USER_MEMORY_REGION', libc.errno(), where);
    }
  }

  /**
   * KVM_GET_DIRTY_LOG: fills the bitmap at `bitmapAddress` (one bit per 4 KiB page of the slot) with
   * the pages written since the last call, and clears the log.
   */
  getDirtyLog(slot: number, bitmapAddress: bigint, request: Uint8Array): void {
    // The bitmap must live in native memory (see GuestMemory): a JS-heap array
    // could move while the kernel writes to it.
    const view = new DataView(request.buffer, request.byteOffset, SIZEOF.kvm_dirty_log);
    view.setUint32(0, slot, true);
    view.setBigUint64(8, bitmapAddress, true);
    if (libc.ioctlBuffer(this.fd, IOCTL.KVM_GET_DIRTY_LOG, request) !== 0) {
      throw new KvmIoctlError('KVM_GET_DIRTY_LOG', libc.errno(), `slot ${slot}`);
    }
  }

  /** KVM_ENABLE_CAP on the VM, with its first argument. */
  enableCap(cap: CapName, arg0: number | bigint = 0): void {
    const buf = new Uint8Array(SIZEOF.kvm_enable_cap);
    const view = new DataView(buf.buffer);
    view.setUint32(0, CAP[cap], true);
    view.setBigUint64(8, BigInt(arg0), true);
    if (libc.ioctlBuffer(this.fd, IOCTL.KVM_ENABLE_CAP, buf) !== 0) throw new KvmIoctlError('KVM_ENABLE_CAP', libc.errno(), cap);
  }

  /**
   * KVM_X86_SET_MSR_FILTER with the default action "allow" and the given
   * ranges (no ranges: filtering off). In each range's bitmap a 1 allows
   * the access and a 0 denies it.
   */
  setMsrFilter(ranges: readonly MsrFilterRange[]): void {
    if (ranges.length > KVM_MSR_FILTER_MAX_RANGES) throw new Error(`internal: an MSR filter takes at most ${KVM_MSR_FILTER_MAX_RANGES} ranges`);
    // KVM reads the bitmaps through pointers inside the struct: they must be
    // native memory for the duration of the call (KVM copies them).
    const bitmapBytes = ranges.reduce((sum, r) => sum + r.bitmap.length, 0);
    const mapped = Math.max(4096, Math.ceil(bitmapBytes / 4096) * 4096);
    const native = libc.mmap(mapped, libc.PROT_READ | libc.PROT_WRITE, libc.MAP_PRIVATE | libc.MAP_ANONYMOUS);
    try {
      const bitmaps = new Uint8Array(libc.view(native, mapped));
      const filter = new Uint8Array(SIZEOF.kvm_msr_filter);
      const view = new DataView(filter.buffer);
      view.setUint32(0, KVM_MSR_FILTER_DEFAULT_ALLOW, true);
      let offset = 0;
      ranges.forEach((range, i) => {
        if (range.bitmap.length > KVM_MSR_FILTER_MAX_BITMAP_SIZE || range.count > range.bitmap.length * 8) {
          throw new Error(`internal: MSR filter range at 0x${range.base.toString(16)} has a bad bitmap`);
        }
        bitmaps.set(range.bitmap, offset);
        const at = 8 + i * SIZEOF.kvm_msr_filter_range;
        view.setUint32(at, range.flags, true);
        view.setUint32(at + 4, range.count, true);
        view.setUint32(at + 8, range.base, true);
        view.setBigUint64(at + 16, native + BigInt(offset), true);
        offset += range.bitmap.length;
      });
      if (libc.ioctlBuffer(this.fd, IOCTL.KVM_X86_SET_MSR_FILTER, filter) !== 0) {
        throw new KvmIoctlError('KVM_X86_SET_MSR_FILTER', libc.errno(), `${ranges.length} ranges`);
      }
    } finally {
      libc.munmap(native, mapped);
    }
  }

  /**
   * KVM_CREATE_IRQCHIP: KVM's interrupt controllers (a local APIC in every
   * vCPU created after this, an IOAPIC with 24 pins, two 8259 PICs), with
   * the default routing of GSIs 0-23 to their pins. Before any vCPU exists.
   */
  createIrqchip(): void {
    if (libc.ioctlValue(this.fd, IOCTL.KVM_CREATE_IRQCHIP, 0) !== 0) throw new KvmIoctlError('KVM_CREATE_IRQCHIP', libc.errno());
  }

  /** KVM_IRQ_LINE: sets GSI `line`'s level (IOAPIC pin, and PIC input below 16). */
  irqLine(line: number, level: boolean): void {
    const buf = new Uint8Array(SIZEOF.kvm_irq_level);
    const view = new DataView(buf.buffer);
    view.setUint32(0, line, true);
    view.setUint32(4, level ? 1 : 0, true);
    if (libc.ioctlBuffer(this.fd, IOCTL.KVM_IRQ_LINE, buf) !== 0) throw new KvmIoctlError('KVM_IRQ_LINE', libc.errno(), `line ${line}`);
  }

  /** KVM_SIGNAL_MSI: a message-signalled interrupt; returns false when no CPU took it (blocked or no destination). */
  signalMsi(address: bigint, data: number): boolean {
    const buf = new Uint8Array(SIZEOF.kvm_msi);
    const view = new DataView(buf.buffer);
    view.setUint32(0, Number(address & 0xffffffffn), true);
    view.setUint32(4, Number((address >> 32n) & 0xffffffffn), true);
    view.setUint32(8, data >>> 0, true);
    const ret = libc.ioctlBuffer(this.fd, IOCTL.KVM_SIGNAL_MSI, buf);
    if (ret < 0) throw new KvmIoctlError('KVM_SIGNAL_MSI', libc.errno(), `address 0x${address.toString(16)}, data 0x${data.toString(16)}`);
    return ret > 0;
  }

  /** KVM_GET_IRQCHIP: one chip's state (IRQCHIP.*), as the 520-byte struct kvm_irqchip. */
  getIrqchip(chip: number): Uint8Array {
    const buf = new Uint8Array(SIZEOF.kvm_irqchip);
    new DataView(buf.buffer).setUint32(0, chip, true);
    if (libc.ioctlBuffer(this.fd, IOCTL.KVM_GET_IRQCHIP, buf) !== 0) throw new KvmIoctlError('KVM_GET_IRQCHIP', libc.errno(), `chip ${chip}`);
    return buf;
  }

  /** KVM_SET_IRQCHIP from bytes getIrqchip() gave (maybe edited). */
  setIrqchip(state: Uint8Array): void {
    if (libc.ioctlBuffer(this.fd, IOCTL.KVM_SET_IRQCHIP, state) !== 0) {
      throw new KvmIoctlError('KVM_SET_IRQCHIP', libc.errno(), `chip ${new DataView(state.buffer, state.byteOffset).getUint32(0, true)}`);
    }
  }

  /** KVM_CREATE_VCPU. */
  createVcpu(id = 0): Vcpu {
    const fd = libc.ioctlValue(this.fd, IOCTL.KVM_CREATE_VCPU, id);
    if (fd < 0) throw new KvmIoctlError('KVM_CREATE_VCPU', libc.errno(), `vCPU ${id}`);
    const vcpu = new Vcpu(this, fd, id);
    this.vcpus.push(vcpu);
    return vcpu;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    // The last first: vCPUs other than 0 run on threads that write into vCPU 0's kvm_run (VcpuThread's wake).
    for (const vcpu of [...this.vcpus].reverse()) vcpu.close();
    libc.close(this.fd);
  }
}
