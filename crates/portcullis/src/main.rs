//! The `portcullis` binary: serve the registry, check a configuration, and
//! manage htpasswd users.

mod abuse;
mod access;
mod access_cert;
mod cert;
mod check;
mod cli;
mod defaults;
mod keys;
mod tokens;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc: fewer page faults and less lock contention than glibc malloc
/// for the many short-lived request buffers of large uploads.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
