// Errors raised by the KVM binding. Each names the ioctl or step that failed
// and, where the fix is known, says what to do.
import { strerror } from './libc.js';

/** An ioctl on /dev/kvm, a VM or a vCPU returned an error. */
export class KvmIoctlError extends Error {
  constructor(
    readonly ioctl: string,
    readonly errno: number,
    detail?: string,
  ) {
    super(`${ioctl} failed: ${strerror(errno)} (errno ${errno})${detail ? `: ${detail}` : ''}`);
    this.name = 'KvmIoctlError';
  }
}

/** /dev/kvm is missing, not accessible, or lacks something kvmtest needs. */
export class KvmUnavailableError extends Error {
  constructor(
    message: string,
    readonly reason: 'missing' | 'permission' | 'api-version' | 'capability' | 'other',
  ) {
    super(message);
    this.name = 'KvmUnavailableError';
  }
}
