// kvmtest's public API.
export { runGuest, runGuestSync } from './run-guest.js';
export { DEFAULT_TIMEOUT_MS, type RunGuestOptions } from './guest-plan.js';
export { openMachine, type GuestMachine, type RunOverrides } from './open-machine.js';
export type {
  GuestResult,
  Outcome,
  RegisterDump,
  ControlRegisterDump,
  FaultInfo,
  AssertionInfo,
  ErrorInfo,
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
