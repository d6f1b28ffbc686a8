/*
 * The short integer names kvm-unit-tests and Linux use (u8 ... u64, ulong),
 * beside <stdint.h>'s, so that tests ported from them compile unchanged.
 * Identical typedefs may be repeated (C11), so another header may declare
 * them too.
 */
#ifndef KVMTEST_TYPES_H
#define KVMTEST_TYPES_H

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

#endif /* KVMTEST_TYPES_H */
