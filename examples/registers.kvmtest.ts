// Registers in and out: asm`` and bytes() guests, the registers a test
// starts with (args, regs), and checks on the registers a guest ends with.
import { kvmtest, asm, bytes } from 'kvmtest';
import assert from 'node:assert/strict';

// An asm`` guest is Intel-syntax assembly; `ret` returns to the engine. The
// check gets the registers as bigints, as the guest left them.
kvmtest('asm sets a register', asm`
  mov r12, 0x1234
  ret
`, (r) => { assert.equal(r.regs.r12, 0x1234n); });

// args go to rdi, rsi, rdx, rcx, r8 and r9, as in a C call; what the guest
// returns in rax is returnValue.
kvmtest('args arrive in rdi and rsi', { args: [6, 7] }, asm`
  mov rax, rdi
  imul rax, rsi
  ret
`, (r) => { assert.equal(r.returnValue, 42n); });

// regs sets any general register before the guest starts.
kvmtest('regs set registers at entry', { regs: { rbx: 0x1000n, rcx: 3n } }, asm`
  lea rax, [rbx + rcx*8]
  ret
`, (r) => { assert.equal(r.returnValue, 0x1018n); });

// bytes() runs machine code as it is, such as a code generator's output:
// here mov eax, 0x2a; ret.
kvmtest('bytes() runs raw machine code', bytes([0xb8, 0x2a, 0x00, 0x00, 0x00, 0xc3]), (r) => {
  assert.equal(r.returnValue, 42n);
});

// The control registers come back too: paging is on, and so is long mode.
kvmtest('the machine runs in long mode with paging', asm`ret`, (r) => {
  assert.ok(r.sregs.cr0 & (1n << 31n), 'CR0.PG');
  assert.ok(r.sregs.efer & (1n << 10n), 'EFER.LMA');
});

// A test may expect the guest to fault or halt instead of returning; the
// check then sees where.
kvmtest('ud2 raises #UD', { shouldFault: '#UD' }, asm`
  ud2
`, (r) => { assert.equal(r.fault?.name, '#UD'); });

kvmtest('hlt ends the test', { shouldHalt: true }, asm`
  mov rax, 7
  hlt
`, (r) => { assert.equal(r.regs.rax, 7n); });
