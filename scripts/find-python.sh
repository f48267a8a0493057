#!/bin/sh
# Prints a Python >= 3.12 interpreter (Django 6 needs it): $PYTHON, then python3.13/python3.12 on PATH,
# then pyenv's installed versions. Exits 1 with a hint when there is none.
for c in "${PYTHON:-}" python3.13 python3.12 python3; do
  [ -n "$c" ] || continue
  if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
    command -v "$c"; exit 0
  fi
done
for p in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[2-9]*/bin/python3; do
  [ -x "$p" ] && "$p" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null && { echo "$p"; exit 0; }
done
echo "No Python 3.12 or newer found. Install one (e.g. apt-get install python3.12, or pyenv) or set PYTHON=/path/to/python3.12." >&2
exit 1
