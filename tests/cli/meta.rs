use std::path::Path;

use crate::common::TestEnv;

#[test]
fn help_lists_the_platform_commands() {
    let env = TestEnv::new();
    let help = env.run(&["--help"]).ok().stdout();
    for cmd in [
        "vault", "create", "update", "get", "list", "delete", "keygen", "init",
    ] {
        assert!(
            help.contains(&format!("  {cmd} ")),
            "{cmd} missing from:\n{help}"
        );
    }
    let create = env.run(&["create", "--help"]).ok().stdout();
    for flag in [
        "-V, --vault-name",
        "-n, --name",
        "-v, --value",
        "--value-file",
    ] {
        assert!(create.contains(flag), "{flag} missing from:\n{create}");
    }
    // Safer input methods come first in help.
    assert!(create.find("--value-file").unwrap() < create.find("-v, --value").unwrap());
    assert!(create.contains("Insecure"));
}

#[test]
fn usage_errors_exit_2() {
    let env = TestEnv::new();
    assert_eq!(env.run(&["create", "-V", "x"]).code(), 2);
    assert_eq!(env.run(&["frobnicate"]).code(), 2);
}

#[test]
fn completions_and_man_page_come_from_the_cli() {
    let env = TestEnv::new();
    let bash = env.run(&["completions", "bash"]).ok().stdout();
    assert!(bash.contains("_coffer()") && bash.contains("--vault-name"));
    let zsh = env.run(&["completions", "zsh"]).ok().stdout();
    assert!(zsh.starts_with("#compdef coffer"));
    let fish = env.run(&["completions", "fish"]).ok().stdout();
    assert!(fish.contains("complete -c coffer"));
    let man = env.run(&["man"]).ok().stdout();
    assert!(
        man.starts_with(".ie") || man.contains(".TH coffer"),
        "{}",
        &man[..200.min(man.len())]
    );
    assert!(man.contains("vault"));
}

/// Every page a man page refers to (`coffer-create(1)`) can be printed
/// with `coffer man create`, and each has the options, the environment and
/// the exit statuses; `--dir` writes all of them.
#[test]
fn every_man_page_that_is_referred_to_can_be_printed() {
    let env = TestEnv::new();
    let mut todo = vec![Vec::<String>::new()];
    let mut seen = std::collections::BTreeSet::new();
    while let Some(words) = todo.pop() {
        let mut args = vec!["man".to_owned()];
        args.extend(words.iter().cloned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let page = env.run(&args).ok().stdout();
        for section in [
            ".SH NAME",
            ".SH SYNOPSIS",
            ".SH ENVIRONMENT",
            ".SH EXIT STATUS",
        ] {
            assert!(page.contains(section), "{section} missing from {words:?}");
        }
        seen.insert(words.join(" "));
        // References look like `coffer\-secret\-vault(1)`.
        for r in page.split("coffer\\-").skip(1) {
            let Some(name) = r
                .split("(1)")
                .next()
                .filter(|n| !n.contains(char::is_whitespace))
            else {
                continue;
            };
            let sub: Vec<String> = name.split("\\-").map(str::to_owned).collect();
            if !seen.contains(&sub.join(" ")) {
                todo.push(sub);
            }
        }
    }
    assert!(
        seen.contains("secret vault create") && seen.contains("create"),
        "{seen:?}"
    );
    let dir = env.dir.path().join("man1");
    std::fs::create_dir(&dir).unwrap();
    env.run(&["man", "--dir", dir.to_str().unwrap()]).ok();
    let written = std::fs::read_dir(&dir).unwrap().count();
    assert_eq!(written, seen.len(), "one file per page");
    assert!(dir.join("coffer-secret-vault-create.1").is_file());
    env.run(&["man", "nope"])
        .fails("no command `coffer nope`")
        .transcript("meta/man-of-an-unknown-command");
}

/// The sample store in `vaults/` opens with the demo identity: the README's
/// first command works.
#[test]
fn sample_store_reads_with_the_demo_identity() {
    let env = TestEnv::new();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let key = std::fs::read_to_string(repo.join("demo/demo-identity.txt")).unwrap();
    assert!(key.contains("DEMO ONLY"));
    let expected = [
        (
            "api-keys",
            &[
                "external-api-token",
                "external-service-token",
                "sendgrid-api-key",
                "stripe-secret-key",
            ][..],
        ),
        (
            "database",
            &["analytics-connection-string", "read-replica-password"][..],
        ),
    ];
    for (vault, names) in expected {
        let r = env.run_with(&["list", "-V", vault, "--json"], |c| {
            c.current_dir(repo);
        });
        let rows: Vec<serde_json::Value> = serde_json::from_str(&r.ok().stdout()).unwrap();
        let got: Vec<&str> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
        assert_eq!(got, names);
        for name in names {
            let r = env.run_with(&["get", "-V", vault, "-n", name], |c| {
                c.current_dir(repo).env("COFFER_AGE_KEY", &key);
            });
            assert!(!r.ok().stdout().is_empty());
        }
    }
    let r = env.run_with(&["verify"], |c| {
        c.current_dir(repo).env("COFFER_AGE_KEY", &key);
    });
    let out = r.ok().stdout();
    assert!(
        out.contains("api-keys: ok") && out.contains("with its key"),
        "{out}"
    );
}
