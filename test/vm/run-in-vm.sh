#!/usr/bin/env bash
# run-in-vm.sh 'shell command' -- run a command as root in a throw-away qemu VM (TCG) that boots Debian's
# stock kernel with BPF LSM active (lsm=...,bpf). Used by test/vm/vm.ts; usable by hand.
#   run-in-vm.sh --check   prints a one-line reason and exits 1 when the VM cannot run here (else exit 0)
#   run-in-vm.sh --setup   builds the cache (kernel, initramfs) and exits
#   run-in-vm.sh --kver    prints the guest kernel's version (to build modules for it: linux-headers-<kver>)
# The guest sees the host's / read-only (9p) under a tmpfs overlay (guest writes are discarded), starts in
# the same cwd, has no network. The kernel package's modules are bind-mounted at /lib/modules/$KRSI_VM_KVER
# in the guest (and $KRSI_VM_MODULES names that dir). The guest checks that /sys/kernel/security/lsm lists
# bpf (exit 86 otherwise). When the command leaves an executable script at /run/vmxfer/pid1.sh, pid 1
# itself execs it after the command (through chroot, so pid 1 execs twice): tests that pid 1 is never
# denied; that script must end with `poweroff -f` (the command's exit status is already recorded). Guest stdout/stderr -> our stdout/stderr (serial ttyS1/ttyS2; stderr arrives at the end); our exit status =
# the guest command's (255 when the guest never reported one: timeout, panic; the kernel log tail goes to
# stderr then).
# Env: KRSI_VM_CACHE (default ~/.cache/krsi-vm), KRSI_VM_KVER (default: what linux-image-amd64 depends on),
#      VM_TIMEOUT=300 (s), VM_MEM=2G, VM_CPUS=2, VM_CPU=max, VM_ACCEL=tcg (this host's kvm cannot run a
#      stock guest), VM_LSM=lockdown,capability,landlock,yama,apparmor,bpf, VM_APPEND='extra kernel args',
#      VM_RW=/host/dir (exported read-write, mounted at the same path in the guest),
#      VM_ENV='A=1 B=2' (exported in the guest), VM_CONSOLE_LOG=file (kernel console).
set -eu
{ # the whole script is one compound command: bash parses it all before running, so editing this
  # file while a VM runs cannot derail that run
D=${KRSI_VM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/krsi-vm}
QBOOT=/usr/share/qemu/qboot.rom
MODS="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci netfs fscache 9pnet 9pnet_virtio 9p overlay"

# the kernel version: the one Debian's linux-image-amd64 depends on today, else the newest one cached
kver() {
  [ -n "${KRSI_VM_KVER:-}" ] && { echo "$KRSI_VM_KVER"; return; }
  local v
  v=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/.*Depends: linux-image-\(.*-amd64\)\(-unsigned\)\?$/\1/p' | head -1)
  [ -z "$v" ] && v=$(ls "$D" 2>/dev/null | sed -n 's/^vmlinux-\(.*-amd64\)$/\1/p' | sort -V | tail -1)
  if [ -z "$v" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then   # fresh CI image: no apt lists yet
    apt-get update -qq >/dev/null 2>&1 || true
    v=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/.*Depends: linux-image-\(.*-amd64\)\(-unsigned\)\?$/\1/p' | head -1)
  fi
  echo "$v"
}
KV=$(kver)
K=$D/vmlinux-$KV I=$D/initramfs-$KV-v2.cpio.gz M=$D/kpkg/lib/modules/$KV   # bump -vN when the init script changes

check() {
  command -v qemu-system-x86_64 >/dev/null || { echo "needs qemu (apt-get install qemu-system-x86)"; return 1; }
  [ -f $QBOOT ] || { echo "needs $QBOOT (apt-get install qemu-system-x86)"; return 1; }
  [ -x /bin/busybox ] && /bin/busybox --list 2>/dev/null | grep -qx insmod ||
    { echo "needs a static /bin/busybox (apt-get install busybox-static)"; return 1; }
  [ -n "$KV" ] || { echo "cannot resolve the kernel version (apt-cache depends linux-image-amd64 found nothing; run apt-get update)"; return 1; }
  if [ ! -f "$K" ] || [ ! -f "$I" ] || [ ! -d "$M" ]; then
    apt-cache show "linux-image-$KV-unsigned" >/dev/null 2>&1 ||
      { echo "kernel package linux-image-$KV-unsigned not cached in $D and not downloadable (apt-get update?)"; return 1; }
    command -v xz >/dev/null && command -v dpkg >/dev/null || { echo "needs xz and dpkg to unpack the kernel"; return 1; }
  fi
}

# one-time setup under a lock (two test files may start at once): ~71 MB kernel .deb
setup() {
  mkdir -p "$D"
  exec 9>"$D/.lock"; flock 9
  if [ -f "$K" ] && [ -f "$I" ] && [ -d "$M" ]; then exec 9>&-; return; fi
  local KPKG=linux-image-$KV-unsigned
  echo "run-in-vm: building the VM cache in $D (kernel $KV)" >&2
  rm -rf "$D/dl" "$D/kpkg.tmp" && mkdir -p "$D/dl"
  (cd "$D/dl" && apt-get -q -o APT::Sandbox::User=root download "$KPKG" >&2)
  dpkg -x "$D"/dl/"${KPKG}"_*.deb "$D/kpkg.tmp"
  # bzImage -> ELF vmlinux (for qboot's PVH boot): the xz stream inside the bzImage
  local z=$D/kpkg.tmp/boot/vmlinuz-$KV off
  off=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$z" | head -1 | cut -d: -f1)
  [ -n "$off" ] || { echo "run-in-vm: no xz payload in $z" >&2; exit 1; }
  tail -c +$((off + 1)) "$z" | xz -dc --single-stream > "$K.tmp"
  # initramfs: busybox + the virtio/9p/overlay modules
  local S; S=$(mktemp -d) && mkdir -p $S/bin $S/mods $S/proc $S/sys $S/dev && cp /bin/busybox $S/bin/
  for m in $MODS; do cp "$(find "$D/kpkg.tmp/lib/modules/$KV" -name $m.ko | head -1)" $S/mods/; done
  cat > $S/init <<INIT && chmod +x $S/init
#!/bin/busybox sh
/bin/busybox --install -s /bin; export PATH=/bin; R=/root O=trans=virtio,version=9p2000.L,msize=262144
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
for m in $MODS; do insmod /mods/\$m.ko; done; mkdir -p /lower /rw \$R
mount -t 9p -o \$O,ro,cache=loose hostroot /lower && mount -t tmpfs tmpfs /rw && mkdir /rw/u /rw/w &&
mount -t overlay -o lowerdir=/lower,upperdir=/rw/u,workdir=/rw/w overlay \$R || poweroff -f
mount -t proc proc \$R/proc; mount -t sysfs sysfs \$R/sys; mount -t devtmpfs devtmpfs \$R/dev
mkdir -p \$R/dev/pts \$R/dev/shm; mount -t devpts devpts \$R/dev/pts; mount -t tmpfs tmpfs \$R/dev/shm
mount -t tmpfs tmpfs \$R/run; mount -t securityfs securityfs \$R/sys/kernel/security
mount -t bpf bpf \$R/sys/fs/bpf; mount -t debugfs debugfs \$R/sys/kernel/debug
mount -t tracefs tracefs \$R/sys/kernel/tracing; mount -t cgroup2 cgroup2 \$R/sys/fs/cgroup
mkdir -p \$R/run/vmxfer && mount -t 9p -o \$O,cache=none xfer \$R/run/vmxfer || poweroff -f
hostname vm; ip link set lo up; stty -F /dev/ttyS1 raw -echo; stty -F /dev/ttyS2 raw -echo
chroot \$R /bin/sh /run/vmxfer/cmd.sh </dev/null >/dev/ttyS1 2>/dev/ttyS2
echo \$? > \$R/run/vmxfer/rc; sync
[ -f \$R/run/vmxfer/pid1.sh ] && exec chroot \$R /bin/sh /run/vmxfer/pid1.sh
umount \$R/run/vmxfer; poweroff -f
INIT
  (cd $S && find . | /bin/busybox cpio -o -H newc 2>/dev/null | gzip -1) > "$I.tmp" && rm -rf $S
  command -v depmod >/dev/null && depmod -b "$D/kpkg.tmp" "$KV" 2>/dev/null || true   # modprobe in the guest
  rm -rf "$D/kpkg" && mv "$D/kpkg.tmp" "$D/kpkg" && mv "$K.tmp" "$K" && mv "$I.tmp" "$I" && rm -rf "$D/dl"
  exec 9>&-
}

case "${1:-}" in
  --check) check; exit ;;
  --kver) echo "$KV"; exit ;;
  --setup) check >&2 && setup; exit ;;
esac
[ $# -ge 1 ] || { echo "usage: run-in-vm.sh 'command' | --check | --setup" >&2; exit 2; }
if ! why=$(check); then echo "run-in-vm: $why" >&2; exit 2; fi
setup

X=$(mktemp -d "$D/xfer.XXXXXX"); trap 'rm -rf "$X"' EXIT
{ echo 'export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb'
  printf 'export KRSI_VM=1 KRSI_VM_KVER=%q KRSI_VM_MODULES=%q\n' "$KV" "/lib/modules/$KV"
  [ -n "${VM_ENV:-}" ] && echo "export $VM_ENV"
  echo 'grep -qw bpf /sys/kernel/security/lsm || { echo "run-in-vm: BPF LSM not active in the guest: $(cat /sys/kernel/security/lsm)" >&2; exit 86; }'
  printf 'mkdir -p /lib/modules/%q && mount --bind %q /lib/modules/%q\n' "$KV" "$M" "$KV"
  [ -n "${VM_RW:-}" ] && printf 'mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,cache=none rw %q\n' "$VM_RW"
  printf 'cd %q 2>/dev/null || cd /\n' "$PWD"; printf '%s\n' "$*"; } > "$X/cmd.sh"
RW=(); [ -n "${VM_RW:-}" ] && RW=(-virtfs "local,path=$VM_RW,mount_tag=rw,security_model=none")
LOG=${VM_CONSOLE_LOG:-$X/console.log}
q=0
timeout --kill-after=5 "${VM_TIMEOUT:-300}" qemu-system-x86_64 -accel "${VM_ACCEL:-tcg}" -cpu "${VM_CPU:-max}" \
  -m "${VM_MEM:-2G}" -smp "${VM_CPUS:-2}" -nodefaults -no-user-config -display none -no-reboot \
  -bios $QBOOT -kernel "$K" -initrd "$I" \
  -append "console=ttyS0 loglevel=4 panic=-1 rdinit=/init i8042.noaux i8042.nokbd lsm=${VM_LSM:-lockdown,capability,landlock,yama,apparmor,bpf} ${VM_APPEND:-}" \
  -serial "file:$LOG" -chardev stdio,id=o,signal=off -serial chardev:o \
  -chardev "file,id=e,path=$X/stderr" -serial chardev:e \
  -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
  -virtfs "local,path=$X,mount_tag=xfer,security_model=none" "${RW[@]}" </dev/null || q=$?
cat "$X/stderr" >&2 2>/dev/null || true   # (a file: stderr may be a socket, which qemu cannot open)
[ -s "$X/rc" ] && exit "$(cat "$X/rc")"
[ $q = 124 ] && echo "run-in-vm: timed out after ${VM_TIMEOUT:-300}s" >&2
echo "run-in-vm: no exit status from the guest (qemu rc=$q); kernel log tail:" >&2
tail -n 20 "$LOG" >&2 2>/dev/null || true
exit 255
}
