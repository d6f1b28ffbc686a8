/*
 * Ring-0 code under test, called from JavaScript (guest.test.mjs) through
 * kvmtest's runGuest(): each function is an entry point, with its integer
 * arguments in rdi, rsi, ... as the C ABI passes them and its result in rax.
 */
#include <kvmtest.h>

#define KBD_STATUS 0x64
#define KBD_OUTPUT_FULL 0x01 /* a byte is waiting to be read */
#define KBD_INPUT_BUSY 0x02  /* the controller has not taken the last byte yet */

/* A driver's poll: wait until the keyboard controller is ready, then say whether a byte is waiting. */
uint64_t kbd_wait_ready(void) {
    while (inb(KBD_STATUS) & KBD_INPUT_BUSY)
        pause();
    return inb(KBD_STATUS) & KBD_OUTPUT_FULL;
}

/* EFER is a model-specific register: rdmsr works in ring 0 only. */
uint64_t long_mode_active(void) {
    return (rdmsr(IA32_EFER) & EFER_LMA) != 0;
}

/* a / b, for callers that promise b != 0. */
uint64_t checked_div(uint64_t a, uint64_t b) {
    kassert(b != 0, "checked_div(%lu, 0)", a);
    return a / b;
}
