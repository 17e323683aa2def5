use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use discovery::cli::{self as ops, DeviceRef};
use meridian_platform::cli::{self, CommonCommand};

#[derive(Parser)]
#[command(name = "discovery", version, about = "Meridian discovery: server list, health statuses, status page", after_help = cli::ENVIRONMENT_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    #[command(flatten)]
    Common(CommonCommand),
    /// Write a fresh P-256 key and self-signed client certificate (identity.crt.pem, identity.key.pem, identity.pub.pem).
    Identity {
        #[arg(long, default_value = ".")]
        out: PathBuf,
    },
    /// List, approve or revoke client-certificate devices.
    Devices {
        #[command(subcommand)]
        action: DevicesAction,
    },
    /// Apply migrations and add COUNT benchmark servers (idempotent).
    SeedBench {
        #[arg(long, default_value_t = 100)]
        servers: usize,
    },
    /// Apply migrations and add the demo servers and an approved admin identity (idempotent).
    SeedDemo {
        #[arg(long, default_value = ".data/demo")]
        dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum DevicesAction {
    /// Every device: id, role, fingerprint prefix, first and last seen.
    List,
    /// Give a device a role. DEVICE is an id or a key fingerprint (prefix of 8+ hex digits).
    Approve {
        device: Option<String>,
        #[arg(long)]
        role: meridian_model::DeviceRole,
        /// The device holding this certificate's key.
        #[arg(long, conflicts_with = "device")]
        cert: Option<PathBuf>,
    },
    /// Make a device untrusted again.
    Revoke {
        device: Option<String>,
        #[arg(long, conflicts_with = "device")]
        cert: Option<PathBuf>,
    },
}

fn reference(device: Option<String>, cert: Option<PathBuf>) -> Result<DeviceRef, ExitCode> {
    match (device, cert) {
        (Some(name), None) => Ok(DeviceRef::Name(name)),
        (None, Some(path)) => Ok(DeviceRef::Cert(path)),
        _ => {
            eprintln!("discovery: name a DEVICE (id or fingerprint) or give --cert FILE");
            Err(ExitCode::from(2))
        }
    }
}

#[actix_web::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Identity { out }) = &cli.command {
        return ops::identity(out);
    }
    let platform = match cli::load(&discovery::SERVICE) {
        Ok(platform) => platform,
        Err(code) => return code,
    };
    match cli.command.unwrap_or(Command::Common(CommonCommand::Serve)) {
        Command::Common(CommonCommand::Serve) => cli::exit(discovery::serve(platform).await),
        Command::Common(CommonCommand::Migrate) => cli::migrate(&platform),
        Command::Identity { .. } => unreachable!("handled before loading the configuration"),
        Command::Devices { action } => match action {
            DevicesAction::List => ops::devices_list(&platform),
            DevicesAction::Approve { device, role, cert } => match reference(device, cert) {
                Ok(r) => ops::devices_approve(&platform, &r, role),
                Err(code) => code,
            },
            DevicesAction::Revoke { device, cert } => match reference(device, cert) {
                Ok(r) => ops::devices_revoke(&platform, &r),
                Err(code) => code,
            },
        },
        Command::SeedBench { servers } => match ops::seed_bench(&platform, servers) {
            Ok(added) => {
                println!("discovery bench: {added} servers added ({servers} wanted)");
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("discovery seed-bench: {err}");
                ExitCode::FAILURE
            }
        },
        Command::SeedDemo { dir } => match ops::seed_demo(&platform, &dir) {
            Ok(text) => {
                println!("{text}");
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("discovery seed-demo: {err}");
                ExitCode::FAILURE
            }
        },
    }
}
