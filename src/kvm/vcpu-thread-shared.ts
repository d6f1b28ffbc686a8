// The control block a vCPU thread (vcpu-thread-worker.ts) and the thread that
// owns the machine share: a few Int32 slots in a SharedArrayBuffer, read and
// written with Atomics. Kept apart so that the worker loads nothing else.

/** Slot indices. */
export const SLOT = {
  /** What the owner asks: COMMAND.* (the worker resets it to NONE when it takes it). */
  command: 0,
  /** Where the worker is: STATE.*. */
  state: 1,
  /** The last KVM_RUN's result: 0, or the errno it failed with. */
  result: 2,
  /** The worker's thread id, for signals. */
  tid: 3,
  /**
   * Runs whose wake (see VcpuThreadData.wake) is done: the owner waits for
   * it before it takes a result, so that the worker never writes into a
   * kvm_run page the owner has unmapped since.
   */
  woken: 4,
} as const;

export const SLOTS = 5;

export const COMMAND = { NONE: 0, RUN: 1, QUIT: 2 } as const;

export const STATE = {
  STARTING: 0,
  /** Waiting for a command. */
  IDLE: 1,
  /** Inside KVM_RUN. */
  RUNNING: 2,
  /** KVM_RUN returned; the owner has not taken the result yet. */
  EXITED: 3,
  /** The worker failed (its message went to the owner's error event); it runs nothing more. */
  FAILED: 4,
} as const;

/** What a worker is given. */
export interface VcpuThreadData {
  control: SharedArrayBuffer;
  /** The vCPU's file descriptor (shared by the whole process). */
  fd: number;
  /** KVM_RUN's request number. */
  runRequest: number;
  /**
   * When the vCPU exits, the owner may be blocked in another vCPU's KVM_RUN:
   * the worker sets that kvm_run's immediate_exit byte and signals the
   * owner's thread, which then returns EINTR and looks at this vCPU.
   */
  wake?: { immediateExitAddress: bigint; tid: number; signal: number };
}
