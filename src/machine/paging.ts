// 4-level x86-64 page tables: a builder that maps only what it is asked to
// (with 2 MiB pages where alignment allows), and a walker that translates
// guest-virtual addresses the way the CPU would, for the host to read guest
// data through pointers the guest hands it.
import type { PhysAccess } from './memory.js';

export const PTE_PRESENT = 1n << 0n;
export const PTE_WRITABLE = 1n << 1n;
export const PTE_USER = 1n << 2n;
export const PTE_ACCESSED = 1n << 5n;
export const PTE_DIRTY = 1n << 6n;
export const PTE_HUGE = 1n << 7n;
export const PTE_NX = 1n << 63n;
/** Bits 12..51: the physical address of the next table or the page. */
const ADDR_MASK = 0x000f_ffff_ffff_f000n;

const SIZE_4K = 0x1000n;
const SIZE_2M = 0x20_0000n;
const SIZE_1G = 0x4000_0000n;

export interface PageFlags {
  writable: boolean;
  executable: boolean;
}

export class PageTableError extends Error {}

/** Builds page tables in a pool of pages inside guest memory. */
export class PageTableBuilder {
  private nextPage: bigint;
  readonly root: bigint;

  /**
   * With `root`, extends the tables at that PML4; otherwise builds new ones.
   * New tables come from the pool, or from `place` when given: it names the
   * page for the table that maps `virt` at `level` (mirror mode keeps each
   * table at the same address from run to run).
   */
  constructor(
    private readonly memory: PhysAccess,
    private readonly poolStart: bigint,
    private readonly poolPages: number,
    root?: bigint,
    private readonly place?: (virt: bigint, level: number) => bigint,
  ) {
    this.nextPage = poolStart;
    this.root = root ?? this.allocTable();
  }

  /**
   * The page table (level 1) that maps the 2 MiB around `virt`, created
   * with the tables above it if missing. Throws PageTableError when a large
   * page maps that range already.
   */
  leafTable(virt: bigint): bigint {
    const pde = this.entryAddress(virt, 2, true)!;
    const entry = this.memory.readU64(pde) ?? 0n;
    if (entry & PTE_HUGE) throw new PageTableError(`virtual address 0x${virt.toString(16)} falls inside a large page mapped earlier`);
    return this.entryAddress(virt, 1, true)! & ~(SIZE_4K - 1n);
  }

  /** Pages of the pool used so far. */
  get pagesUsed(): number {
    return Number((this.nextPage - this.poolStart) / SIZE_4K);
  }

  /**
   * Maps [virt, virt+size) to [phys, phys+size). Overlapping 4 KiB mappings of
   * the same physical page merge their permissions (two ELF segments sharing
   * a page); mapping one virtual page to two physical pages is an error.
   */
  map(virt: bigint, phys: bigint, size: bigint, flags: PageFlags): void {
    let offset = 0n;
    while (offset < size) {
      const v = virt + offset;
      const p = phys + offset;
      const left = size - offset;
      if (v % SIZE_2M === 0n && p % SIZE_2M === 0n && left >= SIZE_2M && this.canMapHuge(v)) {
        this.setLeaf(v, p, 2, flags);
        offset += SIZE_2M;
      } else {
        this.setLeaf(v, p, 1, flags);
        offset += SIZE_4K;
      }
    }
  }

  private canMapHuge(virt: bigint): boolean {
    // A 2 MiB page can go where no page table exists yet for that range.
    const pde = this.entryAddress(virt, 2, false);
    if (pde === undefined) return true;
    return (this.memory.readU64(pde) ?? 0n) === 0n;
  }

  /** Level 1 = 4 KiB page (PTE), 2 = 2 MiB page (PDE). */
  private setLeaf(virt: bigint, phys: bigint, level: 1 | 2, flags: PageFlags): void {
    const at = this.entryAddress(virt, level, true)!;
    const old = this.memory.readU64(at) ?? 0n;
    // Accessed and dirty are set up front: the CPU then never writes to the
    // tables, so they stay clean in the dirty log unless the guest edits them.
    let entry = (phys & ADDR_MASK) | PTE_PRESENT | PTE_ACCESSED | PTE_DIRTY;
    if (level === 2) entry |= PTE_HUGE;
    if (flags.writable) entry |= PTE_WRITABLE;
    if (!flags.executable) entry |= PTE_NX;
    if (old & PTE_PRESENT) {
      if ((old & ADDR_MASK) !== (phys & ADDR_MASK) || (old & PTE_HUGE) !== (entry & PTE_HUGE)) {
        throw new PageTableError(
          `virtual address 0x${virt.toString(16)} is mapped twice, to physical ` +
            `0x${(old & ADDR_MASK).toString(16)} and 0x${phys.toString(16)}`,
        );
      }
      // Merge: writable if either is; executable if either is.
      entry = (entry | (old & PTE_WRITABLE)) & ~(old & PTE_NX ? 0n : PTE_NX);
    }
    this.memory.writeU64(at, entry);
  }

  /** The address of the entry for `virt` at `level`, creating tables on the way if asked. */
  private entryAddress(virt: bigint, level: 1 | 2, create: boolean): bigint | undefined {
    let table = this.root;
    for (let lvl = 4; lvl > level; lvl--) {
      const at = table + indexAt(virt, lvl) * 8n;
      let entry = this.memory.readU64(at) ?? 0n;
      if (!(entry & PTE_PRESENT)) {
        if (!create) return undefined;
        const next = this.place ? this.zeroed(this.place(virt, lvl - 1)) : this.allocTable();
        entry = next | PTE_PRESENT | PTE_WRITABLE | PTE_ACCESSED;
        this.memory.writeU64(at, entry);
      } else if (entry & PTE_HUGE) {
        throw new PageTableError(
          `virtual address 0x${virt.toString(16)} falls inside a large page mapped earlier`,
        );
      }
      table = entry & ADDR_MASK;
    }
    return table + indexAt(virt, level) * 8n;
  }

  private zeroed(page: bigint): bigint {
    this.memory.physView(page, 4096)!.fill(0);
    return page;
  }

  private allocTable(): bigint {
    if (this.pagesUsed >= this.poolPages) {
      throw new PageTableError(
        `the guest's mappings need more than ${this.poolPages} page-table pages` +
          (this.root === undefined || this.root === this.poolStart ? '; align large RAM ranges and segments to 2 MiB so they can use large pages' : ''),
      );
    }
    const page = this.nextPage;
    this.nextPage += SIZE_4K;
    this.memory.physView(page, 4096)!.fill(0);
    return page;
  }
}

function indexAt(virt: bigint, level: number): bigint {
  return (virt >> (12n + 9n * BigInt(level - 1))) & 0x1ffn;
}

/**
 * True for a canonical address in 4-level paging: bits 63 to 47 all equal.
 * The CPU faults on any other; the page walk would silently ignore the top
 * bits and alias a canonical address, so callers must not walk them.
 */
export function isCanonical(virt: bigint): boolean {
  const top = virt >> 47n;
  return top === 0n || top === 0x1ffffn;
}

/**
 * Translates a guest-virtual address through the tables at `cr3`, as the CPU
 * would in 4-level paging. Returns undefined when the address is not mapped
 * (or not canonical).
 */
export function translate(memory: PhysAccess, cr3: bigint, virt: bigint): bigint | undefined {
  if (!isCanonical(virt)) return undefined;
  let table = cr3 & ADDR_MASK;
  for (let level = 4; level >= 1; level--) {
    const entry = memory.readU64(table + indexAt(virt, level) * 8n);
    if (entry === undefined || !(entry & PTE_PRESENT)) return undefined;
    if (level === 3 && entry & PTE_HUGE) return (entry & ADDR_MASK & ~(SIZE_1G - 1n)) | (virt & (SIZE_1G - 1n));
    if (level === 2 && entry & PTE_HUGE) return (entry & ADDR_MASK & ~(SIZE_2M - 1n)) | (virt & (SIZE_2M - 1n));
    if (level === 1) return (entry & ADDR_MASK) | (virt & (SIZE_4K - 1n));
    table = entry & ADDR_MASK;
  }
  return undefined;
}

/**
 * Reads `length` bytes at a guest-virtual address, page by page. Returns the
 * bytes read before the first unmapped or unbacked page (possibly fewer).
 */
export function readVirtual(memory: PhysAccess, cr3: bigint, virt: bigint, length: number): Uint8Array {
  const out = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const addr = virt + BigInt(done);
    const phys = translate(memory, cr3, addr);
    if (phys === undefined) return out.subarray(0, done);
    const inPage = Math.min(length - done, Number(SIZE_4K - (addr & (SIZE_4K - 1n))));
    const bytes = memory.physView(phys, inPage);
    if (!bytes) return out.subarray(0, done);
    out.set(bytes, done);
    done += inPage;
  }
  return out;
}
