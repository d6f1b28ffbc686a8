// The /dev/kvm system file descriptor: version and capability checks,
// host-wide queries (supported CPUID, MSR list), and VM creation.
import { CAP, type CapName, IOCTL, KVM_API_VERSION, SIZEOF } from './constants.js';
import { KvmIoctlError, KvmUnavailableError } from './errors.js';
import * as libc from './libc.js';
import { explainNoAccess, hostAccessFacts } from './permission.js';
import { type CpuidEntry, decodeCpuid2 } from './structs.js';
import { Vm } from './vm.js';

export const KVM_DEVICE = '/dev/kvm';

/** Capabilities without which kvmtest cannot run a guest at all. */
export const REQUIRED_CAPS: readonly CapName[] = [
  'KVM_CAP_USER_MEMORY',
  'KVM_CAP_EXT_CPUID',
  'KVM_CAP_SYNC_REGS',
  'KVM_CAP_IMMEDIATE_EXIT',
  'KVM_CAP_VCPU_EVENTS',
  'KVM_CAP_DEBUGREGS',
];

const EACCES = 13;
const ENOENT = 2;
const ENXIO = 6;
const E2BIG = 7;

export class Kvm {
  private closed = false;
  private cpuidCache: CpuidEntry[] | undefined;
  private msrListCache: number[] | undefined;

  private vcpuMmapSizeCache = 0;

  private constructor(readonly fd: number) {}

  /** Size of a vCPU's kvm_run mapping. */
  get vcpuMmapSize(): number {
    return (this.vcpuMmapSizeCache ||= this.ioctlValue('KVM_GET_VCPU_MMAP_SIZE'));
  }

  /** Opens /dev/kvm and checks the API version and the capabilities kvmtest needs. */
  static open(path = KVM_DEVICE): Kvm {
    let fd: number;
    try {
      fd = libc.open(path, libc.O_RDWR | libc.O_CLOEXEC);
    } catch (err) {
      throw describeOpenError(path, err);
    }
    const kvm = new Kvm(fd);
    try {
      let version: number;
      try {
        version = kvm.ioctlValue('KVM_GET_API_VERSION');
      } catch (err) {
        throw new KvmUnavailableError(`${path} opens, but does not answer as KVM does (${(err as Error).message}); is it really the KVM device?`, 'other');
      }
      if (version !== KVM_API_VERSION) {
        throw new KvmUnavailableError(
          `${path} reports KVM API version ${version}; kvmtest needs version ${KVM_API_VERSION}.`,
          'api-version',
        );
      }
      const missing = REQUIRED_CAPS.filter((cap) => !kvm.checkExtension(cap));
      if (missing.length > 0) {
        throw new KvmUnavailableError(
          `this host's KVM lacks ${missing.join(', ')}, which kvmtest needs; ` +
            'use a newer Linux kernel (5.x or later provides all of them).',
          'capability',
        );
      }
    } catch (err) {
      kvm.close();
      throw err;
    }
    return kvm;
  }

  /** KVM_CHECK_EXTENSION: 0 when absent, otherwise a capability-specific positive value. */
  checkExtension(cap: CapName): number {
    return this.ioctlValue('KVM_CHECK_EXTENSION', CAP[cap]);
  }

  /** KVM_GET_SUPPORTED_CPUID: the CPUID leaves KVM can present to a guest. */
  supportedCpuid(): CpuidEntry[] {
    if (this.cpuidCache) return this.cpuidCache;
    for (let count = 128; count <= 4096; count *= 2) {
      const buf = new Uint8Array(SIZEOF.kvm_cpuid2 + count * SIZEOF.kvm_cpuid_entry2);
      new DataView(buf.buffer).setUint32(0, count, true);
      if (libc.ioctlBuffer(this.fd, IOCTL.KVM_GET_SUPPORTED_CPUID, buf) === 0) {
        this.cpuidCache = decodeCpuid2(buf);
        return this.cpuidCache;
      }
      if (libc.errno() !== E2BIG) throw new KvmIoctlError('KVM_GET_SUPPORTED_CPUID', libc.errno());
    }
    throw new KvmIoctlError('KVM_GET_SUPPORTED_CPUID', E2BIG, 'more than 4096 CPUID entries');
  }

  /** KVM_GET_MSR_INDEX_LIST: the MSRs KVM saves and restores for a vCPU. */
  msrIndexList(): number[] {
    if (this.msrListCache) return this.msrListCache;
    const probe = new Uint8Array(SIZEOF.kvm_msr_list);
    // The first call fails with E2BIG and tells how many entries there are.
    libc.ioctlBuffer(this.fd, IOCTL.KVM_GET_MSR_INDEX_LIST, probe);
    const count = new DataView(probe.buffer).getUint32(0, true);
    const buf = new Uint8Array(SIZEOF.kvm_msr_list + count * 4);
    const view = new DataView(buf.buffer);
    view.setUint32(0, count, true);
    if (libc.ioctlBuffer(this.fd, IOCTL.KVM_GET_MSR_INDEX_LIST, buf) !== 0) {
      throw new KvmIoctlError('KVM_GET_MSR_INDEX_LIST', libc.errno());
    }
    const n = view.getUint32(0, true);
    this.msrListCache = Array.from({ length: n }, (_, i) => view.getUint32(4 + i * 4, true));
    return this.msrListCache;
  }

  /** KVM_CREATE_VM: a new, empty virtual machine. */
  createVm(): Vm {
    return new Vm(this, this.ioctlValue('KVM_CREATE_VM', 0));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    libc.close(this.fd);
  }

  private ioctlValue(name: 'KVM_GET_API_VERSION' | 'KVM_CHECK_EXTENSION' | 'KVM_GET_VCPU_MMAP_SIZE' | 'KVM_CREATE_VM', arg = 0): number {
    const ret = libc.ioctlValue(this.fd, IOCTL[name], arg);
    if (ret < 0) throw new KvmIoctlError(name, libc.errno());
    return ret;
  }
}

function describeOpenError(path: string, err: unknown): Error {
  const code = err instanceof libc.SysError ? err.errno : -1;
  if (code === ENOENT || code === ENXIO) {
    return new KvmUnavailableError(
      `${path} does not exist: this machine has no KVM. Enable virtualization in the firmware ` +
        'and load the kvm module (kvm_intel or kvm_amd), or run on a host or VM that offers nested KVM.',
      'missing',
    );
  }
  if (code === EACCES) {
    let message: string;
    try {
      message = explainNoAccess(hostAccessFacts(path));
    } catch {
      message = `no permission to open ${path} read-write; check its owner, group and mode with ls -l ${path}`;
    }
    return new KvmUnavailableError(message, 'permission');
  }
  return new KvmUnavailableError(`cannot open ${path}: ${(err as Error).message}`, 'other');
}
