/*
 * The small libc pieces freestanding tests use, beside the mem* functions
 * and strlen that <kvmtest.h> declares: string comparison and search, and
 * setjmp/longjmp. General-purpose registers only, like the whole runtime.
 */
#ifndef KVMTEST_LIBC_H
#define KVMTEST_LIBC_H

#include <stddef.h>

int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
size_t strnlen(const char *s, size_t max);
char *strchr(const char *s, int c);
char *strrchr(const char *s, int c);
void *memchr(const void *s, int c, size_t n);
char *strcpy(char *restrict dst, const char *restrict src);
/* As C's: copies at most n bytes and pads with NULs; no NUL if src is n bytes or longer. */
char *strncpy(char *restrict dst, const char *restrict src, size_t n);
char *strcat(char *restrict dst, const char *restrict src);

/*
 * setjmp(buf) returns 0; a later longjmp(buf, value) returns to it again,
 * with value (1 if value is 0). Saves the callee-saved general registers,
 * rsp and the return address: no flags, no FPU or SSE state. The function
 * that called setjmp must not have returned before the longjmp.
 */
typedef unsigned long jmp_buf[8];
int setjmp(jmp_buf buf) __attribute__((returns_twice));
__attribute__((noreturn)) void longjmp(jmp_buf buf, int value);

#endif /* KVMTEST_LIBC_H */
