// The result of running a guest: one plain object (bigints for hardware
// values) that crosses process boundaries with structured clone and feeds
// every reporter. Nothing in here refers to KVM or to a live machine.

export type Outcome =
  | 'returned'
  | 'halted'
  | 'assert-failed'
  | 'panicked'
  | 'fault'
  | 'triple-fault'
  | 'unexpected-io'
  | 'timeout'
  | 'error'
  | 'skipped';

export const OUTCOMES: readonly Outcome[] = [
  'returned', 'halted', 'assert-failed', 'panicked', 'fault', 'triple-fault', 'unexpected-io', 'timeout', 'error', 'skipped',
];

export interface RegisterDump {
  rax: bigint;
  rbx: bigint;
  rcx: bigint;
  rdx: bigint;
  rsi: bigint;
  rdi: bigint;
  rsp: bigint;
  rbp: bigint;
  r8: bigint;
  r9: bigint;
  r10: bigint;
  r11: bigint;
  r12: bigint;
  r13: bigint;
  r14: bigint;
  r15: bigint;
  rip: bigint;
  rflags: bigint;
}

export interface ControlRegisterDump {
  cr0: bigint;
  cr2: bigint;
  cr3: bigint;
  cr4: bigint;
  cr8: bigint;
  efer: bigint;
}

/** An exception that reached the engine's handler (nobody in the guest caught it). */
export interface FaultInfo {
  vector: number;
  /** '#GP', '#PF', ... ('interrupt 0x20' for vectors 32 and up). */
  name: string;
  errorCode?: number;
  rip: bigint;
  /** The faulting address, for #PF. */
  cr2?: bigint;
  /** rip as "function+0x12 (0x...)" when the image has symbols. */
  location: string;
}

/** A kassert / kassert_eq / kpanic record sent by the guest. */
export interface AssertionInfo {
  kind: 'assert' | 'assert-eq' | 'panic';
  file: string;
  line: number;
  /** The condition's source text (kassert), or "left == right" (kassert_eq). */
  expression?: string;
  /** The formatted user message, if any. */
  message?: string;
  left?: { expression: string; value: bigint };
  right?: { expression: string; value: bigint };
}

/** Why a run ended as 'error': the host's KVM, not the guest's code, stopped it. */
export interface ErrorInfo {
  /** 'device': a device the test wrote in TypeScript threw, rejected or answered wrongly. */
  kind: 'emulation-failure' | 'internal-error' | 'entry-failed' | 'unexpected-exit' | 'host' | 'device';
  /** For emulation failures: the instruction bytes at rip, as far as readable. */
  instructionBytes?: number[];
}

export interface GuestResult {
  outcome: Outcome;
  /** Console text the guest wrote (serial port and print hypercalls). */
  output: string;
  /** Why the run ended, when the outcome is not 'returned' (for 'skipped': the test's reason). */
  message?: string;
  /** Registers when the guest returned or stopped (for a fault: at the faulting instruction). */
  regs: RegisterDump;
  sregs: ControlRegisterDump;
  fault?: FaultInfo;
  assertion?: AssertionInfo;
  /** The value written to the exit port, when the guest used it. */
  exitCode?: number;
  error?: ErrorInfo;
  /** rax, when the guest returned: a function's return value (SysV). */
  returnValue?: bigint;
  /** Mirror mode: what this run mapped of the process's memory on first touch. */
  mirror?: MirrorStats;
  durationMs: number;
}

/** Mirror mode's work in one run. */
export interface MirrorStats {
  /** Page faults on process memory that the host answered by mapping it (each resumed the guest). */
  faults: number;
  /** 4 KiB pages mapped by them. */
  pagesMapped: number;
  /** Memory slots the machine has over process memory, 2 MiB each (kept between runs). */
  slots: number;
}
