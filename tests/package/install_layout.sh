#!/bin/sh
# `cmake --install BUILD --prefix P` (what `make install PREFIX=P` runs): a stripped ordo in
# P/bin, the unit in P/lib/systemd/system pointing at P's binary and config file, the config
# file in P/etc/ordo (kept on a second install), the client library; with the prefix /usr under
# a DESTDIR the config file goes to DESTDIR/etc/ordo, never to the real /etc. The installed
# binary starts with the installed config file.
# Usage: install_layout.sh BUILD_DIR SOURCE_DIR
set -eu
build=$1 source=$2
. "$source/tests/package/common.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

prefix=$work/prefix
cmake --install "$build" --prefix "$prefix" >"$work/install.log" 2>&1 ||
  { cat "$work/install.log" >&2; fail "cmake --install failed"; }

file "$prefix/bin/ordo" | grep -q ', stripped' || fail "bin/ordo is not stripped: $(file "$prefix/bin/ordo")"
cmp -s "$prefix/etc/ordo/ordo.toml" "$source/packaging/ordo.toml" || fail "etc/ordo/ordo.toml is not packaging/ordo.toml"
unit=$prefix/lib/systemd/system/ordo.service
grep -qx "ExecStart=$prefix/bin/ordo serve --config $prefix/etc/ordo/ordo.toml" "$unit" ||
  fail "the unit does not start $prefix/bin/ordo with $prefix/etc/ordo/ordo.toml: $(grep ExecStart "$unit")"
! grep -q '@[A-Z_]*@' "$unit" || fail "the unit has an unfilled @VARIABLE@: $(grep '@[A-Z_]*@' "$unit")"
for f in include/ordo/client/client.hpp lib/libordo_client.a lib/cmake/ordo_client/ordo_client-config.cmake \
  share/doc/ordo/OPERATIONS.md; do
  [ -f "$prefix/$f" ] || fail "$f is not installed"
done
echo "ok: the layout under $prefix"

# A second install keeps the operator's edited config file.
echo 'threads = 2' >>"$prefix/etc/ordo/ordo.toml"
cmake --install "$build" --prefix "$prefix" >"$work/install2.log" 2>&1 || fail "a second install failed"
grep -q '^threads = 2$' "$prefix/etc/ordo/ordo.toml" || fail "a second install replaced the edited config file"
grep -q 'Keeping: ' "$work/install2.log" || fail "a second install did not say it kept the config file"
echo "ok: a second install keeps the edited config file"

# The prefix /usr (a distribution's) under DESTDIR: the config file in DESTDIR/etc, nothing in /etc.
etc_before=$(ls -la --time-style=full-iso /etc/ordo 2>&1 || true)
DESTDIR=$work/stage cmake --install "$build" --prefix /usr >"$work/install3.log" 2>&1 ||
  { cat "$work/install3.log" >&2; fail "cmake --install --prefix /usr with DESTDIR failed"; }
[ -f "$work/stage/etc/ordo/ordo.toml" ] || fail "with the prefix /usr the config file is not in DESTDIR/etc/ordo"
[ ! -e "$work/stage/usr/etc" ] || fail "with the prefix /usr something went to usr/etc"
grep -qx 'ExecStart=/usr/bin/ordo serve --config /etc/ordo/ordo.toml' "$work/stage/usr/lib/systemd/system/ordo.service" ||
  fail "the /usr unit does not start /usr/bin/ordo with /etc/ordo/ordo.toml"
[ "$(ls -la --time-style=full-iso /etc/ordo 2>&1 || true)" = "$etc_before" ] || fail "the install touched the real /etc/ordo"
file "$work/stage/usr/bin/ordo" | grep -q ', stripped' || fail "DESTDIR's usr/bin/ordo is not stripped"
echo "ok: the prefix /usr under DESTDIR"

serve_and_check "$prefix/bin/ordo" "$prefix/etc/ordo/ordo.toml" "$work/data" "$work/serve.log"
