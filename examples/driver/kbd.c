/*
 * A PS/2 keyboard driver's reset, written as an operating system writes it:
 * no KVMTEST here. `npm start` links this file into build/driver.elf with
 * `kvmtest cc`, and examples/keyboard.kvmtest.ts runs test_kbd_reset against
 * keyboard controllers written in TypeScript.
 */
#include <kvmtest.h>

#define KBD_DATA 0x60
#define KBD_STATUS 0x64
#define KBD_OUTPUT_FULL 0x01 /* status bit 0: a byte from the keyboard waits in KBD_DATA */
#define KBD_INPUT_FULL 0x02  /* status bit 1: the controller has not taken the last byte yet */

#define KBD_CMD_RESET 0xff
#define KBD_ACK 0xfa

static void kbd_send(uint8_t byte) {
    while (inb(KBD_STATUS) & KBD_INPUT_FULL)
        pause();
    outb(KBD_DATA, byte);
}

static uint8_t kbd_receive(void) {
    while (!(inb(KBD_STATUS) & KBD_OUTPUT_FULL))
        pause();
    return inb(KBD_DATA);
}

/*
 * Sends RESET and returns the keyboard's answer: KBD_ACK when it took the
 * command. (A keyboard then runs its self-test and sends 0xaa; this driver
 * does not wait for that.)
 */
uint8_t kbd_reset(void) {
    kbd_send(KBD_CMD_RESET);
    return kbd_receive();
}

/* The entry the TypeScript tests run. */
void test_kbd_reset(void) {
    uint8_t answer = kbd_reset();
    kassert(answer == KBD_ACK, "the keyboard answered RESET with %#x, not ACK (0xfa)", answer);
}
