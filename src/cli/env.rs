//! The environment, read once at start-up into [`Env`]. This is the only
//! file of coffer that reads it (`std::env::var`, `var_os`, `vars_os`,
//! `current_dir`): every command takes what it needs from [`Env`].

use std::ffi::OsString;
use std::path::PathBuf;

use secrecy::SecretString;

/// The environment, read once at start-up.
#[derive(Default)]
pub struct Env {
    pub cwd: PathBuf,
    pub home: Option<PathBuf>,
    pub xdg_config_home: Option<PathBuf>,
    /// `XDG_STATE_HOME` (absolute only): where the trust records live.
    pub xdg_state_home: Option<PathBuf>,
    pub coffer_store: Option<PathBuf>,
    pub coffer_age_key: Option<SecretString>,
    pub coffer_identity: Option<PathBuf>,
    pub user: Option<String>,
    /// `PATH`, to find `git` (absolute entries only).
    pub path: Option<OsString>,
    /// `COFFER_SHOW_VALUES`: decrypted values in `git diff`.
    pub show_values: bool,
    // `coffer edit` (src/cli/edit.rs): the editor, as git picks it
    // (`VISUAL`, else `EDITOR`, else `vi`), and where its plaintext file
    // may live (`XDG_RUNTIME_DIR`, a per-user memory file system).
    pub visual: Option<OsString>,
    pub editor: Option<OsString>,
    pub xdg_runtime_dir: Option<PathBuf>,
    /// `COFFER_SAFE_DIRECTORIES`: stores owned by another user that the
    /// user trusts anyway (colon-separated; `*` for any), as git's
    /// `safe.directory`.
    pub safe_directories: Vec<PathBuf>,
    /// `COFFER_LOCK_TIMEOUT`, in seconds: how long to wait for another
    /// coffer process before giving up (default 30).
    pub lock_timeout: Option<std::time::Duration>,
    /// Every variable, for the program `coffer run` starts (which then
    /// drops coffer's own key).
    pub vars: Vec<(OsString, OsString)>,
    /// What `coffer sync` reads.
    #[cfg(feature = "sync")]
    pub sync: SyncEnv,
}

#[cfg(feature = "sync")]
/// The environment `coffer sync` reads. Empty or blank values count as
/// unset.
#[derive(Default)]
pub struct SyncEnv {
    /// `TAILOR_PLATFORM_URL`, else `PLATFORM_URL` (the platform SDK's
    /// order: the older name still works there, so it does here).
    pub url: Option<String>,
    /// `TAILOR_PLATFORM_TOKEN`, trimmed.
    pub token: Option<SecretString>,
    /// `TAILOR_PLATFORM_WORKSPACE_ID`.
    pub workspace: Option<String>,
    /// `COFFER_SYNC_STATE_DIR`.
    pub state_dir: Option<PathBuf>,
    /// `XDG_STATE_HOME` (absolute only).
    pub xdg_state_home: Option<PathBuf>,
    /// `COFFER_SYNC_RETRY_BASE_MS`: the first retry's delay (tests make it
    /// short).
    pub retry_base_ms: Option<u64>,
}

#[cfg(feature = "sync")]
impl SyncEnv {
    fn read() -> SyncEnv {
        let var = |k: &str| std::env::var(k).ok().filter(|s| !s.trim().is_empty());
        SyncEnv {
            url: var("TAILOR_PLATFORM_URL").or_else(|| var("PLATFORM_URL")),
            token: var("TAILOR_PLATFORM_TOKEN").map(|t| SecretString::from(t.trim().to_owned())),
            workspace: var("TAILOR_PLATFORM_WORKSPACE_ID"),
            state_dir: var("COFFER_SYNC_STATE_DIR").map(PathBuf::from),
            xdg_state_home: var("XDG_STATE_HOME")
                .map(PathBuf::from)
                .filter(|p| p.is_absolute()),
            retry_base_ms: var("COFFER_SYNC_RETRY_BASE_MS").and_then(|s| s.parse().ok()),
        }
    }
}

fn non_empty(v: Option<OsString>) -> Option<OsString> {
    v.filter(|s| !s.is_empty())
}

impl Env {
    pub fn read() -> Env {
        let var = |k: &str| non_empty(std::env::var_os(k));
        Env {
            cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
            home: var("HOME").map(PathBuf::from),
            xdg_config_home: var("XDG_CONFIG_HOME")
                .map(PathBuf::from)
                .filter(|p| p.is_absolute()),
            xdg_state_home: var("XDG_STATE_HOME")
                .map(PathBuf::from)
                .filter(|p| p.is_absolute()),
            coffer_store: var("COFFER_STORE").map(PathBuf::from),
            coffer_age_key: std::env::var("COFFER_AGE_KEY")
                .ok()
                .filter(|s| !s.trim().is_empty())
                .map(SecretString::from),
            coffer_identity: var("COFFER_IDENTITY").map(PathBuf::from),
            lock_timeout: std::env::var("COFFER_LOCK_TIMEOUT")
                .ok()
                .and_then(|s| s.trim().parse::<f64>().ok())
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(std::time::Duration::from_secs_f64),
            user: std::env::var("USER")
                .ok()
                .or_else(|| std::env::var("LOGNAME").ok())
                .filter(|s| !s.is_empty()),
            path: var("PATH"),
            visual: var("VISUAL"),
            editor: var("EDITOR"),
            xdg_runtime_dir: var("XDG_RUNTIME_DIR").map(PathBuf::from),
            safe_directories: var("COFFER_SAFE_DIRECTORIES")
                .map(|v| {
                    std::env::split_paths(&v)
                        .filter(|p| !p.as_os_str().is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            show_values: var("COFFER_SHOW_VALUES")
                .is_some_and(|v| matches!(v.to_str(), Some("1" | "true" | "yes"))),
            vars: std::env::vars_os().collect(),
            #[cfg(feature = "sync")]
            sync: SyncEnv::read(),
        }
    }

    /// `$XDG_CONFIG_HOME/coffer`, else `~/.config/coffer`.
    pub fn config_dir(&self) -> Option<PathBuf> {
        self.xdg_config_home
            .clone()
            .or_else(|| self.home.as_ref().map(|h| h.join(".config")))
            .map(|d| d.join("coffer"))
    }

    /// Where this machine's trust records live (the vault keys it has
    /// seen): `$XDG_STATE_HOME/coffer/trust`, else
    /// `~/.local/state/coffer/trust`.
    pub fn trust_dir(&self) -> Option<PathBuf> {
        self.xdg_state_home
            .clone()
            .or_else(|| self.home.as_ref().map(|h| h.join(".local/state")))
            .map(|d| d.join("coffer/trust"))
    }

    /// The default identity file.
    pub fn default_identity(&self) -> Option<PathBuf> {
        self.config_dir().map(|d| d.join("identity.txt"))
    }
}

/// Leaves only the absolute entries of this process's `PATH`, once [`Env`]
/// has kept the original (for the program `coffer run` starts).
///
/// age looks plugin binaries (`age-plugin-NAME`) up on `PATH` itself, and
/// an empty entry or `.` there means the current directory: a repository
/// could plant `./age-plugin-yubikey` and have it run on a plain `get`.
/// coffer finds `git` in absolute entries only; this makes age do the same.
/// Called at start-up, before any thread exists, so changing the process's
/// environment races with nothing.
pub fn restrict_path(env: &Env) {
    let Some(path) = &env.path else { return };
    let absolute: Vec<PathBuf> = std::env::split_paths(path)
        .filter(|p| p.is_absolute())
        .collect();
    let Ok(joined) = std::env::join_paths(&absolute) else {
        return;
    };
    if &joined != path {
        // SAFETY: coffer is single-threaded at this point (see above), and
        // nothing holds a pointer into the environment.
        unsafe { std::env::set_var("PATH", joined) };
    }
}
