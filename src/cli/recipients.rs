//! `coffer recipients list|add|remove|approve`, `coffer rekey` and
//! `coffer rotation`: who can open which vault.

use std::collections::{BTreeMap, BTreeSet};

use std::io::Read;

use clap::{Args, Subcommand};
use coffer::crypto::VaultKey;
use coffer::error::ChangeKind;
use coffer::store::config::Member;
use coffer::store::layout::{CONFIG_FILE, MANIFEST_FILE, VAULT_KEY_FILE};
use coffer::store::team::{Outcome, Recipients};
use coffer::{Identities, RecipientKey, RecipientName, Store, Time, VaultName};
use serde::Serialize;

use super::Ctx;
use super::error::{CliError, CliResult};
use super::render;
use super::ui;

#[derive(Subcommand, Debug)]
pub enum RecipientsCommand {
    /// List recipients and the vaults each can open
    List(ListArgs),
    /// Add a recipient (re-encrypts only vault-key.age)
    Add(AddArgs),
    /// Remove a recipient (rotates the vault key; secrets become due for rotation)
    Remove(RemoveArgs),
    /// Review and accept recipient changes made by hand in coffer.toml or vault.toml
    Approve(ApproveArgs),
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Only this vault (repeatable)
    #[arg(
        short = 'V',
        long = "vault-name",
        visible_alias = "vault",
        value_name = "VAULT"
    )]
    vaults: Vec<String>,
}

#[derive(Args, Debug)]
pub struct AddArgs {
    /// The recipient's name (a person, a CI job, a hardware key)
    name: String,
    /// Their public key: age1…, ssh-ed25519 …, ssh-rsa …, age1<plugin>1…,
    /// a file holding one (such as ~/.ssh/id_ed25519.pub), or '-' for stdin
    key: String,
    /// Only these vaults (repeatable) [default: every vault]
    #[arg(
        short = 'V',
        long = "vault-name",
        visible_alias = "vault",
        value_name = "VAULT"
    )]
    vaults: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RemoveArgs {
    /// The recipient's name
    name: String,
    /// Only from these vaults (repeatable) [default: every vault, and coffer.toml]
    #[arg(
        short = 'V',
        long = "vault-name",
        visible_alias = "vault",
        value_name = "VAULT"
    )]
    vaults: Vec<String>,
    /// Remove without asking (needed without a terminal)
    #[arg(short, long)]
    yes: bool,
}

#[derive(Args, Debug)]
pub struct ApproveArgs {
    /// Only these vaults (repeatable) [default: every vault you can open]
    #[arg(
        short = 'V',
        long = "vault-name",
        visible_alias = "vault",
        value_name = "VAULT"
    )]
    vaults: Vec<String>,
    /// Approve without asking (needed when stdin is not a terminal)
    #[arg(short, long)]
    yes: bool,
}

#[derive(Args, Debug)]
pub struct RekeyArgs {
    /// Only these vaults (repeatable) [default: every vault you can open]
    #[arg(
        short = 'V',
        long = "vault-name",
        visible_alias = "vault",
        value_name = "VAULT"
    )]
    vaults: Vec<String>,
    /// Start a new vault key (a new epoch; the old keys stay in the keyring), even if nothing is stale
    #[arg(long)]
    new_key: bool,
    /// Re-encrypt every secret written under an earlier vault key to the current one
    #[arg(long)]
    reencrypt: bool,
    /// Upgrade format-1 vaults to format 2 (any rekey does; this says so)
    #[arg(long)]
    upgrade: bool,
}

/// Whether a recipients subcommand has a JSON form (`recipients list`).
pub fn offers_json(c: &RecipientsCommand) -> bool {
    matches!(c, RecipientsCommand::List(_))
}

pub fn run(ctx: &Ctx, cmd: RecipientsCommand) -> CliResult {
    match cmd {
        RecipientsCommand::List(a) => list(ctx, a),
        RecipientsCommand::Add(a) => add(ctx, a),
        RecipientsCommand::Remove(a) => remove(ctx, a),
        RecipientsCommand::Approve(a) => approve(ctx, a),
    }
}

fn parse_vaults(raw: &[String]) -> CliResult<Vec<VaultName>> {
    raw.iter()
        .map(|v| v.parse::<VaultName>().map_err(CliError::from))
        .collect()
}

/// The vaults a command acts on: the named ones (which must exist), or all.
fn target_vaults(store: &Store, raw: &[String]) -> CliResult<Vec<VaultName>> {
    let named = parse_vaults(raw)?;
    if named.is_empty() {
        return Ok(store.vault_names()?);
    }
    for v in &named {
        store.vault(v)?;
    }
    Ok(named)
}

/// Reads a recipient key given as text, `-` (stdin) or a file path.
fn read_key(raw: &str) -> CliResult<RecipientKey> {
    let direct = raw.parse::<RecipientKey>();
    if direct.is_ok() || raw.starts_with("AGE-") {
        return Ok(direct?);
    }
    let text = if raw == "-" {
        let mut s = String::new();
        std::io::stdin()
            .lock()
            .take(64 << 10)
            .read_to_string(&mut s)
            .map_err(|e| CliError::new(format!("could not read the key from stdin: {e}")))?;
        s
    } else {
        let path = std::path::Path::new(raw);
        if !path.is_file() {
            return Ok(direct?);
        }
        let meta = std::fs::metadata(path)?;
        if meta.len() > 64 << 10 {
            return Err(CliError::new(format!(
                "{raw} is too large to be a public key file"
            )));
        }
        std::fs::read_to_string(path)
            .map_err(|e| CliError::new(format!("could not read {raw}: {e}")))?
    };
    if text.contains("PRIVATE KEY") || text.contains("AGE-SECRET-KEY-") {
        return Err(CliError::new(format!(
            "{} holds a private key, not a public one",
            if raw == "-" { "stdin" } else { raw }
        ))
        .hint("pass the public key (for SSH, the .pub file; for age, the `# public key:` line)"));
    }
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .ok_or_else(|| CliError::new("no public key found in the input"))?;
    Ok(line.parse()?)
}

/// One row of `recipients list --json`.
#[derive(Serialize)]
struct RecipientRow {
    name: String,
    key: String,
    kind: String,
    fingerprint: String,
    /// `null` for every vault, else the vaults coffer.toml scopes them to.
    scope: Option<Vec<String>>,
    /// The vaults whose manifest lists them.
    vaults: Vec<String>,
    /// Changes awaiting approval that concern them.
    pending: Vec<PendingRow>,
}

#[derive(Serialize)]
struct PendingRow {
    vault: String,
    change: &'static str,
}

fn change_word(k: ChangeKind) -> &'static str {
    match k {
        ChangeKind::Added => "add",
        ChangeKind::KeyChanged => "key-change",
        ChangeKind::Removed => "remove",
    }
}

fn list(ctx: &Ctx, args: ListArgs) -> CliResult {
    let store = ctx.store()?;
    let vaults = target_vaults(&store, &args.vaults)?;
    // Manifests are read without a key: this shows what the files say.
    let mut listed: BTreeMap<RecipientName, (RecipientKey, Vec<String>)> = BTreeMap::new();
    let mut pending: BTreeMap<String, Vec<PendingRow>> = BTreeMap::new();
    for v in &vaults {
        let vault = store.vault(v)?;
        let read = vault.read()?;
        let manifest = read.manifest();
        for (n, k) in &manifest.recipients {
            listed
                .entry(n.clone())
                .or_insert_with(|| (k.clone(), Vec::new()))
                .1
                .push(v.to_string());
        }
        for c in coffer::store::team::diff(&manifest.recipients, &store.config().desired_for(v)) {
            pending.entry(c.name.clone()).or_default().push(PendingRow {
                vault: v.to_string(),
                change: change_word(c.kind),
            });
        }
    }
    let config = store.config().recipients();
    let mut names: BTreeSet<RecipientName> = listed.keys().cloned().collect();
    if args.vaults.is_empty() {
        names.extend(config.keys().cloned());
    }
    let rows: Vec<RecipientRow> = names
        .iter()
        .map(|n| {
            let key = config
                .get(n)
                .map(|m| m.key.clone())
                .or_else(|| listed.get(n).map(|(k, _)| k.clone()))
                .expect("every name comes from one of the two");
            RecipientRow {
                name: n.to_string(),
                kind: key.kind(),
                fingerprint: key.fingerprint(),
                key: key.to_string(),
                scope: config
                    .get(n)
                    .and_then(|m| m.vaults.as_ref())
                    .map(|s| s.iter().map(|v| v.to_string()).collect()),
                vaults: listed.get(n).map(|(_, v)| v.clone()).unwrap_or_default(),
                pending: pending.remove(n.as_str()).unwrap_or_default(),
            }
        })
        .collect();
    if ctx.out.json() {
        return ctx.out.json_doc(&rows);
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let mut vaults = r.vaults.join(", ");
            if vaults.is_empty() {
                vaults.push('-');
            }
            let mut note: Vec<String> = r
                .pending
                .iter()
                .map(|p| format!("{} pending in {}", p.change, p.vault))
                .collect();
            if !config.contains_key(r.name.as_str()) {
                note.push(format!("not in {CONFIG_FILE}"));
            }
            vec![
                r.name.clone(),
                r.kind.clone(),
                r.fingerprint.clone(),
                vaults,
                note.join("; "),
            ]
        })
        .collect();
    ctx.out
        .table(&["NAME", "KIND", "FINGERPRINT", "VAULTS", ""], &table)
}

/// Opens a vault's key, or says why not (`None` when no identity matches).
fn unlock(vault: &coffer::Vault<'_>, ids: &Identities) -> CliResult<Option<VaultKey>> {
    match vault.unlock(ids) {
        Ok(k) => Ok(Some(k)),
        Err(coffer::Error::NoMatchingIdentity { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Opens the vaults and their keys, before any lock is taken: a hardware
/// key may wait for a touch, and nobody should wait on us meanwhile.
fn open_all<'s>(
    store: &'s Store,
    names: &[VaultName],
    ids: &Identities,
) -> CliResult<Vec<(coffer::Vault<'s>, Option<VaultKey>)>> {
    let mut out = Vec::new();
    for n in names {
        let vault = store.vault(n)?;
        let key = unlock(&vault, ids)?;
        out.push((vault, key));
    }
    Ok(out)
}

fn describe(ctx: &Ctx, vault: &VaultName, outcome: &Outcome, what: &str) {
    match outcome {
        Outcome::Unchanged => ctx
            .ui
            .status(format!("Vault {vault}: {what}: nothing to do")),
        Outcome::Rewrapped => ctx.ui.status(format!(
            "Vault {vault}: {what}: {VAULT_KEY_FILE} re-encrypted; no secret changed"
        )),
        Outcome::Rotated {
            key,
            marked,
            reencrypted,
        } => {
            let mut s = format!(
                "Vault {vault}: {what}: new vault key (epoch {})",
                key.epoch()
            );
            if *reencrypted > 0 {
                s.push_str(&format!("; {reencrypted} secrets re-encrypted to it"));
            } else {
                s.push_str(&format!(
                    "; {VAULT_KEY_FILE} and {MANIFEST_FILE} rewritten, no secret file changed"
                ));
            }
            if *marked > 0 {
                s.push_str(&format!(", {marked} marked due for rotation"));
            }
            ctx.ui.status(s)
        }
        Outcome::Rewritten { reencrypted } if *reencrypted > 0 => ctx.ui.status(format!(
            "Vault {vault}: {what}: {reencrypted} secrets re-encrypted to the current vault key"
        )),
        Outcome::Rewritten { .. } => ctx.ui.status(format!(
            "Vault {vault}: {what}: upgraded to format 2 ({MANIFEST_FILE} rewritten)"
        )),
    }
}

fn edited_warning(ctx: &Ctx, v: &VaultName) {
    ctx.ui.warn(format!(
        "vault {v}: its recipient list was edited without the key; review it with `coffer recipients approve --vault {v}`"
    ));
}

/// Applies `edit` to the approved recipients of each vault that `wanted`
/// selects, staging the changes in `batch`. Returns what was done, and the
/// vaults it could not change: those the user cannot open, and those whose
/// recipients were edited by hand (which need `approve`).
fn change_each(
    ctx: &Ctx,
    batch: &mut coffer::store::Batch<'_>,
    vaults: &[(coffer::Vault<'_>, Option<VaultKey>)],
    wanted: impl Fn(&VaultName) -> bool,
    edit: impl Fn(&mut Recipients),
) -> CliResult<Changes> {
    let mut done = Vec::new();
    let mut missed = Vec::new();
    for (vault, vkey) in vaults {
        let v = vault.name();
        if !wanted(v) {
            continue;
        }
        let Some(vkey) = vkey else {
            missed.push(v.to_string());
            continue;
        };
        let mut w = vault.write_in(batch)?;
        let (mut target, edited) = w.approved_recipients(vkey);
        if edited {
            edited_warning(ctx, v);
            missed.push(v.to_string());
            continue;
        }
        edit(&mut target);
        let outcome = w.set_recipients(vkey, &target, Time::now(), ctx.callbacks.clone())?;
        batch.stage(w)?;
        done.push((v.clone(), outcome));
    }
    Ok(Changes { done, missed })
}

/// What [`change_each`] did.
struct Changes {
    /// The vaults changed, and how.
    done: Vec<(VaultName, Outcome)>,
    /// The vaults that could not be changed.
    missed: Vec<String>,
}

fn add(ctx: &Ctx, args: AddArgs) -> CliResult {
    let name: RecipientName = args.name.parse()?;
    let key = read_key(&args.key)?;
    super::refuse_published_demo(ctx, name.as_str(), &key)?;
    let store = ctx.store()?;
    let scope = parse_vaults(&args.vaults)?;
    for v in &scope {
        store.vault(v)?;
    }
    let ids = ctx.load_identities()?;
    let vaults = open_all(&store, &store.vault_names()?, &ids)?;

    // Everything from here on is one transaction.
    let mut batch = store.batch()?;
    let config = batch.config()?;
    let existing = config.recipients().get(&name).cloned();
    if let Some(m) = &existing
        && m.key != key
    {
        return Err(CliError::new(format!(
            "recipient {name} already exists with another key ({})",
            m.key.fingerprint()
        ))
        .hint(format!(
            "to change their key, remove them first (`coffer recipients remove {name}`, which rotates the vault keys), then add the new one"
        )));
    }
    if let Some((other, _)) = config
        .recipients()
        .iter()
        .find(|(n, m)| **n != name && m.key == key)
    {
        return Err(CliError::new(format!(
            "this key already belongs to recipient {other}"
        )));
    }
    let member = Member {
        key: key.clone(),
        vaults: if scope.is_empty() {
            None
        } else {
            match existing.as_ref().map(|m| &m.vaults) {
                Some(None) => None, // already everywhere
                Some(Some(old)) => Some(old.iter().chain(&scope).cloned().collect()),
                None => Some(scope.iter().cloned().collect()),
            }
        },
    };
    config.set_recipient(&name, &member);

    let Changes { done, missed } = change_each(
        ctx,
        &mut batch,
        &vaults,
        |v| member.covers(v),
        |target| {
            target.insert(name.clone(), key.clone());
        },
    )?;
    batch.commit()?;
    ctx.ui.status(format!(
        "Recipient {name} ({}, {}) is in {CONFIG_FILE}",
        key.kind(),
        key.fingerprint()
    ));
    for (v, outcome) in &done {
        describe(ctx, v, outcome, &format!("added {name}"));
    }
    if !missed.is_empty() {
        ctx.ui.warn(format!(
            "{name} cannot open {} yet: you cannot open {}; someone who can should run `coffer recipients approve`",
            missed.join(", "),
            render::pick(missed.len(), "it", "them")
        ));
    }
    Ok(())
}

fn remove(ctx: &Ctx, args: RemoveArgs) -> CliResult {
    let name: RecipientName = args.name.parse()?;
    let store = ctx.store()?;
    let only = parse_vaults(&args.vaults)?;
    for v in &only {
        store.vault(v)?;
    }
    let all = store.vault_names()?;
    let ids = ctx.load_identities()?;
    let vaults = open_all(&store, &all, &ids)?;
    confirm_removal(ctx, &store, &name, &vaults, &only, &ids, args.yes)?;

    // Everything from here on is one transaction: coffer.toml and every
    // vault change together, or nothing does.
    let mut batch = store.batch()?;
    let mut holding = Vec::new();
    for (vault, _) in &vaults {
        if vault
            .write_in(&batch)?
            .manifest()
            .recipients
            .contains_key(&name)
        {
            holding.push(vault.name().clone());
        }
    }
    let config = batch.config()?;
    let member = config.recipients().get(&name).cloned();
    if member.is_none() && holding.is_empty() {
        return Err(coffer::Error::UnknownRecipient {
            name: name.to_string(),
        }
        .into());
    }
    if only.is_empty() {
        config.remove_recipient(&name);
    } else if let Some(m) = &member {
        let remaining: BTreeSet<VaultName> = all
            .iter()
            .filter(|v| m.covers(v) && !only.contains(v))
            .cloned()
            .collect();
        let scoped = Member {
            key: m.key.clone(),
            vaults: Some(remaining),
        };
        config.set_recipient(&name, &scoped);
    }
    let Changes { done, missed } = change_each(
        ctx,
        &mut batch,
        &vaults,
        |v| holding.contains(v) && (only.is_empty() || only.contains(v)),
        |target| {
            target.remove(&name);
        },
    )?;
    batch.commit()?;
    for (v, outcome) in &done {
        describe(ctx, v, outcome, &format!("removed {name}"));
    }
    if !missed.is_empty() {
        return Err(CliError::new(format!(
            "{name} can still open {}: you cannot open {}",
            missed.join(", "),
            render::pick(missed.len(), "it", "them")
        ))
        .hint(format!(
            "someone who can open {} should run `coffer recipients approve` ({CONFIG_FILE} no longer lists {name} there)",
            render::pick(missed.len(), "it", "them")
        )));
    }
    if done.is_empty() {
        ctx.ui
            .status(format!("{name} could not open any of those vaults."));
    } else {
        // Removed from some vaults only: say which, not "any value".
        let scope = if only.is_empty() {
            String::new()
        } else {
            let names: Vec<&str> = done.iter().map(|(v, _)| v.as_str()).collect();
            format!(" in {}", names.join(", "))
        };
        ctx.ui.status(format!(
            "{name} cannot read any value written from now on{scope}; they may have kept the values they could read, which stay in git history too: `coffer rotation` lists the values to change (`coffer rekey --reencrypt` also closes the current files to their old key)."
        ));
    }
    Ok(())
}

/// Says what removing `name` will do, and asks first (type the name on a
/// terminal; `--yes` without one), before any lock is taken. Removing
/// yourself, or the last recipient of a vault you can open, is said
/// plainly: afterwards you may be unable to open it.
fn confirm_removal(
    ctx: &Ctx,
    store: &Store,
    name: &RecipientName,
    vaults: &[(coffer::Vault<'_>, Option<VaultKey>)],
    only: &[VaultName],
    ids: &Identities,
    yes: bool,
) -> CliResult {
    let member_key = store.config().recipients().get(name).map(|m| m.key.clone());
    let mut affected = Vec::new();
    let mut last = Vec::new();
    let mut lose = Vec::new();
    for (vault, _) in vaults {
        let v = vault.name();
        if !only.is_empty() && !only.contains(v) {
            continue;
        }
        // The header alone: a large vault costs no more to ask about.
        let recipients = vault.header()?.recipients;
        let Some(key) = recipients.get(name) else {
            continue;
        };
        affected.push(v.to_string());
        let others: Vec<_> = recipients.iter().filter(|(n, _)| *n != name).collect();
        if others.is_empty() {
            last.push(v.to_string());
        } else if ids.recipients().contains(key)
            && !others.iter().any(|(_, k)| ids.recipients().contains(k))
        {
            lose.push(v.to_string());
        }
    }
    let yourself = member_key.is_some_and(|k| ids.recipients().contains(&k));
    if !affected.is_empty() {
        ctx.ui.status(format!(
            "Removing {name} from {}: each gets a new vault key, and the values {name} could read are marked for rotation.",
            affected.join(", ")
        ));
    }
    if yourself || !lose.is_empty() {
        errln!(
            "note: {name} is you: afterwards you cannot open {}{}",
            if lose.is_empty() {
                "the vaults you are removed from".to_owned()
            } else {
                lose.join(", ")
            },
            if lose.is_empty() {
                ""
            } else {
                " (no other identity of yours is a recipient)"
            }
        );
    }
    if !last.is_empty() {
        // The library refuses this anyway; say it before asking.
        errln!(
            "note: {name} is the only recipient of {}: removing them would leave nobody able to open {}",
            last.join(", "),
            render::pick(last.len(), "it", "them")
        );
    }
    if yes {
        return Ok(());
    }
    ui::confirm_typing(("remove", "removal"), "recipient", name.as_str())
}

fn approve(ctx: &Ctx, args: ApproveArgs) -> CliResult {
    let store = ctx.store()?;
    let names = target_vaults(&store, &args.vaults)?;
    let ids = ctx.identities()?;
    let vaults = open_all(&store, &names, &ids)?;

    // Show everything, and ask, before taking the lock.
    let mut shown = Vec::new();
    for (vault, vkey) in &vaults {
        let Some(vkey) = vkey else { continue };
        let plan = vault.read()?.recipient_plan(vkey);
        if plan.is_settled() {
            continue;
        }
        let v = vault.name();
        errln!("Vault {v}:");
        if plan.manifest_edited {
            errln!(
                "  its {MANIFEST_FILE} recipient list was edited without the vault key; approving replaces it with {CONFIG_FILE}'s"
            );
        }
        for c in &plan.changes {
            let key = plan
                .desired
                .get(c.name.as_str())
                .or_else(|| plan.approved.get(c.name.as_str()));
            let kind = key.map(|k| k.kind()).unwrap_or_default();
            let effect = match c.kind {
                ChangeKind::Added => "can open the vault",
                ChangeKind::KeyChanged => "new key; the vault key is rotated",
                ChangeKind::Removed => "loses access; the vault key is rotated",
            };
            errln!("  {c} [{kind}]: {effect}");
        }
        shown.push((v.clone(), plan));
    }
    let unopened: Vec<String> = vaults
        .iter()
        .filter(|(_, k)| k.is_none())
        .map(|(v, _)| v.name().to_string())
        .collect();
    if shown.is_empty() {
        ctx.ui
            .status("Nothing to approve in the vaults you can open.");
    } else {
        if !args.yes {
            ui::confirm_yes_no("Approve these changes?", "approve")?;
        }
        let mut batch = store.batch()?;
        let config = batch.config()?.clone();
        let mut done = Vec::new();
        for (vault, vkey) in &vaults {
            let Some((_, seen)) = shown.iter().find(|(n, _)| n == vault.name()) else {
                continue;
            };
            let vkey = vkey.as_ref().expect("shown vaults were opened");
            let mut w = vault.write_in(&batch)?;
            let plan = coffer::store::team::plan(vault.name(), w.manifest(), vkey, &config);
            if plan.changes != seen.changes || plan.manifest_edited != seen.manifest_edited {
                return Err(CliError::new(format!(
                    "the recipients of vault {} changed while you were reviewing them; nothing was approved",
                    vault.name()
                ))
                .hint("run the command again to see the current changes"));
            }
            let outcome =
                w.set_recipients(vkey, &plan.desired, Time::now(), ctx.callbacks.clone())?;
            batch.stage(w)?;
            done.push((vault.name().clone(), outcome));
        }
        batch.commit()?;
        for (v, outcome) in &done {
            describe(ctx, v, outcome, "approved");
        }
    }
    if !unopened.is_empty() {
        ctx.ui.warn(format!(
            "you cannot open {}: any changes there need someone who can",
            unopened.join(", ")
        ));
    }
    Ok(())
}

pub fn rekey(ctx: &Ctx, args: RekeyArgs) -> CliResult {
    let store = ctx.store()?;
    let explicit = !args.vaults.is_empty();
    let names = target_vaults(&store, &args.vaults)?;
    // Finish an interrupted change first: it may have replaced vault keys.
    if store.recover()?.journal {
        ctx.ui.status("Finished an interrupted change");
    }
    let ids = ctx.identities()?;
    let vaults = open_all(&store, &names, &ids)?;
    let mut batch = store.batch()?;
    let mut done = Vec::new();
    let mut unopened = Vec::new();
    for (vault, vkey) in &vaults {
        let Some(vkey) = vkey else {
            unopened.push(vault.name().to_string());
            continue;
        };
        let mut w = vault.write_in(&batch)?;
        // Every rekey upgrades a format-1 vault; `--upgrade` only names it.
        let _ = args.upgrade;
        let outcome = w.rekey(
            vkey,
            args.new_key,
            args.reencrypt,
            Time::now(),
            ctx.callbacks.clone(),
        )?;
        batch.stage(w)?;
        done.push((vault.name().clone(), outcome));
    }
    batch.commit()?;
    for (v, outcome) in &done {
        match outcome {
            Outcome::Unchanged => ctx.ui.status(format!("Vault {v}: up to date")),
            o => describe(ctx, v, o, "rekeyed"),
        }
    }
    if !unopened.is_empty() {
        let msg = format!("you cannot open {}", unopened.join(", "));
        if explicit {
            return Err(CliError::new(msg));
        }
        ctx.ui.warn(format!("{msg}: skipped"));
    }
    Ok(())
}

#[derive(Serialize)]
struct RotationRow {
    vault: String,
    name: String,
    since: String,
    removed: Vec<String>,
}

pub fn rotation(ctx: &Ctx) -> CliResult {
    let store = ctx.store()?;
    let mut rows = Vec::new();
    for v in store.vault_names()? {
        let vault = store.vault(&v)?;
        let read = vault.read()?;
        for (n, e) in &read.manifest().secrets {
            if let Some(r) = &e.rotation {
                rows.push(RotationRow {
                    vault: v.to_string(),
                    name: n.to_string(),
                    since: r.since.to_string(),
                    removed: r.removed.iter().map(|n| n.to_string()).collect(),
                });
            }
        }
    }
    if ctx.out.json() {
        return ctx.out.json_doc(&rows);
    }
    if rows.is_empty() {
        ctx.ui.status("No secret is due for rotation.");
        return Ok(());
    }
    let now = Time::now();
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let since: Time = r.since.parse().expect("came from a Time");
            vec![
                r.vault.clone(),
                r.name.clone(),
                since.ago(now),
                r.removed.join(", "),
            ]
        })
        .collect();
    ctx.out
        .table(&["VAULT", "SECRET", "DUE SINCE", "REMOVED"], &table)?;
    ctx.ui.status("Set a new value with `coffer update -V VAULT -n SECRET` (after changing it where it is used).");
    Ok(())
}
