//! `coffer completions SHELL` and `coffer man`, generated from the clap
//! definition so they never drift from the real flags.

use std::path::PathBuf;

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

#[derive(Args, Debug)]
pub struct ManArgs {
    /// The command whose page to print, as you would type it (`coffer man
    /// secret vault create`) [default: the page of coffer itself]
    command: Vec<String>,

    /// Write every page into DIR instead (coffer.1, coffer-create.1, …),
    /// for man to find: `coffer man --dir ~/.local/share/man/man1`
    #[arg(long, value_name = "DIR", conflicts_with = "command")]
    dir: Option<PathBuf>,
}

/// What every page ends with: the environment and the exit statuses.
const COMMON_SECTIONS: &str = r#".SH ENVIRONMENT
.TP
\fBCOFFER_STORE\fR
The store directory (else the nearest store found upwards from the current directory).
.TP
\fBCOFFER_AGE_KEY\fR, \fBCOFFER_IDENTITY\fR
An identity as text (for CI), or the path of an identity file.
.TP
\fBCOFFER_LOCK_TIMEOUT\fR
Seconds to wait for another coffer process (default 30).
.TP
\fBCOFFER_SHOW_VALUES\fR
1 to show decrypted values in git diff.
.TP
\fBTAILOR_PLATFORM_TOKEN\fR, \fBTAILOR_PLATFORM_WORKSPACE_ID\fR, \fBTAILOR_PLATFORM_URL\fR (else \fBPLATFORM_URL\fR)
The platform for coffer sync.
.SH EXIT STATUS
0 on success, 1 on an error, 2 on a usage error; coffer run exits with its program's status.
"#;

/// Every page: the command's words after `coffer`, and the built command.
fn pages() -> Vec<(Vec<String>, clap::Command)> {
    fn walk(cmd: &clap::Command, path: Vec<String>, out: &mut Vec<(Vec<String>, clap::Command)>) {
        for sub in cmd
            .get_subcommands()
            .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        {
            let mut p = path.clone();
            p.push(sub.get_name().to_owned());
            walk(sub, p, out);
        }
        out.push((path, cmd.clone()));
    }
    let mut root = super::command().disable_help_subcommand(true);
    root.build();
    let mut out = Vec::new();
    walk(&root, Vec::new(), &mut out);
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn render(cmd: clap::Command) -> CliResult<Vec<u8>> {
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut out)
        .map_err(|e| CliError::new(format!("could not render the man page: {e}")))?;
    out.extend_from_slice(COMMON_SECTIONS.as_bytes());
    Ok(out)
}

pub fn man(ctx: &Ctx, args: ManArgs) -> CliResult {
    let pages = pages();
    if let Some(dir) = &args.dir {
        for (path, cmd) in pages {
            let name = std::iter::once("coffer")
                .chain(path.iter().map(String::as_str))
                .collect::<Vec<_>>()
                .join("-");
            coffer::fsio::write_atomic(dir, &format!("{name}.1"), &render(cmd)?, 0o644)?;
        }
        ctx.ui
            .status(format!("Wrote the man pages to {}", dir.display()));
        return Ok(());
    }
    let Some((_, cmd)) = pages.into_iter().find(|(p, _)| *p == args.command) else {
        return Err(
            CliError::new(format!("no command `coffer {}`", args.command.join(" ")))
                .hint("`coffer --help` lists the commands"),
        );
    };
    ctx.out.bytes(&render(cmd)?)
}
