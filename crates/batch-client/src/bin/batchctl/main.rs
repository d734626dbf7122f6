//! batchctl: the command-line client of the batch service.
//!
//! The commands live in [`batch_client::cli`]; this binary runs them with the
//! process's standard streams.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use batch_client::cli::{self, Console};

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            let _ = writeln!(
                std::io::stderr(),
                "batchctl: error: cannot start the tokio runtime: {error}"
            );
            return ExitCode::from(cli::EXIT_FAILURE);
        }
    };

    let stdin = std::io::stdin();
    let console = Console {
        stdout: &mut std::io::stdout(),
        stderr: &mut std::io::stderr(),
        stdin_is_terminal: stdin.is_terminal(),
        stdin: &mut stdin.lock(),
        show_progress: true,
    };
    let code = runtime.block_on(cli::run(std::env::args_os(), console));
    ExitCode::from(code)
}
