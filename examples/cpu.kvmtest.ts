// CPUID as the test says: the registers a test gives replace what KVM
// reports for that leaf. Some KVMs answer parts of CPUID themselves
// whatever kvmtest installs (PVM passes the host's leaves 1 and 7 through);
// kvmtest checks what a guest really reads, and reports a test whose
// override does not hold as skipped, with the reason. The leaves below hold
// on PVM too.
import { kvmtest, c } from 'kvmtest';
import assert from 'node:assert/strict';

/** A string as CPUID returns it: four bytes per register, little-endian, NUL-padded. */
function cpuidWords(text: string, words: number): number[] {
  const bytes = Buffer.alloc(words * 4);
  bytes.write(text, 'latin1');
  return Array.from({ length: words }, (_, i) => bytes.readUInt32LE(i * 4));
}

// The brand string, leaves 0x80000002 to 0x80000004: 48 bytes, 16 per leaf.
const brand = cpuidWords('kvmtest virtual CPU @ 1.00GHz', 12);
kvmtest('the guest reads the brand string the test gives', {
  cpuid: [0, 1, 2].map((i) => ({
    leaf: 0x80000002 + i,
    eax: brand[4 * i]!,
    ebx: brand[4 * i + 1]!,
    ecx: brand[4 * i + 2]!,
    edx: brand[4 * i + 3]!,
  })),
}, c`
  uint32_t words[12];
  for (int i = 0; i < 3; i++)
      cpuid(0x80000002 + i, 0, &words[4 * i], &words[4 * i + 1], &words[4 * i + 2], &words[4 * i + 3]);
  sprintln("%.48s", (const char *)words);
`, (r) => {
  assert.equal(r.output, 'kvmtest virtual CPU @ 1.00GHz\n');
});

// A driver that picks its path by the hypervisor it runs under (leaf
// 0x40000000: the highest hypervisor leaf in eax, a signature in ebx, ecx,
// edx) can be tested on KVM for another hypervisor's path.
const [ebx, ecx, edx] = cpuidWords('VMwareVMware', 3);
kvmtest('the driver detects VMware by the hypervisor leaf', {
  cpuid: [{ leaf: 0x40000000, eax: 0x40000010, ebx: ebx!, ecx: ecx!, edx: edx! }],
}, c.unit`
  enum hypervisor { UNKNOWN, KVM, VMWARE };

  static enum hypervisor detect(void) {
      uint32_t max, signature[3];
      cpuid(0x40000000, 0, &max, &signature[0], &signature[1], &signature[2]);
      if (memcmp(signature, "KVMKVMKVM\0\0\0", 12) == 0) return KVM;
      if (memcmp(signature, "VMwareVMware", 12) == 0) return VMWARE;
      return UNKNOWN;
  }

  void test(void) {
      kassert_eq(detect(), VMWARE);
  }
`);
