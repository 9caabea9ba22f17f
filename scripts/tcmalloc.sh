#!/usr/bin/env bash
# Prints the path of tcmalloc (gperftools' minimal build) for `make test`'s LD_PRELOAD; installs
# Debian's libtcmalloc-minimal4 first when it is missing and this shell may (root, apt-get).
# Prints nothing, and says why on stderr, when it cannot: the suite then runs on glibc's malloc,
# as correct and ~8 % more CPU (README, Performance).
set -uo pipefail
package=libtcmalloc-minimal4

# The first copy ld.so preloads without a word: ldconfig also lists other architectures' copies
# (multilib), which it would refuse ("wrong ELF class") and skip.
find_lib() {
  local lib
  for lib in $(ldconfig -p 2>/dev/null \
      | sed -n 's/^[[:space:]]*libtcmalloc_minimal\.so\.4 (.*) => \(.*\)$/\1/p'); do
    if [[ -z "$(LD_PRELOAD="$lib" /bin/true 2>&1)" ]]; then
      echo "$lib"
      return 0
    fi
  done
  return 1
}

# Debian's package, when this shell may: root, with apt-get.
install_package() {
  [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1 || return 1
  echo "tcmalloc: installing Debian's $package (the test suite's allocator)" >&2
  export DEBIAN_FRONTEND=noninteractive
  # A machine that never ran `apt-get update` has no package lists: update once, then retry.
  apt-get install -y -q "$package" >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q "$package" >/dev/null 2>&1; } \
    || { echo "tcmalloc: apt-get could not install $package" >&2; return 1; }
}

if lib=$(find_lib) || { install_package && lib=$(find_lib); }; then
  echo "$lib"
  exit 0
fi
echo "tcmalloc: not found (Debian: apt-get install $package); the tests run on glibc's malloc," \
  "~8 % more CPU" >&2
