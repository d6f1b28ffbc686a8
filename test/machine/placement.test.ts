// Where a machine's parts go and how they are mapped, worked out before any
// VM exists: pure computation over an image and its options. No /dev/kvm.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { GuestImage } from '../../src/image/image.js';
import { SymbolTable } from '../../src/image/symbols.js';
import { LAYOUT } from '../../src/machine/layout.js';
import { type PlacementInput, placeMachine } from '../../src/machine/placement.js';
import { describeRamRange, ramRangeProblem } from '../../src/machine/ram-ranges.js';

function image(...segments: Array<{ vaddr: bigint; size: bigint; lma?: bigint; writable?: boolean; executable?: boolean }>): GuestImage {
  return {
    source: 'test.elf',
    entry: segments[0]!.vaddr,
    symbols: new SymbolTable([]),
    segments: segments.map((s) => ({
      vaddr: s.vaddr,
      lma: s.lma,
      data: new Uint8Array(Number(s.size > 4096n ? 4096n : s.size)),
      memSize: s.size,
      writable: s.writable ?? false,
      executable: s.executable ?? true,
    })),
  };
}

const place = (input: Partial<PlacementInput> & { image: GuestImage }) =>
  placeMachine({ ram: [], stackSize: 64 * 1024, maxPhysBits: 46, ...input });

describe('placeMachine', () => {
  test('a low image is identity-mapped with its permissions, beside the engine area and the stack', () => {
    const p = place({ image: image({ vaddr: 0x200000n, size: 0x3000n }, { vaddr: 0x204000n, size: 0x1000n, writable: true, executable: false }) });
    const segment = p.mappings.find((m) => m.virt === 0x204000n)!;
    assert.deepEqual([segment.phys, segment.size, segment.writable, segment.executable], [0x204000n, 0x1000n, true, false]);
    assert.ok(p.mappings.some((m) => m.name === 'stack' && m.virt === LAYOUT.stackTop - 0x10000n));
    assert.ok(!p.mappings.some((m) => m.virt === 0n), 'page 0 stays unmapped');
    // The engine area and a nearby image share one slot.
    assert.equal(p.regions.length, 1);
    assert.equal(p.regions[0]!.phys, 0n);
  });

  test('a higher-half segment lands at 4 GiB, a segment with a load address at that address', () => {
    const high = place({ image: image({ vaddr: 0xffffffff80001000n, size: 0x1000n }) });
    assert.equal(high.mappings.find((m) => m.virt === 0xffffffff80001000n)!.phys, 0x100001000n);
    const lma = place({ image: image({ vaddr: 0xffffffff80001000n, size: 0x1000n, lma: 0x300000n }) });
    assert.equal(lma.mappings.find((m) => m.virt === 0xffffffff80001000n)!.phys, 0x300000n);
  });

  test('refuses segments in the first megabyte, virtual or physical', () => {
    assert.throws(() => place({ image: image({ vaddr: 0x8000n, size: 0x1000n }) }), /inside the first megabyte/);
    assert.throws(() => place({ image: image({ vaddr: 0x1000n, size: 0x1000n, lma: 0x200000n }) }), /segment at virtual 0x1000 \(loaded at physical 0x200000\) lies in the first megabyte/);
  });

  test('the heap goes to the lowest free 2 MiB boundary, identity-mapped, sharing the image\'s slot', () => {
    const p = place({ image: image({ vaddr: 0x200000n, size: 0x3000n }), heapSize: 0x10000n });
    assert.deepEqual(p.heap, { phys: 0x400000n, size: 0x10000n });
    const heap = p.mappings.find((m) => m.virt === 0x400000n)!;
    assert.deepEqual([heap.phys, heap.size, heap.writable, heap.executable], [0x400000n, 0x10000n, true, true]);
    assert.equal(p.regions.length, 1, 'the engine area, the image and the heap share one slot');
    // Past RAM ranges and MMIO pages in the way.
    const moved = place({
      image: image({ vaddr: 0x200000n, size: 0x3000n }),
      ram: [[0x400000n, 0x401000n]],
      mmio: [{ name: 'device', start: 0x600000n, end: 0x600010n }],
      heapSize: 0x200000n,
    });
    assert.equal(moved.heap?.phys, 0x800000n);
    assert.equal(place({ image: image({ vaddr: 0x200000n, size: 0x1000n }) }).heap, undefined);
    assert.throws(() => place({ image: image({ vaddr: 0x200000n, size: 0x1000n }), heapSize: 0x1234n }), /the heap's size, 4660 bytes, is not a multiple of 4096/);
    assert.throws(
      () => place({ image: image({ vaddr: 0x200000n, size: 0x1000n }), heapSize: 32n << 30n }),
      /this machine would have 32\.\d GiB of guest memory \(the largest part: the engine area and test\.elf at physical 0x200000 and the heap/,
    );
  });

  test('RAM ranges are identity-mapped, writable and executable, in slots of their own', () => {
    const p = place({ image: image({ vaddr: 0x200000n, size: 0x1000n }), ram: [[0x10000000n, 0x10200000n]] });
    const ram = p.mappings.find((m) => m.virt === 0x10000000n)!;
    assert.deepEqual([ram.phys, ram.size, ram.writable, ram.executable], [0x10000000n, 0x200000n, true, true]);
    assert.ok(p.regions.some((r) => r.kind === 'ram' && r.phys === 0x10000000n));
  });

  test('collisions name both parties; the address width and the memory limit are checked', () => {
    assert.throws(() => place({ image: image({ vaddr: 0x200000n, size: 0x2000n }), ram: [[0x201000n, 0x300000n]] }), /RAM range 0 \[0x201000, 0x300000\) overlaps test\.elf/);
    assert.throws(() => place({ image: image({ vaddr: 0x200000n, size: 0x1000n }), ram: [[0x10000000n, 0x10002000n], [0x10001000n, 0x10003000n]] }), /overlapping RAM ranges/);
    assert.throws(() => place({ image: image({ vaddr: 0x200000n, size: 0x1000n }), ram: [[1n << 46n, (1n << 46n) + 0x1000n]], maxGuestMemory: 1n << 50n }), /46-bit physical address space/);
    assert.throws(() => place({ image: image({ vaddr: 0x200000n, size: 0x1000n }), ram: [[0x100000000n, 0x500000000n]] }), /16\.0 GiB of guest memory .*more than the limit of 16 GiB/);
  });
});

describe('the RAM range rule', () => {
  test('end above start, both ends 4 KiB-aligned, clear of the first megabyte, no overlap', () => {
    assert.equal(ramRangeProblem(0x10000000n, 0x10001000n), undefined);
    assert.match(ramRangeProblem(0x10001000n, 0x10001000n)!, /the end must be above the start/);
    assert.match(ramRangeProblem(0x10000800n, 0x10001000n)!, /both ends must be multiples of 4 KiB/);
    assert.match(ramRangeProblem(0x80000n, 0x200000n)!, /overlaps the first megabyte/);
    assert.equal(ramRangeProblem(0x10001000n, 0x10002000n, [[0x10000000n, 0x10002000n]]), ' overlaps RAM range [0x10000000, 0x10002000)');
    assert.equal(describeRamRange(0x10000000n, 0x10001000n), 'RAM range [0x10000000, 0x10001000)');
  });
});
