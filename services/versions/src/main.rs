use std::process::ExitCode;

use meridian_platform::cli::CommonCommand;

#[derive(clap::Parser)]
#[command(name = "versions", version, about = "Meridian versions: released versions, artifacts and updates",
    after_help = meridian_platform::cli::ENVIRONMENT_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Subcommand)]
enum Command {
    #[command(flatten)]
    Common(CommonCommand),
    /// Apply migrations and insert the demo versions, artifacts and a releaser identity (idempotent).
    SeedDemo(versions::demo::SeedDemoArgs),
    /// Apply migrations and insert the benchmark data set (idempotent).
    SeedBench(versions::demo::SeedBenchArgs),
}

#[actix_web::main]
async fn main() -> ExitCode {
    let cli = <Cli as clap::Parser>::parse();
    let platform = match meridian_platform::cli::load(&versions::SERVICE) {
        Ok(p) => p,
        Err(code) => return code,
    };
    match cli.command.unwrap_or(Command::Common(CommonCommand::Serve)) {
        Command::Common(CommonCommand::Serve) => meridian_platform::cli::exit(versions::serve(platform).await),
        Command::Common(CommonCommand::Migrate) => meridian_platform::cli::migrate(&platform),
        Command::SeedDemo(args) => versions::demo::seed_demo(&platform, &args),
        Command::SeedBench(args) => versions::demo::seed_bench(&platform, &args),
    }
}
