/*
 * Page tables from the guest, with kvm-unit-tests' lib/x86/vm.h names and
 * signatures: find a page's entry (get_pte, get_pte_level, find_pte_level),
 * map a page (install_page, install_large_page, install_pte), split a large
 * page (split_large_page, force_4k_page), change bits (update_pte) and walk
 * a range (walk_pte). New tables come from the heap (alloc_page, so the
 * test needs `.heap`); the engine's own tables use 2 MiB pages where they
 * can, and installing a 4 KiB page inside one splits it first.
 *
 * Tables hold physical addresses. phys_to_virt() is the identity: the
 * engine maps its own area, low-linked images, RAM ranges and the heap at
 * virtual = physical, which covers every table these functions reach.
 * virt_to_phys() walks the current tables.
 *
 * The engine's pages (0x1000-0x9000: GDT, IDT, its stubs, the exception
 * stack) must stay mapped for a test's end to be reported; these functions
 * refuse to change their mapping (the test panics, saying so). Whatever a
 * test changes is undone before the next test (a restored snapshot, or a
 * new machine).
 */
#ifndef KVMTEST_VM_H
#define KVMTEST_VM_H

#include <stdbool.h>
#include <kvmtest/caller.h>
#include <kvmtest/types.h>
#include <kvmtest/desc.h>

#define PAGE_SHIFT 12
#define PAGE_SIZE (1ul << PAGE_SHIFT)
#define PAGE_MASK (~(PAGE_SIZE - 1))
#define LARGE_PAGE_SIZE (512 * PAGE_SIZE)
#define PAGE_LEVEL 4
#define PGDIR_WIDTH 9
#define PGDIR_MASK 511
#define PGDIR_OFFSET(va, level) (((va) >> (((level) - 1) * PGDIR_WIDTH + 12)) & PGDIR_MASK)

#define PT_PRESENT_MASK (1ull << 0)
#define PT_WRITABLE_MASK (1ull << 1)
#define PT_USER_MASK (1ull << 2)
#define PT_PWT_MASK (1ull << 3)
#define PT_PCD_MASK (1ull << 4)
#define PT_ACCESSED_MASK (1ull << 5)
#define PT_DIRTY_MASK (1ull << 6)
#define PT_PAGE_SIZE_MASK (1ull << 7)
#define PT_GLOBAL_MASK (1ull << 8)
#define PT64_NX_MASK (1ull << 63)
/* Bits 12-51: the next table's or the page's physical address. */
#define PT_ADDR_MASK 0x000ffffffffff000ull
#define PT_AD_MASK (PT_ACCESSED_MASK | PT_DIRTY_MASK)

/* The #PF error code bits (PFERR_*_MASK) are in <kvmtest/desc.h>. */

/* The last entry find_pte_level reached, and its level (4 = PML4 ... 1 = PTE). */
struct pte_search {
    int level;
    pteval_t *pte;
};

static inline bool found_huge_pte(struct pte_search search)
{
    return (search.level == 2 || search.level == 3) && (*search.pte & PT_PRESENT_MASK) &&
           (*search.pte & PT_PAGE_SIZE_MASK);
}

static inline bool found_leaf_pte(struct pte_search search)
{
    return search.level == 1 || found_huge_pte(search);
}

/* The identity (see above). */
static inline void *phys_to_virt(phys_addr_t phys)
{
    return (void *)(uintptr_t)phys;
}

/* The physical address `virt` maps to in the current tables; the test panics if it is not mapped. */
phys_addr_t virt_to_phys(const void *virt);

/* The PML4 that CR3 points at. */
pgd_t *current_page_table(void);

/*
 * The entry for `virt` at the lowest level at or above `lowest_level` that
 * the walk reaches: it stops early at an entry that is not present or maps
 * a large page. The entry returned may be not present; its table is.
 */
struct pte_search find_pte_level(pgd_t *root, void *virt, int lowest_level);
/* The leaf entry mapping `virt` (a 4 KiB PTE, or a 2 MiB / 1 GiB page's), or NULL when unmapped. */
pteval_t *get_pte(pgd_t *root, void *virt);
/* The entry at exactly `level` on `virt`'s walk, or NULL when the walk stops above it. */
pteval_t *get_pte_level(pgd_t *root, void *virt, int level);

/*
 * Writes `pte` at `level` of `virt`'s walk, making the tables above it from
 * `pt_page` (if not NULL, for the first one) and alloc_page(); a large page
 * on the way is split first. Flushes `virt` from the TLB. Returns the entry.
 */
pteval_t *install_pte(pgd_t *root, int level, void *virt, pteval_t pte, pteval_t *pt_page);
/* Maps the 4 KiB page at `virt` to `phys`, present and writable. */
pteval_t *install_page(pgd_t *root, phys_addr_t phys, void *virt);
/* Maps the 2 MiB page at `virt` (2 MiB-aligned) to `phys` (2 MiB-aligned), present and writable. */
pteval_t *install_large_page(pgd_t *root, phys_addr_t phys, void *virt);
/* install_page for each page of [virt, virt + len). */
void install_pages(pgd_t *root, phys_addr_t phys, size_t len, void *virt);
/* True if any page of [virt, virt + len) is mapped. */
bool any_present_pages(pgd_t *root, void *virt, size_t len);

/*
 * Replaces the large page that `ptep` (at `level` 2 or 3) maps by a table
 * of 512 entries that map the same memory with the same permissions, one
 * level down. Flushes the TLB.
 */
void split_large_page(pteval_t *ptep, int level);
/* Splits the large pages over `addr` until it is mapped by a 4 KiB page. */
void force_4k_page(void *addr);

/*
 * Clears then sets bits in the leaf entry of `virt` in the current tables,
 * and flushes `virt` from the TLB: update_pte(p, PT_WRITABLE_MASK, 0)
 * makes a page read-only. Panics if `virt` is not mapped. Returns the entry.
 */
pteval_t *update_pte(void *virt, pteval_t clear, pteval_t set);

/*
 * The same on every entry of the walk to `virt`'s leaf, the tables above it
 * included: update_walk(p, 0, PT_USER_MASK) opens a page to ring 3 at every
 * level. Returns the leaf entry. Refuses to clear P or W, or to set NX, on
 * an entry that also maps the engine's pages.
 */
pteval_t *update_walk(void *virt, pteval_t clear, pteval_t set);

/* Calls `callback` with the leaf entry of each mapped page of [virt, virt + len) in the current tables. */
typedef void (*pte_callback_t)(struct pte_search search, void *va);
void walk_pte(void *virt, size_t len, pte_callback_t callback);

#ifndef KT_NO_CALLER_MACROS
#define virt_to_phys(virt) KT_AT_((virt_to_phys)(virt))
#define install_pte(root, level, virt, pte, pt_page) KT_AT_((install_pte)(root, level, virt, pte, pt_page))
#define install_page(root, phys, virt) KT_AT_((install_page)(root, phys, virt))
#define install_large_page(root, phys, virt) KT_AT_((install_large_page)(root, phys, virt))
#define install_pages(root, phys, len, virt) KT_AT_VOID_((install_pages)(root, phys, len, virt))
#define split_large_page(ptep, level) KT_AT_VOID_((split_large_page)(ptep, level))
#define force_4k_page(addr) KT_AT_VOID_((force_4k_page)(addr))
#define update_pte(virt, clear, set) KT_AT_((update_pte)(virt, clear, set))
#define update_walk(virt, clear, set) KT_AT_((update_walk)(virt, clear, set))
#define find_pte_level(root, virt, lowest_level) KT_AT_((find_pte_level)(root, virt, lowest_level))
#endif

#endif /* KVMTEST_VM_H */
