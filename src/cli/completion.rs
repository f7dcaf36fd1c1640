//! `coffer completions SHELL` and `coffer man`, generated from the clap
//! definition so they never drift from the real flags.

use clap::Args;
use clap_complete::Shell;

use super::Ctx;
use super::error::{CliError, CliResult};

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum)]
    shell: Shell,
}

pub fn completions(ctx: &Ctx, args: CompletionsArgs) -> CliResult {
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut super::command(), "coffer", &mut out);
    ctx.out.bytes(&out)
}

pub fn man(ctx: &Ctx) -> CliResult {
    let mut out = Vec::new();
    clap_mangen::Man::new(super::command())
        .render(&mut out)
        .map_err(|e| CliError::new(format!("could not render the man page: {e}")))?;
    ctx.out.bytes(&out)
}
