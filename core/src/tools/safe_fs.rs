//! The one way Sextant reads and writes files inside a workspace: agent
//! tools, undo (agent tool, chat `/undo`, `sextant sessions undo`) and the
//! LSP server's result files all go through here.
//!
//! Checking a path and then opening it by name leaves a window in which a
//! component can be swapped for a symlink (by the agent's own shell, or by
//! anything else that writes the tree). So nothing here opens a workspace
//! path by name: every operation starts from a directory descriptor of the
//! workspace root and walks one component at a time with
//! `openat(O_NOFOLLOW | O_DIRECTORY)`, creating missing directories with
//! `mkdirat`. What is checked is what is used:
//! - no component may be a symlink (inside or outside the workspace);
//! - the file must be a regular file with a single hard link (a second link
//!   may be a name for a file outside the workspace);
//! - reads open with `O_NONBLOCK | O_NOFOLLOW` and `fstat` the descriptor,
//!   so a FIFO or device is refused without ever blocking, and are capped;
//! - writes go to a fresh temporary file in the same directory
//!   (`O_CREAT | O_EXCL | O_NOFOLLOW`), are fsynced and then `renameat`ed
//!   over the target: an atomic replace that keeps the old file's mode, and
//!   that replaces a name even if it was swapped for a link at the last
//!   moment (rename never follows the destination).

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

/// Files above this are not read (read_file, edit_file, undo checks).
pub const MAX_READ_BYTES: u64 = 16 * 1024 * 1024;

/// Why a workspace file could not be read or written. Paths are shown
/// relative to the workspace root.
#[derive(Debug, thiserror::Error)]
pub enum SafeFsError {
    #[error("{0} is not inside the workspace")]
    Outside(String),
    #[error("{} is a symbolic link; refusing to follow it", symlink_subject(path, component))]
    Symlink { path: String, component: String },
    #[error("{path}: {component} is not a directory")]
    NotADirectory { path: String, component: String },
    #[error("{0} is a {1}, not a regular file; refusing to use it")]
    NotRegular(String, &'static str),
    #[error("{0} has {1} hard links (another name may be a file outside the workspace); refusing to use it")]
    HardLinked(String, u64),
    #[error("{0} is {1} bytes, over the {2}-byte limit")]
    TooLarge(String, u64, u64),
    #[error("{0} does not exist")]
    NotFound(String),
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
}

fn symlink_subject(path: &str, component: &str) -> String {
    if path == component {
        path.to_string()
    } else {
        format!("{path}: {component}")
    }
}

impl SafeFsError {
    /// True for refusals on safety grounds (as opposed to a missing or
    /// oversized file, or an I/O failure).
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            SafeFsError::Outside(_)
                | SafeFsError::Symlink { .. }
                | SafeFsError::NotRegular(..)
                | SafeFsError::HardLinked(..)
        )
    }

    fn io(path: &str, errno: Errno) -> Self {
        SafeFsError::Io(path.to_string(), errno.into())
    }
}

/// What `write` did besides writing the file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Written {
    /// Directories created on the way (absolute, outermost first).
    pub created_dirs: Vec<PathBuf>,
    /// True when an existing file was replaced.
    pub replaced: bool,
}

/// Reads the regular file `path` (absolute, under `root`), at most `max_bytes`.
pub fn read(root: &Path, path: &Path, max_bytes: u64) -> Result<Vec<u8>, SafeFsError> {
    let target = Target::new(root, path)?;
    let parent = target.walk(false, &mut Vec::new())?;
    read_in(&parent, &target, max_bytes)
}

/// Reads many files under one root (grep), keeping the last directory
/// opened: files of one directory cost one walk. The kept descriptor is the
/// directory that was checked, so a link swapped in for it later is not
/// followed either.
pub struct Reader<'a> {
    root: &'a Path,
    last: Option<(Vec<std::ffi::OsString>, OwnedFd)>,
}

impl<'a> Reader<'a> {
    pub fn new(root: &'a Path) -> Self {
        Reader { root, last: None }
    }

    /// `read`, reusing the parent directory of the previous call when it is the same.
    pub fn read(&mut self, path: &Path, max_bytes: u64) -> Result<Vec<u8>, SafeFsError> {
        let target = Target::new(self.root, path)?;
        let same = self
            .last
            .as_ref()
            .is_some_and(|(dirs, _)| dirs.iter().map(|d| d.as_os_str()).eq(target.dirs.iter().copied()));
        if !same {
            let parent = target.walk(false, &mut Vec::new())?;
            self.last = Some((target.dirs.iter().map(|d| d.to_os_string()).collect(), parent));
        }
        match &self.last {
            Some((_, parent)) => read_in(parent, &target, max_bytes),
            None => Err(SafeFsError::NotFound(target.display)),
        }
    }
}

fn read_in(parent: &OwnedFd, target: &Target, max_bytes: u64) -> Result<Vec<u8>, SafeFsError> {
    let (mut file, stat) = open_regular(parent, target.name, &target.display)?;
    let size = stat.st_size.max(0) as u64;
    if size > max_bytes {
        return Err(SafeFsError::TooLarge(target.display.clone(), size, max_bytes));
    }
    let mut bytes = Vec::with_capacity(size as usize);
    // The file may grow while it is read; never take more than the cap.
    Read::take(&mut file, max_bytes + 1)
        .read_to_end(&mut bytes)
        .map_err(|err| SafeFsError::Io(target.display.clone(), err))?;
    if bytes.len() as u64 > max_bytes {
        return Err(SafeFsError::TooLarge(target.display.clone(), bytes.len() as u64, max_bytes));
    }
    Ok(bytes)
}

/// Like `read`, but a missing file (or missing parent directory) is `None`.
pub fn read_if_exists(root: &Path, path: &Path, max_bytes: u64) -> Result<Option<Vec<u8>>, SafeFsError> {
    match read(root, path, max_bytes) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(SafeFsError::NotFound(_)) => Ok(None),
        Err(err) => Err(err),
    }
}

/// Checks, without opening it, that `path` is either absent or a file that
/// `write` would replace; `Ok(true)` when it exists.
pub fn check_writable(root: &Path, path: &Path) -> Result<bool, SafeFsError> {
    let target = Target::new(root, path)?;
    let parent = match target.walk(false, &mut Vec::new()) {
        Ok(parent) => parent,
        Err(SafeFsError::NotFound(_)) => return Ok(false),
        Err(err) => return Err(err),
    };
    Ok(existing_target(&parent, &target)?.is_some())
}

/// Atomically replaces (or creates) the regular file `path` with `content`,
/// creating missing parent directories.
pub fn write(root: &Path, path: &Path, content: &[u8]) -> Result<Written, SafeFsError> {
    write_with_hook(root, path, content, || {})
}

/// `write`, calling `before_rename` between the last check and the rename
/// (tests swap files in there).
fn write_with_hook(
    root: &Path,
    path: &Path,
    content: &[u8],
    before_rename: impl FnOnce(),
) -> Result<Written, SafeFsError> {
    let target = Target::new(root, path)?;
    let mut created = Vec::new();
    let parent = target.walk(true, &mut created)?;
    let existing = existing_target(&parent, &target)?;
    let io = |errno: Errno| SafeFsError::io(&target.display, errno);

    // A new file gets the usual 0666 minus umask; a replaced one keeps its mode.
    let create_mode = if existing.is_some() { Mode::from_raw_mode(0o600) } else { Mode::from_raw_mode(0o666) };
    let (temp_name, temp_fd) = create_temp(&parent, create_mode).map_err(io)?;
    let cleanup = |err: SafeFsError| {
        let _ = rustix::fs::unlinkat(&parent, temp_name.as_os_str(), AtFlags::empty());
        err
    };
    if let Some(stat) = &existing {
        rustix::fs::fchmod(&temp_fd, Mode::from_raw_mode(stat.st_mode & 0o7777)).map_err(|e| cleanup(io(e)))?;
        // Keep the owner when we may (running as root on someone's checkout).
        if let Ok(mine) = rustix::fs::fstat(&temp_fd) {
            if mine.st_uid != stat.st_uid || mine.st_gid != stat.st_gid {
                let _ = rustix::fs::fchown(
                    &temp_fd,
                    Some(rustix::fs::Uid::from_raw(stat.st_uid)),
                    Some(rustix::fs::Gid::from_raw(stat.st_gid)),
                );
            }
        }
    }
    let mut file = std::fs::File::from(temp_fd);
    file.write_all(content).map_err(|err| cleanup(SafeFsError::Io(target.display.clone(), err)))?;
    file.sync_all().map_err(|err| cleanup(SafeFsError::Io(target.display.clone(), err)))?;
    drop(file);
    before_rename();
    rustix::fs::renameat(&parent, temp_name.as_os_str(), &parent, target.name).map_err(|e| cleanup(io(e)))?;
    // Make the rename durable; a failure here does not undo the write.
    let _ = rustix::fs::fsync(&parent);
    Ok(Written { created_dirs: created, replaced: existing.is_some() })
}

/// Removes the regular file `path`; `Ok(false)` when it did not exist.
pub fn remove_file(root: &Path, path: &Path) -> Result<bool, SafeFsError> {
    let target = Target::new(root, path)?;
    let parent = match target.walk(false, &mut Vec::new()) {
        Ok(parent) => parent,
        Err(SafeFsError::NotFound(_)) => return Ok(false),
        Err(err) => return Err(err),
    };
    if existing_target(&parent, &target)?.is_none() {
        return Ok(false);
    }
    match rustix::fs::unlinkat(&parent, target.name, AtFlags::empty()) {
        Ok(()) => Ok(true),
        Err(Errno::NOENT) => Ok(false),
        Err(errno) => Err(SafeFsError::io(&target.display, errno)),
    }
}

/// Removes the directory `path` if it is empty; `Ok(false)` when it was not
/// there or not empty.
pub fn remove_empty_dir(root: &Path, path: &Path) -> Result<bool, SafeFsError> {
    let target = Target::new(root, path)?;
    let parent = match target.walk(false, &mut Vec::new()) {
        Ok(parent) => parent,
        Err(SafeFsError::NotFound(_)) => return Ok(false),
        Err(err) => return Err(err),
    };
    match rustix::fs::unlinkat(&parent, target.name, AtFlags::REMOVEDIR) {
        Ok(()) => Ok(true),
        Err(Errno::NOENT | Errno::NOTEMPTY | Errno::EXIST) => Ok(false),
        Err(errno) => Err(SafeFsError::io(&target.display, errno)),
    }
}

/// A path split into the directories to walk from the root and a final name.
struct Target<'a> {
    root: &'a Path,
    dirs: Vec<&'a OsStr>,
    name: &'a OsStr,
    display: String,
}

impl<'a> Target<'a> {
    fn new(root: &'a Path, path: &'a Path) -> Result<Self, SafeFsError> {
        let relative = path.strip_prefix(root).map_err(|_| SafeFsError::Outside(path.display().to_string()))?;
        let display = relative.to_string_lossy().into_owned();
        let mut names = Vec::new();
        for component in relative.components() {
            match component {
                Component::Normal(name) => names.push(name),
                // Resolved paths never hold these; refuse rather than interpret them.
                _ => return Err(SafeFsError::Outside(path.display().to_string())),
            }
        }
        let Some(name) = names.pop() else {
            return Err(SafeFsError::NotRegular(".".into(), "directory"));
        };
        Ok(Target { root, dirs: names, name, display })
    }

    /// Opens the parent directory, one component at a time, never following
    /// a symlink. With `create`, missing directories are made (and recorded).
    fn walk(&self, create: bool, created: &mut Vec<PathBuf>) -> Result<OwnedFd, SafeFsError> {
        let dir_flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        // The root itself is canonical (Workspace::new), so it has no symlink to follow.
        let mut dir = rustix::fs::openat(rustix::fs::CWD, self.root, dir_flags, Mode::empty())
            .map_err(|errno| SafeFsError::Io(self.root.display().to_string(), errno.into()))?;
        let mut so_far = self.root.to_path_buf();
        for (index, name) in self.dirs.iter().enumerate() {
            so_far.push(name);
            let shown = || self.dirs[..=index].iter().map(|n| n.to_string_lossy()).collect::<Vec<_>>().join("/");
            let opened = match rustix::fs::openat(&dir, *name, dir_flags, Mode::empty()) {
                Err(Errno::NOENT) if create => {
                    match rustix::fs::mkdirat(&dir, *name, Mode::from_raw_mode(0o777)) {
                        Ok(()) => created.push(so_far.clone()),
                        // Someone made it meanwhile: fine, it is checked when opened.
                        Err(Errno::EXIST) => {}
                        Err(errno) => return Err(SafeFsError::io(&shown(), errno)),
                    }
                    rustix::fs::openat(&dir, *name, dir_flags, Mode::empty())
                }
                other => other,
            };
            dir = match opened {
                Ok(fd) => fd,
                Err(Errno::NOENT) => return Err(SafeFsError::NotFound(self.display.clone())),
                Err(Errno::LOOP | Errno::NOTDIR) => {
                    let is_link = rustix::fs::statat(&dir, *name, AtFlags::SYMLINK_NOFOLLOW)
                        .map(|st| FileType::from_raw_mode(st.st_mode) == FileType::Symlink)
                        .unwrap_or(false);
                    return Err(if is_link {
                        SafeFsError::Symlink { path: self.display.clone(), component: shown() }
                    } else {
                        SafeFsError::NotADirectory { path: self.display.clone(), component: shown() }
                    });
                }
                Err(errno) => return Err(SafeFsError::io(&shown(), errno)),
            };
        }
        Ok(dir)
    }
}

/// The final entry's status if it exists; refuses anything but a regular
/// file with one link.
fn existing_target(parent: &OwnedFd, target: &Target) -> Result<Option<rustix::fs::Stat>, SafeFsError> {
    match rustix::fs::statat(parent, target.name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(stat) => {
            check_regular(&stat, &target.display)?;
            Ok(Some(stat))
        }
        Err(Errno::NOENT) => Ok(None),
        Err(errno) => Err(SafeFsError::io(&target.display, errno)),
    }
}

fn check_regular(stat: &rustix::fs::Stat, display: &str) -> Result<(), SafeFsError> {
    let kind = match FileType::from_raw_mode(stat.st_mode) {
        FileType::RegularFile => None,
        FileType::Symlink => {
            return Err(SafeFsError::Symlink { path: display.to_string(), component: display.to_string() })
        }
        FileType::Directory => Some("directory"),
        FileType::Fifo => Some("FIFO (named pipe)"),
        FileType::Socket => Some("socket"),
        FileType::CharacterDevice => Some("character device"),
        FileType::BlockDevice => Some("block device"),
        FileType::Unknown => Some("special file"),
    };
    if let Some(kind) = kind {
        return Err(SafeFsError::NotRegular(display.to_string(), kind));
    }
    // nlink_t is u64 here but u32 on other targets.
    #[allow(clippy::unnecessary_cast)]
    let links = stat.st_nlink as u64;
    if links > 1 {
        return Err(SafeFsError::HardLinked(display.to_string(), links));
    }
    Ok(())
}

/// Opens a regular file for reading. The type is checked before opening (so
/// a device is never opened) and again on the descriptor (in case the name
/// was swapped in between); `O_NONBLOCK` keeps a FIFO from blocking.
fn open_regular(
    parent: &OwnedFd,
    name: &OsStr,
    display: &str,
) -> Result<(std::fs::File, rustix::fs::Stat), SafeFsError> {
    match rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(stat) => check_regular(&stat, display)?,
        Err(Errno::NOENT) => return Err(SafeFsError::NotFound(display.to_string())),
        Err(errno) => return Err(SafeFsError::io(display, errno)),
    }
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY;
    let fd = match rustix::fs::openat(parent, name, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::LOOP) => {
            return Err(SafeFsError::Symlink { path: display.to_string(), component: display.to_string() })
        }
        Err(Errno::NOENT) => return Err(SafeFsError::NotFound(display.to_string())),
        Err(errno) => return Err(SafeFsError::io(display, errno)),
    };
    let stat = rustix::fs::fstat(&fd).map_err(|errno| SafeFsError::io(display, errno))?;
    check_regular(&stat, display)?;
    Ok((std::fs::File::from(fd), stat))
}

/// Creates a fresh, exclusive temporary file in `dir`.
fn create_temp(dir: &OwnedFd, mode: Mode) -> Result<(std::ffi::OsString, OwnedFd), Errno> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let mut last = Errno::EXIST;
    for _ in 0..16 {
        let count = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!(".sextant-tmp-{}-{count}-{nanos:08x}", std::process::id());
        match rustix::fs::openat(dir.as_fd(), name.as_str(), flags, mode) {
            Ok(fd) => return Ok((OsStr::from_bytes(name.as_bytes()).to_os_string(), fd)),
            Err(Errno::EXIST) => last = Errno::EXIST,
            Err(errno) => return Err(errno),
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};

    use super::*;

    struct Fixture {
        _dir: tempfile::TempDir,
        root: PathBuf,
        canary: PathBuf,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = dir.path().canonicalize().expect("canonical");
        let root = base.join("ws");
        std::fs::create_dir_all(root.join("src")).expect("mkdir");
        std::fs::create_dir_all(base.join("outside")).expect("mkdir");
        let canary = base.join("outside/secret.txt");
        std::fs::write(&canary, "canary\n").expect("write");
        Fixture { _dir: dir, root, canary }
    }

    impl Fixture {
        fn canary_intact(&self) -> bool {
            std::fs::read_to_string(&self.canary).map(|t| t == "canary\n").unwrap_or(false)
        }
    }

    #[test]
    fn writes_create_nested_directories_and_read_back() {
        let f = fixture();
        let path = f.root.join("a/b/c.txt");
        let written = write(&f.root, &path, b"hello").expect("write");
        assert_eq!(written.created_dirs, vec![f.root.join("a"), f.root.join("a/b")]);
        assert!(!written.replaced);
        assert_eq!(read(&f.root, &path, 100).expect("read"), b"hello");
        assert!(write(&f.root, &path, b"again").expect("write").replaced);
        assert_eq!(std::fs::read(&path).expect("read"), b"again");
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(f.root.join("a/b")).expect("ls").filter_map(Result::ok).collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn a_symlink_in_a_middle_component_is_refused() {
        let f = fixture();
        let outside_dir = f.canary.parent().expect("parent").to_path_buf();
        symlink(&outside_dir, f.root.join("link")).expect("symlink");
        symlink(f.root.join("src"), f.root.join("inner")).expect("symlink");
        for path in [f.root.join("link/secret.txt"), f.root.join("link/new.txt"), f.root.join("inner/x.txt")] {
            let err = write(&f.root, &path, b"pwned").expect_err("through a link");
            assert!(matches!(err, SafeFsError::Symlink { .. }), "{err}");
            assert!(matches!(read(&f.root, &path, 100), Err(SafeFsError::Symlink { .. })));
        }
        assert!(f.canary_intact());
        assert!(!outside_dir.join("new.txt").exists());
        assert!(!f.root.join("src/x.txt").exists());
    }

    #[test]
    fn a_final_symlink_dangling_or_not_is_refused() {
        let f = fixture();
        symlink(&f.canary, f.root.join("a.txt")).expect("symlink");
        let dangling_target = f.canary.with_file_name("created-by-link.txt");
        symlink(&dangling_target, f.root.join("dangling.txt")).expect("symlink");
        for name in ["a.txt", "dangling.txt"] {
            let path = f.root.join(name);
            assert!(matches!(write(&f.root, &path, b"pwned"), Err(SafeFsError::Symlink { .. })));
            assert!(matches!(read(&f.root, &path, 100), Err(SafeFsError::Symlink { .. })));
            assert!(matches!(remove_file(&f.root, &path), Err(SafeFsError::Symlink { .. })));
        }
        assert!(f.canary_intact());
        assert!(!dangling_target.exists());
    }

    #[test]
    fn a_symlink_swapped_in_at_the_last_moment_is_never_followed() {
        let f = fixture();
        let path = f.root.join("src/a.txt");
        std::fs::write(&path, "mine\n").expect("write");
        // The checks have passed; now the name becomes a link to the canary.
        let written = write_with_hook(&f.root, &path, b"agent text\n", || {
            std::fs::remove_file(&path).expect("rm");
            symlink(&f.canary, &path).expect("symlink");
        })
        .expect("write");
        assert!(written.replaced);
        assert!(f.canary_intact());
        assert!(!std::fs::symlink_metadata(&path).expect("stat").file_type().is_symlink());
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "agent text\n");

        // A parent directory swapped for a link after the walk: the write
        // lands in the directory that was checked, never through the link.
        let moved = f.root.join("moved");
        let outside_dir = f.canary.parent().expect("parent").to_path_buf();
        write_with_hook(&f.root, &path, b"second\n", || {
            std::fs::rename(f.root.join("src"), &moved).expect("mv");
            symlink(&outside_dir, f.root.join("src")).expect("symlink");
        })
        .expect("write");
        assert!(f.canary_intact());
        assert!(!outside_dir.join("a.txt").exists());
        assert_eq!(std::fs::read_to_string(moved.join("a.txt")).expect("read"), "second\n");
    }

    #[test]
    fn the_reader_reuses_the_checked_directory_and_never_follows_a_swapped_link() {
        let f = fixture();
        std::fs::write(f.root.join("src/a.txt"), "a").expect("write");
        std::fs::write(f.root.join("src/b.txt"), "b").expect("write");
        std::fs::write(f.root.join("top.txt"), "top").expect("write");
        let mut reader = Reader::new(&f.root);
        assert_eq!(reader.read(&f.root.join("src/a.txt"), 10).expect("read"), b"a");
        // src/ is swapped for a link to the canary's directory: the kept
        // descriptor is the checked directory, a fresh walk refuses the link.
        std::fs::rename(f.root.join("src"), f.root.join("moved")).expect("mv");
        symlink(f.canary.parent().expect("parent"), f.root.join("src")).expect("symlink");
        std::fs::copy(&f.canary, f.canary.with_file_name("b.txt")).expect("copy");
        assert_eq!(reader.read(&f.root.join("src/b.txt"), 100).expect("read"), b"b");
        assert_eq!(reader.read(&f.root.join("top.txt"), 10).expect("read"), b"top");
        assert!(matches!(reader.read(&f.root.join("src/b.txt"), 100), Err(SafeFsError::Symlink { .. })));
    }

    #[test]
    fn hard_links_are_neither_read_nor_written() {
        let f = fixture();
        let path = f.root.join("linked.txt");
        std::fs::hard_link(&f.canary, &path).expect("hard link");
        assert!(matches!(read(&f.root, &path, 100), Err(SafeFsError::HardLinked(_, 2))));
        assert!(matches!(write(&f.root, &path, b"pwned"), Err(SafeFsError::HardLinked(_, 2))));
        assert!(matches!(check_writable(&f.root, &path), Err(SafeFsError::HardLinked(_, 2))));
        assert!(f.canary_intact());
    }

    #[test]
    fn fifos_are_refused_without_blocking() {
        let f = fixture();
        let path = f.root.join("pipe");
        rustix::fs::mknodat(rustix::fs::CWD, &path, FileType::Fifo, Mode::from_raw_mode(0o644), 0).expect("mkfifo");
        let started = std::time::Instant::now();
        assert!(matches!(read(&f.root, &path, 100), Err(SafeFsError::NotRegular(_, "FIFO (named pipe)"))));
        assert!(matches!(write(&f.root, &path, b"x"), Err(SafeFsError::NotRegular(..))));
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        assert!(matches!(read(&f.root, &f.root.join("src"), 100), Err(SafeFsError::NotRegular(_, "directory"))));
    }

    #[test]
    fn atomic_replace_keeps_the_mode_and_changes_the_inode() {
        let f = fixture();
        let path = f.root.join("run.sh");
        std::fs::write(&path, "#!/bin/sh\n").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o751)).expect("chmod");
        let before = std::fs::metadata(&path).expect("stat").ino();
        write(&f.root, &path, b"#!/bin/sh\necho hi\n").expect("write");
        let meta = std::fs::metadata(&path).expect("stat");
        assert_eq!(meta.permissions().mode() & 0o7777, 0o751);
        assert_ne!(meta.ino(), before, "replaced by rename, not written in place");
    }

    #[test]
    fn reads_are_capped_and_paths_must_be_under_the_root() {
        let f = fixture();
        let path = f.root.join("big.txt");
        std::fs::write(&path, vec![b'x'; 101]).expect("write");
        assert!(matches!(read(&f.root, &path, 100), Err(SafeFsError::TooLarge(_, 101, 100))));
        assert!(matches!(read(&f.root, &f.canary, 100), Err(SafeFsError::Outside(_))));
        assert!(matches!(
            read(&f.root, &f.root.join("src/../../outside/secret.txt"), 100),
            Err(SafeFsError::Outside(_))
        ));
        assert!(matches!(read(&f.root, &f.root.join("missing/x"), 100), Err(SafeFsError::NotFound(_))));
        assert_eq!(read_if_exists(&f.root, &f.root.join("missing.txt"), 100).expect("ok"), None);
    }

    #[test]
    fn removal_takes_only_files_and_empty_directories() {
        let f = fixture();
        let path = f.root.join("d/e/x.txt");
        write(&f.root, &path, b"x").expect("write");
        assert!(!remove_empty_dir(&f.root, &f.root.join("d/e")).expect("not empty"));
        assert!(remove_file(&f.root, &path).expect("rm"));
        assert!(!remove_file(&f.root, &path).expect("gone"));
        assert!(remove_empty_dir(&f.root, &f.root.join("d/e")).expect("rmdir"));
        assert!(remove_empty_dir(&f.root, &f.root.join("d")).expect("rmdir"));
        assert!(!f.root.join("d").exists());
    }
}
