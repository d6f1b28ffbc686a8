// Whether this machine can run the engine's tests: /dev/kvm must open
// read-write and the toolchain that builds guests must be on PATH. Without
// them a test is skipped with the reason, except under CI (CI set), where
// the tests run anyway and fail: CI has /dev/kvm, and a silent skip there
// would hide breakage.
import { closeSync, constants, existsSync, openSync } from 'node:fs';
import type { TestOptions } from 'node:test';
import { missingTools } from './toolchain.js';

export const KVM_PATH = '/dev/kvm';

/** True when the CI environment variable is set (to anything but the empty string). */
export const IN_CI = (process.env['CI'] ?? '') !== '';

let kvmProbe: { reason?: string } | undefined;

/** Why /dev/kvm cannot be opened read-write, or undefined when it can. */
export function kvmUnavailableReason(): string | undefined {
  if (!kvmProbe) {
    try {
      closeSync(openSync(KVM_PATH, constants.O_RDWR));
      kvmProbe = {};
    } catch (err) {
      kvmProbe = { reason: `${KVM_PATH} cannot be opened read-write (${(err as Error).message})` };
    }
  }
  return kvmProbe.reason;
}

let toolProbe: string[] | undefined;

/** Why guests cannot be built here, or undefined when gcc and binutils are on PATH. */
export function toolchainUnavailableReason(): string | undefined {
  toolProbe ??= missingTools();
  return toolProbe.length > 0 ? `the guest toolchain is incomplete: ${toolProbe.join(', ')} not found on PATH` : undefined;
}

/** Why a test that runs guests must be skipped here; undefined to run it (always under CI). */
export function guestSkipReason(): string | undefined {
  if (IN_CI) return undefined;
  return kvmUnavailableReason() ?? toolchainUnavailableReason();
}

/** Options for a test that runs guests: `{ skip: reason }` where it cannot run, otherwise none. */
export function guestTest(extra: TestOptions = {}): TestOptions {
  const reason = guestSkipReason();
  return reason ? { ...extra, skip: reason } : extra;
}

/** Options for a test that only builds with the host toolchain (no KVM needed). */
export function toolchainTest(extra: TestOptions = {}): TestOptions {
  const reason = IN_CI ? undefined : toolchainUnavailableReason();
  return reason ? { ...extra, skip: reason } : extra;
}

/**
 * True on a software-assisted KVM (PVM, the kvm_pvm module): ring-0 guest code
 * runs in KVM's instruction emulator, which lacks some instructions and some
 * corner cases of exception delivery that hardware KVM has.
 */
export function isSoftwareKvm(): boolean {
  return existsSync('/sys/module/kvm_pvm');
}
