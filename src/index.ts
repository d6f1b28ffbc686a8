// kvmtest's public API.
export { runGuest, runGuestSync, DEFAULT_TIMEOUT_MS, type RunGuestOptions } from './run-guest.js';
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
export { ElfError } from './image/elf.js';
export { ImageError } from './image/image.js';
export { PlacementError } from './machine/placement.js';
export { KvmUnavailableError, KvmIoctlError } from './kvm/errors.js';
