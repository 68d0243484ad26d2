#!/usr/bin/env bash
# Installs everything redcube needs on a fresh Debian-like machine: the system packages for headless
# OpenGL (EGL) and for the GUI under Xvfb, a virtual environment in .venv, and redcube itself.
# Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")"

APT_PACKAGES="libegl1 libegl-mesa0 libgl1 libgl1-mesa-dri libglx-mesa0 libopengl0 xvfb xauth \
libxrandr2 libxinerama1 libxcursor1 libxi6"
missing=()
for p in $APT_PACKAGES; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    echo "install.sh: apt-get install ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
# torch first and pinned, so that no other requirement pulls a multi-GB CUDA build on a CPU machine.
.venv/bin/pip install -q --disable-pip-version-check torch==2.13.0
.venv/bin/pip install -q --disable-pip-version-check -e ".[test]"
echo "install.sh: ready (.venv/bin/redcube)"
