//! The roomd daemon.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use roomd::daemon::{self, DEFAULT_CONFIG_PATH, Exit};
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

    let mut config = match daemon::load_config(&cli.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("roomd: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if let Some(Command::VerifyAudit) = cli.command {
        return verify_audit(&config);
    }
    // Before the configuration is used: after a reset roomd runs on the factory configuration,
    // its log level included.
    let factory_reset = match daemon::factory_reset_at_start(&cli.config, &mut config) {
        Ok(done) => done,
        Err(e) => {
            eprintln!("roomd: {e}");
            return ExitCode::FAILURE;
        }
    };
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
    if let Some(done) = &factory_reset {
        daemon::log_factory_reset(done, &config);
    }
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
        Ok(Exit::Stopped) => ExitCode::SUCCESS,
        Ok(Exit::Restart) => {
            // Tasks still winding down (blocking file writes) get a moment; then every thread
            // but this one is gone with the runtime.
            runtime.shutdown_timeout(Duration::from_secs(5));
            reexec()
        }
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("roomd: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Replaces this process with a fresh start of the same binary with the same arguments and
/// environment: the PID stays, so systemd (Type=notify, NotifyAccess=main) and a parent holding
/// the child handle keep following it, and the new start finds the factory-reset marker.
/// Returns only when the exec failed.
fn reexec() -> ExitCode {
    mark_descriptors_close_on_exec();
    let mut args = std::env::args_os();
    let argv0 = args.next().unwrap_or_else(|| "roomd".into());
    let args: Vec<_> = args.collect();
    // /proc/self/exe is the binary this process runs even if a package upgrade replaced the
    // file since: the restart must not change the firmware under the reset.
    let mut tried = Vec::new();
    for program in [
        PathBuf::from("/proc/self/exe"),
        current_exe_or_argv0(&argv0),
    ] {
        let error = std::process::Command::new(&program)
            .arg0(&argv0)
            .args(&args)
            .exec();
        tried.push(format!("{}: {error}", program.display()));
    }
    let message = format!(
        "factory reset: cannot restart roomd ({}); the marker stays and the next start wipes",
        tried.join("; ")
    );
    tracing::error!("{message}");
    eprintln!("roomd: {message}");
    ExitCode::FAILURE
}

fn current_exe_or_argv0(argv0: &std::ffi::OsStr) -> PathBuf {
    std::env::current_exe().unwrap_or_else(|_| PathBuf::from(argv0))
}

/// Everything roomd opened is closed by the exec: the new start must not inherit descriptors it
/// does not know about. The shutdown closes what roomd itself holds (the TPM context among
/// them); this covers what a library opened without close-on-exec or a thread that did not
/// finish still holds: an inherited TPM connection, for one, would block the new start's, as a
/// TPM simulator serves one connection at a time. Standard input, output and error stay (the
/// journal's stream).
fn mark_descriptors_close_on_exec() {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<i32> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd > 2)
        .collect();
    for fd in fds {
        // SAFETY: F_SETFD only sets the close-on-exec flag of a descriptor number; a number
        // that is no longer open (the directory listing's own) fails with EBADF, harmlessly.
        unsafe {
            libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
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
