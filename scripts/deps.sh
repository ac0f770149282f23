#!/usr/bin/env bash
# Installs what runagent's tests and demo need on a Debian/Ubuntu machine
# that already has Go: Debian's Python 3 for the agents (the linux sandbox
# runs /usr/bin/python3) with pip, venv, setuptools, wheel and the C
# headers, with which the dependency tests build wheels and sdists (C
# extensions too) and install them from a loopback index, e2fsprogs for the
# size-capped scratch disks, gcc for go test -race, redis-server for the
# shared rate-limit tests (each test starts its own on a free loopback
# port; the system service is not used), PostgreSQL 15 (Debian 12's
# postgresql) for the PostgreSQL store's tests (internal/store/postgres/
# pgtest starts a throwaway cluster per test on a free loopback port, as
# the postgres user; the system cluster is not used), systemd's
# systemd-analyze and util-linux's setpriv for the tests of the systemd
# unit (test/deploy: it is verified, not started), FastAPI on uvicorn for the
# baseline server of the throughput benchmark (BenchmarkEchoThroughput), and
# Debian's chromium for the web console's browser tests (internal/console,
# driven headless by chromedp; no tool downloads a browser of its own).
# Safe to run repeatedly; installs nothing that is present.
set -euo pipefail

need=()
command -v python3 >/dev/null 2>&1 || need+=(python3)
[ -x /usr/bin/python3 ] || need+=(python3)
command -v gcc >/dev/null 2>&1 || need+=(gcc libc6-dev)   # go test -race needs cgo; C extensions
py() { [ -x /usr/bin/python3 ] && /usr/bin/python3 -c "$1" >/dev/null 2>&1; }
py 'import pip' || need+=(python3-pip)
py 'import ensurepip' || need+=(python3-venv)
py 'import setuptools' || need+=(python3-setuptools)
py 'import wheel.bdist_wheel' || need+=(python3-wheel)
py 'import os, sysconfig; assert os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h"))' || need+=(python3-dev)
py 'import fastapi' || need+=(python3-fastapi)
py 'import uvicorn' || need+=(python3-uvicorn)
command -v mkfs.ext4 >/dev/null 2>&1 || [ -x /sbin/mkfs.ext4 ] || [ -x /usr/sbin/mkfs.ext4 ] || need+=(e2fsprogs)
command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || need+=(redis-server)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v setpriv >/dev/null 2>&1 || need+=(util-linux)
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/lib/postgresql/15/bin/initdb ] && [ -x /usr/lib/postgresql/15/bin/postgres ] || need+=(postgresql)

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
