#!/usr/bin/env bash
# Installs the Debian packages a make target needs, and nothing already present.
# usage: scripts/setup.sh build|run|test|bench|docs
# As root: apt-get installs what is missing. Otherwise: prints the one apt-get line and exits 1.
set -euo pipefail

build_pkgs="build-essential cmake pkg-config libssl-dev zlib1g-dev libcjson-dev libc-ares-dev libyaml-dev openssl"
test_pkgs="$build_pkgs clang libclang-rt-14-dev libcmocka-dev python3 python3-pytest python3-h2 nodejs chromium
  python3-hpack python3-websockets python3-grpcio libnghttp2-dev nghttp2-client nghttp2-server curl doxygen groff-base
  h2o nginx-light libnginx-mod-http-echo apache2-bin node-ws"
bench_pkgs="$test_pkgs h2o nginx-light valgrind util-linux haproxy nghttp2-proxy"

case "${1:-build}" in
    build|run) wanted=$build_pkgs ;;
    test) wanted=$test_pkgs ;;
    bench) wanted=$bench_pkgs ;;
    docs) wanted="$build_pkgs doxygen" ;;
    *) echo "setup.sh: unknown target '$1' (want build, run, test, bench or docs)" >&2; exit 2 ;;
esac

missing=()
for pkg in $wanted; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -ne 0 ]]; then
    echo "rill: missing packages; as root run:" >&2
    echo "  apt-get update && apt-get install -y ${missing[*]}" >&2
    exit 1
fi
echo "rill: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
