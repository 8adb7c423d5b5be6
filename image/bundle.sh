#!/usr/bin/env bash
# Makes a signed RAUC update bundle (verity format) from a release of the image:
#
#   image/bundle.sh RELEASE_DIR OUT.raucb
#
# RELEASE_DIR is what image/build.sh makes for one version: root.erofs.verity (the root slot
# image with its dm-verity hash tree), roomd-a.efi and roomd-b.efi (the signed UKIs that boot it
# from slot A or B; the post-install handler of the running image copies the one for the slot
# it wrote into the ESP) and release.env (VERSION, SECURITY_FLOOR, COMPATIBLE).
# ROOMD_BUNDLE_KEY and ROOMD_BUNDLE_CERT (PEM) sign it; a box accepts it when that certificate
# chains to the keyring its image was built with (see README.md, "Firmware image").
set -euo pipefail

[ $# -eq 2 ] || { echo "usage: image/bundle.sh RELEASE_DIR OUT.raucb" >&2; exit 2; }
dir=$1
out=$2
for file in root.erofs.verity roomd-a.efi roomd-b.efi release.env; do
    [ -f "$dir/$file" ] || { echo "bundle.sh: $dir has no $file (made by image/build.sh)" >&2; exit 1; }
done
[ -f "${ROOMD_BUNDLE_KEY:-}" ] && [ -f "${ROOMD_BUNDLE_CERT:-}" ] || {
    echo "bundle.sh: ROOMD_BUNDLE_KEY and ROOMD_BUNDLE_CERT must name the signing key and certificate" >&2
    exit 1
}
VERSION=$(sed -n 's/^VERSION=//p' "$dir/release.env")
SECURITY_FLOOR=$(sed -n 's/^SECURITY_FLOOR=//p' "$dir/release.env")
COMPATIBLE=$(sed -n 's/^COMPATIBLE=//p' "$dir/release.env")
[ -n "$VERSION" ] && [ -n "$COMPATIBLE" ] || { echo "bundle.sh: $dir/release.env lacks VERSION or COMPATIBLE" >&2; exit 1; }

content=$(mktemp -d "$(dirname "$(realpath -m "$out")")/bundle.XXXXXX")
trap 'rm -rf "$content"' EXIT
# Hard links where the release is on the same file system: the slot image is hundreds of MB. In
# the bundle it is root.img: RAUC chooses how to write an image by its file name, and writes
# *.img byte for byte into a raw slot (erofs and its hash tree are one image).
for file in root.erofs.verity roomd-a.efi roomd-b.efi; do
    ln "$dir/$file" "$content/${file/root.erofs.verity/root.img}" 2>/dev/null \
        || cp "$dir/$file" "$content/${file/root.erofs.verity/root.img}"
done
# [meta.roomd] is for people and tools reading the bundle: RAUC 1.8 ignores meta sections, and
# roomd enforces the floor of the image it runs (its os-release), not the bundle's word.
cat > "$content/manifest.raucm" <<MANIFEST
[update]
compatible=$COMPATIBLE
version=$VERSION
description=roomd firmware $VERSION

[bundle]
format=verity

[image.rootfs]
filename=root.img

[meta.roomd]
security-floor=$SECURITY_FLOOR
MANIFEST
rm -f "$out"
# The slot image is erofs (lz4hc) and the UKIs hold a compressed kernel and initramfs: squashfs
# compression would cost time for nothing.
rauc bundle --cert="$ROOMD_BUNDLE_CERT" --key="$ROOMD_BUNDLE_KEY" \
    --mksquashfs-args="-noI -noD -noF -noX" "$content" "$out" >/dev/null
echo "bundle.sh: $out (roomd $VERSION for $COMPATIBLE, $(( $(stat -c %s "$out") / 1048576 )) MiB)" >&2
