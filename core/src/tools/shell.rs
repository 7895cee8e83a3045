//! `run_shell`: commands run with `sh -c` in a bubblewrap jail.
//!
//! The jail (see [`JailLayout`]): a new user namespace with every capability
//! dropped (also when Sextant runs as root), new pid, network, IPC, UTS and
//! cgroup namespaces, nested user namespaces disabled where bwrap supports it,
//! a cleared environment with a small allowlist (no API keys), no network but
//! loopback, a private /tmp, /run and /var/tmp, and only the workspace
//! writable (its `.git` stays read-only: hooks would run outside the jail).
//! The read-only view is limited to what builds need: the system
//! directories (/usr, /bin, /sbin, /lib*, /opt, /etc with its secrets masked)
//! and toolchains under the home directory ([`HOME_TOOLCHAINS`]); the rest of
//! the home (~/.ssh, ~/.config, shell history...) and host sockets are not
//! there at all.
//!
//! Limits (both jailed and unjailed): a process count (a pids cgroup where
//! one can be created, else `RLIMIT_NPROC` above the user's current count;
//! the kernel never applies `RLIMIT_NPROC` to root), memory per process
//! (`RLIMIT_DATA`), file size (`RLIMIT_FSIZE`), CPU time, no core dumps, the
//! timeout and the output cap. When the command ends, everything it started
//! is killed: the pid namespace dies with its init, and the process group and
//! the cgroup are killed too.
//!
//! Without a usable jail (no bwrap, no user namespaces) the toolbox refuses
//! `run_shell` unless the user opted into unjailed execution
//! (`--dangerously-allow-unjailed-shell`); the limits and the kill still apply.

use std::ffi::OsString;
use std::io::Write as _;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::sync::CancellationToken;

/// How to get the jail, for messages.
pub const INSTALL_HINT: &str = "install bubblewrap (e.g. `apt-get install bubblewrap`) on a kernel that allows \
     unprivileged user namespaces";

/// The opt-in flag for running without a jail, for messages.
pub const UNJAILED_FLAG: &str = "--dangerously-allow-unjailed-shell";

/// How commands are isolated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// The bubblewrap jail described in the module docs.
    Bwrap,
    /// No jail: runs directly with cwd = workspace (only with the user's opt-in).
    None,
}

/// What `run_shell` does in this toolbox, for the system prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShellMode {
    /// Jailed; `read_only` lists what is readable besides the workspace.
    Jailed { read_only: Vec<String> },
    /// No jail, by the user's explicit choice.
    Unjailed,
    /// No jail available and no opt-in: `run_shell` is refused.
    Unavailable,
}

struct Probe {
    isolation: Isolation,
    /// Why there is no jail.
    problem: Option<String>,
    /// bwrap knows `--disable-userns` (0.8+).
    disable_userns: bool,
}

/// The jail's flags besides the filesystem: probed as they are used.
const NAMESPACE_ARGS: &[&str] = &[
    "--unshare-user",
    "--unshare-ipc",
    "--unshare-pid",
    "--unshare-net",
    "--unshare-uts",
    "--unshare-cgroup-try",
    "--cap-drop",
    "ALL",
    "--die-with-parent",
    "--new-session",
];

fn probe() -> &'static Probe {
    static PROBE: OnceLock<Probe> = OnceLock::new();
    PROBE.get_or_init(|| {
        let help = std::process::Command::new("bwrap").arg("--help").stdin(Stdio::null()).output();
        let help = match help {
            Ok(output) => String::from_utf8_lossy(&output.stdout).into_owned(),
            Err(_) => {
                return Probe {
                    isolation: Isolation::None,
                    problem: Some("bwrap (bubblewrap) is not installed".into()),
                    disable_userns: false,
                }
            }
        };
        let disable_userns = help.contains("--disable-userns");
        let mut args: Vec<&str> = NAMESPACE_ARGS.to_vec();
        if disable_userns {
            args.push("--disable-userns");
        }
        args.extend(["--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "--", "true"]);
        let result =
            std::process::Command::new("bwrap").args(&args).stdin(Stdio::null()).stdout(Stdio::null()).output();
        match result {
            Ok(output) if output.status.success() => {
                Probe { isolation: Isolation::Bwrap, problem: None, disable_userns }
            }
            Ok(output) => {
                let stderr = String::from_utf8_lossy(&output.stderr);
                Probe {
                    isolation: Isolation::None,
                    problem: Some(format!(
                        "bwrap cannot create the jail here (user namespaces unavailable?): {}",
                        stderr.trim().lines().next().unwrap_or("failed")
                    )),
                    disable_userns,
                }
            }
            Err(err) => Probe {
                isolation: Isolation::None,
                problem: Some(format!("bwrap cannot be started: {err}")),
                disable_userns,
            },
        }
    })
}

/// Whether the jail works here: bwrap installed and able to create a user
/// namespace with the jail's flags. Probed once per process.
pub fn detect_isolation() -> Isolation {
    probe().isolation
}

/// Why [`detect_isolation`] found no jail (`None` when there is one).
pub fn jail_problem() -> Option<&'static str> {
    probe().problem.as_deref()
}

// ---------------------------------------------------------------- the jail's view

/// Toolchains under the home directory that are visible read-only in the
/// jail (when they exist). Nothing else of the home is.
pub const HOME_TOOLCHAINS: &[&str] = &[
    ".cargo",
    ".rustup",
    ".pyenv",
    ".rbenv",
    ".nvm",
    ".volta",
    ".bun",
    ".deno",
    ".sdkman",
    ".ghcup",
    ".elan",
    ".local/bin",
    ".local/lib",
    "go/bin",
    "go/pkg/mod",
    ".m2/repository",
    ".gradle/caches",
    ".gradle/wrapper",
];

/// Files inside a toolchain that hold credentials: hidden in the jail.
const TOOLCHAIN_SECRETS: &[&str] = &["credentials", "credentials.toml"];

/// System paths visible read-only (symlinks such as /bin -> usr/bin are
/// recreated as symlinks).
const SYSTEM_PATHS: &[&str] =
    &["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt", "/nix/store"];

/// Secrets under /etc hidden even if their mode lets everyone read them.
const ETC_SECRETS: &[&str] = &[
    "/etc/shadow",
    "/etc/shadow-",
    "/etc/gshadow",
    "/etc/gshadow-",
    "/etc/sudoers",
    "/etc/sudoers.d",
    "/etc/security/opasswd",
    "/etc/ssl/private",
];

/// Workspace entries mounted read-only over the writable workspace (when
/// they exist and are not symlinks): what they hold runs outside the jail.
pub const READ_ONLY_IN_WORKSPACE: &[&str] = &[".git"];

/// Host variables passed into the jail (when set); everything else is cleared.
const ENV_ALLOWLIST: &[&str] = &[
    "PATH",
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "LC_MESSAGES",
    "TERM",
    "TZ",
    "USER",
    "LOGNAME",
    "CARGO_HOME",
    "RUSTUP_HOME",
    "RUSTUP_TOOLCHAIN",
    "GOPATH",
    "GOROOT",
    "JAVA_HOME",
    "PYENV_ROOT",
    "NVM_DIR",
    "VOLTA_HOME",
];

/// Everything the jail shows besides the workspace, decided once per process.
#[derive(Debug, Clone)]
pub struct JailLayout {
    /// (path, symlink target) for the system paths that exist.
    system: Vec<(PathBuf, Option<PathBuf>)>,
    /// Files (`false`) and directories (`true`) masked inside read-only binds.
    masks: Vec<(PathBuf, bool)>,
    /// HOME inside the jail: the user's home path on a private tmpfs, or /tmp/home.
    home: PathBuf,
    home_is_tmpfs: bool,
    /// Toolchain directories bound read-only at the same path.
    toolchains: Vec<PathBuf>,
    env: Vec<(String, String)>,
}

impl JailLayout {
    /// Looks at this machine: which system paths exist, what /etc hides,
    /// which toolchains are installed under `home`.
    pub fn discover(home: Option<&Path>, env: &dyn Fn(&str) -> Option<String>) -> JailLayout {
        let mut system = Vec::new();
        for path in SYSTEM_PATHS {
            let path = Path::new(path);
            match std::fs::symlink_metadata(path) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    if let Ok(target) = std::fs::read_link(path) {
                        system.push((path.to_path_buf(), Some(target)));
                    }
                }
                Ok(meta) if meta.is_dir() => system.push((path.to_path_buf(), None)),
                _ => {}
            }
        }
        let mut masks = secret_files_under(Path::new("/etc"));
        for secret in ETC_SECRETS {
            let path = Path::new(secret);
            if let Ok(meta) = std::fs::symlink_metadata(path) {
                if !meta.file_type().is_symlink() && !masks.iter().any(|(masked, _)| path.starts_with(masked)) {
                    masks.push((path.to_path_buf(), meta.is_dir()));
                }
            }
        }

        let usable_home = home.filter(|home| {
            home.is_absolute()
                && home.is_dir()
                && home.components().count() > 1
                && !SYSTEM_PATHS.iter().any(|sys| Path::new(sys).starts_with(home) || home.starts_with(sys))
        });
        let mut toolchains: Vec<PathBuf> = Vec::new();
        if let Some(home) = usable_home {
            for relative in HOME_TOOLCHAINS {
                let dir = home.join(relative);
                if dir.is_dir() {
                    toolchains.push(dir);
                }
            }
        }
        // Toolchains installed elsewhere by their variables (e.g. CARGO_HOME=/data/cargo).
        for variable in ["CARGO_HOME", "RUSTUP_HOME"] {
            if let Some(dir) = env(variable).map(PathBuf::from) {
                let already_visible = SYSTEM_PATHS.iter().any(|sys| dir.starts_with(sys)) || toolchains.contains(&dir);
                if dir.is_absolute() && dir.is_dir() && !already_visible {
                    toolchains.push(dir);
                }
            }
        }
        for toolchain in &toolchains {
            for secret in TOOLCHAIN_SECRETS {
                let path = toolchain.join(secret);
                if path.symlink_metadata().is_ok() {
                    masks.push((path, false));
                }
            }
        }
        let (jail_home, home_is_tmpfs) = match usable_home {
            Some(home) => (home.to_path_buf(), true),
            None => (PathBuf::from("/tmp/home"), false),
        };
        let mut jail_env = vec![
            ("HOME".to_string(), jail_home.to_string_lossy().into_owned()),
            ("TMPDIR".to_string(), "/tmp".to_string()),
        ];
        for name in ENV_ALLOWLIST {
            if let Some(value) = env(name) {
                jail_env.push((name.to_string(), value));
            }
        }
        if !jail_env.iter().any(|(name, _)| name == "PATH") {
            jail_env.push(("PATH".into(), "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin".into()));
        }
        JailLayout { system, masks, home: jail_home, home_is_tmpfs, toolchains, env: jail_env }
    }

    /// What is readable in the jail besides the workspace (for the prompt).
    pub fn read_only_summary(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .system
            .iter()
            .filter(|(_, link)| link.is_none())
            .map(|(path, _)| {
                if path == Path::new("/etc") {
                    "/etc (secrets such as /etc/shadow hidden)".to_string()
                } else {
                    path.display().to_string()
                }
            })
            .collect();
        out.extend(self.toolchains.iter().map(|dir| dir.display().to_string()));
        out
    }

    /// The environment commands see.
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    /// The HOME commands see.
    pub fn home(&self) -> &Path {
        &self.home
    }

    fn bwrap_args(&self, workspace_root: &Path, disable_userns: bool, command: &str) -> Vec<OsString> {
        let mut args: Vec<OsString> = NAMESPACE_ARGS.iter().map(OsString::from).collect();
        if disable_userns {
            args.push("--disable-userns".into());
        }
        let mut push = |items: &[&std::ffi::OsStr]| args.extend(items.iter().map(|s| s.to_os_string()));
        for (path, link) in &self.system {
            match link {
                Some(target) => push(&["--symlink".as_ref(), target.as_os_str(), path.as_os_str()]),
                None => push(&["--ro-bind".as_ref(), path.as_os_str(), path.as_os_str()]),
            }
        }
        push(&["--proc".as_ref(), "/proc".as_ref(), "--dev".as_ref(), "/dev".as_ref()]);
        for dir in ["/tmp", "/var/tmp", "/run"] {
            push(&["--tmpfs".as_ref(), dir.as_ref()]);
        }
        if self.home_is_tmpfs {
            push(&["--tmpfs".as_ref(), self.home.as_os_str()]);
        } else {
            push(&["--dir".as_ref(), self.home.as_os_str()]);
        }
        for dir in &self.toolchains {
            push(&["--ro-bind".as_ref(), dir.as_os_str(), dir.as_os_str()]);
        }
        for (path, is_dir) in &self.masks {
            if *is_dir {
                push(&["--tmpfs".as_ref(), path.as_os_str(), "--remount-ro".as_ref(), path.as_os_str()]);
            } else {
                push(&["--ro-bind".as_ref(), "/dev/null".as_ref(), path.as_os_str()]);
            }
        }
        let root = workspace_root.as_os_str();
        push(&["--bind".as_ref(), root, root]);
        // Hooks and config in .git run later outside the jail (the user's next
        // `git commit`): the repository metadata stays read-only in here.
        for name in READ_ONLY_IN_WORKSPACE {
            let path = workspace_root.join(name);
            let is_real = std::fs::symlink_metadata(&path).is_ok_and(|meta| !meta.file_type().is_symlink());
            if is_real {
                push(&["--ro-bind".as_ref(), path.as_os_str(), path.as_os_str()]);
            }
        }
        push(&["--chdir".as_ref(), root, "--clearenv".as_ref()]);
        for (name, value) in &self.env {
            push(&["--setenv".as_ref(), name.as_ref(), value.as_ref()]);
        }
        push(&["--".as_ref(), "sh".as_ref(), "-c".as_ref(), command.as_ref()]);
        args
    }
}

/// Entries under `dir` that not everyone may read (by convention secrets:
/// /etc/shadow, ssh host keys, ...). Directories are masked whole.
fn secret_files_under(dir: &Path) -> Vec<(PathBuf, bool)> {
    use std::os::unix::fs::PermissionsExt;
    let mut masks = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    let mut visited = 0usize;
    while let Some(current) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&current) else { continue };
        for entry in entries.flatten() {
            visited += 1;
            if visited > 50_000 {
                return masks;
            }
            let Ok(meta) = entry.path().symlink_metadata() else { continue };
            if meta.file_type().is_symlink() {
                continue;
            }
            let world_readable = meta.permissions().mode() & 0o004 != 0;
            if meta.is_dir() {
                if world_readable {
                    pending.push(entry.path());
                } else {
                    masks.push((entry.path(), true));
                }
            } else if meta.is_file() && !world_readable {
                masks.push((entry.path(), false));
            }
        }
    }
    masks.sort();
    masks
}

/// The layout of this process's jail (from HOME and the environment).
pub fn jail_layout() -> &'static JailLayout {
    static LAYOUT: OnceLock<JailLayout> = OnceLock::new();
    LAYOUT.get_or_init(|| {
        let home = std::env::var_os("HOME").filter(|h| !h.is_empty()).map(PathBuf::from);
        JailLayout::discover(home.as_deref(), &|name| std::env::var(name).ok())
    })
}

// ---------------------------------------------------------------- limits

/// Limits for one shell command.
#[derive(Debug, Clone, Copy)]
pub struct ShellLimits {
    pub timeout: Duration,
    /// Bytes kept of stdout and of stderr each (head and tail).
    pub output_cap: usize,
    /// Processes and threads the command may have at once.
    pub max_processes: u64,
    /// Data (heap) bytes per process (`RLIMIT_DATA`).
    pub max_memory_bytes: u64,
    /// Largest file a command may write (`RLIMIT_FSIZE`).
    pub max_file_bytes: u64,
}

const GIB: u64 = 1 << 30;

impl Default for ShellLimits {
    fn default() -> Self {
        ShellLimits {
            timeout: Duration::from_secs(120),
            output_cap: 16 * 1024,
            // Builds run a few hundred threads at most (cargo -j N, rustc and
            // test threads); a fork bomb stops here.
            max_processes: 512,
            // Half the machine per process, at most 16 GiB: enough for rustc
            // and linkers, and one runaway process cannot take all memory.
            max_memory_bytes: (physical_memory() / 2).clamp(GIB, 16 * GIB),
            max_file_bytes: 8 * GIB,
        }
    }
}

fn physical_memory() -> u64 {
    // SAFETY: sysinfo only writes into the struct it is given.
    let mut info: libc::sysinfo = unsafe { std::mem::zeroed() };
    if unsafe { libc::sysinfo(&mut info) } == 0 {
        (info.totalram as u64).saturating_mul(u64::from(info.mem_unit.max(1)))
    } else {
        8 * GIB
    }
}

/// How the process count is limited on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessLimitKind {
    /// A pids cgroup per command (exact, also for root).
    Cgroup,
    /// `RLIMIT_NPROC` set above the user's current process count.
    Rlimit,
    /// Root without a writable pids cgroup: the kernel exempts root from
    /// `RLIMIT_NPROC`, so only the timeout bounds a fork bomb.
    None,
}

/// Probes (once) which process-count limit commands get.
pub fn process_limit_kind() -> ProcessLimitKind {
    static KIND: OnceLock<ProcessLimitKind> = OnceLock::new();
    *KIND.get_or_init(|| match ProcessCgroup::create(16) {
        Some(_cgroup) => ProcessLimitKind::Cgroup,
        None if is_root() => ProcessLimitKind::None,
        None => ProcessLimitKind::Rlimit,
    })
}

fn is_root() -> bool {
    // SAFETY: getuid cannot fail.
    unsafe { libc::getuid() == 0 }
}

/// A pids cgroup holding one command (v2, or the v1 pids hierarchy).
struct ProcessCgroup {
    dir: PathBuf,
    /// `cgroup.procs`, opened before the fork; the child writes "0" to join.
    procs: std::fs::File,
    removed: bool,
}

impl ProcessCgroup {
    fn create(max_pids: u64) -> Option<ProcessCgroup> {
        static SEQUENCE: AtomicU64 = AtomicU64::new(0);
        let name = format!("sextant-{}-{}", std::process::id(), SEQUENCE.fetch_add(1, Ordering::Relaxed));
        for parent in cgroup_parents() {
            let dir = parent.join(&name);
            if std::fs::create_dir(&dir).is_err() {
                continue;
            }
            let configured = std::fs::OpenOptions::new()
                .write(true)
                .open(dir.join("pids.max"))
                .and_then(|mut file| file.write_all(max_pids.to_string().as_bytes()));
            let procs = std::fs::OpenOptions::new().write(true).open(dir.join("cgroup.procs"));
            match (configured, procs) {
                (Ok(()), Ok(procs)) => return Some(ProcessCgroup { dir, procs, removed: false }),
                _ => {
                    let _ = std::fs::remove_dir(&dir);
                }
            }
        }
        None
    }

    fn members(&self) -> Vec<i32> {
        std::fs::read_to_string(self.dir.join("cgroup.procs"))
            .map(|text| text.lines().filter_map(|line| line.trim().parse().ok()).collect())
            .unwrap_or_default()
    }

    fn kill_members(&self) {
        if std::fs::write(self.dir.join("cgroup.kill"), "1").is_ok() {
            return;
        }
        for pid in self.members() {
            // SAFETY: plain syscall; a stale pid only fails with ESRCH.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }

    /// Kills what is left and removes the cgroup once it is empty.
    async fn finish(mut self) {
        for _ in 0..200 {
            self.kill_members();
            if std::fs::remove_dir(&self.dir).is_ok() {
                self.removed = true;
                return;
            }
            // Killed processes leave the cgroup once they are reaped.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Drop tries once more.
    }
}

impl Drop for ProcessCgroup {
    fn drop(&mut self) {
        if !self.removed {
            self.kill_members();
            let _ = std::fs::remove_dir(&self.dir);
        }
    }
}

/// Where a pids cgroup may be created: under our own cgroup, then at the
/// root of the hierarchy (cgroup v2 first, then the v1 pids controller).
fn cgroup_parents() -> Vec<PathBuf> {
    let Ok(mountinfo) = std::fs::read_to_string("/proc/self/mountinfo") else { return Vec::new() };
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let mut parents = Vec::new();
    for line in mountinfo.lines() {
        let Some((before, after)) = line.split_once(" - ") else { continue };
        let mount_point = before.split(' ').nth(4).unwrap_or("");
        let mut fields = after.split(' ');
        let fs_type = fields.next().unwrap_or("");
        let options = fields.nth(1).unwrap_or("");
        let own_path = match fs_type {
            "cgroup2" => own.lines().find_map(|l| l.strip_prefix("0::")),
            "cgroup" if options.split(',').any(|o| o == "pids") => {
                own.lines().find_map(|l| l.split_once(':').map(|(_, r)| r).and_then(|r| r.strip_prefix("pids:")))
            }
            _ => continue,
        };
        let mount = PathBuf::from(mount_point);
        if let Some(path) = own_path {
            let path = path.trim().trim_start_matches('/');
            if !path.is_empty() {
                parents.push(mount.join(path));
            }
        }
        parents.push(mount);
    }
    parents
}

/// Tasks (processes and threads) whose real uid is `uid`: what `RLIMIT_NPROC` counts.
fn tasks_of_user(uid: u32) -> u64 {
    let Ok(entries) = std::fs::read_dir("/proc") else { return 0 };
    let mut total = 0;
    for entry in entries.flatten() {
        if !entry.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(status) = std::fs::read_to_string(entry.path().join("status")) else { continue };
        let field = |name: &str| status.lines().find_map(|l| l.strip_prefix(name)).map(str::trim);
        let real_uid = field("Uid:").and_then(|v| v.split_whitespace().next()).and_then(|v| v.parse::<u32>().ok());
        if real_uid == Some(uid) {
            total += field("Threads:").and_then(|v| v.parse::<u64>().ok()).unwrap_or(1);
        }
    }
    total
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
type Resource = libc::__rlimit_resource_t;
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
type Resource = libc::c_int;

/// The rlimits a command starts with.
fn rlimits(limits: &ShellLimits, nproc: Option<u64>) -> Vec<(Resource, u64)> {
    let cpus = std::thread::available_parallelism().map(|n| n.get() as u64).unwrap_or(1);
    // CPU seconds per process: all cores for the whole timeout, plus slack;
    // the wall-clock timeout normally ends the command first.
    let cpu = limits.timeout.as_secs().saturating_add(5).saturating_mul(cpus);
    let mut out = vec![
        (libc::RLIMIT_DATA as Resource, limits.max_memory_bytes),
        (libc::RLIMIT_FSIZE as Resource, limits.max_file_bytes),
        (libc::RLIMIT_CORE as Resource, 0),
        (libc::RLIMIT_CPU as Resource, cpu),
    ];
    if let Some(nproc) = nproc {
        out.push((libc::RLIMIT_NPROC as Resource, nproc));
    }
    out
}

/// Variables dropped from an unjailed command's environment (best effort:
/// without a jail the command can read the user's files anyway).
fn looks_like_credential(name: &str) -> bool {
    let name = name.to_ascii_uppercase();
    ["KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL"].iter().any(|part| name.contains(part))
}

// ---------------------------------------------------------------- running

/// What a finished (or killed) command produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellOutput {
    pub exit_code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
    pub cancelled: bool,
    pub isolation: Isolation,
}

impl ShellOutput {
    /// The text sent back to the model.
    pub fn render(&self) -> String {
        let mut text = String::new();
        if self.isolation == Isolation::None {
            text.push_str(
                "note: no jail (the user allowed unjailed commands); ran directly in the workspace directory\n",
            );
        }
        if self.timed_out {
            text.push_str("error: the command timed out and was killed\n");
        }
        if self.cancelled {
            text.push_str("error: the run was cancelled; the command was killed\n");
        }
        match self.exit_code {
            Some(code) => text.push_str(&format!("exit code: {code}\n")),
            None => text.push_str("exit code: none (killed by a signal)\n"),
        }
        if !self.stdout.is_empty() {
            text.push_str("stdout:\n");
            text.push_str(&self.stdout);
            if !self.stdout.ends_with('\n') {
                text.push('\n');
            }
        }
        if !self.stderr.is_empty() {
            text.push_str("stderr:\n");
            text.push_str(&self.stderr);
            if !self.stderr.ends_with('\n') {
                text.push('\n');
            }
        }
        text
    }
}

/// Runs `command` with `sh -c` inside the workspace, jailed or not as
/// `isolation` says. The deny list and the opt-in for unjailed commands are
/// NOT checked here; the toolbox does that first (and asks permission).
pub async fn run(
    workspace_root: &Path,
    command: &str,
    limits: ShellLimits,
    isolation: Isolation,
    cancel: &CancellationToken,
) -> std::io::Result<ShellOutput> {
    let mut cmd = base_command(workspace_root, command, isolation);
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    // Own process group, so the end of the command can kill its children too.
    cmd.process_group(0);

    let cgroup = apply_limits(&mut cmd, &limits);
    let mut child = cmd.spawn()?;
    let pid = child.id();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let cap = limits.output_cap;
    let stdout_task = tokio::spawn(read_capped(stdout, cap));
    let stderr_task = tokio::spawn(read_capped(stderr, cap));

    let mut timed_out = false;
    let mut cancelled = false;
    let status = tokio::select! {
        status = child.wait() => Some(status),
        _ = tokio::time::sleep(limits.timeout) => { timed_out = true; None }
        _ = cancel.cancelled() => { cancelled = true; None }
    };
    // Whatever the command left behind (background jobs) dies with it.
    if let Some(pid) = pid {
        kill_group(pid);
    }
    let status = match status {
        Some(status) => status?,
        None => {
            let _ = child.start_kill();
            child.wait().await?
        }
    };
    if let Some(cgroup) = cgroup {
        cgroup.finish().await;
    }
    // A process outside the group and cgroup (unjailed `setsid`) may still
    // hold the pipes open; do not wait for it forever.
    let stdout = join_reader(stdout_task).await;
    let stderr = join_reader(stderr_task).await;
    Ok(ShellOutput { exit_code: status.code(), stdout, stderr, timed_out, cancelled, isolation })
}

/// `sh -c command` in the workspace: inside bwrap with the jail's layout
/// and environment, or unjailed with credential-like variables removed.
fn base_command(workspace_root: &Path, command: &str, isolation: Isolation) -> tokio::process::Command {
    match isolation {
        Isolation::Bwrap => {
            let layout = jail_layout();
            let mut cmd = tokio::process::Command::new("bwrap");
            cmd.args(layout.bwrap_args(workspace_root, probe().disable_userns, command));
            // bwrap's own environment is visible as /proc/1/environ in the jail.
            cmd.env_clear().envs(layout.env.iter().map(|(k, v)| (k, v)));
            cmd
        }
        Isolation::None => {
            let mut cmd = tokio::process::Command::new("sh");
            cmd.args(["-c", command]).current_dir(workspace_root);
            for (name, _) in std::env::vars_os() {
                if looks_like_credential(&name.to_string_lossy()) {
                    cmd.env_remove(name);
                }
            }
            cmd
        }
    }
}

/// Puts the command in a fresh pids cgroup where one can be created (else
/// `RLIMIT_NPROC` above the user's current count, never for root) and sets
/// the resource limits, both between fork and exec. The cgroup, if any, is
/// returned for cleaning up after the command.
fn apply_limits(cmd: &mut tokio::process::Command, limits: &ShellLimits) -> Option<ProcessCgroup> {
    let cgroup = ProcessCgroup::create(limits.max_processes);
    let nproc = match (&cgroup, is_root()) {
        (Some(_), _) | (None, true) => None,
        // SAFETY: getuid cannot fail.
        (None, false) => Some(tasks_of_user(unsafe { libc::getuid() }).saturating_add(limits.max_processes)),
    };
    let rlimits = rlimits(limits, nproc);
    let cgroup_fd = cgroup.as_ref().map(|c| c.procs.as_raw_fd());
    // SAFETY: the closure runs between fork and exec and only makes
    // async-signal-safe system calls (write, setrlimit) on data prepared
    // before the fork; it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if let Some(fd) = cgroup_fd {
                if libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            for &(resource, value) in &rlimits {
                let limit = libc::rlimit { rlim_cur: value as libc::rlim_t, rlim_max: value as libc::rlim_t };
                if libc::setrlimit(resource, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    cgroup
}

async fn join_reader(task: tokio::task::JoinHandle<String>) -> String {
    let abort = task.abort_handle();
    match tokio::time::timeout(Duration::from_secs(5), task).await {
        Ok(joined) => joined.unwrap_or_default(),
        Err(_) => {
            abort.abort();
            "[output incomplete: a background process kept the output open]".to_string()
        }
    }
}

fn kill_group(pid: u32) {
    let Ok(pid) = i32::try_from(pid) else { return };
    // SAFETY: plain syscall; SIGKILL to the whole group (negative pid).
    unsafe { libc::kill(-pid, libc::SIGKILL) };
}

/// Reads a pipe to the end, keeping the first and last `cap / 2` bytes.
async fn read_capped(pipe: Option<impl AsyncRead + Unpin>, cap: usize) -> String {
    let Some(mut pipe) = pipe else { return String::new() };
    let half = cap / 2;
    let mut head: Vec<u8> = Vec::new();
    let mut tail: std::collections::VecDeque<u8> = std::collections::VecDeque::new();
    let mut dropped: usize = 0;
    let mut buf = [0u8; 8192];
    loop {
        let n = match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for &byte in &buf[..n] {
            if head.len() < half {
                head.push(byte);
            } else {
                tail.push_back(byte);
                if tail.len() > half {
                    tail.pop_front();
                    dropped += 1;
                }
            }
        }
    }
    let mut text = String::from_utf8_lossy(&head).into_owned();
    if dropped > 0 {
        text.push_str(&format!("\n[... {dropped} bytes omitted ...]\n"));
    }
    let tail: Vec<u8> = tail.into_iter().collect();
    text.push_str(&String::from_utf8_lossy(&tail));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jailed() -> bool {
        if detect_isolation() == Isolation::Bwrap {
            return true;
        }
        eprintln!("skipped: no jail here ({}); {INSTALL_HINT}", jail_problem().unwrap_or("unknown"));
        false
    }

    /// The jail keeps writes inside the workspace, has only loopback, no
    /// capabilities, a cleared environment and a masked /etc/shadow.
    #[tokio::test]
    async fn jail_confines_writes_network_capabilities_and_environment() {
        if !jailed() {
            return;
        }
        let workspace = tempfile::tempdir().expect("tempdir");
        let outside = tempfile::tempdir().expect("tempdir");
        let root = workspace.path().canonicalize().expect("canonical");
        let target = outside.path().join("escaped.txt");
        let command = format!(
            "echo inside > inside.txt; echo out > {} 2>/dev/null; tail -n +3 /proc/net/dev | wc -l; \
             grep CapEff /proc/self/status; env | sort; wc -c < /etc/shadow",
            target.display()
        );
        let cancel = CancellationToken::new();
        let out = run(&root, &command, ShellLimits::default(), Isolation::Bwrap, &cancel).await.expect("run");
        let text = out.render();
        assert_eq!(std::fs::read_to_string(root.join("inside.txt")).expect("inside"), "inside\n", "{text}");
        assert!(!target.exists(), "the jail let a write escape: {text}");
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(lines.first().map(|l| l.trim()), Some("1"), "only loopback in the jail: {text}");
        assert!(out.stdout.contains("CapEff:\t0000000000000000"), "{text}");
        let names: Vec<&str> = out.stdout.lines().filter_map(|l| l.split_once('=').map(|(n, _)| n)).collect();
        for name in &names {
            let shell_own = ["HOME", "TMPDIR", "PWD", "OLDPWD", "SHLVL", "_"];
            assert!(shell_own.contains(name) || ENV_ALLOWLIST.contains(name), "{name} leaked into the jail: {text}");
        }
        assert!(names.contains(&"PATH") && names.contains(&"HOME"), "{text}");
        if Path::new("/etc/shadow").exists() {
            // Masked by /dev/null on a nodev mount: opening it fails.
            let masked = out.stderr.contains("/etc/shadow: Permission denied") || lines.last() == Some(&"0");
            assert!(masked, "/etc/shadow is masked: {text}");
        }
    }

    #[tokio::test]
    async fn git_metadata_is_read_only_in_the_jail() {
        if !jailed() {
            return;
        }
        let workspace = tempfile::tempdir().expect("tempdir");
        let root = workspace.path().canonicalize().expect("canonical");
        std::fs::create_dir_all(root.join(".git/hooks")).expect("mkdir");
        std::fs::write(root.join(".git/config"), "[core]\n").expect("write");
        let command = "echo 'touch /tmp/pwned' > .git/hooks/pre-commit; echo hook=$?; \
                       echo '[core] fsmonitor = evil' >> .git/config; echo config=$?; echo ok > src.txt; echo src=$?";
        let cancel = CancellationToken::new();
        let out = run(&root, command, ShellLimits::default(), Isolation::Bwrap, &cancel).await.expect("run");
        let text = out.render();
        assert!(text.contains("hook=") && !text.contains("hook=0") && !text.contains("config=0"), "{text}");
        assert!(text.contains("src=0") && root.join("src.txt").exists(), "{text}");
        assert!(!root.join(".git/hooks/pre-commit").exists(), "{text}");
        assert_eq!(std::fs::read_to_string(root.join(".git/config")).expect("config"), "[core]\n");
    }

    #[tokio::test]
    async fn background_processes_die_with_the_command() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().canonicalize().expect("canonical");
        let cancel = CancellationToken::new();
        let mut modes = vec![Isolation::None];
        if jailed() {
            modes.push(Isolation::Bwrap);
        }
        for isolation in modes {
            let marker = root.join(format!("late-{isolation:?}.txt"));
            let command = format!("(sleep 1; echo late > {}) & echo started", marker.display());
            let out = run(&root, &command, ShellLimits::default(), isolation, &cancel).await.expect("run");
            assert_eq!(out.stdout.trim(), "started", "{}", out.render());
            tokio::time::sleep(Duration::from_millis(1500)).await;
            assert!(!marker.exists(), "{isolation:?}: a background process outlived its command");
        }
    }

    #[tokio::test]
    async fn limits_apply_jailed_and_unjailed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().canonicalize().expect("canonical");
        let cancel = CancellationToken::new();
        let limits = ShellLimits { max_memory_bytes: 3 * GIB, max_file_bytes: 1 << 20, ..ShellLimits::default() };
        let mut modes = vec![Isolation::None];
        if jailed() {
            modes.push(Isolation::Bwrap);
        }
        for isolation in modes {
            // ulimit prints KiB (-d) and 512-byte blocks (-f) in dash.
            let out = run(
                &root,
                "ulimit -d; ulimit -c; head -c 2000000 /dev/zero > big; wc -c < big",
                limits,
                isolation,
                &cancel,
            )
            .await
            .expect("run");
            let lines: Vec<&str> = out.stdout.lines().map(str::trim).collect();
            assert_eq!(lines.first(), Some(&"3145728"), "{isolation:?}: {}", out.render());
            assert_eq!(lines.get(1), Some(&"0"), "{isolation:?}: {}", out.render());
            assert_eq!(
                lines.get(2),
                Some(&"1048576"),
                "{isolation:?}: the file stopped at the size limit: {}",
                out.render()
            );
        }
    }

    #[tokio::test]
    async fn runs_in_workspace_with_cap_and_timeout() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().canonicalize().expect("canonical");
        let cancel = CancellationToken::new();
        let limits = ShellLimits { timeout: Duration::from_secs(60), output_cap: 64, ..ShellLimits::default() };
        let out = run(&root, "pwd; seq 1 1000", limits, Isolation::None, &cancel).await.expect("run");
        assert_eq!(out.exit_code, Some(0));
        assert!(out.stdout.starts_with(&root.to_string_lossy()[..20.min(root.to_string_lossy().len())]));
        assert!(out.stdout.contains("bytes omitted"));
        assert!(out.stdout.trim_end().ends_with("1000"));
        assert!(out.render().starts_with("note: no jail"));

        let mut modes = vec![Isolation::None];
        if jailed() {
            modes.push(Isolation::Bwrap);
        }
        for isolation in modes {
            let limits =
                ShellLimits { timeout: Duration::from_millis(300), output_cap: 1024, ..ShellLimits::default() };
            let started = std::time::Instant::now();
            let out = run(&root, "sleep 30 & sleep 30", limits, isolation, &cancel).await.expect("run");
            assert!(out.timed_out);
            assert!(out.render().contains("timed out"));
            // Killed, including the background sleep (not left holding the pipes).
            assert!(started.elapsed() < Duration::from_secs(25), "{isolation:?} took {:?}", started.elapsed());
        }
    }

    #[test]
    fn layout_hides_the_home_but_shows_toolchains() {
        let home = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(home.path().join(".cargo/bin")).expect("mkdir");
        std::fs::write(home.path().join(".cargo/credentials.toml"), "token").expect("write");
        std::fs::create_dir_all(home.path().join(".ssh")).expect("mkdir");
        let env = |name: &str| match name {
            "PATH" => Some("/usr/bin".to_string()),
            "OPENAI_API_KEY" => Some("sk-secret".to_string()),
            _ => None,
        };
        let layout = JailLayout::discover(Some(home.path()), &env);
        assert_eq!(layout.home(), home.path());
        assert_eq!(layout.toolchains, vec![home.path().join(".cargo")]);
        assert!(layout.masks.contains(&(home.path().join(".cargo/credentials.toml"), false)));
        let names: Vec<&str> = layout.env().iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["HOME", "TMPDIR", "PATH"]);
        let args = layout.bwrap_args(Path::new("/work/ws"), true, "true");
        let args: Vec<String> = args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
        let joined = args.join(" ");
        assert!(
            joined.contains("--unshare-user") && joined.contains("--cap-drop ALL") && joined.contains("--clearenv")
        );
        assert!(!joined.contains(".ssh") && !joined.contains("sk-secret"), "{joined}");
        // The workspace is bound last, so nothing masks it.
        let bind = args.iter().rposition(|a| a == "--bind").expect("bind");
        assert_eq!(args[bind + 1], "/work/ws");
        assert!(args[..bind].iter().all(|a| a != "--bind"));
        // A home that is not usable falls back to a private /tmp/home.
        let layout = JailLayout::discover(Some(Path::new("/")), &env);
        assert_eq!(layout.home(), Path::new("/tmp/home"));
    }
}
