/*
 * Page-table edits from the guest (kvmtest/vm.h). Tables are reached at
 * virtual = physical (phys_to_virt); new ones come from alloc_page. The
 * engine's pages are guarded: changing their mapping would leave no way to
 * report how the test ended.
 */
#define KT_NO_CALLER_MACROS
#include "runtime.h"

/* [ENGINE_START, ENGINE_END): GDT, TSS, IDT, exception stubs, return stub, exception stack (docs/abi.md). */
#define ENGINE_START 0x1000ull
#define ENGINE_END 0x9000ull

static uint64_t level_size(int level)
{
    return 1ull << (12 + 9 * (level - 1));
}

static bool canonical(uint64_t va)
{
    uint64_t top = va >> 47;
    return top == 0 || top == 0x1ffff;
}

/* Panics unless [va rounded down to `level`'s size, + that size) leaves the engine's pages alone. */
static void guard(const char *what, uint64_t va, int level)
{
    if (!canonical(va)) kt_misuse(__FILE__, __LINE__, "%s: %#lx is not a canonical address", what, (unsigned long)va);
    uint64_t start = va & ~(level_size(level) - 1);
    uint64_t end = start + level_size(level);
    if (start < ENGINE_END && end > ENGINE_START) {
        static const char engine[] = "the engine's pages [0x1000, 0x9000) (GDT, IDT, exception stubs, exception stack), "
                                     "whose mapping must stay as it is for the test's end to be reported";
        if (level == 1) kt_misuse(__FILE__, __LINE__, "%s: %#lx is one of %s", what, (unsigned long)va, engine);
        kt_misuse(__FILE__, __LINE__, "%s: the level %d entry for %#lx also maps %s", what, level, (unsigned long)va, engine);
    }
}

pgd_t *current_page_table(void)
{
    return phys_to_virt(read_cr3() & PT_ADDR_MASK);
}

struct pte_search find_pte_level(pgd_t *root, void *virt, int lowest_level)
{
    uint64_t va = (uint64_t)(uintptr_t)virt;
    if (lowest_level < 1 || lowest_level > PAGE_LEVEL) kt_misuse(__FILE__, __LINE__, "find_pte_level: level %d is not 1 to 4", lowest_level);
    pteval_t *table = root;
    struct pte_search r;
    for (r.level = PAGE_LEVEL;; r.level--) {
        r.pte = &table[PGDIR_OFFSET(va, r.level)];
        pteval_t pte = *r.pte;
        if (!(pte & PT_PRESENT_MASK) || r.level == lowest_level) return r;
        if ((r.level == 2 || r.level == 3) && (pte & PT_PAGE_SIZE_MASK)) return r;
        table = phys_to_virt(pte & PT_ADDR_MASK);
    }
}

pteval_t *get_pte(pgd_t *root, void *virt)
{
    struct pte_search r = find_pte_level(root, virt, 1);
    return found_leaf_pte(r) && (*r.pte & PT_PRESENT_MASK) ? r.pte : NULL;
}

pteval_t *get_pte_level(pgd_t *root, void *virt, int level)
{
    struct pte_search r = find_pte_level(root, virt, level);
    return r.level == level ? r.pte : NULL;
}

phys_addr_t virt_to_phys(const void *virt)
{
    struct pte_search r = find_pte_level(current_page_table(), (void *)virt, 1);
    if (!found_leaf_pte(r) || !(*r.pte & PT_PRESENT_MASK)) kt_misuse(__FILE__, __LINE__, "virt_to_phys(%p): not mapped", virt);
    uint64_t mask = level_size(r.level) - 1;
    return (*r.pte & PT_ADDR_MASK & ~mask) | ((uint64_t)(uintptr_t)virt & mask);
}

static void flush_all(void)
{
    write_cr3(read_cr3());
}

void split_large_page(pteval_t *ptep, int level)
{
    pteval_t pte = *ptep;
    if ((level != 2 && level != 3) || !(pte & PT_PRESENT_MASK) || !(pte & PT_PAGE_SIZE_MASK)) {
        kt_misuse(__FILE__, __LINE__, "split_large_page(%p, %d): the entry (%#lx) is not a present large page at level 2 or 3", (void *)ptep,
               level, (unsigned long)pte);
    }
    uint64_t size = level_size(level), child = level_size(level - 1);
    const uint64_t pat_large = 1ull << 12, pat_4k = 1ull << 7;
    uint64_t phys = pte & PT_ADDR_MASK & ~(size - 1);
    uint64_t flags = pte & ~PT_ADDR_MASK;
    if (level == 2) {
        /* 4 KiB entries: no PS bit, and PAT moves from bit 12 to bit 7. */
        flags &= ~PT_PAGE_SIZE_MASK;
        if (pte & pat_large) flags |= pat_4k;
    } else {
        flags |= pte & pat_large;
    }
    pteval_t *table = alloc_page();
    for (unsigned i = 0; i < 512; i++) table[i] = (phys + i * child) | flags;
    /* The table's entry allows everything; the 512 entries under it keep the permissions. */
    *ptep = virt_to_phys(table) | PT_PRESENT_MASK | PT_WRITABLE_MASK | PT_ACCESSED_MASK | (pte & PT_USER_MASK);
    flush_all();
}

void force_4k_page(void *addr)
{
    pgd_t *root = current_page_table();
    for (;;) {
        struct pte_search r = find_pte_level(root, addr, 1);
        if (!found_huge_pte(r)) return;
        split_large_page(r.pte, r.level);
    }
}

/* install_pte, with the name of the function the test called for messages. */
static pteval_t *install(const char *what, pgd_t *root, int level, void *virt, pteval_t pte, pteval_t *pt_page)
{
    uint64_t va = (uint64_t)(uintptr_t)virt;
    if (level < 1 || level > 3) kt_misuse(__FILE__, __LINE__, "%s: level %d is not 1 to 3", what, level);
    guard(what, va, level);
    pteval_t *table = root;
    for (int lvl = PAGE_LEVEL; lvl > level; lvl--) {
        pteval_t *entry = &table[PGDIR_OFFSET(va, lvl)];
        if (!(*entry & PT_PRESENT_MASK)) {
            pteval_t *fresh = pt_page ? pt_page : alloc_page();
            if (pt_page) memset(fresh, 0, PAGE_SIZE);
            pt_page = NULL;
            *entry = virt_to_phys(fresh) | PT_PRESENT_MASK | PT_WRITABLE_MASK | PT_ACCESSED_MASK;
        } else if ((lvl == 2 || lvl == 3) && (*entry & PT_PAGE_SIZE_MASK)) {
            split_large_page(entry, lvl);
        }
        table = phys_to_virt(*entry & PT_ADDR_MASK);
    }
    pteval_t *entry = &table[PGDIR_OFFSET(va, level)];
    *entry = pte;
    if (level == 1) invlpg(virt);
    else flush_all();
    return entry;
}

pteval_t *install_pte(pgd_t *root, int level, void *virt, pteval_t pte, pteval_t *pt_page)
{
    return install("install_pte", root, level, virt, pte, pt_page);
}

pteval_t *install_page(pgd_t *root, phys_addr_t phys, void *virt)
{
    if (phys & (PAGE_SIZE - 1)) kt_misuse(__FILE__, __LINE__, "install_page(%#lx, %p): the physical address is not 4 KiB-aligned", (unsigned long)phys, virt);
    return install("install_page", root, 1, virt, phys | PT_PRESENT_MASK | PT_WRITABLE_MASK, NULL);
}

pteval_t *install_large_page(pgd_t *root, phys_addr_t phys, void *virt)
{
    if ((phys | (uint64_t)(uintptr_t)virt) & (LARGE_PAGE_SIZE - 1)) {
        kt_misuse(__FILE__, __LINE__, "install_large_page(%#lx, %p): both addresses must be 2 MiB-aligned", (unsigned long)phys, virt);
    }
    return install("install_large_page", root, 2, virt, phys | PT_PRESENT_MASK | PT_WRITABLE_MASK | PT_PAGE_SIZE_MASK, NULL);
}

void install_pages(pgd_t *root, phys_addr_t phys, size_t len, void *virt)
{
    for (size_t done = 0; done + PAGE_SIZE <= len; done += PAGE_SIZE) install_page(root, phys + done, (char *)virt + done);
}

bool any_present_pages(pgd_t *root, void *virt, size_t len)
{
    for (size_t done = 0; done < len; done += PAGE_SIZE)
        if (get_pte(root, (char *)virt + done)) return true;
    return false;
}

pteval_t *update_pte(void *virt, pteval_t clear, pteval_t set)
{
    struct pte_search r = find_pte_level(current_page_table(), virt, 1);
    if (!found_leaf_pte(r) || !(*r.pte & PT_PRESENT_MASK)) kt_misuse(__FILE__, __LINE__, "update_pte(%p): not mapped", virt);
    guard("update_pte", (uint64_t)(uintptr_t)virt, r.level);
    *r.pte = (*r.pte & ~clear) | set;
    invlpg(virt);
    return r.pte;
}

pteval_t *update_walk(void *virt, pteval_t clear, pteval_t set)
{
    uint64_t va = (uint64_t)(uintptr_t)virt;
    struct pte_search leaf = find_pte_level(current_page_table(), virt, 1);
    if (!found_leaf_pte(leaf) || !(*leaf.pte & PT_PRESENT_MASK)) kt_misuse(__FILE__, __LINE__, "update_walk(%p): not mapped", virt);
    bool risky = (clear & (PT_PRESENT_MASK | PT_WRITABLE_MASK)) || (set & PT64_NX_MASK);
    pteval_t *table = current_page_table();
    for (int level = PAGE_LEVEL; level >= leaf.level; level--) {
        pteval_t *entry = &table[PGDIR_OFFSET(va, level)];
        if (risky) guard("update_walk", va, level);
        pteval_t next = *entry & PT_ADDR_MASK;
        *entry = (*entry & ~clear) | set;
        table = phys_to_virt(next);
    }
    flush_all();
    return leaf.pte;
}

void walk_pte(void *virt, size_t len, pte_callback_t callback)
{
    pgd_t *root = current_page_table();
    uint64_t va = (uint64_t)(uintptr_t)virt, end = va + len;
    while (va < end) {
        struct pte_search r = find_pte_level(root, (void *)(uintptr_t)va, 1);
        uint64_t step = level_size(r.level);
        if (found_leaf_pte(r) && (*r.pte & PT_PRESENT_MASK)) callback(r, (void *)(uintptr_t)va);
        va = (va & ~(step - 1)) + step;
    }
}
