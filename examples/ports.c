/*
 * Port I/O against ports the test configures: each .ioport reads as its
 * value, and writing that same value back is accepted.
 */
#include <kvmtest.h>

KVMTEST(check_inw_port_read, .ioport = { 0x1, 0xfe }) {
    kassert(inw(0x1) == 0xfe, "`inw` instruction didn't read the correct value");
}

KVMTEST(check_inb_reads_low_byte, .ioport = { 0x60, 0x1234 }) {
    kassert_eq(inb(0x60), 0x34);
}

KVMTEST(check_inl_port_read, .ioport = { 0xcfc, 0x80861237 }) {
    kassert_eq(inl(0xcfc), 0x80861237);
}

KVMTEST(check_outb_accepts_configured_value, .ioport = { 0x80, 0x42 }) {
    outb(0x80, 0x42);
}

KVMTEST(check_several_ports,
        .ioports = { { 0x70, 0x0a }, { 0x71, 0x26 }, { 0x2f8, 0x55 } }) {
    kassert_eq(inb(0x70), 0x0a);
    kassert_eq(inb(0x71), 0x26);
    kassert_eq(inb(0x2f8), 0x55);
}

KVMTEST(print_works, .ram = { 0x30000000, 0x31000000 }) {
    sprint("sprint!, ");
    sprintln("sprintln! works");
}

KVMTEST(serial_line_status_says_transmitter_empty) {
    /* A polling serial driver waits for bit 5 of the line-status register. */
    kassert(inb(0x3fd) & 0x20);
    outb(0x3f8, 'k');
    outb(0x3f8, '\n');
}
