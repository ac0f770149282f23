#!/usr/bin/env bash
# Installs what runagent's tests and demo need on a Debian/Ubuntu machine
# that already has Go: Debian's Python 3 for the agents (standard library
# only; the linux sandbox runs /usr/bin/python3), e2fsprogs for the
# size-capped scratch disks, gcc for go test -race, redis-server for the
# shared rate-limit tests (each test starts its own on a free loopback
# port; the system service is not used). Safe to run repeatedly;
# installs nothing that is present.
set -euo pipefail

need=()
command -v python3 >/dev/null 2>&1 || need+=(python3)
[ -x /usr/bin/python3 ] || need+=(python3)
command -v gcc >/dev/null 2>&1 || need+=(gcc libc6-dev)   # go test -race needs cgo
command -v mkfs.ext4 >/dev/null 2>&1 || [ -x /sbin/mkfs.ext4 ] || [ -x /usr/sbin/mkfs.ext4 ] || need+=(e2fsprogs)
command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || need+=(redis-server)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
echo "deps: installing ${need[*]} from Debian's packages"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "deps: need root to install ${need[*]}: run 'apt-get install -y ${need[*]}' as root" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
