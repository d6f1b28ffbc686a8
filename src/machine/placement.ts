// Decides where everything goes in guest-physical memory and how it is
// mapped: image segments (identity for low links, an offset for higher-half
// ones, or the linker's LMA), RAM ranges (identity), the stack and the
// engine's own pages. Pure computation: it checks every collision and says
// which two things collide, before any VM exists.
import type { GuestImage } from '../image/image.js';
import { HIGHER_HALF_BASE, HIGHER_HALF_PHYS, LAYOUT } from './layout.js';
import { ramRangeProblem } from './ram-ranges.js';
import { pageCeil, pageFloor } from './memory.js';

export type RamRange = readonly [bigint | number, bigint | number];

/** A stretch of guest-physical memory backed by one memory slot. */
export interface PhysRegion {
  name: string;
  phys: bigint;
  size: bigint;
  kind: 'engine' | 'image' | 'ram' | 'heap' | 'cpus' | 'mirror-tables';
}

/** A virtual range mapped onto a physical one with given permissions. */
export interface Mapping {
  name: string;
  virt: bigint;
  phys: bigint;
  size: bigint;
  writable: boolean;
  executable: boolean;
}

export interface Placement {
  regions: PhysRegion[];
  mappings: Mapping[];
  /** Bytes to copy into guest-physical memory at load. */
  contents: Array<{ phys: bigint; data: Uint8Array }>;
  stackBottom: bigint;
  /** Mirror mode's guest-physical space (see MirrorPlacement), when asked for. */
  mirror?: MirrorPlacement;
  /** The test's heap (heapSize), identity-mapped; absent without one. */
  heap?: { phys: bigint; size: bigint };
  /** Each vCPU but 0's own stack, exception stack and TSS (secondaryCpus); absent without them. */
  secondaryCpus?: SecondaryCpuPlacement[];
}

/** Where a vCPU other than 0 keeps what must be its own (all identity-mapped). */
export interface SecondaryCpuPlacement {
  /** rsp's start: the stack's top. */
  stackTop: bigint;
  /** The TSS (its IST1 points at istTop). */
  tss: bigint;
  istTop: bigint;
}

/**
 * Per vCPU other than 0: [guard][exception stack][guard][stack][TSS page].
 * The guards are unmapped, so that an overflow of either stack faults.
 */
const SECONDARY_IST_SIZE = 0x2000n;
function secondaryBlockSize(stackSize: number): bigint {
  return 0x1000n + SECONDARY_IST_SIZE + 0x1000n + BigInt(stackSize) + 0x1000n;
}

/**
 * Guest-physical room for mirror mode, above everything else: a region
 * for the page tables of the mirrored half (the engine's pool is too small
 * for them), and from `physBase` up to `physLimit` the addresses that the
 * process's memory is given, 2 MiB at a time, as the guest touches it.
 */
export interface MirrorPlacement {
  tables: bigint;
  tablesSize: bigint;
  physBase: bigint;
  physLimit: bigint;
}

/** Room for mirror-mode page tables: 2048 pages, enough for 2048 distinct 2 MiB chunks touched by one test. */
export const MIRROR_TABLES_SIZE = 8n << 20n;
const SIZE_2M = 2n << 20n;

export class PlacementError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PlacementError';
  }
}

const hex = (n: bigint) => `0x${n.toString(16)}`;
const LOW_HALF_END = 0x0000_8000_0000_0000n;
const HIGH_HALF_START = 0xffff_8000_0000_0000n;

/** Where a segment's first byte lives in guest-physical memory. */
function physicalAddress(vaddr: bigint, lma: bigint | undefined, source: string): bigint {
  if (lma !== undefined) return lma;
  if (vaddr < LOW_HALF_END) return vaddr;
  if (vaddr >= HIGHER_HALF_BASE) return vaddr - HIGHER_HALF_BASE + HIGHER_HALF_PHYS;
  if (vaddr >= HIGH_HALF_START) {
    throw new PlacementError(
      `${source}: the segment at ${hex(vaddr)} is in the higher half but below ${hex(HIGHER_HALF_BASE)}; ` +
        'give it a physical load address with AT() in the linker script',
    );
  }
  throw new PlacementError(`${source}: the segment at ${hex(vaddr)} is at a non-canonical address`);
}

/** Guest memory one machine may have unless told otherwise (RAM ranges, image and the engine's megabyte). */
export const DEFAULT_MAX_GUEST_MEMORY = 16n << 30n;

/** A named stretch of guest-physical addresses, [start, end). */
export interface PhysSpan {
  name: string;
  start: bigint;
  end: bigint;
}

export interface PlacementInput {
  image: GuestImage;
  ram: readonly RamRange[];
  /**
   * Ranges that must hold RAM (bytes a test preloads): the pages that
   * nothing else backs become RAM, identity-mapped.
   */
  preload?: readonly PhysSpan[];
  /**
   * Device ranges with no memory behind them: mapped at virtual = physical,
   * so that every access exits to the host as MMIO. They must not share a
   * page with anything backed.
   */
  mmio?: readonly PhysSpan[];
  stackSize: number;
  /** The CPU's physical address width (MAXPHYADDR). */
  maxPhysBits: number;
  /** Most bytes of guest-physical memory the machine may have (default DEFAULT_MAX_GUEST_MEMORY). */
  maxGuestMemory?: bigint;
  /**
   * Bytes of heap (a multiple of 4 KiB) for the runtime's page allocator:
   * RAM at the lowest 2 MiB-aligned address above the first megabyte that
   * nothing else uses, identity-mapped, readable, writable and executable.
   */
  heapSize?: bigint;
  /** Reserve guest-physical space for mirror mode. */
  mirror?: boolean;
  /** vCPUs besides vCPU 0, each given its own stacks and TSS (as big a stack as vCPU 0's). */
  secondaryCpus?: number;
}

export function placeMachine({ image, ram, preload = [], mmio = [], stackSize, maxPhysBits, maxGuestMemory = DEFAULT_MAX_GUEST_MEMORY, heapSize = 0n, mirror = false, secondaryCpus = 0 }: PlacementInput): Placement {
  const physLimit = 1n << BigInt(maxPhysBits);
  const regions: PhysRegion[] = [];
  const mappings: Mapping[] = [];
  const contents: Placement['contents'] = [];

  // The engine's own pages (see layout.ts).
  regions.push({ name: 'the engine area', phys: 0n, size: LAYOUT.engineEnd, kind: 'engine' });
  const stackBottom = LAYOUT.stackTop - BigInt(stackSize);
  mappings.push(
    { name: 'GDT, TSS and IDT', virt: LAYOUT.gdt, phys: LAYOUT.gdt, size: LAYOUT.stubs - LAYOUT.gdt, writable: true, executable: false },
    { name: 'exception stubs', virt: LAYOUT.stubs, phys: LAYOUT.stubs, size: LAYOUT.istStackBottom - LAYOUT.stubs, writable: false, executable: true },
    { name: 'exception stack', virt: LAYOUT.istStackBottom, phys: LAYOUT.istStackBottom, size: LAYOUT.istStackTop - LAYOUT.istStackBottom, writable: true, executable: false },
    { name: 'stack', virt: stackBottom, phys: stackBottom, size: BigInt(stackSize), writable: true, executable: false },
    { name: 'page tables', virt: LAYOUT.pageTables, phys: LAYOUT.pageTables, size: LAYOUT.pageTablesEnd - LAYOUT.pageTables, writable: true, executable: false },
  );

  // Image segments: page ranges, merged where they share or touch pages.
  const imagePages: Array<{ phys: bigint; end: bigint }> = [];
  for (const seg of image.segments) {
    const phys = physicalAddress(seg.vaddr, seg.lma, image.source);
    const virtStart = pageFloor(seg.vaddr);
    const virtEnd = pageCeil(seg.vaddr + seg.memSize);
    const physStart = phys - (seg.vaddr - virtStart);
    if (physStart % 0x1000n !== 0n) {
      throw new PlacementError(
        `${image.source}: the segment at ${hex(seg.vaddr)} has load address ${hex(phys)}, which is not at the same offset within its page`,
      );
    }
    const physEnd = physStart + (virtEnd - virtStart);
    if (virtStart < LAYOUT.engineEnd && physStart >= LAYOUT.engineEnd) {
      throw new PlacementError(
        `${image.source}: the segment at virtual ${hex(seg.vaddr)} (loaded at physical ${hex(phys)}) lies in the first ` +
          `megabyte of virtual memory, which kvmtest reserves for its own tables and stacks (0x0-${hex(LAYOUT.engineEnd)}, ` +
          'mapped at virtual = physical; page 0 stays unmapped so that null pointers fault): link the image at 0x100000 or above',
      );
    }
    if (physStart < LAYOUT.engineEnd) {
      throw new PlacementError(
        `${image.source}: the segment at ${hex(seg.vaddr)} would load at physical ${hex(physStart)}, inside the first ` +
          `megabyte that kvmtest reserves for its own tables and stacks (0x0-${hex(LAYOUT.engineEnd)}); ` +
          'link the image at 0x100000 or above',
      );
    }
    if (physEnd > physLimit) {
      throw new PlacementError(
        `${image.source}: the segment at ${hex(seg.vaddr)} would load at physical ${hex(physStart)}, beyond this CPU's ` +
          `${maxPhysBits}-bit physical address space`,
      );
    }
    imagePages.push({ phys: physStart, end: physEnd });
    mappings.push({
      name: `${image.source} segment at ${hex(seg.vaddr)}`,
      virt: virtStart,
      phys: physStart,
      size: virtEnd - virtStart,
      writable: seg.writable,
      executable: seg.executable,
    });
    if (seg.data.length > 0) contents.push({ phys, data: seg.data });
  }
  imagePages.sort((a, b) => (a.phys < b.phys ? -1 : 1));
  const merged: Array<{ phys: bigint; end: bigint }> = [];
  for (const r of imagePages) {
    const last = merged[merged.length - 1];
    if (last && r.phys <= last.end) last.end = r.end > last.end ? r.end : last.end;
    else merged.push({ ...r });
  }
  for (const r of merged) {
    regions.push({ name: `${image.source} at physical ${hex(r.phys)}`, phys: r.phys, size: r.end - r.phys, kind: 'image' });
  }

  // RAM ranges [from, to), identity-mapped, writable and executable (tests
  // may copy code there, as a JIT or a loader would).
  ram.forEach(([fromRaw, toRaw], i) => {
    const from = BigInt(fromRaw);
    const to = BigInt(toRaw);
    const name = `RAM range ${i} [${hex(from)}, ${hex(to)})`;
    // Overlaps with other ranges are named below, with the other party, as any collision is.
    const problem = ramRangeProblem(from, to);
    if (problem) throw new PlacementError(`${name}${problem}`);
    if (to > physLimit || to > LOW_HALF_END) {
      throw new PlacementError(`${name} ends beyond this CPU's ${maxPhysBits}-bit physical address space`);
    }
    regions.push({ name, phys: from, size: to - from, kind: 'ram' });
    mappings.push({ name, virt: from, phys: from, size: to - from, writable: true, executable: true });
  });

  // Physical regions must not overlap.
  const sorted = [...regions].sort((a, b) => (a.phys < b.phys ? -1 : 1));
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1]!;
    const cur = sorted[i]!;
    if (cur.phys < prev.phys + prev.size) {
      const what = prev.kind === 'ram' && cur.kind === 'ram' ? 'overlapping RAM ranges: ' : '';
      throw new PlacementError(`${what}${cur.name} overlaps ${prev.name}`);
    }
  }
  for (const span of preload) {
    for (const gap of uncoveredPages(span, regions)) {
      if (gap.end > physLimit || gap.end > LOW_HALF_END) throw new PlacementError(`${span.name} ends beyond this CPU's ${maxPhysBits}-bit physical address space`);
      const name = `${span.name}'s RAM [${hex(gap.start)}, ${hex(gap.end)})`;
      regions.push({ name, phys: gap.start, size: gap.end - gap.start, kind: 'ram' });
      mappings.push({ name, virt: gap.start, phys: gap.start, size: gap.end - gap.start, writable: true, executable: true });
    }
  }
  const heap = heapSize > 0n ? placeHeap(heapSize, regions, mmio, physLimit, maxPhysBits) : undefined;
  if (heap) {
    const name = `the heap [${hex(heap.phys)}, ${hex(heap.phys + heap.size)})`;
    regions.push({ name, phys: heap.phys, size: heap.size, kind: 'heap' });
    mappings.push({ name, virt: heap.phys, phys: heap.phys, size: heap.size, writable: true, executable: true });
  }
  let cpus: SecondaryCpuPlacement[] | undefined;
  if (secondaryCpus > 0) {
    const block = secondaryBlockSize(stackSize);
    const size = block * BigInt(secondaryCpus);
    const base = placeFree(size, regions, mmio, physLimit, maxPhysBits, `the stacks of ${secondaryCpus} more vCPUs`).phys;
    regions.push({ name: `the other vCPUs' stacks [${hex(base)}, ${hex(base + size)})`, phys: base, size, kind: 'cpus' });
    cpus = [];
    for (let i = 0; i < secondaryCpus; i++) {
      const ist = base + block * BigInt(i) + 0x1000n;
      const stack = ist + SECONDARY_IST_SIZE + 0x1000n;
      const tss = stack + BigInt(stackSize);
      const cpu = i + 1;
      mappings.push(
        { name: `vCPU ${cpu}'s exception stack`, virt: ist, phys: ist, size: SECONDARY_IST_SIZE, writable: true, executable: false },
        { name: `vCPU ${cpu}'s stack`, virt: stack, phys: stack, size: BigInt(stackSize), writable: true, executable: false },
        { name: `vCPU ${cpu}'s TSS`, virt: tss, phys: tss, size: 0x1000n, writable: true, executable: false },
      );
      cpus.push({ stackTop: tss, tss, istTop: ist + SECONDARY_IST_SIZE });
    }
  }
  for (const device of mmio) {
    const start = pageFloor(device.start);
    const end = pageCeil(device.end);
    if (end > physLimit || end > LOW_HALF_END) throw new PlacementError(`${device.name} ends beyond this CPU's ${maxPhysBits}-bit physical address space`);
    const clash = regions.find((r) => start < r.phys + r.size && r.phys < end);
    if (clash) {
      throw new PlacementError(
        `${device.name} [${hex(device.start)}, ${hex(device.end)}) shares memory or a 4 KiB page with ${clash.name}: ` +
          'an MMIO region needs pages of its own, with no RAM behind them (memory there would answer instead of the device)',
      );
    }
    mappings.push({ name: device.name, virt: start, phys: start, size: end - start, writable: true, executable: false });
  }
  const slots = mergeNearby(regions);
  checkGuestMemory(slots, maxGuestMemory);
  const extras = { ...(heap && { heap }), ...(cpus && { secondaryCpus: cpus }) };
  if (!mirror) return { regions: slots, mappings, contents, stackBottom, ...extras };
  // Mirror mode: guest-physical addresses above everything else (process
  // addresses such as 0x7f... exceed the physical width many CPUs give a
  // guest, so guest-physical is never the host's virtual address).
  const top = slots.reduce((end, r) => (r.phys + r.size > end ? r.phys + r.size : end), 0n);
  const tables = alignUp(top, SIZE_2M);
  const physBase = alignUp(tables + MIRROR_TABLES_SIZE, SIZE_2M);
  if (physBase + SIZE_2M > physLimit) {
    throw new PlacementError(`mirror mode needs guest-physical space above ${hex(top)}, beyond this CPU's ${maxPhysBits}-bit physical address space: ` +
      'move RAM ranges lower');
  }
  slots.push({ name: 'the page tables of the mirrored half', phys: tables, size: MIRROR_TABLES_SIZE, kind: 'mirror-tables' });
  return { regions: slots, mappings, contents, stackBottom, ...extras, mirror: { tables, tablesSize: MIRROR_TABLES_SIZE, physBase, physLimit } };
}

function alignUp(value: bigint, to: bigint): bigint {
  return (value + to - 1n) / to * to;
}

const HEAP_ALIGN = 0x20_0000n;

/**
 * The heap's place: the lowest 2 MiB boundary from 2 MiB up where `size`
 * bytes touch no region and no MMIO page (2 MiB-aligned, so that the engine
 * maps it with large pages and alloc_pages' large orders come aligned).
 */
function placeHeap(size: bigint, regions: readonly PhysRegion[], mmio: readonly PhysSpan[], physLimit: bigint, maxPhysBits: number): { phys: bigint; size: bigint } {
  if (size % 0x1000n !== 0n) throw new PlacementError(`the heap's size, ${size} bytes, is not a multiple of 4096 (4 KiB pages)`);
  return placeFree(size, regions, mmio, physLimit, maxPhysBits, `a heap of ${formatBytes(size)}`);
}

/** The lowest 2 MiB boundary from 2 MiB up where `size` bytes touch no region and no MMIO page. */
function placeFree(size: bigint, regions: readonly PhysRegion[], mmio: readonly PhysSpan[], physLimit: bigint, maxPhysBits: number, what: string): { phys: bigint; size: bigint } {
  const taken = [
    ...regions.map((r) => ({ start: r.phys, end: r.phys + r.size })),
    ...mmio.map((m) => ({ start: pageFloor(m.start), end: pageCeil(m.end) })),
  ].sort((a, b) => (a.start < b.start ? -1 : 1));
  let phys = HEAP_ALIGN;
  for (const t of taken) {
    if (t.end <= phys) continue;
    if (t.start >= phys + size) break;
    phys = (t.end + HEAP_ALIGN - 1n) / HEAP_ALIGN * HEAP_ALIGN;
  }
  if (phys + size > physLimit || phys + size > LOW_HALF_END) {
    throw new PlacementError(`${what} does not fit in this CPU's ${maxPhysBits}-bit physical address space beside the rest of the machine`);
  }
  return { phys, size };
}

/** The whole pages of `span` that no region backs, as runs. */
function uncoveredPages(span: PhysSpan, regions: readonly PhysRegion[]): PhysSpan[] {
  const gaps: PhysSpan[] = [];
  const end = pageCeil(span.end);
  for (let page = pageFloor(span.start); page < end; page += 0x1000n) {
    if (regions.some((r) => page >= r.phys && page < r.phys + r.size)) continue;
    const last = gaps[gaps.length - 1];
    if (last && last.end === page) last.end = page + 0x1000n;
    else gaps.push({ name: span.name, start: page, end: page + 0x1000n });
  }
  return gaps;
}

/**
 * Refuses a machine bigger than the limit, before any memory slot exists:
 * KVM's bookkeeping for a slot costs host kernel memory in proportion to
 * its size (about 2 MiB per GiB) whether or not the guest touches it, and
 * a guest that does touch it takes host RAM.
 */
function checkGuestMemory(slots: readonly PhysRegion[], limit: bigint): void {
  const total = slots.reduce((sum, r) => sum + r.size, 0n);
  if (total <= limit) return;
  const biggest = [...slots].sort((a, b) => (a.size < b.size ? 1 : -1))[0]!;
  throw new PlacementError(
    `this machine would have ${formatBytes(total)} of guest memory (the largest part: ${biggest.name}, ${formatBytes(biggest.size)}), ` +
      `more than the limit of ${formatBytes(limit)}. Each GiB costs the host kernel about 2 MiB even if the guest never ` +
      'touches it; if this host can afford it, raise the limit with --max-guest-memory (maxGuestMemory in runGuest)',
  );
}

/** "16 GiB", "1.5 TiB", "4 KiB". */
export function formatBytes(bytes: bigint): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];
  let unit = 0;
  let value = Number(bytes);
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  const shown = Number.isInteger(value) ? String(value) : value.toFixed(1);
  return `${shown} ${units[unit]}`;
}

/** Regions closer than this share one memory slot; the gap costs nothing (it is never touched). */
const MERGE_GAP = 64n << 20n;

/**
 * Merges the engine area with image regions (and the heap) that start soon after it: one
 * slot instead of two saves a dirty-log system call per test in snapshot
 * isolation. RAM ranges keep their own slots. Expects no overlaps.
 */
function mergeNearby(regions: PhysRegion[]): PhysRegion[] {
  const sorted = [...regions].sort((a, b) => (a.phys < b.phys ? -1 : 1));
  const merged: PhysRegion[] = [];
  for (const region of sorted) {
    const last = merged[merged.length - 1];
    const mergeable = (r: PhysRegion) => r.kind === 'engine' || r.kind === 'image' || r.kind === 'heap' || r.kind === 'cpus';
    if (last && mergeable(last) && mergeable(region) && region.phys - (last.phys + last.size) <= MERGE_GAP) {
      last.size = region.phys + region.size - last.phys;
      last.name = `${last.name} and ${region.name}`;
      if (region.kind === 'engine') last.kind = 'engine';
    } else {
      merged.push({ ...region });
    }
  }
  return merged;
}
