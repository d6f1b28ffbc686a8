/*
 * The page allocator (kvmtest/alloc.h). The heap arrives zeroed (fresh RAM,
 * or RAM a snapshot restore put back), so nothing is cleared up front: its
 * first pages hold one byte per heap page (the order + 1 of a block given
 * out at that page, 0 otherwise), the rest is handed out from a bump
 * pointer while it lasts (fresh pages need no clearing, which on an
 * emulating KVM costs about a millisecond per page), and freed blocks go on
 * a list per order, linked through their first bytes, and are cleared when
 * handed out again once the fresh pages are gone.
 */
#define KT_NO_CALLER_MACROS
#include "runtime.h"

#define MAX_ORDER 18 /* 1 GiB */

uint64_t kt_heap_base, kt_heap_size;
/* The next fresh page; 0 until the first allocation (the heap's statics start zero in every test). */
static uint64_t next;
static uint8_t *order_of; /* one byte per page of the heap */
static void *free_list[MAX_ORDER + 1];
static size_t pages_out;

/* Clears a block 8 bytes per iteration: an emulating KVM runs rep stosq about 8 times faster than memset's rep stosb. */
static void clear(void *block, uint64_t bytes)
{
    uint64_t words = bytes / 8;
    __asm__ volatile("rep stosq" : "+D"(block), "+c"(words) : "a"(0ull) : "memory");
}

static void start(void)
{
    /* The order bytes take the first pages; blocks start after them. */
    uint64_t pages = kt_heap_size / PAGE_SIZE;
    order_of = (uint8_t *)(uintptr_t)kt_heap_base;
    next = kt_heap_base + (pages + PAGE_SIZE - 1) / PAGE_SIZE * PAGE_SIZE;
}

void *heap_start(void)
{
    return (void *)(uintptr_t)kt_heap_base;
}

size_t heap_size(void)
{
    return kt_heap_size;
}

bool in_heap(const void *addr)
{
    uint64_t a = (uint64_t)(uintptr_t)addr;
    return kt_heap_size && a >= kt_heap_base && a - kt_heap_base < kt_heap_size;
}

void *alloc_pages(unsigned int order)
{
    if (!kt_heap_size) kt_misuse(__FILE__, __LINE__, "alloc_pages(%u): this test has no heap: give it one with .heap = SIZE in KVMTEST(...) (bytes, a multiple of 4 KiB)", order);
    if (order > MAX_ORDER) kt_misuse(__FILE__, __LINE__, "alloc_pages(%u): the largest order is %d (1 GiB)", order, MAX_ORDER);
    if (!next) start();
    uint64_t bytes = PAGE_SIZE << order;
    /* Fresh pages first: they are zero already. Freed ones once those run out. */
    uint64_t at = (next + bytes - 1) & ~(bytes - 1);
    void *block;
    if (at + bytes <= kt_heap_base + kt_heap_size && at + bytes > at) {
        /* Pages skipped for alignment are single pages to give out later. */
        for (; next < at; next += PAGE_SIZE) {
            *(void **)(uintptr_t)next = free_list[0];
            free_list[0] = (void *)(uintptr_t)next;
        }
        block = (void *)(uintptr_t)at;
        next = at + bytes;
    } else if ((block = free_list[order])) {
        free_list[order] = *(void **)block;
        clear(block, bytes);
    } else {
        kt_misuse(__FILE__, __LINE__, "alloc_pages(%u): the heap is used up (%lu KiB in all, %lu KiB of pages given out and not freed, "
               "%lu KiB asked for): give the test a bigger one with .heap = SIZE",
               order, (unsigned long)(kt_heap_size / 1024), (unsigned long)(pages_out * PAGE_SIZE / 1024),
               (unsigned long)(bytes / 1024));
    }
    order_of[((uint64_t)(uintptr_t)block - kt_heap_base) / PAGE_SIZE] = (uint8_t)(order + 1);
    pages_out += 1ul << order;
    return block;
}

void free_pages(void *mem)
{
    uint64_t a = (uint64_t)(uintptr_t)mem;
    if (!mem) return;
    if (!in_heap(mem) || !next || a % PAGE_SIZE) {
        kt_misuse(__FILE__, __LINE__, "free_pages(%p): not a block that alloc_page or alloc_pages gave (the heap is [%#lx, %#lx))", mem,
               (unsigned long)kt_heap_base, (unsigned long)(kt_heap_base + kt_heap_size));
    }
    uint8_t *order = &order_of[(a - kt_heap_base) / PAGE_SIZE];
    if (!*order) kt_misuse(__FILE__, __LINE__, "free_pages(%p): this block is not given out (freed twice, or not the start of a block)", mem);
    unsigned o = *order - 1u;
    *order = 0;
    pages_out -= 1ul << o;
    *(void **)mem = free_list[o];
    free_list[o] = mem;
}
