/*
 * The four functions a freestanding compiler may call on its own (for struct
 * copies and initializers), plus strlen. memset, memcpy and memmove use the
 * rep string instructions, which on an emulating KVM are much cheaper than a
 * loop (and a loop the compiler could turn back into a call to memset
 * itself). An emulator still pays per iteration (on PVM a byte of rep movsb
 * costs about two plain instructions), so memset and memcpy move quadwords
 * and only the last few bytes one by one.
 */
#include "runtime.h"

void *memset(void *dst, int c, size_t n)
{
    void *d = dst;
    size_t quads = n / 8, rest = n % 8;
    uint64_t pattern = 0x0101010101010101ull * (uint8_t)c;
    __asm__ volatile("rep stosq" : "+D"(d), "+c"(quads) : "a"(pattern) : "memory");
    __asm__ volatile("rep stosb" : "+D"(d), "+c"(rest) : "a"(pattern) : "memory");
    return dst;
}

void *memcpy(void *restrict dst, const void *restrict src, size_t n)
{
    void *d = dst;
    size_t quads = n / 8, rest = n % 8;
    __asm__ volatile("rep movsq" : "+D"(d), "+S"(src), "+c"(quads) : : "memory");
    __asm__ volatile("rep movsb" : "+D"(d), "+S"(src), "+c"(rest) : : "memory");
    return dst;
}

void *memmove(void *dst, const void *src, size_t n)
{
    uintptr_t d = (uintptr_t)dst, s = (uintptr_t)src;
    if (d <= s || d >= s + n) return memcpy(dst, src, n);
    /* Overlapping with dst above src: copy backwards, from the last byte. */
    void *dl = (char *)dst + n - 1;
    const void *sl = (const char *)src + n - 1;
    __asm__ volatile("std; rep movsb; cld" : "+D"(dl), "+S"(sl), "+c"(n) : : "memory");
    return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const unsigned char *x = a, *y = b;
    for (size_t i = 0; i < n; i++) {
        if (x[i] != y[i]) return x[i] < y[i] ? -1 : 1;
    }
    return 0;
}

size_t strlen(const char *s)
{
    size_t n = 0;
    while (s[n]) n++;
    return n;
}
