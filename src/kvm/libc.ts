// The few libc calls kvmtest needs, bound through koffi. Everything else in
// src/kvm builds on these; nothing outside src/kvm should call libc directly.
import koffi from 'koffi';

const libc = koffi.load('libc.so.6');

const openRaw = libc.func('int open(const char *path, int flags)');
const closeRaw = libc.func('int close(int fd)');
/** ioctl whose argument is a pointer to a buffer we own. */
const ioctlPtr = libc.func('int ioctl(int fd, unsigned long request, void *arg)');
/** ioctl whose argument is a plain integer (or absent). */
const ioctlInt = libc.func('int ioctl(int fd, unsigned long request, unsigned long arg)');
const mmapRaw = libc.func(
  'void *mmap(void *addr, size_t length, int prot, int flags, int fd, int64_t offset)',
);
const munmapRaw = libc.func('int munmap(void *addr, size_t length)');
const madviseRaw = libc.func('int madvise(void *addr, size_t length, int advice)');
const strerrorRaw = libc.func('const char *strerror(int errnum)');
const syscallRaw = libc.func('long syscall(long number)');
const timerCreateRaw = libc.func('int timer_create(int clockid, void *sevp, void *timerid)');
const timerSettimeRaw = libc.func(
  'int timer_settime(intptr_t timerid, int flags, void *new_value, void *old_value)',
);
const timerDeleteRaw = libc.func('int timer_delete(intptr_t timerid)');
const prctlRaw = libc.func('int prctl(int option, ...)');
const getppidRaw = libc.func('int getppid(void)');

export const O_RDWR = 0o2;
export const O_CLOEXEC = 0o2000000;
export const PROT_READ = 0x1;
export const PROT_WRITE = 0x2;
export const MAP_SHARED = 0x01;
export const MAP_PRIVATE = 0x02;
export const MAP_ANONYMOUS = 0x20;
export const MAP_NORESERVE = 0x4000;
/** The signal that interrupts KVM_RUN: the run timer's (machine/timeout.ts installs its handler) and a vCPU thread's. */
export const SIGUSR2 = 12;
export const EINTR = 4;
export const EAGAIN = 11;
export const CLOCK_MONOTONIC = 1;
const SYS_GETTID = 186;
const PR_SET_PDEATHSIG = 1;
const MAP_FAILED = (1n << 64n) - 1n;

/** A libc call failed; `errno` is the C errno value. */
export class SysError extends Error {
  constructor(
    readonly call: string,
    readonly errno: number,
  ) {
    super(`${call} failed: ${strerror(errno)} (errno ${errno})`);
    this.name = 'SysError';
  }
}

export function errno(): number {
  return koffi.errno();
}

export function strerror(code: number): string {
  return strerrorRaw(code) as string;
}

export function open(path: string, flags: number): number {
  const fd = openRaw(path, flags) as number;
  if (fd < 0) throw new SysError(`open(${path})`, errno());
  return fd;
}

export function close(fd: number): void {
  closeRaw(fd);
}

// A signal (a profiler's SIGPROF, our own timer) can interrupt any ioctl;
// all but KVM_RUN are simply restarted.

/** ioctl with a buffer argument: returns the result, -1 on error (see errno()). */
export function ioctlBuffer(fd: number, request: number, arg: Uint8Array | null): number {
  for (;;) {
    const ret = ioctlPtr(fd, request, arg) as number;
    if (ret !== -1 || koffi.errno() !== EINTR) return ret;
  }
}

/** ioctl with an integer argument: returns the result, -1 on error (see errno()). */
export function ioctlValue(fd: number, request: number, arg: number | bigint = 0): number {
  for (;;) {
    const ret = ioctlInt(fd, request, arg) as number;
    if (ret !== -1 || koffi.errno() !== EINTR) return ret;
  }
}

/** One ioctl attempt, EINTR included: for KVM_RUN, whose interruption means something. */
export function ioctlValueOnce(fd: number, request: number, arg: number | bigint = 0): number {
  return ioctlInt(fd, request, arg) as number;
}

/** mmap that throws on failure; returns the address as a bigint. */
export function mmap(length: number, prot: number, flags: number, fd = -1, offset = 0): bigint {
  const addr = koffi.address(mmapRaw(null, length, prot, flags, fd, offset)) as bigint;
  if (addr === MAP_FAILED) throw new SysError(`mmap(${length} bytes)`, errno());
  return addr;
}

export function munmap(addr: bigint, length: number): void {
  if (munmapRaw(addr, length) !== 0) throw new SysError('munmap', errno());
}

const MADV_DONTNEED = 4;

/**
 * Drops the pages of an anonymous private mapping: they read as zero
 * afterwards and no longer take host memory. KVM follows (its MMU notifier
 * unmaps them from the guest, which faults in fresh zero pages).
 */
export function discardPages(addr: bigint, length: number): void {
  if (madviseRaw(addr, length, MADV_DONTNEED) !== 0) throw new SysError('madvise(MADV_DONTNEED)', errno());
}


/** An ArrayBuffer over native memory; valid only while the mapping lives. */
export function view(addr: bigint, length: number): ArrayBuffer {
  return koffi.view(addr, length);
}

export function gettid(): number {
  return Number(syscallRaw(SYS_GETTID));
}

export function timerCreate(sigevent: Uint8Array): bigint {
  const out = new BigUint64Array(1);
  if (timerCreateRaw(CLOCK_MONOTONIC, sigevent, out) !== 0) {
    throw new SysError('timer_create', errno());
  }
  return out[0]!;
}

export function timerSettime(timer: bigint, itimerspec: Uint8Array): void {
  if (timerSettimeRaw(timer, 0, itimerspec, null) !== 0) {
    throw new SysError('timer_settime', errno());
  }
}

export function timerDelete(timer: bigint): void {
  timerDeleteRaw(timer);
}

/**
 * Asks the kernel to send this process `signal` when its parent dies (more
 * exactly: when the thread that forked it ends). Only for processes forked
 * from a long-lived thread, such as Node's main thread.
 */
export function setParentDeathSignal(signal: number): void {
  if (prctlRaw(PR_SET_PDEATHSIG, 'unsigned long', signal) !== 0) throw new SysError('prctl(PR_SET_PDEATHSIG)', errno());
}

/** The parent's pid, asked of the kernel now (1, or a subreaper, once the parent died). */
export function getppid(): number {
  return getppidRaw() as number;
}


const openModeRaw = libc.func('int open(const char *path, int flags, int mode)');

export interface SharedMapping {
  buffer: ArrayBuffer;
  /** Unmaps it; the buffer must not be used afterwards. */
  unmap(): void;
}

/**
 * Maps the first `length` bytes of a file shared with other processes that
 * map it too. Used for a worker's progress record, which the runner reads
 * even after the worker died.
 */
export function mapSharedFile(path: string, length: number): SharedMapping {
  const fd = openModeRaw(path, O_RDWR | O_CLOEXEC, 0o600) as number;
  if (fd < 0) throw new SysError(`open(${path})`, errno());
  try {
    const address = mmap(length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    return { buffer: view(address, length), unmap: () => munmap(address, length) };
  } finally {
    close(fd);
  }
}

const memsetRaw = libc.func('void *memset(void *s, int c, size_t n)');
const syscallArgsRaw = libc.func('long syscall(long number, ...)');
const SYS_ARCH_PRCTL = 158;
const ARCH_GET_FS = 0x1003;

/**
 * The address of a Buffer's or typed array's bytes (memset of none of them
 * returns its pointer argument, which koffi passes without a copy). Valid
 * while the array lives; V8 never moves the memory of an array once its
 * address has been taken this way.
 */
export function addressOf(bytes: ArrayBufferView): bigint {
  return koffi.address(memsetRaw(bytes, 0, 0)) as bigint;
}

/** This thread's FS base (arch_prctl(ARCH_GET_FS)): where its TLS and the stack protector's canary live. */
export function threadFsBase(): bigint {
  const out = new BigUint64Array(1);
  if ((syscallArgsRaw(SYS_ARCH_PRCTL, 'int', ARCH_GET_FS, 'void *', out) as number) !== 0) throw new SysError('arch_prctl(ARCH_GET_FS)', errno());
  return out[0]!;
}

const tgkillRaw = libc.func('int tgkill(int tgid, int tid, int sig)');

/** Sends `signal` to one thread of this process (a vCPU's, to interrupt its KVM_RUN). */
export function signalThread(tid: number, signal: number): void {
  tgkillRaw(process.pid, tid, signal);
}
