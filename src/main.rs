//! The `chimera` binary: parse, set up logging, run, map the outcome to an exit code.

use clap::Parser;

fn main() {
    let cli = chimera::cli::Cli::parse();
    chimera::init_logging(cli.log.as_deref());
    let code = match chimera::run(cli) {
        Ok(()) => chimera::error::EXIT_OK,
        Err(e) => {
            let code = e.exit_code();
            if code != chimera::error::EXIT_OK {
                eprintln!("{e}");
            }
            code
        }
    };
    std::process::exit(code);
}
