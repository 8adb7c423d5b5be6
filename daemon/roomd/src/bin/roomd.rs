//! The roomd daemon.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use roomd::daemon::{self, DEFAULT_CONFIG_PATH};
use roomd_model::config::Config;

/// sysexits' EX_CONFIG: the unit file does not restart roomd on a configuration error.
const EXIT_CONFIG: u8 = 78;

#[derive(Parser)]
#[command(
    name = "roomd",
    version,
    about = "Open, sovereign firmware for meeting-room video systems"
)]
struct Cli {
    /// Configuration file.
    #[arg(long, value_name = "FILE", default_value = DEFAULT_CONFIG_PATH)]
    config: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Validate a configuration file without starting.
    CheckConfig {
        /// The file to check.
        file: PathBuf,
    },
    /// Check the audit log's hash chain (`<state_dir>/audit.log*` of `--config`): exits 1 and
    /// names the record after each line that was removed or changed.
    VerifyAudit,
}

fn main() -> ExitCode {
    return_large_blocks_to_the_system();
    let cli = Cli::parse();
    if let Some(Command::CheckConfig { file }) = cli.command {
        return match Config::load(&file) {
            Ok(_) => {
                println!("{}: configuration is valid", file.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("roomd: {e}");
                ExitCode::from(EXIT_CONFIG)
            }
        };
    }

    let config = match daemon::load_config(&cli.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("roomd: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if let Some(Command::VerifyAudit) = cli.command {
        return verify_audit(&config);
    }
    // An unknown profile is a configuration mistake like any other: refuse to start (exit 78).
    let profile = match roomd_hardware::Profile::builtin(&config.system.hardware_profile) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("roomd: {}: {e}", cli.config.display());
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let recent_log = match roomd_api::logging::init(config.logging.level.as_str()) {
        Ok(recent_log) => recent_log,
        Err(e) => {
            eprintln!("roomd: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("roomd: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(daemon::run(cli.config, config, profile, recent_log)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("roomd: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `roomd verify-audit`: checks the hash chain through the audit log files.
fn verify_audit(config: &Config) -> ExitCode {
    let path = config.system.state_dir.join(roomd_api::audit::AUDIT_FILE);
    let settings = roomd_api::audit::housekeeping::settings_of(config).0;
    let report =
        roomd_api::audit::AuditLog::open(&path, settings).and_then(|log| log.verify_chain());
    match report {
        Ok(report) if report.breaks.is_empty() => {
            println!(
                "{}: {} records, hash chain intact",
                path.display(),
                report.records
            );
            ExitCode::SUCCESS
        }
        Ok(report) => {
            for gap in &report.breaks {
                println!(
                    "{}: the line before record {} was removed or changed",
                    gap.file.display(),
                    gap.seq
                );
            }
            println!(
                "{}: {} records, hash chain broken in {} places",
                path.display(),
                report.records,
                report.breaks.len()
            );
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("roomd: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Each password hash (argon2id) borrows 19 MiB. Once glibc has freed one such block it raises
/// its dynamic mmap threshold and keeps later ones in per-thread arenas: six logins left the
/// daemon at 125 MB resident instead of 9 MB. A fixed threshold below 19 MiB makes every such
/// block its own mapping, handed back to the system when freed. It must stay above the size of
/// a video frame (3 MB at 1080p, 12 MB at 4K): at 128 KiB every frame the media pipelines
/// allocate was a fresh mapping, and its page faults cost roomd 18 % more CPU than the same
/// pipelines in gst-launch-1.0 (bench-media, 720p30).
fn return_large_blocks_to_the_system() {
    // SAFETY: mallopt only tunes the allocator; it runs first in main, before any other thread
    // exists, and its failure (return 0) merely leaves glibc's default behaviour.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 16 * 1024 * 1024);
    }
}
