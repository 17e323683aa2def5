use std::io::Read;
use std::process::ExitCode;

use meridian_platform::cli::{self, CommonCommand};

#[derive(clap::Parser)]
#[command(name = "registration", version, about = "Meridian product registration and broadcast email", after_help = cli::ENVIRONMENT_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Subcommand)]
enum Command {
    #[command(flatten)]
    Common(CommonCommand),
    /// Read a broadcast PIN on stdin and print its hash for REGISTRATION_BROADCAST_PIN_HASH.
    PinHash,
    /// Apply migrations, add a few demo registrations (idempotent) and print the demo PIN.
    SeedDemo,
}

#[actix_web::main]
async fn main() -> ExitCode {
    let cli = <Cli as clap::Parser>::parse();
    if matches!(cli.command, Some(Command::PinHash)) {
        return pin_hash(); // needs neither configuration nor a database
    }
    let platform = match cli::load(&registration::SERVICE) {
        Ok(p) => p,
        Err(code) => return code,
    };
    match cli.command.unwrap_or(Command::Common(CommonCommand::Serve)) {
        Command::Common(CommonCommand::Serve) => {
            if let Err(err) = registration::Settings::from_config(&platform.config) {
                eprintln!("registration: {err}");
                return ExitCode::from(2);
            }
            cli::exit(registration::serve(platform).await)
        }
        Command::Common(CommonCommand::Migrate) => cli::migrate(&platform),
        Command::PinHash => pin_hash(),
        Command::SeedDemo => registration::seed::demo(&platform),
    }
}

/// Reads a PIN on stdin (one trailing line break is not part of it) and prints its argon2id hash.
fn pin_hash() -> ExitCode {
    let mut pin = String::new();
    if std::io::stdin().read_to_string(&mut pin).is_err() || pin.trim_end_matches(['\r', '\n']).is_empty() {
        eprintln!("registration pin-hash: write the PIN on standard input");
        return ExitCode::from(2);
    }
    println!("{}", meridian_auth::password::hash(pin.trim_end_matches(['\r', '\n'])));
    ExitCode::SUCCESS
}
