#!/usr/bin/env bash
# install.sh: install nanokube's OS dependencies with apt and build the binary.
#   ./install.sh              dependencies + build + install to /usr/local/bin
#   ./install.sh --deps-only  dependencies only (used by `make test`)
# Idempotent: packages already present are not touched.
set -euo pipefail
cd "$(dirname "$0")"

deps_only=false
[[ "${1:-}" == "--deps-only" ]] && deps_only=true

if [[ $(id -u) -ne 0 ]]; then
  echo "install.sh must run as root: try sudo ./install.sh" >&2
  exit 1
fi

# What the daemon and the tests use: containerd + runc run the pods,
# iptables/nftables carry the service rules, iproute2 and util-linux
# (nsenter) build and enter test namespaces, busybox-static is the base of the
# test images, kmod loads bridge/vxlan modules, curl/socat drive the tests.
packages=(containerd runc iptables nftables iproute2 util-linux busybox-static kmod curl socat ca-certificates make git)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "==> apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # nanokube runs its own containerd; the distribution's service is not needed.
  if [[ " ${missing[*]} " == *" containerd "* ]] && command -v systemctl >/dev/null && [[ -d /run/systemd/system ]]; then
    systemctl disable --now containerd >/dev/null 2>&1 || true
  fi
fi
for m in bridge veth vxlan br_netfilter nf_tables overlay; do modprobe -q "$m" 2>/dev/null || true; done

if ! command -v go >/dev/null; then
  echo "Go 1.26 or newer is needed to build nanokube: install it from https://go.dev/dl and run ./install.sh again" >&2
  exit 1
fi
if ! command -v kubectl >/dev/null; then
  echo "note: kubectl is not installed; nanokube works without it, but you will want it (https://kubernetes.io/docs/tasks/tools/)" >&2
fi
$deps_only && exit 0

echo "==> building nanokube"
make build
install -m 0755 bin/nanokube /usr/local/bin/nanokube
echo "==> installed $(/usr/local/bin/nanokube version --short) to /usr/local/bin/nanokube"
