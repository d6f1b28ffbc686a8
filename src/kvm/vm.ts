// A KVM virtual machine file descriptor: memory slots, dirty-page logs and
// vCPU creation. Closing the VM closes its vCPUs.
import { IOCTL, SIZEOF } from './constants.js';
import { KvmIoctlError } from './errors.js';
import type { Kvm } from './kvm.js';
import * as libc from './libc.js';
import { encodeMemoryRegion, type MemoryRegion } from './structs.js';
import { Vcpu } from './vcpu.js';

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
    for (const vcpu of this.vcpus) vcpu.close();
    libc.close(this.fd);
  }
}
