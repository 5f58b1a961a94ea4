#!/usr/bin/env bash
# Prepares what the arm64 integration tests (test/integration/af-packet-arm64.test.ts,
# dataplane-linux-vm.test.ts) boot under qemu-system-aarch64: Debian 12's arm64 kernel,
# busybox-static, nodejs and iproute2 (`ip`, `bridge`) with their libraries, unpacked into an
# initramfs tree. The tests append their own files (the arm64 addon, a bundled test child) as
# a second cpio archive.
#
# Why the data-plane test needs this machine too: Debian's arm64 kernel has bridge VLAN
# filtering, VXLAN and 802.1Q (as modules, loaded by /init), which the development kernel lacks.
#
# Why a whole VM and not qemu-user: Debian 12's qemu-user (7.2) answers every
# setsockopt(SOL_PACKET, ...) with ENOPROTOOPT, so the addon cannot even open its socket
# under user-mode emulation. Under qemu-system the addon runs against a real arm64 kernel.
#
# The .deb files come from the Debian archive named in this machine's apt sources, through
# apt with a private state directory (APT::Architecture=arm64): the host's dpkg
# architectures and package lists are not touched. Everything lives in the output folder
# (default .cache/arm64-sysroot/, ignored by git); a second run with the same script is a
# no-op that needs no network. Delete the folder to refresh.
#
# Usage: firmware-scripts/arm64-sysroot.sh [OUT_DIR]
# Needs: root (apt downloads), apt-get, dpkg-deb, cpio; prints OUT_DIR on success. Output:
#   OUT_DIR/vmlinuz          kernel for qemu -kernel
#   OUT_DIR/initrd-base.cpio initramfs: /init, busybox, /usr/bin/node, /bin/ip, /sbin/bridge
#                            and their libraries, kernel modules (virtio-net, bridge, 8021q,
#                            vxlan, veth, dummy and their dependencies, loaded at boot); /init
#                            runs /app/run (supplied by the caller) on the console and powers
#                            off when it exits
#   OUT_DIR/VERSIONS         the Debian packages it was built from
set -euo pipefail
self=$(realpath "$0")
cd "$(dirname "$self")/.."
out=${1:-.cache/arm64-sysroot}
mkdir -p "$out"
out=$(cd "$out" && pwd)
recipe=$(sha256sum "$self" | cut -d' ' -f1)
if [ -f "$out/STAMP" ] && [ "$(cat "$out/STAMP")" = "$recipe" ] && [ -f "$out/vmlinuz" ] && [ -f "$out/initrd-base.cpio" ]; then
  echo "$out"
  exit 0
fi
for tool in apt-get apt-cache dpkg-deb cpio; do
  command -v "$tool" >/dev/null || { echo "Cannot prepare the arm64 sysroot: $tool not found (apt-get install cpio)" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "Cannot prepare the arm64 sysroot: apt downloads need root" >&2; exit 1; }
rm -f "$out/STAMP"

apt_dir=$out/apt
mkdir -p "$apt_dir/state/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/debs"
: >"$apt_dir/status" # an empty dpkg status: apt resolves the full dependency closure
APT=(-o APT::Architecture=arm64 -o APT::Architectures::=arm64 -o "Dir::State=$apt_dir/state"
  -o "Dir::State::status=$apt_dir/status" -o "Dir::Cache=$apt_dir/cache" -o Debug::NoLocking=1
  -o APT::Sandbox::User=root -q)
apt-get "${APT[@]}" update >/dev/null || { echo "Cannot prepare the arm64 sysroot: apt-get update for arm64 failed" >&2; exit 1; }
# The kernel image without linux-image-arm64's own dependencies (initramfs-tools, kmod, ...).
kernel_pkg=$(apt-cache "${APT[@]}" depends linux-image-arm64 | sed -n 's/^ *Depends: \(linux-image-[0-9].*-arm64\)$/\1/p' | head -1)
[ -n "$kernel_pkg" ] || { echo "Cannot prepare the arm64 sysroot: no kernel package behind linux-image-arm64" >&2; exit 1; }
rm -f "$apt_dir/cache/archives/"*.deb "$apt_dir/debs/"*.deb
apt-get "${APT[@]}" -y --no-install-recommends install --download-only nodejs iproute2 >/dev/null
(cd "$apt_dir/debs" && apt-get "${APT[@]}" download "$kernel_pkg" busybox-static >/dev/null)
mv "$apt_dir/cache/archives/"*.deb "$apt_dir/debs/"

root=$out/root
rm -rf "$root" "$out/kernel"
mkdir -p "$root" "$out/kernel"
for deb in "$apt_dir/debs/"*.deb; do
  case $(basename "$deb") in
    linux-image-*) dpkg-deb -x "$deb" "$out/kernel" ;;
    *) dpkg-deb -x "$deb" "$root" ;;
  esac
done
for deb in "$apt_dir/debs/"*.deb; do dpkg-deb --showformat='${Package} ${Version}\n' -W "$deb"; done >"$out/VERSIONS"
rm -f "$apt_dir/debs/"*.deb
# Not needed to run node: keep the initramfs small.
rm -rf "$root/usr/share/doc" "$root/usr/share/man" "$root/usr/share/lintian" "$root/usr/lib/aarch64-linux-gnu/gconv"

cp "$out/kernel/boot/vmlinuz-"* "$out/vmlinuz"
kmod=$(echo "$out/kernel/lib/modules/"*/kernel)
mkdir -p "$root/modules"
# Modules /init loads, each after the modules it depends on (the `depends=` field of its
# .modinfo; the package has no modules.dep, depmod runs at install). The kernel has PACKET,
# VIRTIO, PCI and IPV6 built in.
wanted=(virtio_pci virtio_net bridge 8021q vxlan veth dummy)
modules=()
declare -A module_path=()
while IFS= read -r f; do module_path[$(basename "$f" .ko)]=$f; done < <(find "$kmod" -name '*.ko')
add_module() {
  local m=$1 dep
  [[ " ${modules[*]} " == *" $m "* ]] && return 0
  [ -n "${module_path[$m]:-}" ] || { echo "Cannot prepare the arm64 sysroot: module $m not in $kmod" >&2; exit 1; }
  for dep in $(tr '\0' '\n' <"${module_path[$m]}" | sed -n 's/^depends=//p' | tr ',' ' '); do add_module "$dep"; done
  modules+=("$m")
  cp "${module_path[$m]}" "$root/modules/"
}
for m in "${wanted[@]}"; do add_module "$m"; done
rm -rf "$out/kernel"

mkdir -p "$root/proc" "$root/sys" "$root/dev" "$root/tmp" "$root/app"
cat >"$root/init" <<EOF
#!/bin/busybox sh
# PID 1 of the arm64 test VM: modules, network up, then /app/run with the console as its stdio.
/bin/busybox --install -s /bin
# For the programs /app/run starts (node's child_process): iproute2's ip and bridge, not
# busybox's applets. (busybox sh itself runs its own applet for 'ip' whatever PATH says:
# shell scripts call /bin/ip and /sbin/bridge by path.)
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in ${modules[*]}; do insmod /modules/\$m.ko || echo "init: insmod \$m failed"; done
# No router solicitations, MLD or DAD frames from the guest on the test link.
echo 1 >/proc/sys/net/ipv6/conf/all/disable_ipv6
echo 1 >/proc/sys/net/ipv6/conf/default/disable_ipv6
ip link set lo up
[ -e /sys/class/net/eth0 ] && ip link set eth0 up
# Raw console: JSON lines pass unchanged and are not echoed back to the host.
stty raw -echo </dev/console
cd /app && sh /app/run </dev/console >/dev/console 2>&1
echo "init: /app/run exited with \$?"
poweroff -f
EOF
chmod 755 "$root/init"
(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) >"$out/initrd-base.cpio.tmp"
mv "$out/initrd-base.cpio.tmp" "$out/initrd-base.cpio"
rm -rf "$root"
echo "$recipe" >"$out/STAMP"
echo "$out"
