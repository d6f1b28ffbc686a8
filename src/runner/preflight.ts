// Checks, before the report starts, what would otherwise make every test of
// a binary fail: an image that cannot be placed in guest memory, or a binary
// without the SDK's runtime entry. Such a binary is a usage error (exit 2).
import { imageFromElf } from '../image/image.js';
import { RUNTIME_ENTRY } from '../image/test-table.js';
import type { Kvm } from '../kvm/kvm.js';
import { DEFAULT_STACK_SIZE } from '../machine/layout.js';
import { maxPhysBits } from '../machine/machine.js';
import { placeMachine } from '../machine/placement.js';
import { BinaryError, type TestBinary } from './discover.js';

/**
 * Shared objects (kvmtest cc -shared) hold tests for mirror mode, which
 * lists them but cannot run them yet: refused before anything opens KVM.
 */
export function refuseSharedObjects(binaries: readonly TestBinary[]): void {
  const shared = binaries.find((b) => b.elf.type === 'shared-object');
  if (!shared) return;
  throw new BinaryError(
    `${shared.path} is a shared object (kvmtest cc -shared): mirror mode: running shared objects is not built yet; ` +
      `\`kvmtest run --list ${shared.path}\` lists its tests, and \`kvmtest cc\` without -shared builds a test binary that runs`,
  );
}

export function preflight(binaries: readonly TestBinary[], kvm: Kvm, maxGuestMemory?: bigint): void {
  const physBits = maxPhysBits(kvm.supportedCpuid());
  for (const { path: binary, elf } of binaries) {
    try {
      const image = imageFromElf(elf);
      if (!image.symbols.byName(RUNTIME_ENTRY)) {
        const why = image.symbols.size === 0 ? 'it has no symbol table (was it stripped?); ' : '';
        throw new Error(`${binary} has no ${RUNTIME_ENTRY} function: ${why}link test binaries with \`kvmtest cc\`, which adds the kvmtest runtime, and do not strip them`);
      }
      placeMachine({ image, ram: [], stackSize: DEFAULT_STACK_SIZE, maxPhysBits: physBits, maxGuestMemory });
    } catch (err) {
      throw new BinaryError((err as Error).message);
    }
  }
}
