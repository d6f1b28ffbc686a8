// From a test's hardware (normalize.ts) to a machine and a run: what the
// machine must be built with (RAM for preloaded bytes, unbacked pages for
// MMIO, the CPUID table), the key under which such machines can be reused,
// the devices for one run, and what is set before each run (entry,
// arguments, registers, preloaded bytes).
import type { GuestImage } from '../image/image.js';
import { SMP_ENTRY } from '../image/test-table.js';
import type { Kvm } from '../kvm/kvm.js';
import type { CpuidEntry } from '../kvm/structs.js';
import { addressOf, threadFsBase } from '../kvm/libc.js';
import { guestCpuid } from '../machine/guest-cpuid.js';
import type { Machine, MachineOptions } from '../machine/machine.js';
import { PlacementError, type PhysSpan } from '../machine/placement.js';
import { type DeviceSet, standardDevices } from '../session/devices.js';
import { applyCpuidOverrides, cpuidOverridesIgnored } from './cpuid.js';
import { attachTestDevices } from './devices.js';
import type { Hardware } from './normalize.js';

const hex = (n: bigint) => `0x${n.toString(16)}`;

/** What a machine for this hardware is built with, beside its image. */
export function machineOptionsFor(kvm: Kvm, image: GuestImage, hardware: Hardware, mirror = false): MachineOptions {
  const options: MachineOptions = { image, ram: hardware.ram };
  if (mirror) options.mirror = { fsBase: threadFsBase() };
  if (hardware.memory.length > 0) options.preload = preloadSpans(hardware);
  if (hardware.mmio.length > 0) options.mmio = hardware.mmio.map((m) => ({ name: m.name, start: m.start, end: m.start + m.size }));
  const cpuid = cpuidTableFor(kvm, hardware);
  if (cpuid) options.cpuid = cpuid;
  if (hardware.apic) {
    options.apic = true;
    options.cpus = hardware.cpus;
  }
  return options;
}

/**
 * Mirror mode: guest RAM, preloaded bytes and MMIO keep their addresses,
 * and the process's memory there (a brk heap can reach 0x30000000) is not
 * shown to the guest. An argument that points there would reach the
 * guest's RAM instead of the array it names: refused.
 */
function refuseArgumentsInGuestRam(hardware: Hardware): void {
  if (!hardware.argArrays || hardware.argArrays.length === 0) return;
  const spans: PhysSpan[] = [
    ...hardware.ram.map(([from, to], i) => ({ name: `ram[${i}]`, start: from, end: to })),
    ...preloadSpans(hardware),
    ...hardware.mmio.map((m) => ({ name: m.name, start: m.start, end: m.start + m.size })),
  ];
  for (const array of hardware.argArrays) {
    const start = addressOf(array);
    const end = start + BigInt(array.byteLength);
    const hit = spans.find((span) => span.start < end && start < span.end);
    if (hit) {
      throw new PlacementError(`an argument's ${array.constructor.name} at [${hex(start)}, ${hex(end)}) lies in ${hit.name} [${hex(hit.start)}, ${hex(hit.end)}), ` +
        "where the guest sees its own RAM or device, not the process's memory: move the range, or allocate the array again (elsewhere)");
    }
  }
}

function preloadSpans(hardware: Hardware): PhysSpan[] {
  return hardware.memory.map((m, i) => ({ name: `memory[${i}]`, start: m.address, end: m.address + BigInt(m.data.length) }));
}

function cpuidTableFor(kvm: Kvm, hardware: Hardware): CpuidEntry[] | undefined {
  if (hardware.cpuid.length === 0) return undefined;
  return applyCpuidOverrides(guestCpuid(kvm).table, hardware.cpuid);
}

/**
 * Machines built for equal keys are interchangeable (a snapshot of one
 * serves every test with that key): the parts of the hardware that shape
 * the machine itself, not its devices.
 */
export function machineKey(hardware: Hardware): string {
  if (hardware.ram.length === 0 && hardware.memory.length === 0 && hardware.mmio.length === 0 && hardware.cpuid.length === 0 && !hardware.apic) return '';
  return JSON.stringify({
    apic: hardware.apic ? hardware.cpus : 0,
    ram: hardware.ram.map(([from, to]) => `${hex(from)}-${hex(to)}`),
    preload: preloadSpans(hardware).map((s) => `${hex(s.start)}-${hex(s.end)}`),
    mmio: hardware.mmio.map((m) => `${hex(m.start)}+${hex(m.size)}`),
    cpuid: hardware.cpuid,
  });
}

/** Why a test with this hardware cannot run faithfully here (CPUID overrides this KVM ignores), or undefined. */
export function hardwareSkipReason(kvm: Kvm, hardware: Hardware): string | undefined {
  const table = cpuidTableFor(kvm, hardware);
  return table ? cpuidOverridesIgnored(kvm, table, hardware.cpuid) : undefined;
}

/** The devices of one run: the engine's, and the test's own. */
export function devicesFor(hardware: Hardware): DeviceSet {
  const devices = standardDevices(new Map());
  attachTestDevices(devices, hardware);
  return devices;
}

/**
 * Sets up one run on a machine (fresh, or just restored): the entry and its
 * arguments, the test's register values, and its preloaded bytes (written
 * so that the next restore puts the pages back).
 */
export function prepareRun(machine: Machine, hardware: Hardware, entry: bigint, mirroredFunction?: string): void {
  if (machine.mirror) {
    refuseArgumentsInGuestRam(hardware);
    machine.mirror.beginRun(mirroredFunction ?? `0x${entry.toString(16)}`);
  }
  const smpEntry = hardware.cpus > 1 ? machine.image.symbols.byName(SMP_ENTRY) : undefined;
  // Several vCPUs: the runtime brings the others up, then calls the guest (kvmtest_smp_entry(fn, 0, 0, 0, cpus)).
  if (smpEntry) machine.setEntry(smpEntry.value, [entry, 0n, 0n, 0n, BigInt(hardware.cpus)]);
  else machine.setEntry(entry, hardware.args);
  if (Object.keys(hardware.regs).length > 0) machine.vcpu.stageRegs({ ...machine.vcpu.syncedRegs(), ...hardware.regs });
  for (const [i, { address, data }] of hardware.memory.entries()) {
    if (!machine.memory.writeAtRuntime(address, data)) {
      throw new PlacementError(`memory[${i}]: ${data.length} bytes at ${hex(address)} do not all lie in guest RAM`);
    }
  }
}
