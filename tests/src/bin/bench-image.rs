//! `make bench` (firmware image part): the image's compressed size, its build time, and in the
//! emulator (qemu under TCG with OVMF Secure Boot and swtpm, as in the image test): power-on to
//! the API answering, roomd's own start (exec to READY=1, from systemd's timestamps in the guest),
//! and the time to send and install an update bundle through the API.
//!
//! The image is built from the release binaries (ROOMD_BIN's folder) into target/image-bench,
//! with the product's three boot tries and no test bundles; an image already there for the same
//! inputs is reused, and then the build time is not measured again (delete the folder to measure
//! it). Software emulation is many times slower than the box's CPU: the guest figures compare
//! runs of this benchmark, not boxes.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use roomd_tests::firmware::{
    BuildOptions, ConsoleOnFailure, INSTALL_TIMEOUT, ImageWorkspace, certificate_from_report,
    claim, report_value, upload, wait_for_api, wait_for_report, wait_for_update_status,
};
use roomd_tests::{FirmwareVm, roomd_bin};

/// The guest's disk: the image grown by this much, as if flashed onto a larger disk.
const GROW_BYTES: u64 = 512 * 1024 * 1024;

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn main() -> anyhow::Result<()> {
    let roomd = roomd_bin()?;
    let bin_dir = roomd.parent().context("roomd's folder")?;
    let workspace = ImageWorkspace::named("image-bench");
    println!("roomd firmware image benchmark");
    println!("binaries: {}", bin_dir.display());
    println!();

    let options = BuildOptions {
        boot_tries: 3,
        test_bundles: false,
    };
    let (image, build_time) = workspace.build(bin_dir, &options);
    let version = workspace.manifest("IMAGE_VERSION");
    let bundle = workspace.dir().join(format!("roomd-{version}.raucb"));

    // Compressed as an integrator would ship it for flashing: zstd over the whole disk image.
    let compressed = workspace.dir().join("roomd.img.zst");
    let status = Command::new("zstd")
        .args(["-q", "-f", "-T0", "-10"])
        .arg(&image)
        .arg("-o")
        .arg(&compressed)
        .status()
        .context("zstd runs")?;
    if !status.success() {
        bail!("zstd failed: {status}");
    }
    let disk_bytes = std::fs::metadata(&image)?.len();
    let compressed_bytes = std::fs::metadata(&compressed)?.len();
    let bundle_bytes = std::fs::metadata(&bundle)?.len();
    std::fs::remove_file(&compressed)?;

    let run_dir = workspace.dir().join("bench");
    let powered = Instant::now();
    let mut vm = FirmwareVm::boot(&image, &run_dir, GROW_BYTES, 2)?;
    let report = wait_for_report(&mut vm);
    let guard = ConsoleOnFailure(&vm);
    let to_report = powered.elapsed();
    let (_, certificate) = certificate_from_report(&report, &run_dir);
    wait_for_api(&vm, &certificate);
    let to_api = powered.elapsed();
    let roomd_start_ms: u64 = report_value(&report, "roomd-start-ms").parse()?;
    let ready_since_kernel_ms: u64 =
        report_value(&report, "roomd-ready-since-kernel-ms").parse()?;

    let session = claim(&vm, &certificate, &report);
    // Installing only starts once the first boot's health check marked the slot good.
    wait_for_update_status(
        &vm,
        &certificate,
        &session,
        "roomd marks the running slot good",
        INSTALL_TIMEOUT,
        |update| update["marked_good"] == true,
    );
    let sent = Instant::now();
    upload(&vm, &certificate, &session, &bundle)
        .expect_status(202, "POST /api/v1/update")
        .context("the bundle is accepted")?;
    let send_time = sent.elapsed();
    let update = wait_for_update_status(
        &vm,
        &certificate,
        &session,
        "the update is installed",
        INSTALL_TIMEOUT,
        |update| update["state"] == "installed" || update["state"] == "failed",
    );
    let install_time = sent.elapsed();
    if update["state"] != "installed" {
        bail!("the bundle was not installed: status.update is {update}");
    }
    drop(guard);
    vm.power_off();

    let seconds = |d: Duration| format!("{:.1}", d.as_secs_f64());
    println!("| figure | value |");
    println!("|---|---:|");
    println!(
        "| disk image (raw, sparse file) | {:.0} MiB |",
        mib(disk_bytes)
    );
    println!(
        "| disk image compressed (zstd -10) | {:.0} MiB |",
        mib(compressed_bytes)
    );
    println!("| update bundle | {:.0} MiB |", mib(bundle_bytes));
    match build_time {
        Some(took) => println!("| build (deb + image/build.sh) | {} s |", seconds(took)),
        None => println!("| build (deb + image/build.sh) | not measured: image reused |"),
    }
    println!(
        "| power-on to boot report (emulated) | {} s |",
        seconds(to_report)
    );
    println!(
        "| power-on to API answering (emulated) | {} s |",
        seconds(to_api)
    );
    println!(
        "| kernel start to roomd ready (emulated) | {:.1} s |",
        ready_since_kernel_ms as f64 / 1000.0
    );
    println!(
        "| roomd start, exec to READY=1 (emulated) | {:.1} s |",
        roomd_start_ms as f64 / 1000.0
    );
    println!(
        "| bundle sent through the API (emulated) | {} s ({:.1} MiB/s) |",
        seconds(send_time),
        mib(bundle_bytes) / send_time.as_secs_f64()
    );
    println!(
        "| bundle sent and installed (emulated) | {} s |",
        seconds(install_time)
    );
    let _ = std::fs::remove_file(run_dir.join("disk.img"));
    Ok(())
}
