#!/usr/bin/env bash
# Installs the external programs the test suite drives. Idempotent: a tool
# that is already present is left alone. Debian packages via apt-get (root).
set -euo pipefail

need=()
# (Filled in as test suites that drive real programs are added.)
command -v litmus >/dev/null || need+=(litmus)   # litmus/run.sh (WebDAV compliance)
# tests/client_libreoffice.rs: headless Writer driven over UNO by Debian's
# /usr/bin/python3 (the -nogui core, no recommends: ~55 packages).
command -v soffice >/dev/null || need+=(libreoffice-writer-nogui)
/usr/bin/python3 -c 'import uno' 2>/dev/null || need+=(python3-uno)
# tests/client_davfs2.rs: the davfs2 FUSE file system.
command -v mount.davfs >/dev/null || need+=(davfs2)
command -v rclone >/dev/null || need+=(rclone)   # tests/client_rclone.rs
command -v cadaver >/dev/null || need+=(cadaver) # tests/client_cadaver.rs
command -v chromium >/dev/null || need+=(chromium)   # tests/browser_index.rs (HTML listing)
command -v redis-server >/dev/null || need+=(redis-server)   # tests/scaleout_redis.rs (two instances, one Redis)
# tests/client_gnome_files.rs: GNOME Files' GVFS WebDAV backend, driven by
# gio in a private D-Bus session.
command -v gio >/dev/null || need+=(libglib2.0-bin)
command -v dbus-run-session >/dev/null || need+=(dbus-daemon)
[ -x /usr/libexec/gvfsd ] || need+=(gvfs-daemons)
[ -x /usr/libexec/gvfsd-dav ] || need+=(gvfs-backends)
compgen -G '/usr/lib/*/gio/modules/libgvfsdbus.so' >/dev/null || need+=(gvfs)   # gio's client side

if [ "${#need[@]}" -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
command -v cargo-clippy >/dev/null || { echo "clippy missing from the Rust toolchain" >&2; exit 1; }
