// The MSR filter that traps writes a snapshot would not undo: pure
// computation, no /dev/kvm needed.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { KVM_MSR_FILTER_MAX_BITMAP_SIZE, KVM_MSR_FILTER_MAX_RANGES, KVM_MSR_FILTER_WRITE } from '../../src/kvm/constants.js';
import type { MsrFilterRange } from '../../src/kvm/vm.js';
import { MSR_SPACES, msrTrapRanges } from '../../src/machine/msr-trap.js';

/** Whether the filter lets a guest write to `index` through to KVM (true), traps it (false), or does not cover it (undefined). */
function allows(ranges: readonly MsrFilterRange[], index: number): boolean | undefined {
  const range = ranges.find((r) => index >= r.base && index < r.base + r.count);
  if (!range) return undefined;
  const bit = index - range.base;
  return (range.bitmap[bit >> 3]! & (1 << (bit & 7))) !== 0;
}

describe('msrTrapRanges', () => {
  const restored = new Set([0x10, 0x174, 0x277, 0x400, 0xc0000081, 0x4b564d01]);
  const ranges = msrTrapRanges(restored, [0x10, 0x174, 0x4b564d01]);

  test('writes to restored MSRs go through; every other MSR of the covered blocks is trapped', () => {
    for (const index of restored) assert.equal(allows(ranges, index), true, `0x${index.toString(16)}`);
    for (const index of [0x0, 0x11, 0x401, 0x47f, 0x2fff, 0xc0000080 + 0x20, 0xc0010200, 0x4b564d10, 0x4b564dff, 0x40000000]) {
      assert.equal(allows(ranges, index), false, `0x${index.toString(16)}`);
    }
  });

  test('the x2APIC block is left out: KVM never filters it', () => {
    for (const index of [0x800, 0x830, 0x8ff]) assert.equal(allows(ranges, index), undefined, `0x${index.toString(16)}`);
  });

  test('an MSR KVM lists outside the known blocks gets a range of its own', () => {
    const withOutlier = msrTrapRanges(new Set([0x10]), [0x10, 0x12345678]);
    assert.equal(allows(withOutlier, 0x12345678), false);
    assert.equal(withOutlier.length, MSR_SPACES.length + 1);
  });

  test('fits what KVM_X86_SET_MSR_FILTER accepts: write ranges, at most 16, bitmaps within the limit', () => {
    assert.ok(ranges.length <= KVM_MSR_FILTER_MAX_RANGES);
    for (const r of ranges) {
      assert.equal(r.flags, KVM_MSR_FILTER_WRITE);
      assert.ok(r.bitmap.length <= KVM_MSR_FILTER_MAX_BITMAP_SIZE, `range at 0x${r.base.toString(16)}`);
      assert.ok(r.count <= r.bitmap.length * 8);
    }
  });
});
