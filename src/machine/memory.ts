// Guest-physical memory: KVM memory slots backed by anonymous host mappings,
// with byte access for the host and optional dirty-page logging per slot.
import { KVM_MEM_LOG_DIRTY_PAGES, SIZEOF } from '../kvm/constants.js';
import * as libc from '../kvm/libc.js';
import type { MemoryRegion } from '../kvm/structs.js';
import type { Vm } from '../kvm/vm.js';

export const PAGE_SIZE = 4096;
const PAGE = BigInt(PAGE_SIZE);

export interface SlotOptions {
  /** A short name for messages ("engine", "image", "ram 0x30000000"). */
  name: string;
  /** Track which pages the guest writes (needed to restore snapshots). */
  logDirty?: boolean;
  /**
   * The memory is the process's own, not the engine's (mirror mode): the
   * slot never unmaps it, and no snapshot covers it.
   */
  borrowed?: boolean;
}

/**
 * The host memory behind every engine-owned slot of every machine in this
 * process (and their dirty bitmaps): mirror mode must never show these to
 * a guest, or a test could reach the engine's tables through the process's
 * address space.
 */
const engineHostMemory = new Map<bigint, number>();

/** [start, end) of the host memory the engine owns now. */
export function engineHostRanges(): Array<readonly [bigint, bigint]> {
  return [...engineHostMemory].map(([start, size]) => [start, start + BigInt(size)] as const);
}

/** One KVM memory slot and the host mapping behind it. */
export class MemorySlot {
  /** The slot's bytes, shared with the guest. */
  readonly bytes: Uint8Array;
  readonly pages: number;
  private readonly bitmapAddress: bigint;
  private readonly bitmapBytes: number;
  /**
   * Dirty-page bitmap, filled by fetchDirtyPages(): bit i of word w is page
   * w * 32 + i. 32-bit words keep the scan in plain numbers (no BigInts).
   */
  readonly dirtyBitmap: Uint32Array | null;
  /**
   * Pages the host wrote (the image, the engine's tables): every other page
   * of a fresh slot is zero. A snapshot copies only these.
   */
  readonly hostWritten = new Set<number>();
  /**
   * Pages the host wrote since the last restore (a device's DMA, bytes a test
   * preloads): KVM's dirty log sees only the guest's writes, so a snapshot
   * restores these too.
   */
  readonly hostDirty = new Set<number>();

  constructor(
    readonly slot: number,
    readonly guestPhys: bigint,
    readonly size: number,
    readonly hostAddress: bigint,
    readonly options: SlotOptions,
  ) {
    this.bytes = new Uint8Array(libc.view(hostAddress, size));
    this.pages = size / PAGE_SIZE;
    if (!options.borrowed) engineHostMemory.set(hostAddress, size);
    this.bitmapBytes = options.logDirty ? Math.ceil(this.pages / 64) * 8 : 0;
    if (this.bitmapBytes > 0) {
      // KVM writes the bitmap through a raw pointer: keep it off the JS heap.
      const mapped = roundUp(this.bitmapBytes, PAGE_SIZE);
      this.bitmapAddress = libc.mmap(mapped, libc.PROT_READ | libc.PROT_WRITE, libc.MAP_PRIVATE | libc.MAP_ANONYMOUS);
      this.dirtyBitmap = new Uint32Array(libc.view(this.bitmapAddress, this.bitmapBytes));
      engineHostMemory.set(this.bitmapAddress, mapped);
    } else {
      this.bitmapAddress = 0n;
      this.dirtyBitmap = null;
    }
  }

  get end(): bigint {
    return this.guestPhys + BigInt(this.size);
  }

  contains(phys: bigint): boolean {
    return phys >= this.guestPhys && phys < this.end;
  }

  /** Makes pages [first, first+count) zero and gives their host memory back. */
  discardPages(first: number, count: number): void {
    libc.discardPages(this.hostAddress + BigInt(first * PAGE_SIZE), count * PAGE_SIZE);
  }

  /** KVM_GET_DIRTY_LOG into dirtyBitmap (and clear KVM's log). */
  fetchDirtyPages(vm: Vm, request: Uint8Array): Uint32Array {
    if (!this.dirtyBitmap) throw new Error(`memory slot "${this.options.name}" does not log dirty pages`);
    vm.getDirtyLog(this.slot, this.bitmapAddress, request);
    return this.dirtyBitmap;
  }

  get flags(): number {
    return this.options.logDirty ? KVM_MEM_LOG_DIRTY_PAGES : 0;
  }

  release(): void {
    if (!this.options.borrowed) {
      libc.munmap(this.hostAddress, this.size);
      engineHostMemory.delete(this.hostAddress);
    }
    if (this.bitmapBytes > 0) {
      libc.munmap(this.bitmapAddress, roundUp(this.bitmapBytes, PAGE_SIZE));
      engineHostMemory.delete(this.bitmapAddress);
    }
  }
}

/** All memory slots of one VM. */
export class GuestMemory implements PhysAccess {
  readonly slots: MemorySlot[] = [];
  private readonly dirtyLogRequest = new Uint8Array(SIZEOF.kvm_dirty_log);

  constructor(private readonly vm: Vm) {}

  /** Maps `size` bytes (page multiple) of fresh zeroed memory at guest-physical `guestPhys`. */
  addSlot(guestPhys: bigint, size: number, options: SlotOptions): MemorySlot {
    if (guestPhys % PAGE !== 0n || size % PAGE_SIZE !== 0 || size <= 0) {
      throw new Error(`internal: memory slot "${options.name}" is not page-aligned`);
    }
    const host = libc.mmap(
      size,
      libc.PROT_READ | libc.PROT_WRITE,
      libc.MAP_PRIVATE | libc.MAP_ANONYMOUS | libc.MAP_NORESERVE,
    );
    return this.register(new MemorySlot(this.slots.length, guestPhys, size, host, options));
  }

  /**
   * Makes `size` bytes of the process's own memory at `hostAddress` guest
   * RAM at `guestPhys` (mirror mode): no copy, no dirty log; the guest's
   * writes are the process's. The memory need not all be mapped: the guest
   * must only reach the pages that are.
   */
  addBorrowedSlot(guestPhys: bigint, size: number, hostAddress: bigint, name: string): MemorySlot {
    return this.register(new MemorySlot(this.slots.length, guestPhys, size, hostAddress, { name, borrowed: true }));
  }

  private register(slot: MemorySlot): MemorySlot {
    try {
      this.vm.setUserMemoryRegion(regionOf(slot));
    } catch (err) {
      slot.release();
      throw err;
    }
    this.slots.push(slot);
    return slot;
  }

  /**
   * Removes a slot from the VM and adds it again, unchanged: KVM then
   * drops every translation it derived from guest memory (on a
   * shadow-paging KVM, the shadow page tables), which host writes to the
   * guest's page tables would otherwise leave stale. Its dirty log starts
   * empty.
   */
  reregister(slot: MemorySlot): void {
    this.vm.setUserMemoryRegion({ ...regionOf(slot), memorySize: 0n });
    this.vm.setUserMemoryRegion(regionOf(slot));
  }

  /** The slot holding `phys`, or undefined when nothing backs it (MMIO). */
  slotAt(phys: bigint): MemorySlot | undefined {
    for (const slot of this.slots) if (slot.contains(phys)) return slot;
    return undefined;
  }

  /**
   * The bytes of [phys, phys+length) if one slot holds them all, as a view
   * (not a copy); undefined otherwise.
   */
  physView(phys: bigint, length: number): Uint8Array | undefined {
    const slot = this.slotAt(phys);
    if (!slot || phys + BigInt(length) > slot.end) return undefined;
    const offset = Number(phys - slot.guestPhys);
    return slot.bytes.subarray(offset, offset + length);
  }

  /** Writes bytes at a guest-physical address; throws if no single slot holds them. */
  writePhys(phys: bigint, data: Uint8Array): void {
    const target = this.physView(phys, data.length);
    if (!target) throw new Error(`internal: no guest memory at 0x${phys.toString(16)} (+${data.length})`);
    target.set(data);
    this.noteHostWrite(phys, data.length);
  }

  /**
   * Writes bytes while the machine is in use (not at load): recorded, so
   * that a snapshot restore puts the pages back. They may span slots that
   * touch; returns false, writing nothing, if any byte has no memory.
   */
  writeAtRuntime(phys: bigint, data: Uint8Array): boolean {
    const parts: Array<[bigint, Uint8Array, Uint8Array]> = [];
    for (let done = 0; done < data.length; ) {
      const at = phys + BigInt(done);
      const slot = this.slotAt(at);
      if (!slot) return false;
      const length = Math.min(data.length - done, Number(slot.end - at));
      parts.push([at, this.physView(at, length)!, data.subarray(done, done + length)]);
      done += length;
    }
    for (const [at, target, bytes] of parts) {
      target.set(bytes);
      this.noteHostWrite(at, bytes.length, 'hostDirty');
    }
    return true;
  }

  private noteHostWrite(phys: bigint, length: number, set: 'hostWritten' | 'hostDirty' = 'hostWritten'): void {
    if (length === 0) return;
    const slot = this.slotAt(phys)!;
    const first = Number((phys - slot.guestPhys) / PAGE);
    const last = Number((phys + BigInt(length) - 1n - slot.guestPhys) / PAGE);
    for (let page = first; page <= last; page++) slot[set].add(page);
  }

  readU64(phys: bigint): bigint | undefined {
    const bytes = this.physView(phys, 8);
    if (!bytes) return undefined;
    return new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  }

  writeU64(phys: bigint, value: bigint): void {
    const bytes = this.physView(phys, 8);
    if (!bytes) throw new Error(`internal: no guest memory at 0x${phys.toString(16)}`);
    new DataView(bytes.buffer, bytes.byteOffset, 8).setBigUint64(0, value, true);
    this.noteHostWrite(phys, 8);
  }

  fetchDirtyPages(slot: MemorySlot): Uint32Array {
    return slot.fetchDirtyPages(this.vm, this.dirtyLogRequest);
  }

  /** Unmaps every slot's host memory. Call after the VM is closed. */
  release(): void {
    for (const slot of this.slots) slot.release();
    this.slots.length = 0;
  }
}

function regionOf(slot: MemorySlot): MemoryRegion {
  return { slot: slot.slot, flags: slot.flags, guestPhysAddr: slot.guestPhys, memorySize: BigInt(slot.size), userspaceAddr: slot.hostAddress };
}

/** Physical-memory access the page-table code needs. */
export interface PhysAccess {
  readU64(phys: bigint): bigint | undefined;
  writeU64(phys: bigint, value: bigint): void;
  physView(phys: bigint, length: number): Uint8Array | undefined;
}

/** A plain buffer standing in for guest memory at [base, base+size): for building tables before a VM exists. */
export class ScratchMemory implements PhysAccess {
  readonly bytes: Uint8Array;
  private readonly view: DataView;

  constructor(
    private readonly base: bigint,
    size: number,
  ) {
    this.bytes = new Uint8Array(size);
    this.view = new DataView(this.bytes.buffer);
  }

  private offset(phys: bigint, length: number): number | undefined {
    const at = phys - this.base;
    return at >= 0n && at + BigInt(length) <= BigInt(this.bytes.length) ? Number(at) : undefined;
  }

  readU64(phys: bigint): bigint | undefined {
    const at = this.offset(phys, 8);
    return at === undefined ? undefined : this.view.getBigUint64(at, true);
  }

  writeU64(phys: bigint, value: bigint): void {
    const at = this.offset(phys, 8);
    if (at === undefined) throw new Error(`internal: scratch write outside [0x${this.base.toString(16)}, +${this.bytes.length})`);
    this.view.setBigUint64(at, value, true);
  }

  physView(phys: bigint, length: number): Uint8Array | undefined {
    const at = this.offset(phys, length);
    return at === undefined ? undefined : this.bytes.subarray(at, at + length);
  }
}

export function roundUp(value: number, to: number): number {
  return Math.ceil(value / to) * to;
}

export function pageFloor(addr: bigint): bigint {
  return addr & ~(PAGE - 1n);
}

export function pageCeil(addr: bigint): bigint {
  return (addr + PAGE - 1n) & ~(PAGE - 1n);
}
