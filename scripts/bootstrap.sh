#!/usr/bin/env bash
# Creates (or refreshes) the project venv from the committed locks.
# A no-op when the locks and setup.py are unchanged since the last install (stamp file).
# Usage: bootstrap.sh [VENV] [--scann]  (--scann: also the optional requirements-scann.lock)
set -euo pipefail
venv="${1:-.venv}"
locks=(requirements.lock requirements-dev.lock)
if [[ "${2:-}" == "--scann" ]]; then locks+=(requirements-scann.lock); fi
cd "$(dirname "$0")/.."

stamp="$venv/.ccl4rec-install-stamp"
want=$(cat "${locks[@]}" setup.py | sha256sum | cut -d' ' -f1)
if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  echo "bootstrap: $venv is up to date with the locks (skipping install)"
  exit 0
fi

find_python310() {
  local candidate
  for candidate in "${PYTHON310:-}" python3.10 "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.10.*/bin/python3.10 \
                   /usr/bin/python3.10 /usr/local/bin/python3.10; do
    [[ -n "$candidate" ]] || continue
    # pyenv shims exist for versions that are not selected; only a working interpreter counts.
    if "$candidate" -c 'import sys, venv; assert sys.version_info[:2] == (3, 10)' >/dev/null 2>&1; then
      command -v "$candidate" 2>/dev/null || echo "$candidate"
      return 0
    fi
  done
  return 1
}

if ! python=$(find_python310); then
  cat >&2 <<'MSG'
bootstrap: Python 3.10 not found.
  TFX 1.16 (the newest TFX that installs on glibc 2.36) supports Python 3.9-3.10 only.
  Install it with one of:
    pyenv install 3.10.13            (then re-run make; pyenv versions are found automatically)
    apt-get install python3.10-venv  (distributions that package 3.10)
  or point PYTHON310=/path/to/python3.10 at an existing interpreter.
MSG
  exit 1
fi

start=$(date +%s)
echo "bootstrap: creating $venv with $python ($("$python" --version))"
rm -rf "$venv"
"$python" -m venv "$venv"   # stdlib venv: pip is inside (TFX packages user modules with `python -m pip`)
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "uv>=0.4"
echo "bootstrap: installing ${locks[*]} with uv"
requirements=()
for lock in "${locks[@]}"; do requirements+=(-r "$lock"); done
# --compile-bytecode: machines that set PYTHONDONTWRITEBYTECODE=1 (these do) never cache .pyc, so
# every process recompiled TensorFlow on import (measured: 10.5 -> 3.9 CPU s per `import
# tensorflow`; the suite starts dozens of processes). About 50 CPU s once, here.
uv_install=(env VIRTUAL_ENV="$venv" "$venv/bin/uv" pip install --python "$venv/bin/python")
# The locks pin every version, so uv's cache, where it holds them all, is enough: --offline
# installs from it without asking the index about 254 packages (measured: "Resolved 254 packages
# in 34.41s" online, 120 ms offline) nor rebuilding the 7 sdists this index reports as modified.
# A cache without them fails in ~0.1 s ("not found in the cache"), and the online install runs.
install() {
  local log="$venv/offline.log" missing
  if "${uv_install[@]}" --offline "$@" 2>"$log"; then
    grep -v '^ [-+] ' "$log" || true  # uv's summary lines, not one line per package
    echo "bootstrap: installed from uv's cache (it held every version asked for)"
  else
    missing=$(sed -n 's/.*Because \([^ ]*\) was not found in the cache.*/\1/p' "$log" | head -1)
    echo "bootstrap: uv's cache lacks ${missing:-a version asked for (see the message below)}; installing from the index"
    [[ -n "$missing" ]] || cat "$log" >&2
    "${uv_install[@]}" "$@"
  fi
  rm -f "$log"
}
install --compile-bytecode "${requirements[@]}"
install --no-deps -e .
echo "$want" > "$stamp"
echo "bootstrap: done in $(( $(date +%s) - start )) s"
