use clap::Parser as _;

fn main() {
    let cli = buildwatch::cli::Cli::parse();
    std::process::exit(buildwatch::app::run(cli));
}
