// The owner's side of a vCPU thread (vcpu-thread-worker.ts): start the
// thread, ask it for a KVM_RUN, see whether that run has returned, interrupt
// it, wait for it. A machine with several vCPUs runs vCPU 0 on the owner's
// thread, as a one-vCPU machine does, and each other vCPU on one of these,
// so that they all run at once.
import { Worker } from 'node:worker_threads';
import { IOCTL, RUN } from './constants.js';
import * as libc from './libc.js';
import { COMMAND, SLOT, SLOTS, STATE, type VcpuThreadData } from './vcpu-thread-shared.js';

/** A thread that does not start within this is broken (it needs a few tens of milliseconds). */
const START_TIMEOUT_MS = 10_000;

export class VcpuThreadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'VcpuThreadError';
  }
}

export class VcpuThread {
  private readonly control = new Int32Array(new SharedArrayBuffer(SLOTS * 4));
  private readonly worker: Worker;
  private failure: Error | undefined;
  /** Runs asked for (see SLOT.woken). */
  private runs = 0;
  readonly tid: number;
  private closed = false;

  /**
   * Starts the thread for the vCPU `fd`, whose kvm_run is at `runAddress`.
   * `wakeRunAddress` is the kvm_run of the vCPU the owner's thread runs:
   * the thread interrupts that vCPU's KVM_RUN whenever its own returns.
   */
  constructor(fd: number, private readonly runAddress: bigint, wakeRunAddress: bigint) {
    const data: VcpuThreadData = {
      control: this.control.buffer as SharedArrayBuffer,
      fd,
      runRequest: IOCTL.KVM_RUN,
      wake: { immediateExitAddress: wakeRunAddress + BigInt(RUN.immediate_exit), tid: libc.gettid(), signal: libc.SIGUSR2 },
    };
    this.worker = new Worker(new URL('./vcpu-thread-worker.js', import.meta.url), { workerData: data, stdout: false, stderr: false });
    this.worker.unref();
    this.worker.on('error', (err) => {
      this.failure = err;
    });
    const started = performance.now();
    while (Atomics.load(this.control, SLOT.state) === STATE.STARTING) {
      if (performance.now() - started > START_TIMEOUT_MS) {
        void this.worker.terminate();
        throw new VcpuThreadError(`a vCPU thread did not start within ${START_TIMEOUT_MS / 1000} s`);
      }
      Atomics.wait(this.control, SLOT.state, STATE.STARTING, 50);
    }
    this.checkFailed();
    this.tid = Atomics.load(this.control, SLOT.tid);
  }

  /** Asks for one KVM_RUN; returns at once. The thread must be idle (see take()). */
  start(): void {
    this.checkFailed();
    // The worker goes idle right after take(); a command given before then waits for it.
    this.runs++;
    Atomics.store(this.control, SLOT.command, COMMAND.RUN);
    Atomics.notify(this.control, SLOT.command);
  }

  /** True once the KVM_RUN asked for has returned (take() then gives its result). */
  exited(): boolean {
    const state = Atomics.load(this.control, SLOT.state);
    if (state === STATE.FAILED) this.checkFailed();
    return state === STATE.EXITED;
  }

  /** True while a KVM_RUN asked for has not been taken (running, or exited and not taken). */
  busy(): boolean {
    const state = Atomics.load(this.control, SLOT.state);
    return state === STATE.RUNNING || state === STATE.EXITED || Atomics.load(this.control, SLOT.command) === COMMAND.RUN;
  }

  /** The returned KVM_RUN's result (0, or its errno); the thread may then be started again. */
  take(): number {
    // The worker's wake follows its EXITED by a few instructions.
    while (Atomics.load(this.control, SLOT.woken) !== this.runs) {
      if (Atomics.load(this.control, SLOT.state) === STATE.FAILED) this.checkFailed();
    }
    const result = Atomics.load(this.control, SLOT.result);
    Atomics.store(this.control, SLOT.state, STATE.IDLE);
    Atomics.notify(this.control, SLOT.state);
    return result;
  }

  /** Blocks until the KVM_RUN asked for returns. */
  wait(): void {
    for (;;) {
      const state = Atomics.load(this.control, SLOT.state);
      if (state === STATE.EXITED) return;
      if (state === STATE.FAILED) this.checkFailed();
      Atomics.wait(this.control, SLOT.state, state, 100);
    }
  }

  /** One KVM_RUN on the thread, waited for: its result (0, or its errno). */
  runSync(): number {
    this.start();
    this.wait();
    return this.take();
  }

  /**
   * Makes a KVM_RUN under way return soon (EINTR), and one about to start
   * return at once: kvm_run's immediate_exit, and a signal for the thread
   * in case KVM is already running the guest. The owner clears
   * immediate_exit once the run is taken (clearImmediateExit).
   */
  interrupt(): void {
    new DataView(libc.view(this.runAddress + BigInt(RUN.immediate_exit), 1)).setUint8(0, 1);
    if (Atomics.load(this.control, SLOT.state) === STATE.RUNNING) libc.signalThread(this.tid, libc.SIGUSR2);
  }

  /** Interrupts and waits for any KVM_RUN under way, and takes it; returns its result, or undefined if none was. */
  stop(): number | undefined {
    if (!this.busy()) return undefined;
    this.interrupt();
    // The signal may land just before KVM_RUN starts; immediate_exit covers that, and a resend covers the rest.
    for (let i = 0; !this.exited(); i++) {
      Atomics.wait(this.control, SLOT.state, STATE.RUNNING, 5);
      if (i % 20 === 19) this.interrupt();
    }
    return this.take();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.stop();
    } catch {
      // A failed thread has nothing to stop.
    }
    Atomics.store(this.control, SLOT.command, COMMAND.QUIT);
    Atomics.notify(this.control, SLOT.command);
  }

  private checkFailed(): void {
    if (Atomics.load(this.control, SLOT.state) !== STATE.FAILED && !this.failure) return;
    throw new VcpuThreadError(`a vCPU thread failed: ${this.failure?.message ?? 'it stopped (see its error above)'}`);
  }
}
