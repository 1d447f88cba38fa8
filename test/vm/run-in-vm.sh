#!/usr/bin/env bash
# run-in-vm.sh 'shell command' -- run a command as root in a throw-away qemu VM (TCG) that boots Debian's
# stock kernel with BPF LSM active (lsm=...,bpf). Used by test/vm/vm.ts; usable by hand.
#   run-in-vm.sh --check    prints a one-line reason and exits 1 when the VM cannot run here (else exit 0)
#   run-in-vm.sh --setup    builds the cache (kernel, initramfs) and exits
#   run-in-vm.sh --kver     prints the guest kernel's version
#   run-in-vm.sh --headers  prints the guest kernel's headers directory (downloaded into the cache on first
#                           use) to build test modules for it: make -C "$(run-in-vm.sh --headers)" M=...
# Kernels: KRSI_VM_KERNEL=6.1 (default: Debian bookworm's own) or 6.12 (bookworm-backports, through a private
# apt list in the cache); each resolved to today's build from Debian's package lists, never pinned.
# The guest sees the host's / read-only (9p) under a tmpfs overlay (guest writes are discarded), starts in
# the same cwd, has no network. The kernel package's modules are bind-mounted at /lib/modules/<version>
# in the guest (and $KRSI_VM_MODULES names that dir). The guest checks that /sys/kernel/security/lsm lists
# bpf (exit 86 otherwise). When the command leaves an executable script at /run/vmxfer/pid1.sh, pid 1
# itself execs it after the command (through chroot, so pid 1 execs twice): tests that pid 1 is never
# denied; that script must end with `poweroff -f` (the command's exit status is already recorded).
# Guest stdout/stderr -> our stdout/stderr (serial ttyS1/ttyS2; stderr arrives at the end); our exit status =
# the guest command's (255 when the guest never reported one: timeout, panic; the kernel log tail goes to
# stderr then).
# Env: KRSI_VM_CACHE (default ~/.cache/krsi-vm), KRSI_VM_KERNEL (6.1 | 6.12), KRSI_VM_KVER (an exact version
#      of that line instead of today's), VM_TIMEOUT=300 (s), VM_MEM=3G, VM_CPUS=2, VM_CPU=max, VM_ACCEL=tcg
#      (this host's kvm cannot run a stock guest), VM_LSM=lockdown,capability,landlock,yama,apparmor,bpf,
#      VM_APPEND='extra kernel args', VM_RW=/host/dir (exported read-write, mounted at the same path in the
#      guest), VM_ENV='A=1 B=2' (exported in the guest), VM_CONSOLE_LOG=file (kernel console).
set -eu
{ # the whole script is one compound command: bash parses it all before running, so editing this
  # file while a VM runs cannot derail that run
D=${KRSI_VM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/krsi-vm}
QBOOT=/usr/share/qemu/qboot.rom
# loaded from the initramfs when the kernel has them as modules (6.12 builds virtio in and has no fscache)
MODS="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci netfs fscache 9pnet 9pnet_virtio 9p overlay"
LINE=${KRSI_VM_KERNEL:-6.1}

# apt options for the kernel line: 6.1 is bookworm's own kernel (the host's lists); 6.12 comes from
# bookworm-backports through a private list in the cache (the host's sources stay untouched)
APT=(-o APT::Sandbox::User=root)
case "$LINE" in
  6.1) ;;
  6.12) B=$D/apt-bookworm-backports
    APT+=(-o "Dir::Etc::sourcelist=$B/sources.list" -o Dir::Etc::sourceparts=- -o "Dir::State::Lists=$B/lists" -o APT::Get::List-Cleanup=0) ;;
  *) echo "run-in-vm: KRSI_VM_KERNEL=$LINE: known lines are 6.1 (bookworm) and 6.12 (bookworm-backports)" >&2; exit 2 ;;
esac
lists() {   # make sure the line's package lists exist (a fresh CI image has none)
  if [ "$LINE" = 6.12 ]; then
    [ -n "$(ls "$B/lists" 2>/dev/null | grep -v partial)" ] && return
    mkdir -p "$B/lists/partial"
    echo "deb http://deb.debian.org/debian bookworm-backports main" > "$B/sources.list"
  fi
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && apt-get "${APT[@]}" update -qq >/dev/null 2>&1 || true
}
resolve() { apt-cache "${APT[@]}" depends linux-image-amd64 2>/dev/null | sed -n 's/.*Depends: linux-image-\(.*-amd64\)\(-unsigned\)\?$/\1/p' | head -1; }

# the kernel version: what Debian's linux-image-amd64 depends on today in that line, else the newest one cached
kver() {
  [ -n "${KRSI_VM_KVER:-}" ] && { echo "$KRSI_VM_KVER"; return; }
  local v
  v=$(resolve)
  [ -z "$v" ] && { lists; v=$(resolve); }
  [ -z "$v" ] && v=$(ls "$D" 2>/dev/null | sed -n "s/^vmlinux-\(${LINE//./\\.}[.-].*-amd64\)$/\1/p" | sort -V | tail -1)
  echo "$v"
}
KV=$(kver)
K=$D/vmlinux-$KV I=$D/initramfs-$KV-v3.cpio.gz M=$D/kpkg-$KV/lib/modules/$KV H=$D/headers-$KV   # bump -vN when the init script changes

check() {
  command -v qemu-system-x86_64 >/dev/null || { echo "needs qemu (apt-get install qemu-system-x86)"; return 1; }
  [ -f $QBOOT ] || { echo "needs $QBOOT (apt-get install qemu-system-x86)"; return 1; }
  [ -x /bin/busybox ] && /bin/busybox --list 2>/dev/null | grep -qx insmod ||
    { echo "needs a static /bin/busybox (apt-get install busybox-static)"; return 1; }
  [ -n "$KV" ] || { echo "cannot resolve the $LINE kernel version (apt-cache depends linux-image-amd64 found nothing; run apt-get update)"; return 1; }
  if [ ! -f "$K" ] || [ ! -f "$I" ] || [ ! -d "$M" ]; then
    apt-cache "${APT[@]}" show "linux-image-$KV-unsigned" >/dev/null 2>&1 ||
      { echo "kernel package linux-image-$KV-unsigned not cached in $D and not downloadable (apt-get update?)"; return 1; }
    command -v xz >/dev/null && command -v zstd >/dev/null && command -v dpkg >/dev/null ||
      { echo "needs xz, zstd and dpkg to unpack the kernel (apt-get install xz-utils zstd)"; return 1; }
  fi
}

# one-time setup under a lock (two test files may start at once): a ~70 MB kernel .deb per version
setup() {
  mkdir -p "$D"
  exec 9>"$D/.lock"; flock 9
  if [ -f "$K" ] && [ -f "$I" ] && [ -d "$M" ]; then exec 9>&-; return; fi
  local KPKG=linux-image-$KV-unsigned P=$D/kpkg-$KV
  echo "run-in-vm: building the VM cache in $D (kernel $KV)" >&2
  rm -rf "$D/dl" "$P.tmp" && mkdir -p "$D/dl"
  (cd "$D/dl" && apt-get -q "${APT[@]}" download "$KPKG" >&2)
  dpkg -x "$D"/dl/"${KPKG}"_*.deb "$P.tmp"
  # bzImage -> ELF vmlinux (for qboot's PVH boot): the payload inside the bzImage is xz (6.1) or zstd (6.12)
  local z=$P.tmp/boot/vmlinuz-$KV off
  off=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$z" | head -1 | cut -d: -f1)
  if [ -n "$off" ]; then
    tail -c +$((off + 1)) "$z" | xz -dc --single-stream > "$K.tmp"
  else
    off=$(LC_ALL=C grep -obUaP '\x28\xb5\x2f\xfd' "$z" | head -1 | cut -d: -f1)
    [ -n "$off" ] || { echo "run-in-vm: no xz or zstd payload in $z" >&2; exit 1; }
    tail -c +$((off + 1)) "$z" | zstd -dcq 2>/dev/null > "$K.tmp" || true   # trailing bytes after the frame: ignored
  fi
  [ "$(head -c 4 "$K.tmp" | od -An -tx1 | tr -d ' ')" = 7f454c46 ] || { echo "run-in-vm: unpacking $z gave no ELF kernel" >&2; exit 1; }
  # initramfs: busybox + the virtio/9p/overlay modules that are modules in this kernel (.ko or .ko.xz)
  local S m f; S=$(mktemp -d) && mkdir -p $S/bin $S/mods $S/proc $S/sys $S/dev && cp /bin/busybox $S/bin/
  for m in $MODS; do
    f=$(find "$P.tmp/lib/modules/$KV" \( -name "$m.ko" -o -name "$m.ko.xz" \) | head -1)
    case "$f" in "") ;; *.xz) xz -dc "$f" > "$S/mods/$m.ko" ;; *) cp "$f" "$S/mods/" ;; esac
  done
  cat > $S/init <<INIT && chmod +x $S/init
#!/bin/busybox sh
/bin/busybox --install -s /bin; export PATH=/bin; R=/root O=trans=virtio,version=9p2000.L,msize=262144
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
for m in $MODS; do [ -f /mods/\$m.ko ] && insmod /mods/\$m.ko; done; mkdir -p /lower /rw \$R
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
  command -v depmod >/dev/null && depmod -b "$P.tmp" "$KV" 2>/dev/null || true   # modprobe in the guest
  rm -rf "$P" && mv "$P.tmp" "$P" && mv "$K.tmp" "$K" && mv "$I.tmp" "$I" && rm -rf "$D/dl"
  exec 9>&-
}

# the kernel's headers (to build test modules for the guest): linux-headers-<kv>, its -common and the
# kbuild tools, unpacked into the cache (never installed on the host); prints the build directory
headers() {
  local dir=$H/usr/src/linux-headers-$KV
  if [ ! -f "$dir/Makefile" ]; then
    mkdir -p "$D"; exec 8>"$D/.hlock"; flock 8
    if [ ! -f "$dir/Makefile" ]; then
      local pk deps
      deps=$(apt-cache "${APT[@]}" depends "linux-headers-$KV" 2>/dev/null | sed -n 's/^ *Depends: \(linux-\(headers\|kbuild\)-[^ ]*\)$/\1/p')
      [ -n "$deps" ] || { echo "run-in-vm: cannot resolve linux-headers-$KV (apt-get update?)" >&2; return 1; }
      rm -rf "$D/hdl" "$H.tmp" && mkdir -p "$D/hdl"
      (cd "$D/hdl" && apt-get -q "${APT[@]}" download "linux-headers-$KV" $deps >&2) || return 1
      for pk in "$D"/hdl/*.deb; do dpkg -x "$pk" "$H.tmp"; done
      rm -rf "$H" && mv "$H.tmp" "$H" && rm -rf "$D/hdl"
      # Debian's per-flavour Makefile includes the -common tree by its installed path: point it into the cache
      sed -i "s#^include /usr/src/#include $H/usr/src/#" "$dir/Makefile"
    fi
    exec 8>&-
  fi
  echo "$dir"
}

case "${1:-}" in
  --check) check; exit ;;
  --kver) echo "$KV"; exit ;;
  --headers) headers; exit ;;
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
  # a guest-only temp directory: tsx's cache and every mkdtemp in the guest stay off the host's /tmp, which
  # the guest would otherwise read through 9p while host processes rewrite it
  echo 'mkdir -p /run/guest-tmp && export TMPDIR=/run/guest-tmp'
  printf 'cd %q 2>/dev/null || cd /\n' "$PWD"; printf '(\n%s\n)\n' "$*"
  # a failed command: say how it ended (a signal?) with the guest's memory and kernel log, where an OOM
  # kill, a segfault or a SIGBUS would show
  echo 'rc=$?; if [ $rc -ne 0 ]; then { echo "run-in-vm: the guest command exited $rc$([ $rc -gt 128 ] && echo " (killed by signal $((rc - 128)))")"; echo "--- guest memory:"; free -m; echo "--- guest dmesg tail:"; dmesg | tail -n 40; } >&2; fi; exit $rc'
  } > "$X/cmd.sh"
RW=(); [ -n "${VM_RW:-}" ] && RW=(-virtfs "local,path=$VM_RW,mount_tag=rw,security_model=none")
LOG=${VM_CONSOLE_LOG:-$X/console.log}
q=0
timeout --kill-after=5 "${VM_TIMEOUT:-300}" qemu-system-x86_64 -accel "${VM_ACCEL:-tcg}" -cpu "${VM_CPU:-max}" \
  -m "${VM_MEM:-3G}" -smp "${VM_CPUS:-2}" -nodefaults -no-user-config -display none -no-reboot \
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
