// The page-table builder and walker over a plain buffer: what gets mapped,
// with which permissions and page sizes, and what translates to where. Pure:
// no /dev/kvm.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ScratchMemory } from '../../src/machine/memory.js';
import { isCanonical, PageTableBuilder, PageTableError, PTE_HUGE, PTE_NX, PTE_WRITABLE, readVirtual, translate } from '../../src/machine/paging.js';

const POOL = 0x80000n;
const PAGES = 16;

function builder() {
  const memory = new ScratchMemory(POOL, PAGES * 4096);
  return { memory, tables: new PageTableBuilder(memory, POOL, PAGES) };
}

/** The leaf entry that maps `virt`, found by walking like the CPU. */
function leaf(memory: ScratchMemory, root: bigint, virt: bigint): bigint {
  let table = root;
  for (let level = 4; level >= 1; level--) {
    const entry = memory.readU64(table + ((virt >> (12n + 9n * BigInt(level - 1))) & 0x1ffn) * 8n)!;
    if (level === 1 || entry & PTE_HUGE) return entry;
    table = entry & 0x000f_ffff_ffff_f000n;
  }
  throw new Error('unreachable');
}

describe('PageTableBuilder', () => {
  test('maps 4 KiB pages with their permissions, and translate follows them', () => {
    const { memory, tables } = builder();
    tables.map(0x200000n, 0x200000n, 0x2000n, { writable: false, executable: true });
    tables.map(0x300000n, 0x500000n, 0x1000n, { writable: true, executable: false });
    assert.equal(translate(memory, tables.root, 0x201234n), 0x201234n);
    assert.equal(translate(memory, tables.root, 0x300010n), 0x500010n);
    assert.equal(translate(memory, tables.root, 0x202000n), undefined, 'nothing else is mapped');
    const code = leaf(memory, tables.root, 0x200000n);
    assert.equal(code & PTE_WRITABLE, 0n);
    assert.equal(code & PTE_NX, 0n);
    const data = leaf(memory, tables.root, 0x300000n);
    assert.equal(data & PTE_WRITABLE, PTE_WRITABLE);
    assert.equal(data & PTE_NX, PTE_NX);
  });

  test('uses 2 MiB pages where both addresses and the length allow', () => {
    const { memory, tables } = builder();
    tables.map(0x40000000n, 0x40000000n, 0x400000n, { writable: true, executable: true });
    assert.equal(leaf(memory, tables.root, 0x40200000n) & PTE_HUGE, PTE_HUGE);
    assert.equal(translate(memory, tables.root, 0x403ffff8n), 0x403ffff8n);
    assert.ok(tables.pagesUsed <= 3, `${tables.pagesUsed} tables for two large pages`);
  });

  test('one virtual page mapped to two physical ones is an error; the same one merges permissions', () => {
    const { memory, tables } = builder();
    tables.map(0x200000n, 0x200000n, 0x1000n, { writable: false, executable: true });
    tables.map(0x200000n, 0x200000n, 0x1000n, { writable: true, executable: false });
    const merged = leaf(memory, tables.root, 0x200000n);
    assert.equal(merged & PTE_WRITABLE, PTE_WRITABLE);
    assert.equal(merged & PTE_NX, 0n, 'executable if either mapping is');
    assert.throws(() => tables.map(0x200000n, 0x900000n, 0x1000n, { writable: false, executable: false }), PageTableError);
  });

  test('a pool too small for the mappings says so', () => {
    const { tables } = builder();
    assert.throws(() => {
      for (let i = 0n; i < 40n; i++) tables.map(0x10000000n + i * 0x40000000n, 0x10000000n, 0x1000n, { writable: false, executable: false });
    }, /need more than 16 page-table pages/);
  });
});

describe('translate and readVirtual', () => {
  test('non-canonical addresses never translate, even where their low bits are mapped', () => {
    const { memory, tables } = builder();
    tables.map(0x200000n, 0x200000n, 0x1000n, { writable: true, executable: false });
    assert.equal(isCanonical(0x200000n), true);
    assert.equal(isCanonical(0xffff800000000000n), true);
    assert.equal(isCanonical(0x0000800000000000n), false);
    assert.equal(translate(memory, tables.root, 0x200000n | (1n << 62n)), undefined);
  });

  test('readVirtual stops at the first unmapped page', () => {
    const memory = new ScratchMemory(0n, 0x90000);
    const tables = new PageTableBuilder(memory, POOL, PAGES);
    tables.map(0x1000n, 0x1000n, 0x1000n, { writable: true, executable: false });
    memory.physView(0x1ffcn, 4)!.set([1, 2, 3, 4]);
    assert.deepEqual([...readVirtual(memory, tables.root, 0x1ffcn, 16)], [1, 2, 3, 4]);
  });
});
