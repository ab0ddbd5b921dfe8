#!/usr/bin/env bash
# Build-only environment of the course website (`make book`), separate from the course's .venv:
#
#   bash scripts/setup_book_env.sh            # create/update .venv-book (or $BANDGAP_BOOK_VENV)
#
# 1. a virtualenv with Sphinx, MyST-NB and sphinx-book-theme at the versions pinned in
#    requirements-book.txt (PyPI only);
# 2. MathJax 3.2.2 from the npm registry (`npm pack`, sha512-checked) unpacked into
#    <venv>/share/bandgap-book/mathjax, so the site renders math without any CDN.
# Nothing here runs a notebook or imports the course's helpers. A stamp file makes a second run
# instant when neither requirements-book.txt nor the MathJax pin changed.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${BANDGAP_BOOK_VENV:-.venv-book}
PY_BASE=${PYTHON:-python3.11}
command -v "$PY_BASE" >/dev/null 2>&1 || PY_BASE=python3
MATHJAX_VERSION=3.2.2
MATHJAX_INTEGRITY="sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/O9NliPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw=="
STAMP="$VENV/.bandgap-book-stamp"
WANT="$(sha256sum requirements-book.txt | cut -d' ' -f1) mathjax-$MATHJAX_VERSION"

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] && [ -x "$VENV/bin/sphinx-build" ] \
   && [ -f "$VENV/share/bandgap-book/mathjax/tex-chtml.js" ]; then
  exit 0
fi

echo "setup_book_env: building $VENV (Sphinx + MyST-NB + sphinx-book-theme, MathJax $MATHJAX_VERSION)"
[ -x "$VENV/bin/python" ] || "$PY_BASE" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -r requirements-book.txt

if ! command -v npm >/dev/null 2>&1; then
  echo "setup_book_env: npm is needed once to fetch MathJax $MATHJAX_VERSION from the npm registry" >&2
  echo "  (Debian/Ubuntu: apt-get install -y npm; conda: conda install nodejs)" >&2
  exit 1
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
npm pack "mathjax@$MATHJAX_VERSION" --pack-destination "$TMP" --silent >/dev/null
TARBALL="$TMP/mathjax-$MATHJAX_VERSION.tgz"
GOT="sha512-$(openssl dgst -sha512 -binary "$TARBALL" | base64 -w0)"
if [ "$GOT" != "$MATHJAX_INTEGRITY" ]; then
  echo "setup_book_env: mathjax-$MATHJAX_VERSION.tgz has integrity $GOT, expected $MATHJAX_INTEGRITY" >&2
  exit 1
fi
tar xzf "$TARBALL" -C "$TMP"
rm -rf "$VENV/share/bandgap-book/mathjax"
mkdir -p "$VENV/share/bandgap-book/mathjax"
# The CommonHTML TeX component and what it loads on demand (TeX extensions, fonts, menu,
# accessibility); the speech-rule engine (sre/, 11 MB) and the SVG/MathML builds are not needed.
for part in tex-chtml.js input output/chtml ui a11y adaptors LICENSE; do
  src="$TMP/package/es5/$part"
  [ "$part" = LICENSE ] && src="$TMP/package/LICENSE"
  mkdir -p "$(dirname "$VENV/share/bandgap-book/mathjax/$part")"
  cp -r "$src" "$VENV/share/bandgap-book/mathjax/$part"
done
echo "$WANT" > "$STAMP"
echo "setup_book_env: done ($(du -sh "$VENV/share/bandgap-book/mathjax" | cut -f1) of MathJax in $VENV/share/bandgap-book/mathjax)"
