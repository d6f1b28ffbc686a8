//! Functions for kvmtest's mirror mode, called in guest ring 0 with the
//! worker's address space mirrored into the guest: port I/O, and work on
//! memory the caller hands over by pointer.
#![no_std]

use core::arch::asm;
use core::panic::PanicInfo;

/// Writes `value` to I/O port `port` (`out dx, al`).
#[no_mangle]
pub extern "C" fn rust_outb(port: u16, value: u8) {
    // SAFETY: port I/O is what this function is for; in ring 0 it cannot fault.
    unsafe { asm!("out dx, al", in("dx") port, in("al") value, options(nomem, nostack, preserves_flags)) };
}

/// Reads a byte from I/O port `port` (`in al, dx`).
#[no_mangle]
pub extern "C" fn rust_inb(port: u16) -> u8 {
    let value: u8;
    // SAFETY: as rust_outb.
    unsafe { asm!("in al, dx", in("dx") port, out("al") value, options(nomem, nostack, preserves_flags)) };
    value
}

/// Fills `len` bytes at `buf` with `start`, `start + 1`, ... (wrapping), and
/// returns their sum.
///
/// # Safety
/// `buf` must point at `len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn rust_fill(buf: *mut u8, len: usize, start: u8) -> u64 {
    let mut sum = 0u64;
    for i in 0..len {
        let byte = start.wrapping_add(i as u8);
        // Volatile: the loop stays a loop of byte stores, rather than becoming
        // a call to memset or vector stores (see .cargo/config.toml).
        buf.add(i).write_volatile(byte);
        sum += u64::from(byte);
    }
    sum
}

/// Reads port `port` `count` times into `buf`, one byte per read, and
/// returns how many bytes it stored.
///
/// # Safety
/// `buf` must point at `count` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn rust_read_port_into(port: u16, buf: *mut u8, count: usize) -> usize {
    for i in 0..count {
        buf.add(i).write_volatile(rust_inb(port));
    }
    count
}

/// Adds the `len` 32-bit words at `words`.
///
/// # Safety
/// `words` must point at `len` readable, aligned u32 values.
#[no_mangle]
pub unsafe extern "C" fn rust_sum_words(words: *const u32, len: usize) -> u64 {
    let mut sum = 0u64;
    for i in 0..len {
        sum += u64::from(words.add(i).read_volatile());
    }
    sum
}

/// A guest has nowhere to report a panic to: stop the vCPU where it is, so
/// that the run ends as a halt the host can see.
#[panic_handler]
fn panic(_: &PanicInfo) -> ! {
    loop {
        // SAFETY: hlt with interrupts off stops the vCPU; nothing else runs.
        unsafe { asm!("cli", "hlt", options(nomem, nostack)) };
    }
}
