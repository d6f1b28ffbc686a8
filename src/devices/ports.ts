// The guest/host protocol's port numbers, and the one table of the ports the
// engine's own devices hold: the reserved-port check (options.ts), the
// standard device set (run-guest.ts) and the docs are all derived from it.
// The SDK's C headers use the same numbers (sdk/include/kvmtest/abi.h);
// docs/abi.md describes the protocol.

/** COM1: data register; line status at +5. */
export const SERIAL_BASE = 0x3f8;
export const SERIAL_PORTS = 8;
/** isa-debug-exit style: a write ends the test (0 returned, 1 assertion failed, 2 panicked). */
export const EXIT_PORT = 0xf4;
/** 32-bit write of a hypercall number; arguments in rdi and rsi. */
export const HYPERCALL_PORT = 0xf5;
/**
 * The engine's doorbell: its return stub and exception stubs do `out %al`
 * here, and the stub's address says what happened (devices/doorbell.ts).
 */
export const DOORBELL_PORT = 0xf6;

export const EXIT_CODE = { returned: 0, assertFailed: 1, panicked: 2 } as const;

export const HYPERCALL = {
  /** rdi = pointer to bytes, rsi = length: append to the console. */
  write: 1,
  /** rdi = pointer to a struct kt_report: the test failed an assertion or panicked. */
  report: 2,
  /** rdi = pointer to the reason's bytes, rsi = length: the test is skipped (kskip). */
  skip: 3,
  /** rdi = pointer to a struct kt_report: a non-fatal check failed (kexpect, report); the guest goes on. */
  check: 4,
} as const;

export type EnginePortRole = 'serial' | 'exit' | 'hypercall' | 'doorbell';

export interface EnginePorts {
  role: EnginePortRole;
  first: number;
  count: number;
  /** How messages name the owner ("the exit port (0xf4)"). */
  owner: string;
}

/** Every port the engine's devices hold. A test cannot configure any of them. */
export const ENGINE_PORTS: readonly EnginePorts[] = [
  { role: 'serial', first: SERIAL_BASE, count: SERIAL_PORTS, owner: 'the serial console (COM1, 0x3f8-0x3ff)' },
  { role: 'exit', first: EXIT_PORT, count: 1, owner: 'the exit port (0xf4)' },
  { role: 'hypercall', first: HYPERCALL_PORT, count: 1, owner: 'the hypercall port (0xf5)' },
  { role: 'doorbell', first: DOORBELL_PORT, count: 1, owner: "the engine's doorbell port (0xf6)" },
];

/** The engine's device at `port`, if any. */
export function enginePortAt(port: number): EnginePorts | undefined {
  return ENGINE_PORTS.find((p) => port >= p.first && port < p.first + p.count);
}

/**
 * The interrupt test device (machines with interrupt controllers only), as
 * kvm-unit-tests' pc-testdev: an 8-bit write of 0 or 1 to port
 * IRQ_LINE_PORT + line sets that IOAPIC line's level (set_irq_line).
 */
export const IRQ_LINE_PORT = 0x2000;
