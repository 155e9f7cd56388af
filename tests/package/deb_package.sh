#!/bin/sh
# The Debian package (`make package`): built with cpack from BUILD_DIR, unpacked with
# `dpkg-deb -x`, and checked: its control fields and maintainer scripts, the stripped binary,
# the config file as a conffile, the unit (systemd-analyze verify, and its hardening scored by
# systemd-analyze security), and the unpacked binary serving /health with the unpacked config
# file — under the unit's MemoryDenyWriteExecute where the kernel offers it (PR_SET_MDWE).
# Usage: deb_package.sh BUILD_DIR SOURCE_DIR
set -eu
build=$1 source=$2
. "$source/tests/package/common.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

(cd "$build" && cpack -G DEB -B "$work/out") >"$work/cpack.log" 2>&1 ||
  { cat "$work/cpack.log" >&2; fail "cpack failed"; }
deb=$(ls "$work"/out/ordo_*.deb)
echo "ok: built $(basename "$deb")"

field() { dpkg-deb -f "$deb" "$1"; }
[ "$(field Package)" = ordo ] || fail "Package is '$(field Package)'"
version=$(sed -n 's/^project(ordo VERSION \([0-9.]*\).*/\1/p' "$source/CMakeLists.txt")
[ "$(field Version)" = "$version" ] || fail "Version is '$(field Version)', the project's is $version"
[ -n "$(field Maintainer)" ] || fail "no Maintainer"
field Description | grep -q 'event streams' || fail "Description is '$(field Description)'"
for dependency in libc6 libsqlite3-0 libjemalloc2 libstdc++6; do
  field Depends | grep -q "$dependency" || fail "Depends lacks $dependency: $(field Depends)"
done
echo "ok: control fields; Depends: $(field Depends)"

dpkg-deb -e "$deb" "$work/control"
grep -qx /etc/ordo/ordo.toml "$work/control/conffiles" || fail "/etc/ordo/ordo.toml is not a conffile"
for script in postinst prerm postrm; do
  [ -x "$work/control/$script" ] || fail "no executable $script"
  sh -n "$work/control/$script" || fail "$script is not valid sh"
done
# Without systemd running (this container, a chroot) the scripts do nothing and succeed.
if [ ! -d /run/systemd/system ]; then
  PATH=/nonexistent /bin/sh "$work/control/postinst" configure "" || fail "postinst configure failed"
  PATH=/nonexistent /bin/sh "$work/control/postinst" configure 0.0.1 || fail "postinst (upgrade) failed"
  PATH=/nonexistent /bin/sh "$work/control/prerm" remove || fail "prerm remove failed"
  PATH=/nonexistent /bin/sh "$work/control/postrm" purge || fail "postrm purge failed"
fi
echo "ok: conffiles and maintainer scripts"

root=$work/root
dpkg-deb -x "$deb" "$root"
file "$root/usr/bin/ordo" | grep -q ', stripped' || fail "usr/bin/ordo is not stripped: $(file "$root/usr/bin/ordo")"
cmp -s "$root/etc/ordo/ordo.toml" "$source/packaging/ordo.toml" || fail "etc/ordo/ordo.toml is not packaging/ordo.toml"
unit=$root/usr/lib/systemd/system/ordo.service
grep -qx 'ExecStart=/usr/bin/ordo serve --config /etc/ordo/ordo.toml' "$unit" || fail "ExecStart: $(grep ExecStart "$unit")"
for line in DynamicUser=yes StateDirectory=ordo ProtectSystem=strict ProtectHome=yes PrivateTmp=yes \
  NoNewPrivileges=yes Restart=on-failure KillSignal=SIGTERM MemoryDenyWriteExecute=yes; do
  grep -qx "$line" "$unit" || fail "the unit lacks $line"
done
# The server alone: the client library's headers and archives are for building programs.
[ ! -e "$root/usr/include" ] || fail "the package holds usr/include"
dpkg-deb -c "$deb" | grep '\./usr/bin/ordo$' >/dev/null || fail "usr/bin/ordo is not listed"
echo "ok: files"

# systemd-analyze verify checks the unit's syntax, every directive and that ExecStart's binary
# exists: point it at the unpacked binary. It prints problems (unknown keys, bad values) and
# exits 0 on some of them, so any output about ordo.service fails the test.
mkdir -p "$work/units"
sed "s|^ExecStart=/usr/bin/ordo serve --config /etc/ordo/ordo.toml|ExecStart=$root/usr/bin/ordo serve --config $root/etc/ordo/ordo.toml|" \
  "$unit" >"$work/units/ordo.service"
rc=0
SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no "$work/units/ordo.service" >"$work/verify.log" 2>&1 || rc=$?
if [ "$rc" -ne 0 ] || grep -q 'ordo.service' "$work/verify.log"; then
  cat "$work/verify.log" >&2
  fail "systemd-analyze verify found problems in the unit (exit $rc)"
fi
echo "ok: systemd-analyze verify"
# Exposure 0 (locked down) to 10 (unprotected); the unit scores about 1.5 ("OK"). Fail at 2.5.
systemd-analyze security --offline=yes --threshold=25 "$work/units/ordo.service" >"$work/security.log" 2>&1 ||
  { tail -n 30 "$work/security.log" >&2; fail "systemd-analyze security scores the unit above 2.5"; }
echo "ok: systemd-analyze security: $(grep -o 'Overall exposure level.*' "$work/security.log")"

serve_and_check "$root/usr/bin/ordo" "$root/etc/ordo/ordo.toml" "$work/data" "$work/serve.log"
# MemoryDenyWriteExecute=yes: the kernel refuses memory both writable and executable. Linux
# 6.3+ offers the same to a process tree with prctl(PR_SET_MDWE), kept across execve.
if command -v python3 >/dev/null &&
  python3 -c 'import ctypes, sys; sys.exit(ctypes.CDLL(None, use_errno=True).prctl(65, 1, 0, 0, 0) != 0)'; then
  serve_and_check "$root/usr/bin/ordo" "$root/etc/ordo/ordo.toml" "$work/data-mdwe" "$work/serve-mdwe.log" \
    python3 -c 'import ctypes, os, sys
if ctypes.CDLL(None, use_errno=True).prctl(65, 1, 0, 0, 0) != 0: sys.exit("PR_SET_MDWE failed")
os.execv(sys.argv[1], sys.argv[1:])'
  echo "ok: ordo (with jemalloc) serves under MemoryDenyWriteExecute"
else
  echo "skipped: PR_SET_MDWE is not available here, MemoryDenyWriteExecute not tried"
fi
