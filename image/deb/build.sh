#!/usr/bin/env bash
# Builds the Debian package roomd_<version>_<arch>.deb from binaries cargo built.
#
#   image/deb/build.sh BIN_DIR OUT_DIR
#
# BIN_DIR holds roomd and roomctl (target/release for `make deb`). DEB_COMPRESSION picks
# dpkg-deb's compressor (default xz, the smallest; the tests use gzip, which packs debug
# binaries several times faster). The package is assembled in a
# staging folder and packed by dpkg-deb, without debhelper: the binaries come from cargo, not
# from a Debian source build. Library dependencies are read off the binaries by dpkg-shlibdeps;
# what GStreamer and tpm2-tss load at run time (plugins, the TPM transport) is listed by hand.
set -euo pipefail

bin_dir=$(realpath "${1:?usage: build.sh BIN_DIR OUT_DIR}")
# Absolute: dpkg-shlibdeps runs from inside the staging folder, below.
out_dir=$(realpath -m "${2:?usage: build.sh BIN_DIR OUT_DIR}")
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)

# The version is the workspace's ([workspace.package] version in Cargo.toml).
version=$(awk -F'"' '/^\[workspace.package\]/ { section = 1; next } /^\[/ { section = 0 }
    section && $1 ~ /^version *= */ { print $2; exit }' "$top/Cargo.toml")
[ -n "$version" ] || { echo "build.sh: no [workspace.package] version in $top/Cargo.toml" >&2; exit 1; }
arch=$(dpkg --print-architecture)
for binary in roomd roomctl; do
    [ -x "$bin_dir/$binary" ] || { echo "build.sh: $bin_dir/$binary is missing: build it first (make build)" >&2; exit 1; }
done

mkdir -p "$out_dir"
stage=$(mktemp -d "$out_dir/stage.XXXXXX")
trap 'rm -rf "$stage"' EXIT
root="$stage/roomd"

install -d -m 0755 "$root/DEBIAN" "$root/usr/bin" "$root/lib/systemd/system" \
    "$root/usr/lib/sysusers.d" "$root/usr/lib/tmpfiles.d" "$root/etc/roomd" \
    "$root/usr/share/doc/roomd" "$root/usr/share/lintian/overrides"
for binary in roomd roomctl; do
    install -m 0755 "$bin_dir/$binary" "$root/usr/bin/$binary"
    strip --strip-unneeded --remove-section=.comment --remove-section=.note "$root/usr/bin/$binary"
done
install -m 0644 "$top/systemd/roomd.service" "$root/lib/systemd/system/roomd.service"
install -m 0644 "$top/systemd/sysusers.d/roomd.conf" "$root/usr/lib/sysusers.d/roomd.conf"
install -m 0644 "$top/systemd/tmpfiles.d/roomd.conf" "$root/usr/lib/tmpfiles.d/roomd.conf"
install -D -m 0644 "$top/systemd/org.roomd.conf" "$root/usr/share/dbus-1/system.d/org.roomd.conf"
install -m 0644 "$here/roomd.toml" "$root/etc/roomd/roomd.toml"
install -m 0644 "$here/copyright" "$root/usr/share/doc/roomd/copyright"
install -m 0644 "$here/lintian-overrides" "$root/usr/share/lintian/overrides/roomd"
for doc in "$top"/docs/*.md; do
    gzip -9n < "$doc" > "$root/usr/share/doc/roomd/$(basename "$doc").gz"
done
# Debian wants a changelog in every package; dates come from the last commit, so the same tree
# builds the same package.
date=$(git -C "$top" log -1 --format=%cD 2>/dev/null || date -R)
printf 'roomd (%s) unstable; urgency=medium\n\n  * Built from the roomd source tree.\n\n -- roomd maintainers <maintainers@roomd.invalid>  %s\n' \
    "$version" "$date" | gzip -9n > "$root/usr/share/doc/roomd/changelog.gz"
for script in postinst prerm postrm; do
    install -m 0755 "$here/$script" "$root/DEBIAN/$script"
done
echo /etc/roomd/roomd.toml > "$root/DEBIAN/conffiles"

# Libraries the binaries link, as dpkg-shlibdeps finds them (it wants a debian/control beside it).
mkdir -p "$stage/debian"
printf 'Source: roomd\n\nPackage: roomd\nArchitecture: any\n' > "$stage/debian/control"
shlibs=$(cd "$stage" && dpkg-shlibdeps -O -e"$root/usr/bin/roomd" -e"$root/usr/bin/roomctl" 2>/dev/null \
    | sed -n 's/^shlibs:Depends=//p')
[ -n "$shlibs" ] || { echo "build.sh: dpkg-shlibdeps found no library dependencies" >&2; exit 1; }
# Loaded at run time, so dpkg-shlibdeps cannot see them: the GStreamer elements the media engine
# and meetings build (docs/meetings.md), the TPM transport for /dev/tpmrm0, a font for the labels,
# and systemd for the user, directories and the unit.
runtime="gstreamer1.0-plugins-base, gstreamer1.0-plugins-good, gstreamer1.0-plugins-bad, \
gstreamer1.0-plugins-ugly, gstreamer1.0-libav, gstreamer1.0-nice, gstreamer1.0-alsa, gstreamer1.0-x, \
libtss2-tcti-device0, fonts-dejavu-core, systemd"

cat > "$root/DEBIAN/control" <<CONTROL
Package: roomd
Version: $version
Architecture: $arch
Maintainer: roomd maintainers <maintainers@roomd.invalid>
Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)
Depends: $shlibs, $runtime
Section: video
Priority: optional
Homepage: https://roomd.invalid/
Description: open, sovereign firmware for meeting-room video systems
 roomd owns a meeting room: cameras, microphones, speakers, displays, the touch
 panel and the calls themselves. It joins video meetings on the customer's own
 servers, with no cloud, keeps its device identity in the TPM, and is controlled
 through a local HTTPS API and web UI.
CONTROL
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\n' | LC_ALL=C sort \
    | xargs md5sum > DEBIAN/md5sums)
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/conffiles" "$root/DEBIAN/md5sums"

package="$out_dir/roomd_${version}_${arch}.deb"
SOURCE_DATE_EPOCH=$(git -C "$top" log -1 --format=%ct 2>/dev/null || date +%s) \
    dpkg-deb --root-owner-group -Z"${DEB_COMPRESSION:-xz}" --build "$root" "$package" >/dev/null
echo "$package"
