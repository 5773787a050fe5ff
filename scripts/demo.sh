#!/usr/bin/env bash
# Petrel's main job today: cluster-wide IPAM in etcd, driven by petrelctl.
# Starts a private etcd on loopback (temp dir, free port), creates pools, assigns and releases
# addresses for pods on two nodes, and shows `petrelctl ipam show`, `ipam check` and the raw
# `etcdctl get --prefix /petrel/` view. Stops etcd (by PID) and removes its data on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" = 0 ]; then bash scripts/install-deps.sh --if-missing; fi
[ -d node_modules ] || npm ci --no-audit --no-fund
[ -x bin/petrelctl ] || npm run --silent build

DATA=$(mktemp -d /tmp/petrel-demo-etcd.XXXXXX)
PORT=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
PEER=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
export PETREL_ETCD_ENDPOINTS=http://127.0.0.1:$PORT
etcd --name demo --data-dir "$DATA" --listen-client-urls "$PETREL_ETCD_ENDPOINTS" \
  --advertise-client-urls "$PETREL_ETCD_ENDPOINTS" --listen-peer-urls "http://127.0.0.1:$PEER" \
  --initial-advertise-peer-urls "http://127.0.0.1:$PEER" --initial-cluster "demo=http://127.0.0.1:$PEER" \
  --log-level error >"$DATA.log" 2>&1 &
ETCD_PID=$!
trap 'kill $ETCD_PID 2>/dev/null; wait $ETCD_PID 2>/dev/null; rm -rf "$DATA" "$DATA.log"' EXIT
for _ in $(seq 1 100); do curl -sf "$PETREL_ETCD_ENDPOINTS/health" >/dev/null 2>&1 && break; sleep 0.1; done

ctl() { echo; echo "\$ petrelctl $*"; bin/petrelctl "$@"; }
etcdctl_() { echo; echo "\$ etcdctl $*"; ETCDCTL_API=3 etcdctl --endpoints "$PETREL_ETCD_ENDPOINTS" "$@"; }

echo "etcd pid $ETCD_PID on $PETREL_ETCD_ENDPOINTS"
ctl ipam pool add default-ipv4 --cidr 10.244.0.0/16 --ipip-mode Always --nat-outgoing
ctl ipam pool add default-ipv6 --cidr fd00:10:244::/56
ctl ipam pool add zone-b --cidr 10.245.0.0/24 --block-size 28 --node-selector "zone == 'b'"
ctl node label node-b zone=b
ctl ipam pool list
ctl ipam assign --node node-a --handle k8s-pod-network.4f1c0e --pod web-0 --namespace shop --num 1 --num6 1
ctl ipam assign --node node-a --handle k8s-pod-network.77a2b1 --pod web-1 --namespace shop
ctl ipam assign --node node-b --handle k8s-pod-network.c0ffee --pod db-0 --namespace shop --pool zone-b --json
ctl ipam assign --node node-b --handle static-ip-demo --ip 10.244.3.7
ctl ipam show
ctl ipam release --handle k8s-pod-network.77a2b1
ctl ipam release --ip 10.244.3.7
ctl ipam check
etcdctl_ get --prefix /petrel/ --keys-only
etcdctl_ get /petrel/ipam/v1/handles/k8s-pod-network.4f1c0e
ctl ipam show
echo
echo "demo done; stopping etcd"
