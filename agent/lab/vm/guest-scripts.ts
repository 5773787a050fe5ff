/**
 * The shell that runs inside a guest, as text: the image builder packs INIT and STAGE2 into the
 * initramfs, and every rig copies LIB into its run directory. They are strings (not files beside
 * the code) so that bundles such as bin/petrelctl carry them.
 *
 * Boot: the kernel runs INIT (PID 1, static busybox) from the initramfs; it loads the modules the
 * root needs, mounts the host's / over virtio-9p read-only as the lower layer of an overlay with a
 * tmpfs upper layer, and switch_roots into STAGE2. STAGE2 (PID 1 on the host's own userland) sets
 * up /proc, /sys, /dev/pts and a fresh /run (/tmp stays the overlay's, so a checkout under the
 * host's /tmp is visible at its own path), mounts the rig's run directory (9p tag
 * `petrelvm`, read-write) at /vm, configures eth0 from /vm/NODE/env, and then:
 *   mode run:    runs /vm/NODE/cmd, writes output.log and rc, powers off;
 *   mode serve:  starts /vm/NODE/cmd in the background in its own session (service.log,
 *                service.rc when it ends) and runs queued commands (/vm/NODE/queue/ID.sh ->
 *                ID.out + ID.rc) until /vm/NODE/stop appears; then SIGTERM to the service's
 *                process group, SIGKILL after 10 s, powers off.
 * Every exec of a dynamically linked host binary costs 0.1-0.2 s under TCG, so both scripts use
 * busybox applets and shell builtins for everything they do often.
 */

/** Kernel modules INIT loads (dependencies are resolved from modules.dep at build time). */
export const BOOT_MODULES = ['virtio_pci', '9pnet_virtio', '9p', 'overlay', 'virtio_net'] as const;

export const INIT = `#!/bin/busybox sh
# Petrel VM initramfs /init (PID 1). See agent/lab/vm/guest-scripts.ts.
BB=/bin/busybox
$BB mount -t proc proc /proc
$BB mount -t sysfs sysfs /sys
$BB mount -t devtmpfs devtmpfs /dev
t() { read -r up _ < /proc/uptime; echo "petrel-vm[$up] $*" > /dev/console; }
fail() { t "init: $*"; echo o > /proc/sysrq-trigger; $BB sleep 10; }
t "init"
while read -r m; do
  $BB insmod "/lib/petrel-vm/$m" || fail "insmod $m failed"
done < /lib/petrel-vm/modules.order
$BB mkdir -p /mnt/lower /mnt/rw /newroot
$BB mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose hostroot /mnt/lower || fail "9p root"
$BB mount -t tmpfs -o size=50%,mode=755 tmpfs /mnt/rw
$BB mkdir -p /mnt/rw/upper /mnt/rw/work
$BB mount -t overlay -o lowerdir=/mnt/lower,upperdir=/mnt/rw/upper,workdir=/mnt/rw/work overlay /newroot || fail "overlay"
$BB mkdir -p /newroot/.petrel-vm
$BB cp $BB /lib/petrel-vm/stage2 /newroot/.petrel-vm/
t "root mounted"
$BB mount --move /dev /newroot/dev
$BB umount /proc /sys
exec $BB switch_root /newroot /.petrel-vm/stage2
`;

export const STAGE2 = `#!/.petrel-vm/busybox sh
# Petrel VM stage 2 (PID 1 on the overlay root). See agent/lab/vm/guest-scripts.ts.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root TERM=linux
BB=/.petrel-vm/busybox
t() { read -r up _ < /proc/uptime; echo "petrel-vm[$up] $*" > /dev/console; }
off() { $BB sync; $BB poweroff -f; echo o > /proc/sysrq-trigger; $BB sleep 10; }
$BB mount -t proc proc /proc
$BB mount -t sysfs sysfs /sys
$BB mkdir -p /dev/pts /dev/shm
$BB mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
$BB mount -t tmpfs -o mode=1777 tmpfs /dev/shm
$BB mount -t tmpfs -o mode=755 tmpfs /run
# /tmp stays the overlay's: the host's /tmp shows through read-only (a checkout there, e.g. CI's
# clone in /tmp, is visible at the same path) and writes land in the tmpfs upper layer.
$BB mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
$BB mkdir -p /run/netns /run/lock /vm
# busybox applets last on PATH: a fallback (ping, nc) for tools the host lacks
$BB mkdir -p /.petrel-vm/bin && $BB --install -s /.petrel-vm/bin
export PATH="$PATH:/.petrel-vm/bin"
node=""; mode=run
for a in $(cat /proc/cmdline); do
  case "$a" in
    petrel.node=*) node="\${a#*=}" ;;
    petrel.mode=*) mode="\${a#*=}" ;;
  esac
done
$BB mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=none petrelvm /vm || { t "no run dir"; off; }
d="/vm/$node"
. "$d/env"
$BB cat /vm/hosts > /etc/hosts
$BB hostname "$node"; echo "$node" > /etc/hostname
$BB ip link set lo up
$BB ip link set eth0 up
$BB ip addr add "$PETREL_VM_CIDR" dev eth0
[ -n "$PETREL_VM_GATEWAY" ] && $BB ip route add default via "$PETREL_VM_GATEWAY" dev eth0
read -r up _ < /proc/uptime
echo "$up" > "$d/booted"
t "ready $PETREL_VM_CIDR mode=$mode"
cd /root 2>/dev/null || cd /
if [ "$mode" = run ]; then
  "$d/cmd" > "$d/output.log" 2>&1 < /dev/null
  echo $? > "$d/rc.tmp" && $BB mv "$d/rc.tmp" "$d/rc"
  off
fi
$BB setsid "$d/cmd" > "$d/service.log" 2>&1 < /dev/null &
svc=$!
echo "$svc" > "$d/service.pid"
$BB mkdir -p "$d/queue"
hb_last=""; hb_same=0; tick=0
while [ ! -e "$d/stop" ]; do
  for f in "$d"/queue/*.sh; do
    [ -e "$f" ] || break
    id="\${f%.sh}"
    /bin/sh "$f" > "$id.out" 2>&1 < /dev/null
    echo $? > "$id.rc.tmp"
    $BB rm -f "$f"
    $BB mv "$id.rc.tmp" "$id.rc"
  done
  if [ -n "$svc" ] && ! kill -0 "$svc" 2>/dev/null; then
    wait "$svc"; echo $? > "$d/service.rc"; svc=""
  fi
  # the host rewrites /vm/heartbeat every 2 s; unchanged for 30 s = the host died: power off
  tick=$((tick + 1))
  if [ $tick -ge 50 ]; then
    tick=0; hb=""; read -r hb < /vm/heartbeat
    if [ "$hb" = "$hb_last" ]; then hb_same=$((hb_same + 1)); else hb_same=0; hb_last="$hb"; fi
    [ $hb_same -ge 6 ] && { t "host heartbeat stopped"; break; }
  fi
  $BB usleep 100000
done
if [ -n "$svc" ]; then
  kill -TERM -"$svc" 2>/dev/null || kill -TERM "$svc" 2>/dev/null
  i=0
  while kill -0 "$svc" 2>/dev/null && [ $i -lt 100 ]; do $BB usleep 100000; i=$((i + 1)); done
  kill -KILL -"$svc" 2>/dev/null
  wait "$svc"; echo $? > "$d/service.rc"
fi
off
`;

/**
 * Helpers for command files, copied to /vm/lib.sh: `. /vm/lib.sh`.
 *   vm_barrier NAME [TIMEOUT_S]  wait until every guest (and the host, if it joins) reached NAME
 *   vm_wait CMD...               retry CMD every $VM_WAIT_EVERY_US µs (default 0.2 s) until
 *                                $VM_WAIT_S (default 60) s of guest uptime have passed; poll a
 *                                host binary slowly: each exec takes CPU from the guest's 1 vCPU
 *   vm_node_ip K                 address of guest K
 *   vm_now, vm_sleep [USEC]      guest uptime in whole seconds; a busybox usleep (default 0.2 s)
 */
export const LIB = `# Petrel VM command-file helpers. See agent/lab/vm/guest-scripts.ts.
# Deadlines come from /proc/uptime (a shell read, no process), not from counting loop turns: under
# TCG on a busy host every exec costs 0.1-0.5 s, so "N turns of sleep 0.2" lasts many times longer.
# Sleeps use the initramfs's static busybox (no dynamic linking per call).
vm_now() { read -r _up _ < /proc/uptime; echo "\${_up%.*}"; }
vm_sleep() { /.petrel-vm/busybox usleep "\${1:-200000}"; }
vm_barrier() {
  name="$1"; timeout="\${2:-120}"; end=$(( $(vm_now) + timeout ))
  mkdir -p "/vm/.barrier/$name"
  : > "/vm/.barrier/$name/$PETREL_VM_NODE"
  while :; do
    n=$(set -- "/vm/.barrier/$name"/*; echo $#)
    [ "$n" -ge "$PETREL_VM_BARRIER_COUNT" ] && return 0
    [ "$(vm_now)" -ge "$end" ] && { echo "barrier $name timed out ($n/$PETREL_VM_BARRIER_COUNT)" >&2; return 1; }
    vm_sleep
  done
}
vm_node_ip() { k=$1; set -- $PETREL_VM_NODE_IPS; shift $((k - 1)); echo "$1"; }
vm_wait() {
  end=$(( $(vm_now) + \${VM_WAIT_S:-60} ))
  until "$@" >/dev/null 2>&1; do
    [ "$(vm_now)" -ge "$end" ] && { echo "timed out after \${VM_WAIT_S:-60} s waiting for: $*" >&2; return 1; }
    vm_sleep "\${VM_WAIT_EVERY_US:-200000}"
  done
}
`;
