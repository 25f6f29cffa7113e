//! `itsm`: the one binary of the platform. `itsm dev` runs every practice in
//! one process on a laptop; `itsm serve <practice>` runs one practice as a
//! Kubernetes pod does. This file only parses the command line, runs it and
//! turns the outcome into an exit code.

mod cache;
mod cli;
mod client;
mod dev;
mod directory;
mod events;
mod gateway;
mod health;
mod metrics;
mod practice;
mod serve;
mod token;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("itsm: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli.run()) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("itsm: {error}");
            error.exit_code()
        }
    }
}
