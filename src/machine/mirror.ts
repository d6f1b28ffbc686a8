// Mirror mode's side of a machine: the test process's address space shown
// to the guest at the same virtual addresses, lazily. A run starts with the
// library's own memory mapped and nothing else; when the guest touches
// another page of the process (a #PF the engine's stub reports), the 2 MiB
// of host address space around it becomes a memory slot over the process's
// own memory (kept for the machine's life: no copy, no dirty log, no
// snapshot), its pages get entries with the process's permissions (from
// /proc/self/maps, read once per run), and the guest retries the access.
// The entries live in the engine's page tables and a region of their own,
// both restored by the snapshot, so each run starts over.
import { KvmIoctlError } from '../kvm/errors.js';
import { mappingAt, neverMirrored, type ProcessMapping, readProcessMaps } from '../mirror/process-maps.js';
import { ENGINE_CR3 } from './layout.js';
import { engineHostRanges, type GuestMemory, type MemorySlot, type PhysAccess } from './memory.js';
import { PageTableBuilder, PageTableError, PTE_ACCESSED, PTE_DIRTY, PTE_NX, PTE_PRESENT, PTE_WRITABLE, translate } from './paging.js';
import type { MirrorPlacement } from './placement.js';
import type { MirrorStats } from '../result.js';

const CHUNK = 2n << 20n;
const PAGE = 0x1000n;
const CR3_ADDRESS = 0x000f_ffff_ffff_f000n;
/** The top of user space on x86-64 Linux: KVM refuses a slot over addresses past it. */
const USER_SPACE_END = 0x7fff_ffff_f000n;
const PF_PRESENT = 0x1;
const PF_RESERVED = 0x8;

/** What a page fault meant for mirror mode: mapped (retry it), not the process's memory (the test's fault), or a failure. */
export type MirrorFault = 'mapped' | undefined | { error: string };

export class MirrorSpace {
  /** Host chunk (2 MiB-aligned address) -> its slot. */
  private readonly chunks = new Map<bigint, MemorySlot>();
  private nextPhys: bigint;
  private readonly tablesSlot: MemorySlot;
  /**
   * Where each table of the mirrored half lives ("level:first address it
   * maps" -> guest-physical page), the same in every run (see beginRun).
   */
  private readonly tablePlaces = new Map<string, bigint>();
  private nextTable: bigint;
  private builder: PageTableBuilder | undefined;
  private maps: ProcessMapping[] | undefined;
  private excluded: Array<readonly [bigint, bigint]> | undefined;
  /** The function this run entered, for messages. */
  entryName = '';
  stats: MirrorStats = { faults: 0, pagesMapped: 0, slots: 0 };

  constructor(
    private readonly memory: GuestMemory,
    private readonly placement: MirrorPlacement,
    /** The library's file as /proc/self/maps names it: mapped at the start of every run. */
    private readonly libraryFile?: string,
  ) {
    this.nextPhys = placement.physBase;
    const tables = memory.slotAt(placement.tables);
    if (!tables) throw new Error('internal: mirror mode has no page-table region');
    this.tablesSlot = tables;
    this.nextTable = placement.tables;
  }

  /**
   * Before each run, on a machine as loaded (fresh or restored): the
   * restore has put the engine's tables back and zeroed the mirror's, from
   * the host, under a KVM that may cache translations of them (shadow page
   * tables on PVM, the TLB). What such a cache can still hold is harmless,
   * because every table of the mirrored half stays at the same place from
   * run to run and every entry it ever had maps a page to the same slot:
   * a cached translation is one a fault in this run would make again, for
   * memory the process still maps (KVM drops translations of memory the
   * process unmaps or protects, through its MMU notifier). When the places
   * run out, they start over, and re-registering the tables' slot makes
   * KVM drop every translation it derived from them first.
   */
  beginRun(entryName: string): void {
    if (this.nextTable - this.placement.tables >= (this.placement.tablesSize * 3n) / 4n) {
      this.tablePlaces.clear();
      this.nextTable = this.placement.tables;
      this.memory.reregister(this.tablesSlot);
    }
    this.builder = undefined;
    this.maps = undefined;
    this.excluded = undefined;
    this.entryName = entryName;
    this.stats = { faults: 0, pagesMapped: 0, slots: this.chunks.size };
    // What cannot be mapped now (no slot left) is left to the first touch,
    // whose fault then ends the run saying why.
    this.mapLibrary();
  }

  /** The page for the table that maps `virt` at `level`: where it was in earlier runs, or the next free one. */
  private placeTable(virt: bigint, level: number): bigint {
    const span = level === 1 ? CHUNK : level === 2 ? 1n << 30n : 1n << 39n;
    const key = `${level}:${virt & ~(span - 1n)}`;
    let page = this.tablePlaces.get(key);
    if (page === undefined) {
      if (this.nextTable >= this.placement.tables + this.placement.tablesSize) {
        throw new PageTableError(`the mirrored half needs more than ${this.placement.tablesSize / PAGE} page-table pages in one run`);
      }
      page = this.nextTable;
      this.nextTable += PAGE;
      this.tablePlaces.set(key, page);
    }
    return page;
  }

  /** A #PF at `address` with `errorCode`, under `cr3`: maps the process's memory there if it has some. */
  fault(address: bigint, errorCode: number, cr3: bigint): MirrorFault {
    // Under page tables of the test's own, or for an access a present page
    // refused (a write to read-only memory, a fetch from NX), the fault is the test's.
    if ((cr3 & CR3_ADDRESS) !== ENGINE_CR3 || errorCode & (PF_PRESENT | PF_RESERVED)) return undefined;
    if (address >= USER_SPACE_END) return undefined;
    const fresh = this.maps === undefined;
    let maps = (this.maps ??= readProcessMaps());
    let mapping = mappingAt(maps, address);
    // Memory the process may have mapped since the maps were read (a
    // callback's new Buffer): read them again before calling it the test's fault.
    if (!mapping && !fresh) {
      maps = this.maps = readProcessMaps();
      mapping = mappingAt(maps, address);
    }
    if (!mapping || !this.mirrorable(mapping) || this.isEngine(address)) return undefined;
    // Mapped already (by the engine, or by us this run): the fault is not for want of an entry.
    if (translate(this.memory, cr3, address) !== undefined) return undefined;
    const mapped = this.mapChunk(address & ~(CHUNK - 1n), maps);
    if (mapped !== 'mapped') return mapped;
    this.stats.faults++;
    return 'mapped';
  }

  /**
   * Maps what the process has of the library's file (its code, data and
   * bss), before the run: its entry's code is the first thing the guest
   * touches, so this saves that first fault's exit, and a function that
   * loads an IDT of its own still finds the library mapped.
   */
  private mapLibrary(): MirrorFault {
    if (this.libraryFile === undefined) return undefined;
    const maps = (this.maps ??= readProcessMaps());
    const done = new Set<bigint>();
    for (const m of maps) {
      if (m.path !== this.libraryFile) continue;
      for (let chunk = m.start & ~(CHUNK - 1n); chunk < m.end; chunk += CHUNK) {
        if (done.has(chunk)) continue;
        done.add(chunk);
        const mapped = this.mapChunk(chunk, maps);
        if (mapped !== 'mapped') return mapped;
      }
    }
    return undefined;
  }

  /** Gives the chunk at `chunk` a slot if it has none, and entries for every page of it the process maps. */
  private mapChunk(chunk: bigint, maps: readonly ProcessMapping[]): MirrorFault {
    const slot = this.chunks.get(chunk) ?? this.addChunk(chunk);
    if ('error' in slot) return slot;
    let table: bigint;
    try {
      table = this.tables().leafTable(chunk);
    } catch (err) {
      if (!(err instanceof PageTableError)) throw err;
      return { error: `mirror mode cannot map ${hex(chunk)}: ${err.message}` };
    }
    // The entries as 32-bit halves, so that 512 of them cost no BigInt arithmetic:
    // the chunk's guest-physical base is 2 MiB-aligned, so adding a page's
    // offset never carries into the high half.
    const words = new Uint32Array(this.memory.physView(table, 4096)!.slice().buffer);
    const physLow = Number(slot.guestPhys & 0xffff_ffffn);
    const physHigh = Number(slot.guestPhys >> 32n);
    const low = Number(PTE_PRESENT | PTE_ACCESSED | PTE_DIRTY);
    let mapped = 0;
    const end = chunk + CHUNK;
    // The engine's memory rarely shares a chunk with what the guest touches: check pages only where it does.
    const engineHere = (this.excluded ??= engineHostRanges()).some(([from, to]) => from < end && chunk < to);
    for (const m of maps) {
      if (m.end <= chunk || m.start >= end || !this.mirrorable(m)) continue;
      const flagsLow = low | (m.write ? Number(PTE_WRITABLE) : 0);
      const high = (physHigh | (m.execute ? 0 : Number(PTE_NX >> 32n))) >>> 0;
      const first = Number(((m.start > chunk ? m.start : chunk) - chunk) / PAGE);
      const last = Number(((m.end < end ? m.end : end) - chunk) / PAGE);
      for (let index = first; index < last; index++) {
        // An entry there is the engine's (its own pages win); the engine's host memory is never shown.
        if (words[index * 2]! & 1 || (engineHere && this.isEngine(chunk + BigInt(index) * PAGE))) continue;
        words[index * 2] = (physLow + index * 4096) | flagsLow;
        words[index * 2 + 1] = high;
        mapped++;
      }
    }
    this.memory.writeAtRuntime(table, new Uint8Array(words.buffer));
    this.stats.pagesMapped += mapped;
    return 'mapped';
  }

  /** Readable or executable process memory that is not the kernel's or a device's. */
  private mirrorable(m: ProcessMapping): boolean {
    return (m.read || m.execute) && !neverMirrored(m);
  }

  private isEngine(address: bigint): boolean {
    const ranges = (this.excluded ??= engineHostRanges());
    for (const [start, end] of ranges) if (address >= start && address < end) return true;
    return false;
  }

  /** Tables for the mirrored half: the engine's PML4, new tables from the mirror region; host writes restored by the snapshot. */
  private tables(): PageTableBuilder {
    if (!this.builder) {
      const memory = this.memory;
      const runtime: PhysAccess = {
        readU64: (phys) => memory.readU64(phys),
        physView: (phys, length) => memory.physView(phys, length),
        writeU64: (phys, value) => {
          const bytes = new Uint8Array(8);
          new DataView(bytes.buffer).setBigUint64(0, value, true);
          memory.writeAtRuntime(phys, bytes);
        },
      };
      this.builder = new PageTableBuilder(runtime, this.placement.tables, Number(this.placement.tablesSize / PAGE), ENGINE_CR3, (virt, level) => this.placeTable(virt, level));
    }
    return this.builder;
  }

  private addChunk(chunk: bigint): MemorySlot | { error: string } {
    const phys = this.nextPhys;
    const size = chunk + CHUNK > USER_SPACE_END ? USER_SPACE_END - chunk : CHUNK;
    if (phys + CHUNK > this.placement.physLimit) {
      return { error: `mirror mode ran out of guest-physical addresses (${this.chunks.size} chunks of 2 MiB mirrored, up to ${hex(this.placement.physLimit)}, this CPU's physical width)` };
    }
    try {
      const slot = this.memory.addBorrowedSlot(phys, Number(size), chunk, `process memory at ${hex(chunk)}`);
      this.nextPhys += CHUNK;
      this.chunks.set(chunk, slot);
      this.stats.slots = this.chunks.size;
      return slot;
    } catch (err) {
      if (!(err instanceof KvmIoctlError)) throw err;
      return { error: `mirror mode could not add a memory slot for the process's memory at ${hex(chunk)} (${this.chunks.size} slots of 2 MiB so far): ${err.message}` };
    }
  }
}

function hex(n: bigint): string {
  return `0x${n.toString(16)}`;
}
