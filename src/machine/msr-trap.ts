// Which guest MSR writes a reused machine must hear about. A snapshot
// restores a known list of MSRs; a test that writes any other MSR could
// leave state behind that no restore undoes (machine-check banks, a
// paravirtual MSR that KVM accepts but does not list). KVM's MSR filter
// makes every write outside the restored list exit to user space, where the
// machine lets it through and marks itself for discarding after the test.
//
// The filter can only deny within ranges (16 of at most 12,288 MSRs each);
// outside them writes go straight to KVM. So the ranges cover every block of
// the MSR space where KVM implements MSRs at all, and any MSR KVM lists
// outside those blocks gets a range of its own. Elsewhere KVM has no MSR to
// write: the write raises #GP (or, with kvm.ignore_msrs, is dropped) and
// leaves no state.
import { KVM_MSR_FILTER_MAX_BITMAP_SIZE, KVM_MSR_FILTER_MAX_RANGES, KVM_MSR_FILTER_WRITE } from '../kvm/constants.js';
import type { MsrFilterRange } from '../kvm/vm.js';

/** Blocks of the MSR space where KVM implements MSRs, as [first, end). */
export const MSR_SPACES: ReadonlyArray<readonly [number, number]> = [
  // Architectural and model-specific MSRs. KVM never filters the x2APIC
  // block 0x800-0x8ff (and ignores a range that covers it), so it is left
  // out; without an in-kernel APIC those MSRs do not exist.
  [0x0000_0000, 0x0000_0800],
  [0x0000_0900, 0x0000_3000],
  [0x4000_0000, 0x4000_0200], // Hyper-V's and other hypervisors' synthetic MSRs
  [0x4b56_4d00, 0x4b56_4e00], // KVM's and PVM's paravirtual MSRs
  [0xc000_0000, 0xc000_3000], // x86-64 and AMD64: EFER, STAR, FS/GS base...
  [0xc001_0000, 0xc001_3000], // AMD model-specific MSRs
];

/**
 * Ranges that trap writes to every MSR in MSR_SPACES and in `listed`
 * except those in `restored`.
 */
export function msrTrapRanges(restored: ReadonlySet<number>, listed: readonly number[]): MsrFilterRange[] {
  const blocks: Array<readonly [number, number]> = [...MSR_SPACES];
  for (const index of listed) {
    if (!blocks.some(([first, end]) => index >= first && index < end)) blocks.push([index, index + 1]);
  }
  if (blocks.length > KVM_MSR_FILTER_MAX_RANGES) {
    throw new Error(`internal: ${blocks.length} MSR blocks to trap, more than an MSR filter's ${KVM_MSR_FILTER_MAX_RANGES} ranges`);
  }
  return blocks.map(([first, end]) => {
    const count = end - first;
    const bitmap = new Uint8Array(Math.ceil(count / 8));
    if (bitmap.length > KVM_MSR_FILTER_MAX_BITMAP_SIZE) throw new Error(`internal: MSR block at 0x${first.toString(16)} is too large`);
    for (let index = first; index < end; index++) {
      if (restored.has(index)) bitmap[(index - first) >> 3]! |= 1 << ((index - first) & 7);
    }
    return { flags: KVM_MSR_FILTER_WRITE, base: first, count, bitmap };
  });
}
