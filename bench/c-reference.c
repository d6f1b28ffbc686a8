/*
 * The C reference for `npm run bench`: the least a C program must do to run
 * one trivial ring-0 guest in long mode per fresh VM, as kvmtest's runGuest()
 * does. Per iteration: create a VM, two memory slots (low memory with page
 * tables, GDT and stack; one page of guest code), a vCPU with the supported
 * CPUID, long-mode special registers, registers; run until the guest's code
 * returns to a stub that writes to an I/O port; destroy everything.
 *
 * Usage: c-reference ITERATIONS   prints: microseconds per iteration
 */
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define LOW_SIZE 0x100000
#define CODE_ADDR 0x200000
#define PML4 0x80000
#define STACK_TOP 0x80000
#define STUB 0x4000

static void die(const char *what) {
  perror(what);
  exit(2);
}

static int xioctl(int fd, unsigned long req, void *arg, const char *what) {
  int r = ioctl(fd, req, arg);
  if (r < 0) die(what);
  return r;
}

static struct kvm_cpuid2 *supported_cpuid(int kvm) {
  int n = 256;
  struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(struct kvm_cpuid_entry2));
  c->nent = n;
  xioctl(kvm, KVM_GET_SUPPORTED_CPUID, c, "KVM_GET_SUPPORTED_CPUID");
  return c;
}

static void set_segment(struct kvm_segment *s, uint16_t sel, int code) {
  memset(s, 0, sizeof(*s));
  s->limit = 0xffffffff;
  s->selector = sel;
  s->type = code ? 11 : 3;
  s->present = 1;
  s->s = 1;
  s->l = code;
  s->db = !code;
  s->g = 1;
}

static void run_once(int kvm, int run_size, struct kvm_cpuid2 *cpuid) {
  int vm = xioctl(kvm, KVM_CREATE_VM, 0, "KVM_CREATE_VM");
  uint8_t *low = mmap(0, LOW_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  uint8_t *code = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (low == MAP_FAILED || code == MAP_FAILED) die("mmap");

  struct kvm_userspace_memory_region r0 = {0, 0, 0, LOW_SIZE - 0x1000, (uint64_t)low};
  struct kvm_userspace_memory_region r1 = {1, 0, CODE_ADDR, 4096, (uint64_t)code};
  xioctl(vm, KVM_SET_USER_MEMORY_REGION, &r0, "KVM_SET_USER_MEMORY_REGION");
  xioctl(vm, KVM_SET_USER_MEMORY_REGION, &r1, "KVM_SET_USER_MEMORY_REGION");

  /* Page tables: identity-map the first 2 MiB with 4 KiB pages (the stack,
   * the GDT, the stub) and the code page at 2 MiB. */
  uint64_t *pml4 = (uint64_t *)(low + PML4), *pdpt = pml4 + 512, *pd = pdpt + 512, *pt0 = pd + 512, *pt1 = pt0 + 512;
  pml4[0] = (PML4 + 0x1000) | 3;
  pdpt[0] = (PML4 + 0x2000) | 3;
  pd[0] = (PML4 + 0x3000) | 3;
  pd[1] = (PML4 + 0x4000) | 3;
  for (int i = 1; i < 256; i++) pt0[i] = ((uint64_t)i << 12) | 3;
  pt1[0] = CODE_ADDR | 1;
  uint64_t *gdt = (uint64_t *)(low + 0x1000);
  gdt[1] = 0x00af9b000000ffffULL;
  gdt[2] = 0x00cf93000000ffffULL;
  /* Stub: mov dx, 0xf4; out dx, ax. The guest code: ret. */
  static const uint8_t stub[] = {0x66, 0xba, 0xf4, 0x00, 0x66, 0xef};
  memcpy(low + STUB, stub, sizeof(stub));
  code[0] = 0xc3;
  *(uint64_t *)(low + STACK_TOP - 8) = STUB;

  int vcpu = xioctl(vm, KVM_CREATE_VCPU, 0, "KVM_CREATE_VCPU");
  struct kvm_run *run = mmap(0, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
  if (run == MAP_FAILED) die("mmap kvm_run");
  xioctl(vcpu, KVM_SET_CPUID2, cpuid, "KVM_SET_CPUID2");

  struct kvm_sregs sregs;
  xioctl(vcpu, KVM_GET_SREGS, &sregs, "KVM_GET_SREGS");
  set_segment(&sregs.cs, 8, 1);
  set_segment(&sregs.ds, 16, 0);
  sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
  sregs.gdt.base = 0x1000;
  sregs.gdt.limit = 23;
  sregs.cr0 = 0x80050033;
  sregs.cr3 = PML4;
  sregs.cr4 = 0x620;
  sregs.efer = 0xd00;
  xioctl(vcpu, KVM_SET_SREGS, &sregs, "KVM_SET_SREGS");

  struct kvm_regs regs = {0};
  regs.rip = CODE_ADDR;
  regs.rsp = STACK_TOP - 8;
  regs.rflags = 2;
  xioctl(vcpu, KVM_SET_REGS, &regs, "KVM_SET_REGS");

  for (;;) {
    xioctl(vcpu, KVM_RUN, 0, "KVM_RUN");
    if (run->exit_reason == KVM_EXIT_IO && run->io.port == 0xf4) break;
    fprintf(stderr, "unexpected exit %u\n", run->exit_reason);
    exit(2);
  }
  munmap(run, run_size);
  close(vcpu);
  close(vm);
  munmap(low, LOW_SIZE);
  munmap(code, 4096);
}

int main(int argc, char **argv) {
  int iterations = argc > 1 ? atoi(argv[1]) : 1000;
  int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (kvm < 0) die("/dev/kvm");
  int run_size = xioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0, "KVM_GET_VCPU_MMAP_SIZE");
  struct kvm_cpuid2 *cpuid = supported_cpuid(kvm);
  for (int i = 0; i < iterations / 10 + 1; i++) run_once(kvm, run_size, cpuid); /* warm-up */
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (int i = 0; i < iterations; i++) run_once(kvm, run_size, cpuid);
  clock_gettime(CLOCK_MONOTONIC, &b);
  double us = ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / 1e3 / iterations;
  printf("%.1f\n", us);
  return 0;
}
