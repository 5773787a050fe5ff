#!/usr/bin/env bash
# Installs the Debian packages Petrel's tests and demo need. Idempotent.
#   scripts/install-deps.sh              install whatever is missing
#   scripts/install-deps.sh --if-missing same, but quiet and fast when nothing is missing
# BIRD 1.6 (package `bird`) conflicts with bird2: bird2 is installed, and BIRD 1.6 is unpacked with
# `apt-get download` + `dpkg -x` into $PETREL_BIRD16_DIR (default /var/cache/petrel/bird16).
set -euo pipefail

PKGS=(
  etcd-server etcd-client iproute2        # IPAM (issue 2)
  bird2 gobgpd tshark exabgp frr          # BGP codec oracle and interop (issues 3, 4)
  containerd runc containernetworking-plugins  # CNI under CRI (issue 5)
  nftables iperf3 tcpdump                 # node agent data plane: natOutgoing, iperf3 bench (issue 9)
  qemu-system-x86 linux-image-amd64 busybox-static  # real-kernel qemu guests for IPIP (agent/lab/vm; this kernel has no ipip)
  chromium                                # petrelctl ui tests: headless browser over the DevTools protocol (issue 11)
  skopeo curl procps                      # node image: its offline build reads procps from dpkg, skopeo checks the OCI image (issue 12)
)
# The Kubernetes API tests drive the real kubectl against the API test double. This machine type ships
# a current kubectl; where none is on PATH, Debian's kubernetes-client (1.20) is the fallback.
command -v kubectl >/dev/null 2>&1 || PKGS+=(kubernetes-client)
BIRD16_DIR=${PETREL_BIRD16_DIR:-/var/cache/petrel/bird16}

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
need_bird16=0
[ -x "$BIRD16_DIR/usr/sbin/bird" ] || need_bird16=1

if [ ${#missing[@]} -eq 0 ] && [ $need_bird16 -eq 0 ]; then
  [ "${1:-}" = "--if-missing" ] || echo "install-deps: everything present"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-deps: missing ${missing[*]:-} (bird 1.6: $need_bird16); run as root" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
echo "install-deps: installing ${missing[*]:-} ${need_bird16:+(bird 1.6: $need_bird16)}" >&2
apt-get update -qq
if [ ${#missing[@]} -gt 0 ]; then
  # Packaged services must not start on the machine: tests start their own daemons in namespaces.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  echo 'wireshark-common wireshark-common/install-setuid boolean false' | debconf-set-selections
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  rm -f /usr/sbin/policy-rc.d
fi
if [ $need_bird16 -eq 1 ]; then
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download -qq bird >/dev/null)
  mkdir -p "$BIRD16_DIR"
  dpkg -x "$tmp"/bird_*.deb "$BIRD16_DIR"
  rm -rf "$tmp"
fi
echo "install-deps: done" >&2
