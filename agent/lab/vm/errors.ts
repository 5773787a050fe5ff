/** Typed errors of the VM harness: `code` says what failed, the message names the value or the guest. */

export const VmErrorCode = {
  /** no /boot/vmlinuz-* with modules, or the kernel cannot be read */
  NoKernel: 'no-kernel',
  /** no statically linked busybox (Debian busybox-static) */
  NoBusybox: 'no-busybox',
  /** a module the initramfs needs is missing */
  NoModule: 'no-module',
  /** qemu-system-x86_64 missing or exited before the guest was ready */
  QemuFailed: 'qemu-failed',
  /** a guest did not reach its command in time */
  BootTimeout: 'boot-timeout',
  /** a run-mode guest did not power off in time */
  RunTimeout: 'run-timeout',
  /** a queued command got no result in time */
  ExecTimeout: 'exec-timeout',
  /** the rig was stopped or destroyed */
  RigDown: 'rig-down',
  /** a host command (ip, xz, ...) failed */
  HostCommand: 'host-command',
} as const;
export type VmErrorCode = (typeof VmErrorCode)[keyof typeof VmErrorCode];

export class VmError extends Error {
  override readonly name = 'VmError';
  constructor(
    readonly code: VmErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}
