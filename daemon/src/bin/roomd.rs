//! The roomd daemon.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use roomd::config::Config;
use roomd::daemon::{self, DEFAULT_CONFIG_PATH};

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
}

fn main() -> ExitCode {
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
    if let Err(e) = roomd::logging::init(config.logging.level.as_str()) {
        eprintln!("roomd: {e}");
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("roomd: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(daemon::run(cli.config, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("roomd: {e}");
            ExitCode::FAILURE
        }
    }
}
