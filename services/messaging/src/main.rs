use std::process::ExitCode;

use meridian_platform::cli::CommonCommand;

#[derive(clap::Parser)]
#[command(name = "messaging", version, about = "Meridian messaging: messages, activations and JWTs", after_help = meridian_platform::cli::ENVIRONMENT_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Subcommand)]
enum Command {
    #[command(flatten)]
    Common(CommonCommand),
    /// Print a JWT for a system caller (to create the first clinicians and devices).
    Token {
        #[arg(long)]
        system_id: String,
        /// Space-separated scopes, e.g. "write:send_device write:send_clinician".
        #[arg(long)]
        scope: String,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
    },
    /// Apply migrations, insert the demo clinician, device and patient activation, print them.
    SeedDemo,
    /// Insert benchmark messages (skipped when present).
    SeedBench {
        #[arg(long, default_value_t = 100_000)]
        messages: i64,
    },
}

#[actix_web::main]
async fn main() -> ExitCode {
    let cli = <Cli as clap::Parser>::parse();
    let platform = match meridian_platform::cli::load(&messaging::SERVICE) {
        Ok(p) => p,
        Err(code) => return code,
    };
    match cli.command.unwrap_or(Command::Common(CommonCommand::Serve)) {
        Command::Common(CommonCommand::Serve) => meridian_platform::cli::exit(messaging::serve(platform).await),
        Command::Common(CommonCommand::Migrate) => meridian_platform::cli::migrate(&platform),
        Command::Token { system_id, scope, ttl } => messaging::cli::token(&platform, &system_id, &scope, ttl),
        Command::SeedDemo => messaging::cli::seed_demo(&platform),
        Command::SeedBench { messages } => messaging::cli::seed_bench(&platform, messages),
    }
}
