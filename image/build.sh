#!/usr/bin/env bash
# Builds the roomd firmware image: a GPT disk image that boots with UEFI into a verified,
# read-only root with roomd running.
#
#   image/build.sh [DEB [OUT_DIR]]
#
# DEB is roomd's Debian package (default: the one `make deb` wrote to target/deb/), OUT_DIR where
# the image goes (default target/image). With ROOMD_UKI_KEY and ROOMD_UKI_CERT (PEM private key
# and X.509 certificate) set, systemd-boot and both UKIs are signed for UEFI Secure Boot
# (sbsign); the firmware must then trust that certificate (its db). Unset, they are unsigned.
# ROOMD_BUNDLE_KEYRING (PEM, default ROOMD_BUNDLE_CERT) is the keyring the image's RAUC checks
# update bundles against: a CA, or the signing certificate itself. With ROOMD_BUNDLE_KEY and
# ROOMD_BUNDLE_CERT (the signing key and its certificate) set, the image's own root is also
# written as a signed update bundle, OUT_DIR/roomd-<version>.raucb (image/bundle.sh).
# ROOMD_IMAGE_VERSION (default: the package's version) is the image's version, and
# ROOMD_SECURITY_FLOOR (default 0: none) the lowest version this image lets itself be updated
# (down) to. ROOMD_TEST_BUNDLES=1 also writes the two bundles the image boot test installs:
# test-next.raucb (the same root as version <version>+next) and test-unhealthy.raucb (version
# <version>+unhealthy, whose roomd exits at once: a build that boots but never becomes healthy).
# Run as root (mmdebstrap's root mode chroots and mounts /proc). Packages are cached in
# target/image-cache/apt, so a rebuild downloads nothing.
#
# Layout of OUT_DIR/roomd.img (partition UUIDs and file system UUIDs are fixed, below):
#   1 esp          FAT32: systemd-boot, and one UKI per slot (EFI/Linux/roomd-<generation>-<slot>.efi,
#                  see rootfs/usr/lib/roomd-image/boot-entries for the naming and boot counting)
#   2 roomd-root-a erofs root, then its dm-verity hash tree (the UKI's command line has the hash)
#   3 roomd-root-b the same root at first (an update writes the other slot and its UKI)
#   4 roomd-data   ext4: roomd's state, its configuration and the journal; grown at first boot
#
# No systemd-nspawn, KVM, device-mapper or loop devices are used on the build machine: every
# part is made as a plain file (mmdebstrap, mkfs.erofs, veritysetup format on the file itself,
# mkfs.vfat + mtools, mkfs.ext4 -d, objcopy) and copied into place with dd after sfdisk.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/.." && pwd)
arch=$(dpkg --print-architecture)
deb=${1:-}
if [ -z "$deb" ]; then
    deb=$(ls "$top"/target/deb/roomd_*_"$arch".deb 2>/dev/null | tail -n 1 || true)
fi
[ -n "$deb" ] && [ -f "$deb" ] || { echo "build.sh: no roomd .deb given or in target/deb: run make deb" >&2; exit 1; }
deb=$(realpath "$deb")
out=$(realpath -m "${2:-$top/target/image}")
cache=$top/target/image-cache
[ "$(id -u)" -eq 0 ] || { echo "build.sh: run as root (mmdebstrap chroots into the new root)" >&2; exit 1; }
keyring=${ROOMD_BUNDLE_KEYRING:-${ROOMD_BUNDLE_CERT:-}}
[ -f "$keyring" ] || {
    echo "build.sh: ROOMD_BUNDLE_KEYRING (or ROOMD_BUNDLE_CERT) must name the PEM certificate update bundles must chain to (the image's RAUC keyring)" >&2
    exit 1
}
if [ -n "${ROOMD_BUNDLE_KEY:-}" ] && [ ! -f "$ROOMD_BUNDLE_KEY" ]; then
    echo "build.sh: ROOMD_BUNDLE_KEY=$ROOMD_BUNDLE_KEY is not a file" >&2
    exit 1
fi
# RAUC refuses bundles made for another kind of machine: compatible names the architecture.
case "$arch" in
amd64) compatible=roomd-x86_64 ;;
arm64) compatible=roomd-aarch64 ;;
*) compatible=roomd-$arch ;;
esac

# Fixed identifiers: the same tree gives the same partition table and the same UKI command lines.
# PARTUUIDs are how each UKI finds its slot; they must differ between slots.
disk_uuid=7c9a1e52-3f1b-4b8e-9d3a-0a1b2c3d4e00
esp_uuid=7c9a1e52-3f1b-4b8e-9d3a-0a1b2c3d4e01
root_a_uuid=7c9a1e52-3f1b-4b8e-9d3a-0a1b2c3d4e0a
root_b_uuid=7c9a1e52-3f1b-4b8e-9d3a-0a1b2c3d4e0b
data_uuid=7c9a1e52-3f1b-4b8e-9d3a-0a1b2c3d4e0d
data_fs_uuid=7c9a1e52-3f1b-4b8e-9d3a-0a1b2c3d4efd
erofs_uuid=7c9a1e52-3f1b-4b8e-9d3a-0a1b2c3d4ef0
# Boot counting: the tries a newly installed slot gets, and how long its trial boot waits for
# roomd's health verdict before it reboots (rootfs/usr/lib/roomd-image/boot-health).
boot_tries=${ROOMD_BOOT_TRIES:-3}
health_timeout_s=${ROOMD_HEALTH_TIMEOUT_S:-300}
# Partition sizes in MiB. A slot holds the largest root an update may bring, with its hash tree.
esp_mib=256
slot_mib=1024
data_mib=256
# Times inside the files (erofs, ext4, FAT, the package's changelog) come from the last commit.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$top" log -1 --format=%ct 2>/dev/null || date +%s)}

step_start=$SECONDS
step() {
    echo "build.sh: [$((SECONDS - step_start)) s] $*" >&2
}

mkdir -p "$out" "$cache/apt"
work=$(mktemp -d "$out/work.XXXXXX")
cleanup() {
    # mmdebstrap unmounts what it mounted; the deb bind mount is ours (see the hooks).
    umount "$work/root/$work/debs" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
root=$work/root

# --- 1. The root file system -------------------------------------------------------------------
# Debian 12 minbase plus: the kernel, systemd as init, udev, initramfs-tools (with our verity hook,
# below), veritysetup (the initramfs opens the root with it), systemd-boot's EFI binaries (the
# stub the UKIs are made from and the boot loader, from the image's own systemd), sfdisk and
# e2fsprogs (first boot grows the data partition and its file system), tpm-udev (gives the tss
# group /dev/tpmrm0, which roomd opens as a member of tss), libtss2-rc0 (systemd-pcrphase loads
# it with the other tpm2-tss libraries to measure boot phases into PCR 11), dbus, RAUC and its
# D-Bus service (updates), systemd-boot (systemd-bless-boot: boot counting), polkitd (logind,
# timedated, hostnamed and networkd let roomd drive them through one rule,
# etc/polkit-1/rules.d/50-roomd.rules), systemd-timesyncd (NTP, switched by timedated, servers from
# roomd's .network file), and roomd's own package, whose Depends (GStreamer, tpm2-tss, ...) apt
# resolves.
step "mmdebstrap bookworm root with $(basename "$deb")"
mkdir -p "$work/debs"
cp "$deb" "$work/debs/roomd.deb"
mirror=${ROOMD_IMAGE_MIRROR:-http://deb.debian.org/debian}
security_mirror=${ROOMD_IMAGE_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
mmdebstrap --mode=root --variant=minbase --format=directory \
    --aptopt='Acquire::Retries "3"' \
    --dpkgopt="$here/dpkg-filters.cfg" \
    --include=linux-image-amd64,systemd-sysv,udev,initramfs-tools,cryptsetup-bin,systemd-boot-efi \
    --include=fdisk,e2fsprogs,tpm-udev,libtss2-rc0,dbus,zstd,rauc,rauc-service,systemd-boot,polkitd \
    --include=systemd-timesyncd \
    --include="$work/debs/roomd.deb" \
    --setup-hook='mkdir -p "$1"/var/cache/apt/archives/' \
    --setup-hook="sync-in $cache/apt /var/cache/apt/archives/" \
    --setup-hook="mkdir -p \"\$1$work/debs\" && mount -o bind,ro '$work/debs' \"\$1$work/debs\"" \
    --essential-hook="copy-in $here/rootfs/etc/initramfs-tools /etc/" \
    --customize-hook="umount \"\$1$work/debs\" && rmdir -p --ignore-fail-on-non-empty \"\$1$work/debs\" || true" \
    --customize-hook="sync-out /var/cache/apt/archives $cache/apt" \
    bookworm "$root" \
    "deb $mirror bookworm main" \
    "deb $mirror bookworm-updates main" \
    "deb $security_mirror bookworm-security main"

# --- 1b. What dpkg-filters.cfg left out is needed by nothing left in ------------------------------
# A filter that dropped a library a program still links, or a module another module calls,
# would fail only on the box, when that program or module loads. A needed library counts as
# present when a file of that name is anywhere in the root (RUNPATHs point into subfolders).
step "checking that nothing in the root needs what dpkg-filters.cfg left out"
check_start=$SECONDS
find "$root" -xdev \( -type f -o -type l \) -name '*.so*' -printf '%f\n' | LC_ALL=C sort -u > "$work/present.txt"
# (readelf fails on the scripts among the executables: that is not an error here.)
find "$root/usr" -xdev -type f \( -name '*.so*' -o -perm -u+x \) -print0 \
    | { xargs -0 readelf --dynamic 2>/dev/null || true; } \
    | awk '/^File: / { file = $2 } /\(NEEDED\)/ { gsub(/[][]/, "", $5); print $5, file }' \
    | LC_ALL=C sort -u > "$work/needed.txt"
# libcaca's OpenGL output plugin links OpenGL utility libraries no package of the image brings
# (it is loaded only when asked for): absent with or without the filters.
unmet=$(LC_ALL=C join -v 1 "$work/needed.txt" "$work/present.txt" | sed "s|$root||" \
    | grep -v ' /usr/lib/[^ ]*/caca/' || true)
[ -z "$unmet" ] || {
    printf 'build.sh: these libraries are linked but not in the root (see image/dpkg-filters.cfg):\n%s\n' "$unmet" >&2
    exit 1
}
# Each module names the modules it needs in its own modinfo (`depends`, written when the kernel
# was built): every one of them must still be there.
(cd "$root" && find lib/modules -name '*.ko' -printf '%f\n') | sed 's/\.ko$//; s/-/_/g' \
    | LC_ALL=C sort -u > "$work/modules.txt"
unknown=$(cd "$root" && find lib/modules -name '*.ko' -print0 \
    | { xargs -0 chroot "$root" modinfo 2>/dev/null || true; } \
    | awk '/^filename:/ { file = $2 }
           /^depends:/ && NF > 1 { n = split($2, d, ","); for (i = 1; i <= n; i++) { gsub(/-/, "_", d[i]); print d[i], file } }' \
    | LC_ALL=C sort -u | LC_ALL=C join -v 1 - "$work/modules.txt")
[ -z "$unknown" ] || {
    printf 'build.sh: kernel modules left in need modules image/dpkg-filters.cfg left out:\n%s\n' "$unknown" >&2
    exit 1
}
echo "build.sh: checked in $((SECONDS - check_start)) s" >&2

# --- 2. Make it a roomd box ----------------------------------------------------------------------
step "configuring the root"
# Units, scripts, fstab, network and initramfs files of image/rootfs/ (the initramfs hook was
# copied in before the kernel was installed, so its initramfs already opens verity roots).
cp -a --no-preserve=ownership "$here/rootfs/." "$root/"
echo roomd > "$root/etc/hostname"
# systemd makes a fresh machine ID in /run at every boot when this file is empty and / read-only.
: > "$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
# Nobody logs in on the box: root has no password (locked), there is no getty on the console.
chroot "$root" passwd --lock root >/dev/null
chroot "$root" systemctl mask --quiet serial-getty@ttyS0.service getty@tty1.service
# The root is read-only and changes only as a whole slot: apt's and dpkg's timers have nothing to do.
chroot "$root" systemctl mask --quiet apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer
chroot "$root" systemctl enable --quiet roomd.service roomd-firstboot.service \
    roomd-image-report.service systemd-networkd.service roomd-boot-health.service \
    roomd-reset-media.service
# systemd-boot's package would install and update the boot loader in an ESP at each kernel or
# systemd upgrade; in this image the ESP changes only through RAUC (rauc-post-install).
rm -f "$root"/etc/kernel/postinst.d/zz-systemd-boot "$root"/etc/kernel/postrm.d/zz-systemd-boot
mkdir -p "$root/efi"
printf 'BOOT_TRIES=%s\nHEALTH_TIMEOUT_S=%s\n' "$boot_tries" "$health_timeout_s" \
    > "$root/usr/lib/roomd-image/boot.conf"
# RAUC: which slots it writes (by their fixed PARTUUIDs), how the boot loader is driven, and the
# keyring bundles must be signed for. Its status (installed versions, times) lives on the data
# partition, so it survives slot changes.
mkdir -p "$root/etc/rauc"
install -m 0644 "$keyring" "$root/etc/rauc/keyring.pem"
cat > "$root/etc/rauc/system.conf" <<RAUC
# Written by image/build.sh.
[system]
compatible=$compatible
bootloader=custom
# Verity bundles only: their payload is checked block by block as it is read.
bundle-formats=-plain
data-directory=/data/rauc
# rauc-post-install activates a slot once its UKI is in the ESP.
activate-installed=false

[handlers]
bootloader-custom-backend=/usr/lib/roomd-image/rauc-bootloader
post-install=/usr/lib/roomd-image/rauc-post-install

[keyring]
path=/etc/rauc/keyring.pem

[slot.rootfs.0]
device=/dev/disk/by-partuuid/$root_a_uuid
type=raw
bootname=a

[slot.rootfs.1]
device=/dev/disk/by-partuuid/$root_b_uuid
type=raw
bootname=b
RAUC
# Journald keeps the journal on the data partition (/var/log/journal is bound there).
mkdir -p "$root/data" "$root/var/log/journal"
# The data partition's first content: roomd's (empty) state and configuration folders with the
# owners the package gave them, and the journal folder. roomd.toml is written at first boot.
roomd_uid=$(chroot "$root" id -u roomd)
roomd_gid=$(chroot "$root" id -g roomd)
data=$work/data
install -d -m 0755 "$data/roomd" "$data/journal"
install -d -m 0700 "$data/rauc"
install -d -m 0700 -o "$roomd_uid" -g "$roomd_gid" "$data/roomd/state"
install -d -m 0750 -o "$roomd_uid" -g "$roomd_gid" "$data/roomd/etc"
# The package's default roomd.toml stays in the image for reference; the data partition's copy
# (from usr/share/roomd/factory) is the one roomd reads and rewrites.
mkdir -p "$root/usr/share/roomd/package"
mv "$root/etc/roomd/roomd.toml" "$root/usr/share/roomd/package/roomd.toml"
# The kernel and initramfs travel inside the UKIs; the root needs neither.
kernel=$(ls "$root"/boot/vmlinuz-* | sort -V | tail -n 1)
initrd=$(ls "$root"/boot/initrd.img-* | sort -V | tail -n 1)
mv "$kernel" "$initrd" "$work/"
kernel=$work/$(basename "$kernel")
initrd=$work/$(basename "$initrd")
rm -f "$root"/boot/* "$root"/vmlinuz* "$root"/initrd.img*
# Nothing of the build machine or of apt's download state goes into the image.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/var/log/* \
    "$root"/tmp/* "$root"/var/tmp/*
version=$(dpkg-deb --field "$deb" Version)

image_version=${ROOMD_IMAGE_VERSION:-$version}
security_floor=${ROOMD_SECURITY_FLOOR:-0}
for value in "$image_version" "$security_floor"; do
    [[ $value =~ ^[0-9][0-9A-Za-z.+~-]*$ ]] || {
        echo "build.sh: '$value' is not a version (digits first, then letters, digits and . + ~ -)" >&2
        exit 1
    }
done

# --- 3. Root slot: erofs + dm-verity -------------------------------------------------------------
# The image's identity, read by roomd (its status, and the update checks: RAUC's bundle version is
# compared with the floor) and by people: os-release's IMAGE_ID/IMAGE_VERSION, and a vendor field
# for the security floor.
set_identity() {
    local tree=$1 image_version=$2
    sed -i '/^IMAGE_ID=/d; /^IMAGE_VERSION=/d; /^ROOMD_SECURITY_FLOOR=/d' "$tree/usr/lib/os-release"
    printf 'IMAGE_ID=roomd\nIMAGE_VERSION=%s\nROOMD_SECURITY_FLOOR=%s\n' "$image_version" "$security_floor" \
        >> "$tree/usr/lib/os-release"
}

# make_slot TREE OUTPUT: the slot image of TREE (erofs, then its hash tree 4 KiB aligned on the
# same partition); sets $roothash and $hash_offset.
make_slot() {
    local tree=$1 output=$2
    # lz4hc: smaller than lz4, and decompression is still cheap for the box's CPU.
    mkfs.erofs -zlz4hc -U "$erofs_uuid" -T "$SOURCE_DATE_EPOCH" "$output" "$tree" >/dev/null
    local root_bytes
    root_bytes=$(stat -c %s "$output")
    hash_offset=$(( (root_bytes + 4095) / 4096 * 4096 ))
    truncate -s "$hash_offset" "$output"
    # Fixed salt and UUID: the root hash then depends only on the root's bytes.
    veritysetup format "$output" "$output" --hash-offset="$hash_offset" \
        --data-blocks=$((hash_offset / 4096)) \
        --salt=726f6f6d642d696d6167652d766572697479 --uuid="$erofs_uuid" > "$work/verity.txt"
    roothash=$(sed -n 's/^Root hash:[[:space:]]*//p' "$work/verity.txt")
    [ -n "$roothash" ] || { cat "$work/verity.txt" >&2; echo "build.sh: veritysetup printed no root hash" >&2; exit 1; }
    veritysetup verify "$output" "$output" "$roothash" --hash-offset="$hash_offset"
    local slot_bytes
    slot_bytes=$(stat -c %s "$output")
    [ "$slot_bytes" -le $((slot_mib * 1024 * 1024)) ] || {
        echo "build.sh: the root with its hash tree ($slot_bytes bytes) does not fit a ${slot_mib} MiB slot" >&2
        exit 1
    }
}

# --- 4. One UKI per slot -------------------------------------------------------------------------
# A UKI is systemd's EFI stub with the kernel, initramfs, os-release and command line added as PE
# sections. The command line names the slot's partition and its root hash, so whoever signs the
# UKI vouches for the root. Section addresses are computed from the stub's own sections and the
# sizes of the parts (fixed addresses break for kernels over 16 MB). The .osrel section names the
# image for the boot menu but has no version field: systemd-boot then orders the entries by file
# name, which is how rauc-bootloader chooses the slot that boots (see boot-entries).
stub=$work/linuxx64.efi.stub
make_uki() {
    local slot=$1 partuuid=$2 image_version=$3 output=$4
    printf '%s' "roomd.slot=$slot rauc.slot=$slot roomd.verity.data=PARTUUID=$partuuid roomd.verity.hashoffset=$hash_offset roomd.verity.roothash=$roothash root=/dev/mapper/root rootfstype=erofs ro console=tty0 console=ttyS0,115200 systemd.gpt_auto=0 panic=30" \
        > "$work/cmdline-$slot"
    printf 'ID=roomd\nNAME="roomd"\nPRETTY_NAME="roomd %s (slot %s)"\n' "$image_version" "${slot^^}" \
        > "$work/osrel-$slot"
    local alignment=4096 offset=0 name size vma
    # The end of the stub's last section: VMA + size of each line of `objdump -h`.
    while read -r _ name size vma _; do
        local end=$(( 16#$vma + 16#$size ))
        [ "$end" -le "$offset" ] || offset=$end
    done < <(objdump -h "$stub" | awk 'NF == 7 && $1 ~ /^[0-9]+$/')
    local args=()
    for part in ".osrel=$work/osrel-$slot" ".cmdline=$work/cmdline-$slot" \
        ".initrd=$initrd" ".linux=$kernel"; do
        name=${part%%=*}
        offset=$(( (offset + alignment - 1) / alignment * alignment ))
        args+=(--add-section "$part" --change-section-vma "$name=$(printf '0x%x' "$offset")")
        offset=$(( offset + $(stat -L -c %s "${part#*=}") ))
    done
    objcopy "${args[@]}" "$stub" "$output"
    sign "$output"
}

# Secure Boot: the signature over a UKI covers its kernel, initramfs and command line, hence the
# root hash; the firmware starts only signed EFI programs, so the boot loader is signed as well.
if [ -n "${ROOMD_UKI_KEY:-}" ] || [ -n "${ROOMD_UKI_CERT:-}" ]; then
    [ -f "${ROOMD_UKI_KEY:-}" ] && [ -f "${ROOMD_UKI_CERT:-}" ] || {
        echo "build.sh: ROOMD_UKI_KEY and ROOMD_UKI_CERT must both name files" >&2
        exit 1
    }
    step "EFI programs are signed with $(openssl x509 -noout -subject -in "$ROOMD_UKI_CERT")"
    sign() {
        sbsign --key "$ROOMD_UKI_KEY" --cert "$ROOMD_UKI_CERT" --output "$1.signed" "$1" 2>/dev/null
        mv "$1.signed" "$1"
    }
else
    step "not signing (ROOMD_UKI_KEY / ROOMD_UKI_CERT unset): boots only with Secure Boot off"
    sign() { :; }
fi

# make_release TREE IMAGE_VERSION DIR: the slot image and both UKIs of TREE at IMAGE_VERSION in
# DIR (root.erofs.verity, roomd-a.efi, roomd-b.efi, release.env): what the disk image's slots
# hold, and what an update bundle carries.
make_release() {
    local tree=$1 image_version=$2 dir=$3
    mkdir -p "$dir"
    set_identity "$tree" "$image_version"
    step "erofs root and dm-verity hash tree ($image_version)"
    make_slot "$tree" "$dir/root.erofs.verity"
    step "UKIs ($image_version)"
    make_uki a "$root_a_uuid" "$image_version" "$dir/roomd-a.efi"
    make_uki b "$root_b_uuid" "$image_version" "$dir/roomd-b.efi"
    printf 'VERSION=%s\nSECURITY_FLOOR=%s\nCOMPATIBLE=%s\nROOTHASH=%s\nHASH_OFFSET=%s\n' \
        "$image_version" "$security_floor" "$compatible" "$roothash" "$hash_offset" > "$dir/release.env"
}

cp "$root/usr/lib/systemd/boot/efi/linuxx64.efi.stub" "$stub"
cp "$root/usr/lib/systemd/boot/efi/systemd-bootx64.efi" "$work/systemd-bootx64.efi"
sign "$work/systemd-bootx64.efi"
release=$work/release
make_release "$root" "$image_version" "$release"
# The image's own slots (make_release sets roothash and hash_offset again for the test bundles).
image_roothash=$(sed -n 's/^ROOTHASH=//p' "$release/release.env")
image_hash_offset=$(sed -n 's/^HASH_OFFSET=//p' "$release/release.env")

# --- 5. ESP: systemd-boot and the UKIs -----------------------------------------------------------
step "ESP"
esp=$work/esp.img
truncate -s "${esp_mib}M" "$esp"
mkfs.vfat -F 32 -n ESP -i 52e1a97c --invariant "$esp" >/dev/null
# systemd-boot at the removable-media path, so firmware without boot entries (a fresh box, OVMF)
# starts it; it boots the first UKI in its order (boot-entries) without waiting. Both slots hold
# the same root at first; A comes first, B is its fallback. Neither is on trial.
cat > "$work/loader.conf" <<'LOADER'
timeout 0
editor no
LOADER
export MTOOLS_SKIP_CHECK=1
mmd -i "$esp" ::/EFI ::/EFI/BOOT ::/EFI/systemd ::/EFI/Linux ::/loader
mcopy -i "$esp" "$work/systemd-bootx64.efi" ::/EFI/BOOT/BOOTX64.EFI
mcopy -i "$esp" "$work/systemd-bootx64.efi" ::/EFI/systemd/systemd-bootx64.efi
mcopy -i "$esp" "$work/loader.conf" ::/loader/loader.conf
mcopy -i "$esp" "$release/roomd-a.efi" ::/EFI/Linux/roomd-2-a.efi
mcopy -i "$esp" "$release/roomd-b.efi" ::/EFI/Linux/roomd-1-b.efi

# --- 6. Data partition ---------------------------------------------------------------------------
step "data partition"
mkfs.ext4 -q -L roomd-data -U "$data_fs_uuid" -E "root_owner=0:0" -d "$data" "$work/data.img" "${data_mib}M"

# --- 7. The disk ---------------------------------------------------------------------------------
step "GPT disk image"
disk=$work/roomd.img
# 1 MiB before the first partition (GPT and alignment) and 1 MiB after the last (backup GPT).
total_mib=$((1 + esp_mib + 2 * slot_mib + data_mib + 1))
truncate -s "${total_mib}M" "$disk"
esp_start=1
a_start=$((esp_start + esp_mib))
b_start=$((a_start + slot_mib))
data_start=$((b_start + slot_mib))
sfdisk --quiet "$disk" <<SFDISK
label: gpt
label-id: $disk_uuid
unit: sectors

start=$((esp_start * 2048)), size=$((esp_mib * 2048)), type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=$esp_uuid, name="esp"
start=$((a_start * 2048)), size=$((slot_mib * 2048)), type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=$root_a_uuid, name="roomd-root-a"
start=$((b_start * 2048)), size=$((slot_mib * 2048)), type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=$root_b_uuid, name="roomd-root-b"
start=$((data_start * 2048)), size=$((data_mib * 2048)), type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=$data_uuid, name="roomd-data"
SFDISK
put() {
    dd if="$1" of="$disk" bs=1M seek="$2" conv=notrunc,sparse status=none
}
put "$esp" "$esp_start"
put "$release/root.erofs.verity" "$a_start"
put "$release/root.erofs.verity" "$b_start"
put "$work/data.img" "$data_start"

# --- 8. Update bundles ---------------------------------------------------------------------------
if [ -n "${ROOMD_BUNDLE_KEY:-}" ]; then
    step "update bundle roomd-$image_version.raucb"
    "$here/bundle.sh" "$release" "$work/roomd-$image_version.raucb"
fi
if [ "${ROOMD_TEST_BUNDLES:-0}" = 1 ]; then
    [ -n "${ROOMD_BUNDLE_KEY:-}" ] || { echo "build.sh: ROOMD_TEST_BUNDLES=1 needs ROOMD_BUNDLE_KEY" >&2; exit 1; }
    # The same root under a newer version: what a good update looks like.
    make_release "$root" "$image_version+next" "$work/next"
    step "update bundle test-next.raucb"
    "$here/bundle.sh" "$work/next" "$work/test-next.raucb"
    rm -rf "$work/next"
    # A newer version whose roomd exits at once: it boots, but never becomes healthy.
    printf '#!/bin/sh\necho "roomd: this test build exits at once (ROOMD_TEST_BUNDLES)" >&2\nexit 1\n' \
        > "$root/usr/bin/roomd"
    make_release "$root" "$image_version+unhealthy" "$work/unhealthy"
    step "update bundle test-unhealthy.raucb"
    "$here/bundle.sh" "$work/unhealthy" "$work/test-unhealthy.raucb"
    rm -rf "$work/unhealthy"
fi

# --- 9. Outputs ----------------------------------------------------------------------------------
# roomd.img is the disk (sparse); the slot image, the UKIs and a manifest are kept beside it for
# the tests, with the update bundles.
rm -f "$out"/*.raucb
mv "$disk" "$out/roomd.img"
mv "$release/root.erofs.verity" "$release/roomd-a.efi" "$release/roomd-b.efi" "$out/"
for bundle in "$work"/*.raucb; do
    [ -e "$bundle" ] && mv "$bundle" "$out/"
done
cat > "$out/manifest.env" <<MANIFEST
ROOMD_VERSION=$version
IMAGE_VERSION=$image_version
SECURITY_FLOOR=$security_floor
COMPATIBLE=$compatible
BOOT_TRIES=$boot_tries
ROOMD_DEB_SHA256=$(sha256sum "$deb" | cut -d' ' -f1)
ROOTHASH=$image_roothash
HASH_OFFSET=$image_hash_offset
DISK_UUID=$disk_uuid
ESP_PARTUUID=$esp_uuid
ROOT_A_PARTUUID=$root_a_uuid
ROOT_B_PARTUUID=$root_b_uuid
DATA_PARTUUID=$data_uuid
ESP_START_MIB=$esp_start
ESP_MIB=$esp_mib
ROOT_A_START_MIB=$a_start
ROOT_B_START_MIB=$b_start
SLOT_MIB=$slot_mib
DATA_START_MIB=$data_start
DATA_MIB=$data_mib
MANIFEST
step "done: $out/roomd.img (image $image_version, roomd $version, root hash $image_roothash)"
