use std::process::ExitCode;

use meridian_platform::cli::CommonCommand;

#[derive(clap::Parser)]
#[command(name = "federation", version, about = "Meridian federation: the people hub (Thalamus-compatible)",
    after_help = meridian_platform::cli::ENVIRONMENT_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Subcommand)]
enum Command {
    #[command(flatten)]
    Common(CommonCommand),
    /// Apply migrations and insert the demo federation (idempotent).
    SeedDemo,
    /// Apply migrations and generate benchmark people BEN000000001... (password `bench`).
    SeedBench {
        #[arg(long, default_value_t = 1_000_000)]
        people: i64,
    },
    /// Import a GNU Health Thalamus database (idempotent); lists the rows it refuses.
    Import {
        /// postgres://... of the Thalamus database
        source: String,
    },
}

#[actix_web::main]
async fn main() -> ExitCode {
    let cli = <Cli as clap::Parser>::parse();
    let platform = match meridian_platform::cli::load(&federation::SERVICE) {
        Ok(p) => p,
        Err(code) => return code,
    };
    match cli.command.unwrap_or(Command::Common(CommonCommand::Serve)) {
        Command::Common(CommonCommand::Serve) => meridian_platform::cli::exit(federation::serve(platform).await),
        Command::Common(CommonCommand::Migrate) => meridian_platform::cli::migrate(&platform),
        Command::SeedDemo => federation::seed::run_seed_demo(&platform),
        Command::SeedBench { people } => federation::seed::run_seed_bench(&platform, people),
        Command::Import { source } => federation::import::run(&platform, &source),
    }
}
