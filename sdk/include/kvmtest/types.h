/*
 * The short integer types kvm-unit-tests and Linux code use (u8 ... u64,
 * s8 ... s64, ulong, phys_addr_t), beside <stdint.h>'s, so that tests ported
 * from kvm-unit-tests compile unchanged. u64 is uint64_t (unsigned long on
 * x86-64), so a u64 * and an unsigned long * are the same pointer type.
 * Identical typedefs may be repeated (C11), so another header may declare
 * them too.
 */
#ifndef KVMTEST_TYPES_H
#define KVMTEST_TYPES_H

#include <stddef.h>
#include <stdint.h>

typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;
typedef int8_t s8;
typedef int16_t s16;
typedef int32_t s32;
typedef int64_t s64;
typedef unsigned long ulong;
typedef u64 phys_addr_t;
/* A page-table entry, and a table's first entry (kvm-unit-tests' names). */
typedef u64 pteval_t;
typedef u64 pgd_t;

#ifndef BIT
#define BIT(n) (1ul << (n))
#endif
#ifndef BIT_ULL
#define BIT_ULL(n) (1ull << (n))
#endif

#endif /* KVMTEST_TYPES_H */
