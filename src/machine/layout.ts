// Where the engine puts its own structures in guest-physical memory. They sit
// in the first megabyte, identity-mapped, so images linked at 1 MiB and up
// (or in the higher half) never collide with them. Page 0 stays unmapped so
// that a null-pointer access faults.
//
//   0x00000  null page (not mapped)
//   0x01000  GDT, then the TSS
//   0x02000  IDT: 256 gates
//   0x03000  exception stubs: 256 x 16 bytes
//   0x04000  return stub (the entry function returns here)
//   0x05000  exception stack (IST1), 16 KiB, up to 0x09000
//   0x09000  free; the default stack grows down from 0x80000 over it, with a
//            one-page unmapped guard below the stack so overflow faults
//   0x80000  page-table pool (the PML4 first), up to 0x100000
//
// The engine's stubs tell the host what happened with port I/O, not with
// memory accesses (see descriptors.ts), so reporting a return or an
// exception needs nothing but these pages mapped at virtual = physical:
// page tables of a test's own that identity-map the first megabyte keep it
// working.

export const LAYOUT = {
  engineStart: 0x1000n,
  gdt: 0x1000n,
  tss: 0x1080n,
  idt: 0x2000n,
  stubs: 0x3000n,
  returnStub: 0x4000n,
  istStackBottom: 0x5000n,
  istStackTop: 0x9000n,
  stackTop: 0x80000n,
  /** Lowest address the stack may reach, guard page included. */
  stackFloor: 0x9000n,
  pageTables: 0x80000n,
  pageTablesEnd: 0x100000n,
  /** The engine reserves [0, engineEnd): images and RAM ranges must stay clear of it. */
  engineEnd: 0x100000n,
} as const;

/** CR3 at entry: the engine's PML4, the first page of the pool. */
export const ENGINE_CR3 = LAYOUT.pageTables;

export const DEFAULT_STACK_SIZE = 64 * 1024;
export const MAX_STACK_SIZE = Number(LAYOUT.stackTop - LAYOUT.stackFloor) - 4096;
export const STUB_SIZE = 16;
export const PAGE_TABLE_POOL_PAGES = Number((LAYOUT.pageTablesEnd - LAYOUT.pageTables) / 4096n);

/** Selectors in the engine's GDT. */
export const SELECTOR = {
  code: 0x08,
  data: 0x10,
  tss: 0x18,
} as const;

/**
 * Higher-half images without their own load addresses (LMA) are placed at
 * guest-physical (vaddr - HIGHER_HALF_BASE + HIGHER_HALF_PHYS): a kernel
 * linked at 0xffffffff80000000 lands at 4 GiB, away from low RAM ranges.
 */
export const HIGHER_HALF_BASE = 0xffffffff80000000n;
export const HIGHER_HALF_PHYS = 0x100000000n;
