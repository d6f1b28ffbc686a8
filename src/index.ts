// kvmtest's public API.

// Test files (NAME.kvmtest.ts): declaring tests, their guest code and their hardware.
export { kvmtest, describe, type KvmtestApi, type DescribeApi, type Check, type TestRun } from './testfile/registry.js';
export { c, asm, elf, bytes, mirror, type Guest, type BytesOptions, type MirroredLibrary } from './testfile/guests.js';
export type { TestOptions } from './testfile/options.js';

// Running one guest from a program (Vitest, node:test, a script).
export { runGuest, runGuestSync } from './run-guest.js';
export { DEFAULT_TIMEOUT_MS, type RunGuestOptions, type MirrorOptions } from './guest-plan.js';
export { openMachine, type GuestMachine, type RunOverrides } from './open-machine.js';
export type {
  GuestResult,
  Outcome,
  RegisterDump,
  ControlRegisterDump,
  FaultInfo,
  AssertionInfo,
  ErrorInfo,
  MirrorStats,
} from './result.js';
export { OUTCOMES } from './result.js';
export { OptionError } from './options.js';
export { gp, GeneralProtection } from './hardware/types.js';
export type {
  HardwareOptions,
  GuestContext,
  GuestMemoryAccess,
  PortHandlers,
  PortSize,
  MmioRegion,
  MsrHandlers,
  MsrSpec,
  CpuidOverride,
  MemoryPreload,
  RegisterName,
  RegisterValues,
  MaybePromise,
} from './hardware/types.js';
export { ElfError } from './image/elf.js';
export { ImageError } from './image/image.js';
export { PlacementError } from './machine/placement.js';
export { KvmUnavailableError, KvmIoctlError } from './kvm/errors.js';

// The test runner, for programs that drive it themselves.
export { runTests, DEFAULT_TEST_TIMEOUT_MS, type RunOptions, type RunOutcome } from './runner/run.js';
export { discoverTests, selectTests, BinaryError, type Selection, type Shard } from './runner/discover.js';
export { ISOLATION_MODES, type Isolation } from './runner/executor.js';
export type { TestCase, TestResult, TestStatus, RunSummary, Reporter, Expectation } from './runner/types.js';
export { createReporter, REPORTER_NAMES, type ReporterName } from './report/index.js';
export { compileTests, sdkPaths, ToolchainError } from './image/toolchain.js';
export { readTestTable, loadTestTable, TestTableError } from './image/test-table.js';
