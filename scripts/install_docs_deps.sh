#!/usr/bin/env bash
# Installs the build dependencies plus doxygen, which the optional API
# reference needs (`ninja -C build docs` -> build/docs/api/html/index.html).
# CI does not need it. A build folder configured before doxygen was installed
# needs `meson setup --reconfigure build` to find it.
set -euo pipefail
exec "$(dirname "$0")/install_deps.sh" --docs "$@"
