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
//
// The same filter sends the MSRs a test serves itself (hardware/) to user
// space, reads and writes: KVM decides an access by the first range that
// covers the MSR for that kind of access, so the served MSRs' read ranges
// come first, and the trap's write ranges deny the served MSRs too.
import { KVM_MSR_FILTER_MAX_BITMAP_SIZE, KVM_MSR_FILTER_MAX_RANGES, KVM_MSR_FILTER_READ, KVM_MSR_FILTER_WRITE } from '../kvm/constants.js';
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

/** Most MSRs one filter range covers: its bitmap's bits. */
const RANGE_SPAN = KVM_MSR_FILTER_MAX_BITMAP_SIZE * 8;

/** Groups sorted MSR indices into [first, end) blocks no wider than a filter range. */
export function msrBlocks(indices: readonly number[]): Array<[number, number]> {
  const blocks: Array<[number, number]> = [];
  for (const index of [...indices].sort((a, b) => a - b)) {
    const last = blocks[blocks.length - 1];
    if (last && index < last[0] + RANGE_SPAN) last[1] = index + 1;
    else blocks.push([index, index + 1]);
  }
  return blocks;
}

/** A range over [first, end) for `flags` that denies `denied` and allows the rest. */
function denyingRange(flags: number, first: number, end: number, denied: ReadonlySet<number>): MsrFilterRange {
  const count = end - first;
  const bitmap = new Uint8Array(Math.ceil(count / 8)).fill(0xff);
  for (const index of denied) {
    if (index >= first && index < end) bitmap[(index - first) >> 3]! &= ~(1 << ((index - first) & 7));
  }
  return { flags, base: first, count, bitmap };
}

/**
 * The whole filter: reads and writes of the `served` MSRs go to user space,
 * and, when `trap` is given (msrTrapRanges), so do writes outside the
 * restored set.
 */
export function composeMsrFilter(trap: readonly MsrFilterRange[] | undefined, served: readonly number[]): MsrFilterRange[] {
  const denied = new Set(served);
  const blocks = msrBlocks(served);
  const ranges = blocks.map(([first, end]) => denyingRange(KVM_MSR_FILTER_READ, first, end, denied));
  if (trap) {
    for (const range of trap) {
      const bitmap = range.bitmap.slice();
      for (const index of denied) {
        if (index >= range.base && index < range.base + range.count) bitmap[(index - range.base) >> 3]! &= ~(1 << ((index - range.base) & 7));
      }
      ranges.push({ ...range, bitmap });
    }
  }
  // Served MSRs that no trap range covers get write ranges of their own.
  const covered = (index: number) => trap?.some((r) => index >= r.base && index < r.base + r.count) ?? false;
  for (const [first, end] of msrBlocks(served.filter((index) => !covered(index)))) {
    ranges.push(denyingRange(KVM_MSR_FILTER_WRITE, first, end, denied));
  }
  if (ranges.length > KVM_MSR_FILTER_MAX_RANGES) {
    throw new Error(`the MSRs served lie too far apart: KVM's MSR filter needs ${ranges.length} ranges for them, more than its ${KVM_MSR_FILTER_MAX_RANGES}`);
  }
  return ranges;
}
