// The guest library real kernel tests need (kvm-unit-tests' lib/x86 names):
// the page allocator over .heap, page-table walks and edits, setjmp and the
// string functions, each misuse's message, and page-table edits that do not
// outlive their test. The fixtures run through the real `kvmtest run`, one
// worker, so that later tests reuse the machines earlier ones left.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { guestTest, toolchainTest } from '../helpers/kvm.js';
import { CAN_BUILD, describeRun, runJson, type JsonReport } from '../cli/helpers.js';
import { buildFixtures, buildSources, FIXTURES, lineOf, TestBinary } from './sdk-helpers.js';

type JsonTest = JsonReport['tests'][number];

async function runAll(elf: string, extra: readonly string[] = []): Promise<Map<string, JsonTest>> {
  const { result, report } = await runJson(['-j1', ...extra, elf]);
  assert.ok(result.status === 0 || result.status === 1, describeRun(result));
  return new Map(report.tests.map((t) => [t.name, t]));
}

function get(tests: Map<string, JsonTest>, name: string): JsonTest {
  const found = tests.get(name);
  assert.ok(found, `no result for ${name}`);
  return found;
}

function passed(tests: Map<string, JsonTest>, name: string): JsonTest {
  const t = get(tests, name);
  assert.equal(t.status, 'passed', `${name}: ${t.status} ${t.message ?? ''}\n${t.output}`);
  return t;
}

/**
 * A test that panicked where the runtime refuses a misuse: the message, after
 * checking that it names the test's own line (the first in the fixture that
 * holds `call`), not the runtime's.
 */
function refused(tests: Map<string, JsonTest>, name: string, call: string): string {
  const t = get(tests, name);
  assert.equal(t.status, 'failed', `${name} should fail`);
  assert.equal(t.outcome, 'panicked', t.message ?? '');
  const where = `panicked at ${FIXTURES}guest-memory.c:${lineOf('guest-memory.c', call)}: `;
  assert.ok(t.message?.startsWith(where), `${t.message}\nshould start with ${where}`);
  return (t.message ?? '').slice(where.length);
}

describe('the guest library: memory', guestTest(), () => {
  let elf = '';
  let snapshot: Map<string, JsonTest>;
  before(async () => {
    if (!CAN_BUILD) return;
    elf = buildFixtures('guest-memory.elf', ['guest-memory.c']);
    snapshot = await runAll(elf);
  });

  test('alloc_page, alloc_pages and free_page over a heap the host places at 2 MiB, 2 MiB-aligned', () => {
    const t = passed(snapshot, 'alloc_page_gives_zeroed_pages_from_the_heap');
    const [, address, size] = /^heap (0x[0-9a-f]+) (\d+)\n$/.exec(t.output) ?? [];
    assert.ok(address && size, t.output);
    assert.equal(BigInt(address) % 0x200000n, 0n);
    assert.ok(BigInt(address) >= 0x200000n);
    assert.equal(size, '65536');
    passed(snapshot, 'freed_pages_come_back_zeroed');
  });

  test('the heap used up, no heap, a page freed twice or never allocated: each says so', () => {
    assert.equal(
      refused(snapshot, 'heap_used_up', 'for (int i = 0; i < 4; i++) alloc_page();'),
      'alloc_pages(0): the heap is used up (16 KiB in all, 12 KiB of pages given out and not freed, 4 KiB asked for): give the test a bigger one with .heap = SIZE',
    );
    assert.equal(
      refused(snapshot, 'no_heap', 'alloc_page(); /* no heap */'),
      'alloc_pages(0): this test has no heap: give it one with .heap = SIZE in KVMTEST(...) (bytes, a multiple of 4 KiB)',
    );
    assert.match(refused(snapshot, 'freed_twice', 'free_page(p); /* again */'), /^free_pages\(0x[0-9a-f]+\): this block is not given out \(freed twice, or not the start of a block\)$/);
    assert.match(
      refused(snapshot, 'freed_without_alloc', 'free_page(not_from_the_heap);'),
      /^free_pages\(0x[0-9a-f]+\): not a block that alloc_page or alloc_pages gave \(the heap is \[0x[0-9a-f]+, 0x[0-9a-f]+\)\)$/,
    );
  });

  test('get_pte, get_pte_level, find_pte_level, virt_to_phys read the engine\'s tables', () => {
    passed(snapshot, 'get_pte_reads_the_engine_tables');
  });

  test('install_page maps a heap page at a new address; install_page in a 2 MiB page splits it; force_4k_page, split_large_page', () => {
    passed(snapshot, 'install_page_maps_a_heap_page_at_a_new_address');
    passed(snapshot, 'install_page_inside_a_large_page_splits_it');
    passed(snapshot, 'force_4k_page_and_split_large_page');
    passed(snapshot, 'walk_pte_visits_each_mapped_page');
  });

  test('update_pte clears and sets bits; the faults follow', () => {
    passed(snapshot, 'update_pte_makes_a_page_read_only_then_not_present');
  });

  test('update_walk changes every level of a walk, and will not unmap the engine\'s pages with an upper level', () => {
    assert.match(
      refused(snapshot, 'update_walk_sets_a_bit_at_every_level', 'PML4[0] also maps'),
      /^update_walk: the level 4 entry for 0x2[0-9a-f]{5} also maps the engine's pages \[0x1000, 0x9000\) \(GDT, IDT, exception stubs, exception stack\), whose mapping must stay as it is for the test's end to be reported$/,
    );
  });

  test('misuses: the engine\'s pages, an unaligned physical address, virt_to_phys of nothing', () => {
    assert.equal(
      refused(snapshot, 'install_page_over_the_engine_pages', '(void *)0x3000);'),
      "install_page: 0x3000 is one of the engine's pages [0x1000, 0x9000) (GDT, IDT, exception stubs, exception stack), whose mapping must stay as it is for the test's end to be reported",
    );
    assert.match(refused(snapshot, 'install_page_unaligned_phys', '+ 8, ALIAS);'), /^install_page\(0x[0-9a-f]+008, 0x50000000\): the physical address is not 4 KiB-aligned$/);
    assert.equal(refused(snapshot, 'virt_to_phys_unmapped', '    virt_to_phys(ALIAS);'), 'virt_to_phys(0x50000000): not mapped');
  });

  test('page-table edits and the heap do not outlive their test, in both isolation modes', async () => {
    passed(snapshot, 'zz_data_page_mapped_again');
    passed(snapshot, 'zz_alias_gone');
    const vm = await runAll(elf, ['--isolation', 'vm', '--filter', 'update_pte', '--filter', 'install_page_maps', '--filter', 'zz_']);
    for (const name of ['update_pte_makes_a_page_read_only_then_not_present', 'install_page_maps_a_heap_page_at_a_new_address', 'zz_data_page_mapped_again', 'zz_alias_gone']) {
      passed(vm, name);
    }
  });

  test('setjmp/longjmp and the string functions', () => {
    passed(snapshot, 'setjmp_and_longjmp');
    passed(snapshot, 'string_functions');
  });

  test('every test of the fixture has a result', () => {
    assert.equal(snapshot.size, 20);
    assert.equal(get(snapshot, 'no_heap').line, lineOf('guest-memory.c', 'KVMTEST(no_heap)'));
    assert.equal(get(snapshot, 'no_heap').file, `${FIXTURES}guest-memory.c`);
  });
});

describe('the guest library: names of a test\'s own', toolchainTest(), () => {
  test('its headers and macros build without warnings under -Wall -Wextra -Werror', () => {
    buildFixtures('warnings.elf', ['guest-memory.c', 'guest-checks.c', 'guest-cpuid.c'], ['-Wall', '-Wextra', '-Werror']);
  });

  test('KVMTEST_NO_GUEST_LIBRARY leaves report, PAGE_SIZE, u64 and the rest to the test', () => {
    const binary = new TestBinary(buildSources('own-names.elf', {
      'own.c': '#define KVMTEST_NO_GUEST_LIBRARY\n#include <kvmtest.h>\n' +
        'typedef int u64;\n#define PAGE_SIZE 4096\nstatic int report(int x) { return x; }\n' +
        'static int alloc_page(void) { return 1; }\n' +
        'KVMTEST(mine) { u64 v = 2; kassert(report(v) + alloc_page() == 3 && PAGE_SIZE == 4096); }\n',
    }));
    assert.deepEqual(binary.tests.map((t) => t.name), ['mine']);
  });
});
