#!/usr/bin/env bash
# Runs inside the booted container (run.sh): installs aztec-prover from the
# local repository in /srv/shared/repo and checks what an operator does.
set -u
export DEBIAN_FRONTEND=noninteractive SYSTEMD_PAGER= SYSTEMD_COLORS=0
pass=0; fail=0
ok()   { echo "PASS: $*"; pass=$((pass+1)); }
bad()  { echo "FAIL: $*"; fail=$((fail+1)); }
check(){ local d=$1; shift; if "$@"; then ok "$d"; else bad "$d"; fi; }
AGENT=org.aztec.ProverAgent.Instance2
OBJ=/org/aztec/ProverAgent
IFACE=org.aztec.ProverAgent1

echo "== apt install aztec-prover (local repository)"
echo "deb [trusted=yes] file:/srv/shared/repo ./" > /etc/apt/sources.list.d/aztec-prover.list
apt-get update -q -o Dir::Etc::sourcelist=sources.list.d/aztec-prover.list \
  -o Dir::Etc::sourceparts=- -o APT::Get::List-Cleanup=0 >/tmp/update.log 2>&1 || tail -5 /tmp/update.log
check "apt install aztec-prover" apt-get install -y -q aztec-prover
check "user and group aztec-prover" bash -c 'getent passwd aztec-prover && getent group aztec-prover' 
check "broker socket enabled and listening" systemctl is-active -q aztec-prover-broker.socket
check "default config is a conffile" bash -c 'dpkg-query -W -f="\${Conffiles}" aztec-prover | grep -q /etc/aztec-prover/broker.toml'
check "man page installed" test -f /usr/share/man/man1/aztec-prover.1.gz
check "bash completion installed" test -f /usr/share/bash-completion/completions/aztec-prover
check "CPU backend installed" test -f /usr/lib/aztec-prover/backends/libaztec_backend_cpu.so

echo "== node and four agents"
cat > /etc/aztec-prover/node.env <<'ENV'
ETHEREUM_HOSTS=http://127.0.0.1:8545
L1_CHAIN_ID=31337
ROLLUP_CONTRACT_ADDRESS=0x5FbDB2315678afecb367f032d93F642f64180aa3
PROVER_REAL_PROOFS=false
PROVER_COORDINATION_NODE_URL=http://127.0.0.1:8549
ENV
# Keys: an operator installs those matching the rollup's verifier; here the
# small test circuits with a public seed (insecure, as for a devnet).
check "aztec-prover keys generate (test circuits)" bash -c 'aztec-prover keys generate --params test --seed e2e --out /var/lib/aztec-prover/keys >/tmp/keys.log 2>&1 || { tail -5 /tmp/keys.log; false; }'
chown -R aztec-prover:aztec-prover /var/lib/aztec-prover/keys
# anvil's public test key #1 (no L1 runs here: the node waits for it)
echo 0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d > /etc/aztec-prover/credentials/publisher-private-key
chmod 600 /etc/aztec-prover/credentials/publisher-private-key
check "enable --now sockets, node, agents 1..4" systemctl enable --now aztec-prover-broker.socket aztec-prover-node.socket aztec-prover-node aztec-prover-agent@1 aztec-prover-agent@2 aztec-prover-agent@3 aztec-prover-agent@4
sleep 2
for u in aztec-prover-node aztec-prover-agent@1 aztec-prover-agent@2 aztec-prover-agent@3 aztec-prover-agent@4; do
  check "$u active" systemctl is-active -q "$u"
done
systemctl status --no-pager aztec-prover-node aztec-prover-agent@2 2>&1 | grep -E "Active|Status"
for u in aztec-prover-node aztec-prover-agent@1 aztec-prover-agent@2 aztec-prover-agent@3 aztec-prover-agent@4; do
  systemctl is-active -q "$u" || { echo "-- $u is not active:"; journalctl -u "$u" -n 30 --no-pager -o short-monotonic; }
done
check "node STATUS says it waits for L1" bash -c 'systemctl show -P StatusText aztec-prover-node | grep -q "waiting for L1"'
node=$(curl -s -m 10 -X POST -H 'content-type: application/json' \
  -d '{"jsonrpc":"2.0","id":1,"method":"proverNode_getStatus"}' http://127.0.0.1:8081/ 2>&1)
echo "node API: $node"
check "the node's API answers on its socket (8081)" bash -c '[[ "$0" == *'"'"'"l1Connected":false'"'"'* && "$0" == *"waiting for L1"* ]]' "$node"
check "the node keeps its world state in its StateDirectory, as its user" bash -c 'test "$(stat -c %U /var/lib/aztec-prover/node/world-state/data.mdb)" = aztec-prover && journalctl -u aztec-prover-node -o cat | grep -q "world state at block 0 in /var/lib/aztec-prover/node/world-state"'
check "agents keep GPU driver caches in their CacheDirectory, as their user" bash -c 'test "$(stat -c %U /var/cache/aztec-prover)" = aztec-prover && systemctl show -P Environment aztec-prover-agent@1 | grep -q "XDG_CACHE_HOME=/var/cache/aztec-prover"'
check "the node got its API socket from systemd" bash -c 'journalctl -u aztec-prover-node -o cat | grep -q "node API on http://127.0.0.1:8081 (socket from systemd)"'

echo "== the broker starts through its socket"
resp=$(curl -s -m 20 -X POST -H 'content-type: application/json' \
  -d '{"jsonrpc":"2.0","id":1,"method":"getProvingJobStatus","params":["0"]}' http://127.0.0.1:8080/ 2>&1)
echo "response: $resp"
check "8080 answers JSON-RPC" bash -c '[[ "$0" == *jsonrpc* ]]' "$resp"
# READY reaches systemd moments after the first answer: allow it 10 s.
check "broker service active" bash -c 'for i in $(seq 50); do systemctl is-active -q aztec-prover-broker.service && exit 0; sleep 0.2; done; systemctl status --no-pager aztec-prover-broker.service; false'
check "broker got its socket from systemd" bash -c 'journalctl -u aztec-prover-broker.service -o cat | grep -qi "socket from systemd"'

echo "== metrics"
check "the broker serves Prometheus metrics on 8080" bash -c 'curl -s -m 10 http://127.0.0.1:8080/metrics | grep -q "^aztec_proving_queue_size{"'
check "agent 2 serves its metrics on 9462 (base 9460 + instance)" bash -c 'curl -s -m 10 http://127.0.0.1:9462/metrics | grep -q "^aztec_prover_agent_threads"'
check "the node serves its metrics on its API socket" bash -c 'curl -s -m 10 http://127.0.0.1:8081/metrics | grep -q "^aztec_prover_rpc_requests_total"'
check "the dashboard, the alert rules and metrics.md (compressed, as dh_compress leaves it) are installed" test -f /usr/share/aztec-prover/grafana-dashboard.json -a -f /usr/share/aztec-prover/prometheus-alerts.yml -a -f /usr/share/doc/aztec-prover/metrics.md.gz

echo "== P2P boot node"
check "the boot node is installed but not enabled" bash -c '! systemctl is-enabled -q aztec-prover-bootnode'
check "systemctl start aztec-prover-bootnode" systemctl start aztec-prover-bootnode
systemctl is-active -q aztec-prover-bootnode || journalctl -u aztec-prover-bootnode -n 30 --no-pager -o short-monotonic
check "the boot node is active and says whom to dial" bash -c 'systemctl is-active -q aztec-prover-bootnode && journalctl -u aztec-prover-bootnode -o cat | grep -q "others dial /ip4/<this host>/tcp/40400/p2p/"'
check "its key is in its StateDirectory, private, as its user" bash -c 'test "$(stat -c %a:%U /var/lib/aztec-prover/bootnode/p2p-identity.key)" = 600:aztec-prover'
check "P2P off: the node made no P2P key and listens on no P2P port" bash -c '! test -e /var/lib/aztec-prover/node/p2p-identity.key && ! (exec 3<>/dev/tcp/127.0.0.1/40401) 2>/dev/null'
boot_id=$(journalctl -u aztec-prover-bootnode -o cat | sed -n 's/.*boot node \([^ ]*\) .*/\1/p' | head -1)
cat >> /etc/aztec-prover/node.env <<ENV
P2P_ENABLED=true
P2P_PORT=40401
BOOT_NODE_URL=/ip4/127.0.0.1/tcp/40400/p2p/$boot_id
ENV
check "P2P on: systemctl restart aztec-prover-node" systemctl restart aztec-prover-node
check "the node is active with P2P on" bash -c 'sleep 2; systemctl is-active -q aztec-prover-node'
systemctl is-active -q aztec-prover-node || journalctl -u aztec-prover-node -n 30 --no-pager -o short-monotonic
check "its P2P key is in its StateDirectory, private, as its user" bash -c 'test "$(stat -c %a:%U /var/lib/aztec-prover/node/p2p-identity.key)" = 600:aztec-prover'
check "it listens on P2P_PORT" bash -c '(exec 3<>/dev/tcp/127.0.0.1/40401)'
node_id=$(journalctl -u aztec-prover-node -o cat | sed -n 's/.*P2P: peer id \([^ ]*\) .*/\1/p' | tail -1)
echo "node peer id: $node_id, boot node: $boot_id"
check "D-Bus PeerId is the one it logged" bash -c 'test "$(busctl --system get-property org.aztec.ProverNode /org/aztec/ProverNode org.aztec.ProverNode1 PeerId)" = "s \"$0\""' "$node_id"
check "it is connected to the boot node (D-Bus Peers)" bash -c 'for i in $(seq 50); do busctl --system get-property org.aztec.ProverNode /org/aztec/ProverNode org.aztec.ProverNode1 Peers | grep -q "$0" && exit 0; sleep 0.2; done; false' "$boot_id"
check "config show node prints the same peer id" bash -c 'aztec-prover config show node --config /dev/null --dataDirectory /var/lib/aztec-prover/node --p2p.enabled true | grep -q "P2P peer id: $0"' "$node_id"
check "systemctl stop aztec-prover-bootnode" systemctl stop aztec-prover-bootnode

echo "== journal"
journalctl -u aztec-prover-agent@2 --no-pager -o cat | head -5
check "journalctl -u aztec-prover-agent@2 shows its start" bash -c 'journalctl -u aztec-prover-agent@2 -o cat | grep -qi "agent"'
check "its lines carry structured fields" bash -c 'journalctl -u aztec-prover-agent@2 -o verbose | grep -qE "^ +(AGENT|INSTANCE|TARGET|CODE_FILE)="'

echo "== D-Bus"
out=$(busctl --system get-property $AGENT $OBJ $IFACE Threads 2>&1); echo "Threads before: $out"
check "busctl set-property Threads 1 (root)" busctl --system set-property $AGENT $OBJ $IFACE Threads u 1
out=$(busctl --system get-property $AGENT $OBJ $IFACE Threads 2>&1); echo "Threads after: $out"
check "busctl get-property reads 1 back" test "$out" = "u 1"
check "agent 2 logged the change" bash -c 'journalctl -u aztec-prover-agent@2 -o cat | grep -q "Threads set to 1 over D-Bus"'
check "an out-of-range value is refused" bash -c '! busctl --system set-property $0 $1 $2 Threads u 999 2>/dev/null' $AGENT $OBJ $IFACE
check "a non-root user may read" setpriv --reuid=65534 --regid=65534 --clear-groups busctl --system get-property $AGENT $OBJ $IFACE Threads
out=$(setpriv --reuid=65534 --regid=65534 --clear-groups busctl --system set-property $AGENT $OBJ $IFACE Threads u 2 2>&1); echo "non-root set: $out"
check "a non-root user's write is refused" bash -c '[[ "$0" == *"ccess denied"* || "$0" == *AccessDenied* ]]' "$out"
check "and changed nothing" test "$(busctl --system get-property $AGENT $OBJ $IFACE Threads)" = "u 1"
NODE=(org.aztec.ProverNode /org/aztec/ProverNode org.aztec.ProverNode1)
check "busctl call Pause on the node (root)" busctl --system call "${NODE[@]}" Pause
check "the node's Paused reads true" test "$(busctl --system get-property "${NODE[@]}" Paused)" = "b true"
out=$(setpriv --reuid=65534 --regid=65534 --clear-groups busctl --system call "${NODE[@]}" Resume 2>&1); echo "non-root Resume: $out"
check "a non-root user may not resume the node" bash -c '[[ "$0" == *"ccess denied"* ]] && test "$(busctl --system get-property $1 $2 $3 Paused)" = "b true"' "$out" "${NODE[@]}"
out=$(setpriv --reuid=65534 --regid=65534 --clear-groups busctl --system get-property org.aztec.ProverBroker /org/aztec/ProverBroker org.aztec.ProverBroker1 InFlight 2>&1); echo "broker InFlight (non-root): $out"
check "the broker's properties are readable by anyone" test "$out" = "t 0"

echo "== stop drains"
check "systemctl stop everything" systemctl stop 'aztec-prover-agent@*' aztec-prover-node.socket aztec-prover-node aztec-prover-broker.socket aztec-prover-broker.service
check "agent 2 logged its drain" bash -c 'journalctl -u aztec-prover-agent@2 -o cat | grep -qiE "drain|stopp"'
check "no aztec-prover unit failed" bash -c '! systemctl list-units --failed --plain --no-legend | grep -q aztec-prover'

echo "== apt purge"
check "apt purge aztec-prover" apt-get purge -y -q aztec-prover
check "no unit files left" bash -c '! ls /lib/systemd/system/aztec-prover* /etc/systemd/system/*/aztec-prover* 2>/dev/null | grep -q .'
left=$(systemctl list-units --all --plain --no-legend 'aztec-prover*'); [ -z "$left" ] || echo "loaded: $left"
check "no units loaded" test -z "$left"
check "installed config, credentials, state and cache gone (the operator's node.env stays)" bash -c '! test -e /etc/aztec-prover/broker.toml && ! test -e /etc/aztec-prover/aztec-prover.env && ! test -e /etc/aztec-prover/credentials && ! test -e /var/lib/aztec-prover && ! test -e /var/cache/aztec-prover'
check "user removed" bash -c '! getent passwd aztec-prover'
check "binary gone" test ! -e /usr/bin/aztec-prover
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
