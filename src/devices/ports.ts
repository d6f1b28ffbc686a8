// The guest/host protocol's port numbers. The SDK's C headers use the same
// numbers (sdk/include/kvmtest/abi.h); docs/abi.md describes the protocol.

/** COM1: data register; line status at +5. */
export const SERIAL_BASE = 0x3f8;
export const SERIAL_PORTS = 8;
/** isa-debug-exit style: a write ends the test (0 returned, 1 assertion failed, 2 panicked). */
export const EXIT_PORT = 0xf4;
/** 32-bit write of a hypercall number; arguments in rdi and rsi. */
export const HYPERCALL_PORT = 0xf5;

export const EXIT_CODE = { returned: 0, assertFailed: 1, panicked: 2 } as const;

export const HYPERCALL = {
  /** rdi = pointer to bytes, rsi = length: append to the console. */
  write: 1,
  /** rdi = pointer to a struct kt_report: the test failed an assertion or panicked. */
  report: 2,
} as const;
