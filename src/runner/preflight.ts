// Checks, before the report starts, what would otherwise make every test of
// a binary fail: an image that cannot be placed in guest memory, or a binary
// (or shared object) without the SDK's runtime entry. Such a binary is a
// usage error (exit 2).
import { imageFromElf } from '../image/image.js';
import { isSharedObject, sharedObjectFromElf } from '../image/shared-object.js';
import { RUNTIME_ENTRY } from '../image/test-table.js';
import type { Kvm } from '../kvm/kvm.js';
import { DEFAULT_STACK_SIZE } from '../machine/layout.js';
import { maxPhysBits } from '../machine/machine.js';
import { placeMachine } from '../machine/placement.js';
import { BinaryError, type TestBinary } from './discover.js';

export function preflight(binaries: readonly TestBinary[], kvm: Kvm, maxGuestMemory?: bigint): void {
  const physBits = maxPhysBits(kvm.supportedCpuid());
  for (const { path: binary, elf } of binaries) {
    try {
      if (isSharedObject(elf)) {
        // Mirror mode: nothing to place (the worker loads the object into its own process); its runtime must be there.
        if (sharedObjectFromElf(elf, binary).entry === undefined) throw new Error(`${binary} does not export ${RUNTIME_ENTRY}: build it with \`kvmtest cc -shared\``);
        continue;
      }
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
