/**
 * An emulated arm64 machine for integration tests: Debian 12's arm64 kernel, busybox and
 * nodejs (from firmware-scripts/arm64-sysroot.sh) booted by qemu-system-aarch64 inside a
 * network namespace, with one virtio NIC on a tap device there (or without a NIC), and the
 * console on the process's stdio. The guest runs `/app/run` with the console as stdin/stdout,
 * so a child that speaks the JSON lines of ns-child-runtime.ts is driven with the usual
 * `NsChild`. The guest also has iproute2 and a kernel with bridge VLAN filtering, VXLAN and
 * 802.1Q (dataplane-linux-vm.test.ts).
 *
 * Why not qemu-user: Debian 12's qemu-user (7.2) refuses every setsockopt(SOL_PACKET, ...)
 * with ENOPROTOOPT, so the AF_PACKET addon cannot open its socket under user-mode emulation.
 *
 * @example
 * ```ts
 * const sysroot = await prepareArm64Sysroot()
 * const initrd = await buildArm64Initrd(sysroot, dir, { 'run': 'exec /usr/bin/node /app/child.mjs\n', … })
 * const vm = await startArm64Vm({ ns, tap, mac: '02:61:72:6d:00:0a', sysroot, initrd })
 * await vm.request('open', { ifname: 'eth0' })
 * ```
 *
 * @module
 */
import { spawn } from 'node:child_process'
import { createReadStream, createWriteStream, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { NsChild, REPO_ROOT, exec } from './netns.ts'

export const ARM64_SYSROOT_SCRIPT = join(REPO_ROOT, 'firmware-scripts', 'arm64-sysroot.sh')
const QEMU = 'qemu-system-aarch64'

export interface Arm64Sysroot {
  dir: string
  vmlinuz: string
  initrdBase: string
  /** "package version" lines of the Debian packages inside. */
  versions: string[]
}

/**
 * Runs firmware-scripts/arm64-sysroot.sh (a no-op once its output is cached) and checks
 * that qemu-system-aarch64 is installed. Throws, saying what is missing, so that the
 * caller's tests fail instead of skipping.
 */
export async function prepareArm64Sysroot(): Promise<Arm64Sysroot> {
  const qemu = await exec('sh', ['-c', `command -v ${QEMU}`], { allowFailure: true })
  if (qemu.code !== 0) {
    throw new Error(`Cannot boot the arm64 test machine: ${QEMU} not found; apt-get install qemu-system-arm (see .ci/run)`)
  }
  const run = await exec(ARM64_SYSROOT_SCRIPT, [], { allowFailure: true, timeoutMs: 600_000 })
  if (run.code !== 0) {
    throw new Error(`Cannot prepare the arm64 sysroot: ${ARM64_SYSROOT_SCRIPT} exited ${run.code ?? run.signal}: ${run.stderr.trim()}`)
  }
  const dir = run.stdout.trim().split('\n').pop() ?? ''
  const sysroot = {
    dir,
    vmlinuz: join(dir, 'vmlinuz'),
    initrdBase: join(dir, 'initrd-base.cpio'),
    versions: readFileSync(join(dir, 'VERSIONS'), 'utf8').trim().split('\n'),
  }
  for (const f of [sysroot.vmlinuz, sysroot.initrdBase]) {
    if (!existsSync(f)) throw new Error(`Cannot prepare the arm64 sysroot: ${f} is missing after ${ARM64_SYSROOT_SCRIPT}`)
  }
  return sysroot
}

/**
 * Writes `<workDir>/initrd.cpio`: the sysroot's initramfs followed by a second archive with
 * `files` under /app (the kernel unpacks concatenated archives in order). `files` maps a
 * name below /app to its content, or to `{ from: path }` to copy a file.
 * @returns the path of the initrd
 */
export async function buildArm64Initrd(
  sysroot: Arm64Sysroot,
  workDir: string,
  files: Record<string, string | { from: string }>,
): Promise<string> {
  const appDir = join(workDir, 'app')
  mkdirSync(appDir, { recursive: true })
  for (const [name, content] of Object.entries(files)) {
    writeFileSync(join(appDir, name), typeof content === 'string' ? content : readFileSync(content.from), { mode: 0o755 })
  }
  const listing = ['app', ...Object.keys(files).map((n) => `app/${n}`)].join('\n') + '\n'
  const appCpio = join(workDir, 'app.cpio')
  const packed = await exec('sh', ['-c', `cpio -o -H newc --quiet > ${appCpio}`], { cwd: workDir, input: listing, allowFailure: true })
  if (packed.code !== 0) throw new Error(`Cannot pack the arm64 app files: cpio exited ${packed.code}: ${packed.stderr.trim()}`)
  const initrd = join(workDir, 'initrd.cpio')
  const outStream = createWriteStream(initrd)
  await pipeline(createReadStream(sysroot.initrdBase), outStream, { end: false })
  await pipeline(createReadStream(appCpio), outStream)
  return initrd
}

export interface Arm64VmOptions {
  /** Namespace qemu runs in (where `tap` is); without it qemu runs in the caller's namespace. */
  ns?: string
  /**
   * Existing tap device in `ns` (`ip tuntap add mode tap`) that the guest's eth0 is wired to.
   * Without it the guest has no NIC (tests that only use the guest's kernel).
   */
  tap?: string
  /** MAC address of the guest's eth0 (with `tap`). */
  mac?: string
  sysroot: Arm64Sysroot
  initrd: string
  /** Boot to the child's `ready` event; TCG emulation boots in 10-20 s on a 2-core VM. */
  readyTimeoutMs?: number
}

/**
 * Boots the VM and resolves once the guest's child printed `{ event: 'ready' }`. The returned
 * child is the qemu process; `stop()` it (SIGTERM), the guest cannot see the end of stdin.
 */
export async function startArm64Vm(options: Arm64VmOptions): Promise<NsChild> {
  const args = [
    '-M', 'virt', '-cpu', 'cortex-a72', '-smp', '2', '-m', '1024',
    '-display', 'none', '-monitor', 'none', '-serial', 'stdio', '-no-reboot',
    '-kernel', options.sysroot.vmlinuz,
    '-initrd', options.initrd,
    '-append', 'console=ttyAMA0 loglevel=1 panic=-1 rdinit=/init',
    ...(options.tap === undefined
      ? ['-nic', 'none']
      : [
          '-netdev', `tap,id=n0,ifname=${options.tap},script=no,downscript=no`,
          // romfile= : no PXE option ROM (the kernel is booted directly; Debian ships none for arm).
          // ctrl_vlan=off: otherwise qemu's virtio-net keeps a VLAN filter table and drops tagged
          // frames of every VID the guest did not register (no 802.1Q devices in the guest here).
          '-device', `virtio-net-pci,netdev=n0,mac=${options.mac ?? '02:61:72:6d:00:01'},romfile=,ctrl_vlan=off`,
        ]),
  ]
  const argv = options.ns === undefined ? [QEMU, ...args] : ['ip', 'netns', 'exec', options.ns, QEMU, ...args]
  const child = spawn(argv[0]!, argv.slice(1), { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'pipe'] })
  const vm = new NsChild(options.ns ?? 'the arm64 VM', child)
  const timeoutMs = options.readyTimeoutMs ?? 90_000
  const ready = vm.waitForEvent((e) => e.event === 'ready', timeoutMs)
  const died = vm.exited.then((x) => {
    throw new Error(`Cannot boot the arm64 test machine: ${QEMU} exited (${x.code ?? x.signal}); stderr: ${vm.stderr().trim().slice(-2000)}`)
  })
  try {
    await Promise.race([ready, died])
  } catch (e) {
    await stopArm64Vm(vm)
    throw e
  }
  return vm
}

/** Ends qemu (SIGTERM, then SIGKILL after 5 s) and waits for it. */
export async function stopArm64Vm(vm: NsChild): Promise<void> {
  if (vm.hasExited) return
  vm.process.kill('SIGTERM')
  const timer = setTimeout(() => vm.process.kill('SIGKILL'), 5_000)
  await vm.exited
  clearTimeout(timer)
}
