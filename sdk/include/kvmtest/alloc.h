/*
 * A page allocator over the test's heap, with kvm-unit-tests'
 * lib/alloc_page.h names: alloc_page, alloc_pages(order), free_page,
 * free_pages. The heap is RAM the host places for a test that declares
 * `.heap = SIZE` (bytes, a multiple of 4 KiB), identity-mapped, readable,
 * writable and executable; docs/abi.md says where. Pages come zeroed.
 *
 * Running out of heap, or freeing what alloc_page did not give, makes the
 * test panic with a message that says so; alloc_page never returns NULL.
 */
#ifndef KVMTEST_ALLOC_H
#define KVMTEST_ALLOC_H

#include <stdbool.h>
#include <kvmtest/caller.h>
#include <kvmtest/types.h>

/* 2^order contiguous pages, aligned to their size. */
void *alloc_pages(unsigned int order);
static inline void *(alloc_page)(void)
{
    return (alloc_pages)(0);
}
/* Gives back pages that alloc_page / alloc_pages returned (the order is remembered). */
void free_pages(void *mem);
static inline void (free_page)(void *mem)
{
    (free_pages)(mem);
}
static inline void free_pages_by_order(void *mem, unsigned int order)
{
    (void)order;
    free_pages(mem);
}

/* The heap: its first byte and size (0 and 0 without `.heap`). */
void *heap_start(void);
size_t heap_size(void);
/* True when `addr` lies in the heap. */
bool in_heap(const void *addr);

#ifndef KT_NO_CALLER_MACROS
#define alloc_pages(order) KT_AT_((alloc_pages)(order))
#define alloc_page() KT_AT_((alloc_page)())
#define free_pages(mem) KT_AT_VOID_((free_pages)(mem))
#define free_page(mem) KT_AT_VOID_((free_page)(mem))
#endif

#endif /* KVMTEST_ALLOC_H */
