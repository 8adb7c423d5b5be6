# Developer entry points for roomd on Debian 12: `make run` and `make test` (see README.md).

SHELL := /bin/bash
.DEFAULT_GOAL := build

# Debian packages needed to build, run and test roomd. One per line, with the reason.
PACKAGES :=
PACKAGES += build-essential   # C compiler and linker: rustc links with cc, ring builds C/asm parts
PACKAGES += pkg-config        # lets crates with system libraries find them (GStreamer, tpm2-tss later)
PACKAGES += ca-certificates   # cargo fetches crates over HTTPS
PACKAGES += systemd           # systemd-analyze, -sysusers, -tmpfiles check the shipped units in tests
PACKAGES += curl              # manual API calls against the dev room (see README.md)
PACKAGES += libtss2-dev       # tpm2-tss headers and libraries: tss-esapi talks to the TPM through them
PACKAGES += swtpm             # software TPM: `make run` and the identity tests use one instead of hardware
PACKAGES += swtpm-tools       # swtpm_setup: manufactures the software TPM (EK, EK certificate, PCR banks)
PACKAGES += tpm2-tools        # identity tests read the device key from the TPM, independently of roomd
PACKAGES += openssl           # tests: an independent TLS client (refuses TLS < 1.2; handshakes with the TPM key)
PACKAGES += libgstreamer1.0-dev              # gstreamer-rs links against GStreamer 1.22
PACKAGES += libgstreamer-plugins-base1.0-dev # gstreamer-app/-video (appsrc, appsink, video info)
PACKAGES += gstreamer1.0-plugins-base        # videotestsrc, audiotestsrc, compositor, videoconvert, opus
PACKAGES += gstreamer1.0-plugins-good        # level, pngenc, vp8enc, v4l2src, jpeg for UVC cameras
PACKAGES += gstreamer1.0-plugins-bad         # webrtcdsp/webrtcechoprobe (echo cancellation), openh264enc, kmssink, va
PACKAGES += gstreamer1.0-plugins-ugly        # x264enc, the software H.264 fallback
PACKAGES += gstreamer1.0-x                   # pango: clockoverlay/textoverlay for the display's labels and clock
PACKAGES += libgstreamer-plugins-bad1.0-dev  # gstreamer-webrtc links against libgstwebrtc (webrtcbin's types)
PACKAGES += gstreamer1.0-nice                # nicesrc/nicesink: webrtcbin's ICE transport (libnice)
PACKAGES += gstreamer1.0-libav               # avdec_h264: decodes the H.264 that browsers and Janus send
PACKAGES += gstreamer1.0-tools               # gst-launch-1.0: the e2ee tests' independent GStreamer peers, and the bare reference graphs of bench-media and bench-meeting
PACKAGES += gstreamer1.0-alsa                # alsasrc/alsasink for real microphones and speakers
PACKAGES += fonts-dejavu-core                # a font for the display's text (pango finds none otherwise)
PACKAGES += iproute2          # tests: `ip netns` and veth pairs give WebRTC peers non-loopback addresses
PACKAGES += janus             # tests: a real Janus 1.1 VideoRoom server for the meeting tests
PACKAGES += chromium          # tests: real browser peers (headless, fake camera and microphone)
PACKAGES += lintian           # tests: the Debian package (`make deb`) is checked as Debian checks packages
PACKAGES += python3-venv      # tests: a venv under target/ for the pinned schemathesis (API fuzzer)
PACKAGES += nftables          # tests: packet loss on a veth ingress (the kernel has no netem) for the Opus FEC test
PACKAGES += mmdebstrap        # image: builds the firmware's Debian 12 root without systemd-nspawn
PACKAGES += erofs-utils       # image: mkfs.erofs packs the read-only root slot
PACKAGES += cryptsetup-bin    # image: veritysetup computes the root slot's dm-verity hash tree
PACKAGES += fdisk             # image: sfdisk writes the GPT of the disk image
PACKAGES += dosfstools        # image: mkfs.vfat makes the EFI system partition
PACKAGES += mtools            # image: copies systemd-boot and the UKIs into the ESP without mounting it
PACKAGES += sbsigntool        # image: signs systemd-boot and the UKIs for Secure Boot (sbsign, sbverify)
PACKAGES += qemu-system-x86   # tests: boots the firmware image (software emulation, no KVM needed)
PACKAGES += ovmf              # tests: UEFI firmware for qemu, which starts the image's systemd-boot
PACKAGES += rauc              # image: `rauc bundle` makes signed update bundles; tests: `rauc service` on a private bus
PACKAGES += squashfs-tools    # image: rauc bundle packs the bundle's content with mksquashfs
PACKAGES += dbus-daemon       # tests: a private bus for `rauc service` (updates) and roomd's D-Bus interface
PACKAGES += prometheus        # tests: a real Prometheus scrapes roomd over HTTPS (metrics.rs); promtool checks the format. On a machine where systemd is PID 1 the package also starts prometheus.service on :9090
PACKAGES += mosquitto mosquitto-clients # tests: the fleet channel against a real MQTT 5 broker (TLS, certificate-keyed ACL, last will) and its command-line clients
PACKAGES += pebble            # tests: a real ACME server (RFC 8555, EAB) for provisioning's certificate enrolment
PACKAGES += dnsmasq-base      # tests: a real DNS server in a netns for provisioning's unicast DNS-SD (SRV/TXT)
PACKAGES += python3           # tests: python's http.server with TLS serves provisioning bundles in a netns
PACKAGES += baresip           # tests: a real SIP peer (SDES-SRTP, H.264 via avcodec, G.711/Opus, fakevideo) for the SIP calls
PACKAGES += baresip-ffmpeg    # tests: baresip's avcodec module (H.264, VP8), only recommended by baresip, so not installed without it
PACKAGES += kamailio kamailio-tls-modules # tests: a real SIP registrar/proxy with a TLS listener (SIPS, digest authentication)
PACKAGES += sip-tester        # tests: SIPp, a scripted SIP peer (a caller that never sends media)
PACKAGES += linphone-cli mediastreamer2-plugin-openh264 # tests: Linphone, a second independent SIP video peer (H.264 through openh264)
PACKAGES += libre-dev         # tests: libre's BFCP (the library under baresip) in a small C peer compiled at test time, an independent floor control implementation
PACKAGES += libglib2.0-bin    # tests: gdbus calls and monitors org.roomd.Room1 as an integrator would

# The browser drivers in tests/browser/ run on node >= 18 and are installed with npm. Debian 12's
# nodejs (18.19) and npm do; a node from elsewhere (e.g. NodeSource's, which bundles npm and
# conflicts with Debian's npm) is used as it is, so these are installed only when node is missing.
NODE_PACKAGES := nodejs npm
BROWSER_DIR := $(CURDIR)/tests/browser

# Only `make bench` needs these.
BENCH_PACKAGES :=
BENCH_PACKAGES += wrk         # HTTP load generator for the API benchmarks
BENCH_PACKAGES += zstd        # bench-image: the disk image's compressed size

# The development room: configuration and state live in the (git-ignored) .roomd/ folder.
DEV_DIR := $(CURDIR)/.roomd
DEV_CONFIG := $(DEV_DIR)/roomd.toml
DEV_STATE := $(DEV_DIR)/state
DEV_LISTEN := 127.0.0.1:8443
# The development room's software TPM: state in .roomd/swtpm/, command port and port + 1 (control).
DEV_SWTPM := $(DEV_DIR)/swtpm
DEV_SWTPM_PORT := 2321
DEV_TCTI := swtpm:host=127.0.0.1,port=$(DEV_SWTPM_PORT)

# Installs the Debian packages in $(1) that are not installed yet; apt runs only when one is missing.
define install_missing
	@missing=""; \
	for package in $(strip $(1)); do \
		status=$$(dpkg-query -W -f='$${Status}' "$$package" 2>/dev/null || true); \
		[ "$$status" = "install ok installed" ] || missing="$$missing $$package"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "Installing missing Debian packages:$$missing"; \
		if [ "$$(id -u)" -eq 0 ]; then as_root=""; else as_root="sudo"; fi; \
		$$as_root apt-get update && \
		$$as_root env DEBIAN_FRONTEND=noninteractive \
			apt-get install -y --no-install-recommends $$missing; \
	fi
endef

.PHONY: deps bench-deps browser-deps node toolchain webui build deb image bundle run test bench bench-webui clean

deps:
	$(call install_missing,$(PACKAGES))
	@command -v cargo >/dev/null || { echo "cargo not found: install a Rust toolchain (https://rustup.rs)" >&2; exit 1; }

bench-deps: deps
	$(call install_missing,$(BENCH_PACKAGES))

node: deps
	@if ! command -v node >/dev/null || ! command -v npm >/dev/null; then \
		$(MAKE) --no-print-directory node-packages; \
	fi

.PHONY: node-packages
node-packages:
	$(call install_missing,$(NODE_PACKAGES))

# playwright-core and axe-core at the exact versions of package-lock.json, installed again only
# when the lock file changes. No install scripts: Chromium comes from Debian, never a download.
$(BROWSER_DIR)/node_modules/.installed: $(BROWSER_DIR)/package-lock.json | node
	cd "$(BROWSER_DIR)" && npm ci --ignore-scripts --no-audit --no-fund
	@touch "$@"

browser-deps: $(BROWSER_DIR)/node_modules/.installed

# The API fuzzer (tests/tests/api_fuzz.rs) runs schemathesis from PyPI with every Python package
# at the exact version of tests/fuzz/requirements.txt, in a venv of Debian's python3 under
# target/, installed again only when that file changes.
SCHEMATHESIS_REQUIREMENTS := $(CURDIR)/tests/fuzz/requirements.txt
SCHEMATHESIS_VENV := $(CURDIR)/target/schemathesis

$(SCHEMATHESIS_VENV)/.installed: $(SCHEMATHESIS_REQUIREMENTS) | deps
	rm -rf "$(SCHEMATHESIS_VENV)"
	/usr/bin/python3 -m venv "$(SCHEMATHESIS_VENV)"
	"$(SCHEMATHESIS_VENV)/bin/pip" install --disable-pip-version-check --quiet \
		--requirement "$(SCHEMATHESIS_REQUIREMENTS)"
	@touch "$@"

.PHONY: schemathesis
schemathesis: $(SCHEMATHESIS_VENV)/.installed

# `make test` checks formatting and lints; rustup toolchains may lack these components.
toolchain: deps
	@cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
	@cargo clippy --version >/dev/null 2>&1 || rustup component add clippy

# The web UI is built before cargo: roomd's build script embeds webui/dist into the binary.
# Both steps are file targets, so an unchanged tree does neither: npm ci runs again only when the
# lock file changes, the build only when a source changes. A rebuilt dist/ would make cargo
# recompile roomd (its build script watches dist/), so `make run` on an unchanged tree must not
# touch it.
WEBUI_DIR := $(CURDIR)/webui
WEBUI_SOURCES := $(shell find $(WEBUI_DIR)/src -type f) \
	$(addprefix $(WEBUI_DIR)/,index.html package.json tsconfig.json vite.config.ts)

$(WEBUI_DIR)/node_modules/.installed: $(WEBUI_DIR)/package-lock.json | node
	cd "$(WEBUI_DIR)" && npm ci --no-audit --no-fund
	@touch "$@"

$(WEBUI_DIR)/dist/index.html: $(WEBUI_SOURCES) $(WEBUI_DIR)/node_modules/.installed
	cd "$(WEBUI_DIR)" && npm run build
	@touch "$@"

webui: $(WEBUI_DIR)/dist/index.html

build: webui
	cargo build --release --bins -p roomd -p roomctl

# roomd_<version>_<arch>.deb in target/deb/, from the release binaries (image/deb/build.sh).
deb: build
	image/deb/build.sh target/release target/deb

# The firmware image in target/image/ (roomd.img: GPT with ESP, root slots A and B, data), built
# from the package above by image/build.sh; see README.md "Firmware image". Needs root.
VERSION = $(shell awk -F'"' '/^\[workspace.package\]/ { s = 1; next } /^\[/ { s = 0 } s && $$1 ~ /^version *= */ { print $$2; exit }' Cargo.toml)
# systemd-boot and the UKIs are signed with ROOMD_UKI_KEY / ROOMD_UKI_CERT, by default with a
# development key made once in target/image-keys/ (an integrator passes their own).
ROOMD_UKI_KEY ?= $(CURDIR)/target/image-keys/db.key
ROOMD_UKI_CERT ?= $(CURDIR)/target/image-keys/db.crt
$(CURDIR)/target/image-keys/db.key:
	mkdir -p -m 0700 "$(@D)"
	openssl req -new -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 \
		-subj "/CN=roomd development Secure Boot key (not for production)/" \
		-keyout "$(@D)/db.key" -out "$(@D)/db.crt"

# Update bundles are signed with ROOMD_BUNDLE_KEY / ROOMD_BUNDLE_CERT; the image's RAUC accepts
# bundles signed for that certificate. By default a development key made once in
# target/image-keys/ (an integrator passes their own; see README.md "Firmware image").
ROOMD_BUNDLE_KEY ?= $(CURDIR)/target/image-keys/bundle.key
ROOMD_BUNDLE_CERT ?= $(CURDIR)/target/image-keys/bundle.crt
ROOMD_BUNDLE_KEYRING ?= $(ROOMD_BUNDLE_CERT)
$(CURDIR)/target/image-keys/bundle.key:
	mkdir -p -m 0700 "$(@D)"
	openssl req -new -x509 -newkey rsa:3072 -nodes -sha256 -days 3650 \
		-subj "/O=roomd/CN=roomd development update bundles (not for production)/" \
		-keyout "$(@D)/bundle.key" -out "$(@D)/bundle.crt"

# `make image` also writes the image's own root as a signed update bundle,
# target/image/roomd-<version>.raucb: `make bundle` is the same, by the name an integrator
# looks for. ROOMD_IMAGE_VERSION and ROOMD_SECURITY_FLOOR set the image's version and floor.
image bundle: export ROOMD_UKI_KEY := $(ROOMD_UKI_KEY)
image bundle: export ROOMD_UKI_CERT := $(ROOMD_UKI_CERT)
image bundle: export ROOMD_BUNDLE_KEY := $(ROOMD_BUNDLE_KEY)
image bundle: export ROOMD_BUNDLE_CERT := $(ROOMD_BUNDLE_CERT)
image bundle: export ROOMD_BUNDLE_KEYRING := $(ROOMD_BUNDLE_KEYRING)
image bundle: deb $(ROOMD_UKI_KEY) $(ROOMD_BUNDLE_KEY)
	image/build.sh "target/deb/roomd_$(VERSION)_$$(dpkg --print-architecture).deb" target/image

# The simulated profile gets its own software TPM, so the device key lives in a TPM exactly as on
# hardware. It is manufactured once (EK and EK certificate) and stopped when roomd stops.
run: build
	@mkdir -p -m 0700 "$(DEV_DIR)" "$(DEV_STATE)" "$(DEV_SWTPM)"
	@if [ ! -f "$(DEV_CONFIG)" ]; then \
		printf '%s\n' \
			'# Development room written by `make run`; edit freely, see docs/configuration.md.' \
			'[system]' \
			'hardware_profile = "simulated"' \
			'state_dir = "$(DEV_STATE)"' \
			'' \
			'[api]' \
			'listen = ["$(DEV_LISTEN)"]' \
			'' \
			'# no system bus policy for org.roomd on a development machine (docs/dbus.md)' \
			'[dbus]' \
			'bus = "none"' > "$(DEV_CONFIG)"; \
		echo "Wrote $(DEV_CONFIG)"; \
	fi
	@if ! grep -q '^\[identity\]' "$(DEV_CONFIG)"; then \
		printf '%s\n' '' '[identity]' 'backend = "tpm"' 'tcti = "$(DEV_TCTI)"' >> "$(DEV_CONFIG)"; \
		echo "Added the software TPM ($(DEV_TCTI)) to $(DEV_CONFIG)"; \
	fi
	@if [ ! -f "$(DEV_SWTPM)/tpm2-00.permall" ]; then \
		echo "Manufacturing the development software TPM in $(DEV_SWTPM)"; \
		swtpm_setup --tpm2 --tpmstate "$(DEV_SWTPM)" --createek --create-ek-cert \
			--create-platform-cert --pcr-banks sha256 >/dev/null; \
	fi
	@echo "roomd web UI and API: https://$(DEV_LISTEN) (self-signed certificate: $(DEV_STATE)/tls/cert.pem)"
	@if [ -f "$(DEV_STATE)/claim-code" ]; then \
		echo "This room is not claimed yet: its one-time claim code is in $(DEV_STATE)/claim-code"; \
	else \
		echo "If this room is not claimed yet, roomd logs a one-time claim code and writes it to $(DEV_STATE)/claim-code"; \
	fi
	@echo "Claim it with POST /api/v1/claim (see docs/api.md). Ctrl-C stops roomd and its software TPM."
	@swtpm socket --tpm2 --tpmstate dir="$(DEV_SWTPM)" \
		--server type=tcp,port=$(DEV_SWTPM_PORT),bindaddr=127.0.0.1 \
		--ctrl type=tcp,port=$$(( $(DEV_SWTPM_PORT) + 1 )),bindaddr=127.0.0.1 \
		--flags startup-clear --daemon --pid file="$(DEV_DIR)/swtpm.pid" && \
	trap 'kill "$$(cat "$(DEV_DIR)/swtpm.pid")" 2>/dev/null' EXIT && \
	"$(CURDIR)/target/release/roomd" --config "$(DEV_CONFIG)"

# Run last, side by side (see the recipe): tests/tests/image_boot.rs in one lane; in the other,
# the tests that mostly wait (on a rate limit, on a session's idle time, on other programs),
# one after the other.
FUZZ_TEST := every_operation_holds_the_contract_under_fuzzing
IDLE_TEST := an_open_websocket_does_not_keep_its_session_alive
IMAGE_TESTS := the_image_boots_verified_and_updates_itself_to_the_other_slot --skip an_update_that_never_becomes_healthy_is_rolled_back_by_itself
# Tests that wait on other programs (an ACME server, MQTT, Prometheus, lintian) rather than on
# live media or the clock, so they may run beside the image test (below): their binaries, and
# their tests' names, which the first run skips. A test added to one of these binaries runs in
# both places until its name is added here.
BESIDE_IMAGE_BINARIES := --test provisioning --test fleet_rollout --test metrics --test package_deb --test api_events_revocation
BESIDE_IMAGE_SKIPS := --skip a_room_applies_a_signed_bundle --skip a_bundle_enrols_the_tpm_key --skip a_room_finds_its_bundle_by_unicast_dns_sd \
	--skip the_inventory_lists_and_a_rollout_in_waves --skip a_failing_wave_stops_the_rollout \
	--skip metrics_token_reads_metrics_and_nothing_else --skip metrics_follow_the_room --skip prometheus_scrapes_roomd \
	--skip the_package_installs_what_a_room_needs --skip revoking_a_token_closes_its_socket --skip logging_out_closes_the_sessions_socket
test: export ROOMD_BIN := $(CURDIR)/target/debug/roomd
test: export ROOMCTL_BIN := $(CURDIR)/target/debug/roomctl
test: export ROOMD_SCHEMATHESIS := $(SCHEMATHESIS_VENV)/bin/st
test: toolchain browser-deps schemathesis webui
	@# One build of every target: binaries and tests with one feature set. Built apart, the
	@# tests' dev-dependencies (tokio's `test-util`) changed tokio's features, and cargo compiled
	@# tokio and everything above it (the whole daemon) a second time: 276 s against 223 s on
	@# a fresh clone here. The binaries under test carry tokio's clock-pausing functions,
	@# which nothing in them calls.
	cargo build --workspace --all-targets
	@# The image tests' firmware image is built in the background (apt downloads, dpkg and disk
	@# mostly) while the code is checked (CPU mostly); the tests run once it is there, and
	@# image_boot finds it up to date (target/image-test/inputs.sha256): it is made of the very
	@# binaries the tests run. The image's gigabytes are flushed to disk before the tests: the
	@# kernel writing them back while the media tests ran starved their live pipelines (two
	@# fresh runs failed there that way).
	@target/debug/image-test-image > target/image-test-image.log 2>&1 & image=$$!; \
	cargo fmt --all --check && \
	cargo clippy --workspace --all-targets -- -D warnings; checks=$$?; \
	wait $$image; built=$$?; \
	sync; \
	[ $$built -eq 0 ] || { cat target/image-test-image.log >&2; echo "make test: the image tests' image was not built" >&2; }; \
	[ $$checks -eq 0 ] && [ $$built -eq 0 ]
	cargo test --workspace -- --skip $(FUZZ_TEST) --skip $(IDLE_TEST) --skip $(IMAGE_TESTS) $(BESIDE_IMAGE_SKIPS)
	@# The longest tests last: the image test keeps both cores busy with its two emulated
	@# guests, while the fuzzer waits on its own rate limit and the idle-session test on a
	@# minute of idle time, so they run beside it (about 6 minutes saved), and after them the
	@# tests that wait on other programs (BESIDE_IMAGE_BINARIES, about 80 s that the first run
	@# no longer spends; they start some 6 minutes in). Any one failing fails `make test`.
	@# `--workspace`, not `-p roomd-tests`: the same feature set as the run above, so nothing is
	@# compiled again (with `-p`, cargo unifies features differently and rebuilt 111 crates, 58 s).
	@cargo test --workspace --test image_boot & image=$$!; \
	cargo test --workspace --test api_fuzz; fuzz=$$?; \
	cargo test --workspace --test api_session_limits $(IDLE_TEST); idle=$$?; \
	cargo test --workspace $(BESIDE_IMAGE_BINARIES); beside=$$?; \
	wait $$image; image=$$?; \
	[ $$fuzz -eq 0 ] && [ $$idle -eq 0 ] && [ $$beside -eq 0 ] && [ $$image -eq 0 ] || { \
		echo "make test: api_fuzz exited $$fuzz, api_session_limits $$idle, the tests beside the image test $$beside, image_boot $$image" >&2; exit 1; }

# Every benchmark runs even when an earlier one misses a target; the exit status reports misses.
bench: export ROOMD_BIN := $(CURDIR)/target/release/roomd
bench: export ROOMCTL_BIN := $(CURDIR)/target/release/roomctl
bench: bench-deps browser-deps webui
	cargo build --release --bins
	@status=0; \
	for program in bench-foundation bench-identity bench-tls-flood bench-media bench-meeting bench-e2ee bench-hosted bench-sip bench-fleet bench-image; do \
		cargo run --release -p roomd-tests --bin $$program || status=1; \
	done; \
	$(MAKE) --no-print-directory bench-webui || status=1; \
	exit $$status

# Only the web UI's figures: gzipped JS + CSS of the build, time to interactive of the panel.
# The time to interactive is measured by the browser test (its BENCH line) against release roomd.
bench-webui: export ROOMD_BIN := $(CURDIR)/target/release/roomd
bench-webui: export ROOMCTL_BIN := $(CURDIR)/target/release/roomctl
bench-webui: webui
	cargo build --release --bins
	cd webui && node e2e/size.mjs
	set -o pipefail; cargo test --release -p roomd-tests --test webui the_browser_flow_passes -- --nocapture 2>&1 | grep -E '^(BENCH|FAIL|SKIPPED)|test result'

clean:
	cargo clean
