#!/usr/bin/env bash
# Prepares everything the benchmarks need (bench/README.md); safe to run again at any time.
#
#   - checks for wrk, nginx and taskset (installs them with apt-get when run as
#     root on Debian/Ubuntu, otherwise stops and says what is missing);
#   - creates bench/.venv and installs bench/requirements.txt into it;
#   - builds and installs cppcorn from this checkout into the same venv.
#
# Environment: PYTHON (default python3) is the interpreter the venv is made
# from; it must be Python 3.10 or newer. BENCH_VENV (default bench/.venv) is
# where the venv goes: one per Python, to measure every server on another
# (bench/load.py and bench/ws.py run the servers with the Python that runs them).
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$BENCH_DIR/.." && pwd)"
VENV="${BENCH_VENV:-$BENCH_DIR/.venv}"
PYTHON="${PYTHON:-python3}"

say() { printf '[bench/setup] %s\n' "$*"; }
die() { printf '[bench/setup] error: %s\n' "$*" >&2; exit 1; }

# nginx lives in /usr/sbin, which is not on every user's PATH.
export PATH="$PATH:/usr/sbin:/sbin"

missing_tools() {
    local tool
    for tool in wrk nginx taskset; do
        command -v "$tool" >/dev/null 2>&1 || printf '%s ' "$tool"
    done
}

install_tools() {
    local missing="$1"
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        die "missing tools: ${missing}- install them (Debian: apt-get install wrk nginx-light util-linux) and run this again"
    fi
    local packages=()
    case " $missing" in *" wrk "*) packages+=(wrk) ;; esac
    case " $missing" in *" taskset "*) packages+=(util-linux) ;; esac
    say "installing missing tools with apt-get: $missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    if [ "${#packages[@]}" -gt 0 ]; then
        apt-get install -y -q "${packages[@]}"
    fi
    case " $missing" in
        *" nginx "*)
            # nginx-light is enough (we only `return` a fixed body); some
            # releases no longer ship it, so fall back to the plain package.
            apt-get install -y -q nginx-light || apt-get install -y -q nginx
            ;;
    esac
}

missing="$(missing_tools)"
if [ -n "$missing" ]; then
    install_tools "$missing"
    missing="$(missing_tools)"
    [ -z "$missing" ] || die "still missing after apt-get: $missing"
fi
say "tools: $(command -v wrk) $(command -v nginx) $(command -v taskset)"

"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
    || die "$PYTHON is older than Python 3.10"

if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV"
    "$PYTHON" -m venv "$VENV"
fi

say "installing bench/requirements.txt"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$BENCH_DIR/requirements.txt"

# pip always rebuilds and reinstalls a local directory, even at the same
# version: the venv then holds the checkout as it is now. Dependencies already
# satisfied (the pinned peers) are left alone.
say "building and installing cppcorn from $REPO_ROOT"
if ! "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$REPO_ROOT"; then
    die "cppcorn did not build or install (pip's output is above). The peers are installed:
    bench/load.py and bench/ws.py will report cppcorn as failed to start and still measure the others."
fi

say "ready: $VENV/bin/python $BENCH_DIR/load.py --help"
