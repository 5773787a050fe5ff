#!/usr/bin/env bash
# Petrel's main job today, end to end on one node, entirely inside network namespaces:
#   1. a "node" namespace with an uplink to an "outside" namespace (its default route);
#   2. etcd and petrel-agent running inside the node namespace; IP pools made with petrelctl;
#   3. two pods (namespaces) wired by the petrel CNI plugin exactly as containerd would call it:
#      veth, /32 address, default route via 169.254.1.1 answered by proxy ARP, /32 host routes;
#   4. TCP from pod to pod and from the node to a pod; `petrelctl ipam show` and the raw
#      `etcdctl get --prefix /petrel/` view; then CNI DEL releases everything.
# Everything it starts runs in its own process group (setsid), and on exit each group is ended
# whole (SIGTERM, then SIGKILL): the command that `ip netns exec` runs and anything it forked.
# Every namespace it makes is deleted on exit. test/integration/demo checks that nothing is left.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

if [ "$(id -u)" != 0 ]; then echo "demo: run as root (it creates network namespaces)" >&2; exit 1; fi
bash scripts/install-deps.sh --if-missing
[ -d node_modules ] || npm ci --no-audit --no-fund
[ -x bin/petrelctl ] && [ -x bin/petrel-agent ] || npm run --silent build
[ -x dist-sea/petrel ] || npm run --silent package

TAG="petrel-demo-$$"
NODE="$TAG-node"; EXT="$TAG-ext"; POD1="$TAG-pod1"; POD2="$TAG-pod2"
TMP=$(mktemp -d /tmp/petrel-demo.XXXXXX)
PIDS=()
# bg NETNS CMD...: runs CMD inside NETNS in the background as the leader of a new process group
# (a background job of a script is no group leader, so setsid execs in place: $! is CMD's PID,
# since `ip netns exec` execs CMD too).
bg() {
  local ns=$1; shift
  setsid ip netns exec "$ns" "$@" &
  PIDS+=($!)
}
group_alive() { kill -0 -- "-$1" 2>/dev/null; }
cleanup() {
  set +e
  for pid in "${PIDS[@]}"; do kill -TERM -- "-$pid" 2>/dev/null; done
  for _ in $(seq 1 50); do
    alive=0
    for pid in "${PIDS[@]}"; do group_alive "$pid" && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for pid in "${PIDS[@]}"; do kill -KILL -- "-$pid" 2>/dev/null; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
  for ns in "$POD1" "$POD2" "$NODE" "$EXT"; do ip netns del "$ns" 2>/dev/null; done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
in_node() { ip netns exec "$NODE" "$@"; }
ctl() { echo "\$ petrelctl $*"; in_node bin/petrelctl --etcd-endpoints http://127.0.0.1:2379 "$@"; }

say "node namespace $NODE with an uplink to $EXT (192.168.77.0/24, default route)"
for ns in "$NODE" "$EXT" "$POD1" "$POD2"; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
ip link add uplink0 netns "$NODE" type veth peer name ext0 netns "$EXT"
ip -n "$NODE" addr add 192.168.77.1/24 dev uplink0; ip -n "$NODE" link set uplink0 up
ip -n "$EXT" addr add 192.168.77.254/24 dev ext0; ip -n "$EXT" link set ext0 up
ip -n "$NODE" route add default via 192.168.77.254

say "etcd and petrel-agent inside the node namespace"
bg "$NODE" etcd --name demo --data-dir "$TMP/etcd" --listen-client-urls http://127.0.0.1:2379 \
  --advertise-client-urls http://127.0.0.1:2379 --log-level error >"$TMP/etcd.log" 2>&1
for _ in $(seq 1 100); do in_node etcdctl endpoint health >/dev/null 2>&1 && break; sleep 0.1; done
bg "$NODE" bin/petrel-agent --node-name node-a --etcd-endpoints http://127.0.0.1:2379 \
  --socket "$TMP/agent.sock" --log-level warn >"$TMP/agent.log" 2>&1
for _ in $(seq 1 100); do [ -S "$TMP/agent.sock" ] && break; sleep 0.1; done
echo "etcd pid ${PIDS[0]}, agent pid ${PIDS[1]}, socket $TMP/agent.sock, run tag $TAG"

say "IP pools"
ctl ipam pool add default-ipv4 --cidr 10.244.0.0/16 --ipip-mode Always --nat-outgoing
ctl ipam pool list

CONF=$(printf '{"cniVersion":"1.0.0","name":"k8s-pod-network","type":"petrel","agentSocket":"%s","ipam":{"type":"petrel-ipam"}}' "$TMP/agent.sock")
cni() { # cni COMMAND CONTAINER_ID POD_NETNS POD_NAME
  CNI_COMMAND=$1 CNI_CONTAINERID=$2 CNI_NETNS=/var/run/netns/$3 CNI_IFNAME=eth0 CNI_PATH=/usr/lib/cni \
    CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=$4" \
    ip netns exec "$NODE" dist-sea/petrel <<<"$CONF"
}

say "CNI ADD for two pods (as containerd runs the plugin)"
cni ADD c0ffee000001 "$POD1" web-0 | tee "$TMP/add1.json"; echo
cni ADD c0ffee000002 "$POD2" web-1 >"$TMP/add2.json"
IP1=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1])).ips[0].address.split("/")[0])' "$TMP/add1.json")
IP2=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1])).ips[0].address.split("/")[0])' "$TMP/add2.json")
echo "web-0 = $IP1, web-1 = $IP2"

say "inside pod web-0: eth0 with a /32, default route via 169.254.1.1"
ip -n "$POD1" -br addr show dev eth0
ip -n "$POD1" route
say "on the node: host veths with proxy ARP and a /32 route per pod"
ip -n "$NODE" -br link show type veth
ip -n "$NODE" route | grep -E "^10\.244\." || true

say "TCP: pod web-1 -> pod web-0, node -> pod web-1"
SERVER='require("net").createServer(s=>{s.end("hello from "+process.argv[1]+"\n")}).listen(8080,"0.0.0.0")'
bg "$POD1" node -e "$SERVER" web-0
bg "$POD2" node -e "$SERVER" web-1
sleep 0.5
CLIENT='const s=require("net").connect(8080,process.argv[1]);s.on("data",d=>process.stdout.write(d));s.on("error",e=>{console.error(String(e));process.exit(1)})'
ip netns exec "$POD2" node -e "$CLIENT" "$IP1"
ip netns exec "$NODE" node -e "$CLIENT" "$IP2"

say "IPAM: petrelctl ipam show, and the raw etcd view"
ctl ipam show
echo "\$ etcdctl get --prefix /petrel/ipam/v1/handles/"
in_node etcdctl get --prefix /petrel/ipam/v1/handles/

say "CNI DEL for both pods: veths, routes and addresses are gone"
cni DEL c0ffee000001 "$POD1" web-0
cni DEL c0ffee000002 "$POD2" web-1
cni DEL c0ffee000002 "$POD2" web-1 && echo "(a second DEL succeeds too: DEL is idempotent)"
ip -n "$NODE" -br link show type veth | grep petr || echo "no pod veths left on the node"
ctl ipam check
echo
echo "demo done"
