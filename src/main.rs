//! The `coffer` command. All of its behaviour lives in the library; this
//! binary parses flags, reads the environment, talks to the terminal and
//! picks exit codes (see `src/cli/`).

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
