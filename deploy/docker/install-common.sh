# Shared steps of the image install scripts (sourced, not run): make VENV and fill it.
#
# The calling script sets REQUIREMENTS (what pip installs, "ghaf[...]" meaning this source
# tree) and FORBIDDEN (distributions the image must not hold). Environment:
#   PYTHON        the interpreter the venv is made from (default: python3)
#   GHAF_SRC      the source tree to build Ghaf from (default: the tree this script is in)
#   PIP_*         pip's own settings, e.g. PIP_NO_INDEX=1 PIP_FIND_LINKS=DIR for an
#                 offline install from a wheelhouse (deploy/docker/wheelhouse.py makes one)
# The exact versions are constraints.txt's, the ones CI tests.
set -eu

if [ "${1:-}" = "--print-requirements" ]; then
    printf '%s\n' $REQUIREMENTS
    exit 0
fi
if [ $# -ne 1 ]; then
    echo "usage: $0 VENV | --print-requirements" >&2
    exit 2
fi
VENV=$1
PYTHON=${PYTHON:-python3}
SRC=${GHAF_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}

# The venv gets no pip of its own: the image carries no installer (pip runs from $PYTHON).
"$PYTHON" -m venv --without-pip "$VENV"
set --
for requirement in $REQUIREMENTS; do
    case $requirement in
        ghaf\[*) set -- "$@" "$SRC${requirement#ghaf}" ;;
        *) set -- "$@" "$requirement" ;;
    esac
done
"$PYTHON" -m pip --python "$VENV/bin/python" install --no-cache-dir --quiet --no-compile \
    --constraint "$SRC/constraints.txt" "$@"
# Bytecode now, on every core: the image's root filesystem is read-only at run time.
"$VENV/bin/python" -m compileall -q -j 0 "$VENV/lib" >/dev/null

# What the image must not hold fails the build, not a later audit.
"$VENV/bin/python" - $FORBIDDEN <<'PY'
import importlib.metadata as md
import sys

found = sorted(
    name for name in sys.argv[1:] if any(True for _ in md.distributions(name=name))
)
if found:
    sys.exit(f"the image must not contain: {', '.join(found)}")
PY
"$VENV/bin/ghaf" version
