// The MSR filter that traps writes a snapshot would not undo: pure
// computation, no /dev/kvm needed.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { KVM_MSR_FILTER_MAX_BITMAP_SIZE, KVM_MSR_FILTER_MAX_RANGES, KVM_MSR_FILTER_READ, KVM_MSR_FILTER_WRITE } from '../../src/kvm/constants.js';
import type { MsrFilterRange } from '../../src/kvm/vm.js';
import { composeMsrFilter, msrBlocks, MSR_SPACES, msrTrapRanges } from '../../src/machine/msr-trap.js';

/** Whether the filter lets a guest write to `index` through to KVM (true), traps it (false), or does not cover it (undefined). */
function allows(ranges: readonly MsrFilterRange[], index: number, flag = KVM_MSR_FILTER_WRITE): boolean | undefined {
  // KVM decides by the first range that covers the MSR for that kind of access.
  const range = ranges.find((r) => r.flags & flag && index >= r.base && index < r.base + r.count);
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

describe('composeMsrFilter: the MSRs a test serves, with or without the write trap', () => {
  const trap = msrTrapRanges(new Set([0x10, 0x174]), [0x10, 0x174]);

  test('reads and writes of served MSRs exit; other reads stay allowed; the trap still traps', () => {
    const ranges = composeMsrFilter(trap, [0x10, 0x1234, 0x4000_0010, 0x7000_0000]);
    for (const index of [0x10, 0x1234, 0x4000_0010, 0x7000_0000]) {
      assert.equal(allows(ranges, index, KVM_MSR_FILTER_READ), false, `read 0x${index.toString(16)}`);
      assert.equal(allows(ranges, index, KVM_MSR_FILTER_WRITE), false, `write 0x${index.toString(16)}`);
    }
    assert.notEqual(allows(ranges, 0x11, KVM_MSR_FILTER_READ), false, 'a read of an MSR nobody serves');
    assert.equal(allows(ranges, 0x174, KVM_MSR_FILTER_WRITE), true, 'a restored MSR');
    assert.equal(allows(ranges, 0x11, KVM_MSR_FILTER_WRITE), false, 'trapped: the read range in front of it does not cover writes');
    assert.ok(ranges.length <= KVM_MSR_FILTER_MAX_RANGES);
  });

  test('without the trap only the served MSRs are denied', () => {
    const ranges = composeMsrFilter(undefined, [0x10, 0x12]);
    assert.equal(allows(ranges, 0x10), false);
    assert.equal(allows(ranges, 0x11), true);
    assert.equal(allows(ranges, 0x12, KVM_MSR_FILTER_READ), false);
    assert.deepEqual(composeMsrFilter(undefined, []), []);
  });

  test('msrBlocks groups indices no wider than one range', () => {
    assert.deepEqual(msrBlocks([0x12, 0x10, 0x3000, 0x10000]), [[0x10, 0x3001], [0x10000, 0x10001]]);
    assert.equal(msrBlocks([0, KVM_MSR_FILTER_MAX_BITMAP_SIZE * 8]).length, 2);
  });
});
