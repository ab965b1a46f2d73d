//! Starts a container's process: its own session (so signals reach its
//! children), its own mount namespace with the Pod's volumes bind-mounted
//! at their mountPaths, a clean environment, output appended to a log file.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

/// A bind mount: `source` on the host appears at `target` for the process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMount {
    pub source: PathBuf,
    pub target: PathBuf,
    pub read_only: bool,
}

/// Everything needed to start one container process.
#[derive(Debug, Clone)]
pub struct ProcessSpec {
    pub argv: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub working_dir: PathBuf,
    pub log_file: PathBuf,
    pub mounts: Vec<BindMount>,
}

#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("empty command")]
    EmptyCommand,
    #[error(
        "cannot create mount point {path}: {source} (a runner that is not root can only create mount points where its user may write: create it once as root, or run the runner as root)"
    )]
    MountPoint {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot open log file {path}: {source}")]
    Log {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot start {program:?}: {source}")]
    Exec {
        program: String,
        #[source]
        source: io::Error,
    },
    #[error("path {0:?} contains a NUL byte")]
    Nul(PathBuf),
}

fn cstring(path: &Path) -> Result<CString, SpawnError> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| SpawnError::Nul(path.to_owned()))
}

/// The mount steps, prepared before fork so the child only makes syscalls.
struct MountPlan {
    /// Non-root: enter a user namespace first, mapping our ids to root.
    user_ns: Option<(CString, CString)>,
    binds: Vec<(CString, CString, bool)>,
}

/// Creates `target` (a directory, or an empty file when `is_dir` is false)
/// and its missing parents; returns what it created, outermost first.
pub fn ensure_mount_point(target: &Path, is_dir: bool) -> io::Result<Vec<PathBuf>> {
    let mut missing: Vec<&Path> = target
        .ancestors()
        .take_while(|p| std::fs::symlink_metadata(p).is_err())
        .collect();
    missing.reverse();
    let mut created = Vec::new();
    for (i, path) in missing.iter().enumerate() {
        if i + 1 == missing.len() && !is_dir {
            std::fs::write(path, b"")?;
        } else {
            match std::fs::create_dir(path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        created.push(path.to_path_buf());
    }
    Ok(created)
}

/// Removes mount points `ensure_mount_point` created (innermost first),
/// leaving anything that is not empty.
pub fn remove_mount_points(created: &[PathBuf]) {
    for path in created.iter().rev() {
        match std::fs::symlink_metadata(path) {
            Ok(md) if md.is_dir() => {
                let _ = std::fs::remove_dir(path);
            }
            Ok(md) if md.len() == 0 => {
                let _ = std::fs::remove_file(path);
            }
            _ => {}
        }
    }
}

fn prepare_mounts(
    mounts: &[BindMount],
    created: &mut Vec<PathBuf>,
) -> Result<Option<MountPlan>, SpawnError> {
    if mounts.is_empty() {
        return Ok(None);
    }
    let mut binds = Vec::new();
    for m in mounts {
        // The mount point exists on the host (an empty directory or file);
        // only this process's namespace sees what is mounted on it.
        let is_dir = std::fs::metadata(&m.source)
            .map(|md| md.is_dir())
            .unwrap_or(true);
        let made =
            ensure_mount_point(&m.target, is_dir).map_err(|source| SpawnError::MountPoint {
                path: m.target.clone(),
                source,
            })?;
        created.extend(made);
        binds.push((cstring(&m.source)?, cstring(&m.target)?, m.read_only));
    }
    // SAFETY: geteuid/getuid/getgid have no preconditions.
    let (euid, uid, gid) = unsafe { (libc::geteuid(), libc::getuid(), libc::getgid()) };
    let user_ns = (euid != 0).then(|| {
        (
            CString::new(format!("0 {uid} 1")).unwrap_or_default(),
            CString::new(format!("0 {gid} 1")).unwrap_or_default(),
        )
    });
    Ok(Some(MountPlan { user_ns, binds }))
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Writes `data` to a /proc file with raw syscalls (async-signal-safe).
fn write_proc(path: &[u8], data: &std::ffi::CStr) -> io::Result<()> {
    // SAFETY: path is a NUL-terminated literal, data a valid CString; the
    // descriptor is closed on every path.
    unsafe {
        let fd = libc::open(path.as_ptr().cast(), libc::O_WRONLY);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let bytes = data.to_bytes();
        let n = libc::write(fd, bytes.as_ptr().cast(), bytes.len());
        libc::close(fd);
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Runs in the child between fork and exec: only syscalls on prepared data.
fn enter_sandbox(plan: Option<&MountPlan>) -> io::Result<()> {
    // SAFETY: plain syscalls on pre-built C strings; no allocation.
    unsafe {
        if libc::setsid() < 0 {
            return Err(io::Error::last_os_error());
        }
        // Die with the runner even if it is killed without a chance to stop us.
        check(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0))?;
        let Some(plan) = plan else { return Ok(()) };
        match &plan.user_ns {
            Some((uid_map, gid_map)) => {
                check(libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS))?;
                write_proc(b"/proc/self/setgroups\0", c"deny")?;
                write_proc(b"/proc/self/uid_map\0", uid_map)?;
                write_proc(b"/proc/self/gid_map\0", gid_map)?;
            }
            None => check(libc::unshare(libc::CLONE_NEWNS))?,
        }
        // Nothing mounted here propagates back to the host.
        check(libc::mount(
            c"none".as_ptr(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ))?;
        for (source, target, read_only) in &plan.binds {
            check(libc::mount(
                source.as_ptr(),
                target.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND | libc::MS_REC,
                std::ptr::null(),
            ))?;
            if *read_only {
                check(libc::mount(
                    source.as_ptr(),
                    target.as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY,
                    std::ptr::null(),
                ))?;
            }
        }
    }
    Ok(())
}

/// Resolves argv[0]: absolute paths as given, else through the host PATH.
fn program(argv0: &str, path_var: &str) -> PathBuf {
    if argv0.contains('/') {
        return PathBuf::from(argv0);
    }
    path_var
        .split(':')
        .map(|dir| Path::new(dir).join(argv0))
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(argv0))
}

/// Starts the process. The caller owns the child (it is killed on drop).
/// Mount points created on the host are added to `created` (also on error),
/// for removal once no process uses them.
pub fn spawn(
    spec: &ProcessSpec,
    created: &mut Vec<PathBuf>,
) -> Result<tokio::process::Child, SpawnError> {
    let argv0 = spec.argv.first().ok_or(SpawnError::EmptyCommand)?;
    let path_var = spec.env.get("PATH").cloned().unwrap_or_default();
    let plan = prepare_mounts(&spec.mounts, created)?;
    if let Some(parent) = spec.log_file.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    let open_log = || {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&spec.log_file)
            .map_err(|source| SpawnError::Log {
                path: spec.log_file.clone(),
                source,
            })
    };
    let (stdout, stderr) = (open_log()?, open_log()?);
    let mut cmd = tokio::process::Command::new(program(argv0, &path_var));
    cmd.arg0(argv0)
        .args(&spec.argv[1..])
        .env_clear()
        .envs(&spec.env)
        .current_dir(&spec.working_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(stderr))
        .kill_on_drop(true);
    // SAFETY: enter_sandbox only makes syscalls on data prepared above.
    unsafe {
        cmd.pre_exec(move || enter_sandbox(plan.as_ref()));
    }
    cmd.spawn().map_err(|source| SpawnError::Exec {
        program: argv0.clone(),
        source,
    })
}

/// Sends a signal to the process group the child leads.
pub fn signal_group(pid: u32, signal: libc::c_int) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill has no memory-safety preconditions.
        unsafe {
            libc::kill(-pid, signal);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(dir: &Path, argv: &[&str], mounts: Vec<BindMount>) -> ProcessSpec {
        ProcessSpec {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            env: [
                ("PATH".to_string(), "/usr/bin:/bin".to_string()),
                ("GREETING".to_string(), "hello".to_string()),
            ]
            .into_iter()
            .collect(),
            working_dir: dir.to_owned(),
            log_file: dir.join("logs/c.log"),
            mounts,
        }
    }

    #[tokio::test]
    async fn runs_with_clean_env_and_logs_output() {
        let dir = tempfile::tempdir().unwrap();
        let spec = spec(
            dir.path(),
            &[
                "sh",
                "-c",
                "echo $GREETING ${CARGO_MANIFEST_DIR:-clean}; exit 3",
            ],
            vec![],
        );
        let mut child = spawn(&spec, &mut Vec::new()).unwrap();
        let status = child.wait().await.unwrap();
        assert_eq!(status.code(), Some(3));
        let log = std::fs::read_to_string(dir.path().join("logs/c.log")).unwrap();
        assert_eq!(log, "hello clean\n");
    }

    #[tokio::test]
    async fn bind_mount_is_visible_only_inside() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir(&src).unwrap();
        std::fs::write(src.join("f"), "secret-file").unwrap();
        let target = dir.path().join("mnt/at/path");
        let mounts = vec![BindMount {
            source: src.clone(),
            target: target.clone(),
            read_only: true,
        }];
        let spec = spec(
            dir.path(),
            &[
                "sh",
                "-c",
                &format!(
                    "cat {}/f; touch {}/x || echo read-only",
                    target.display(),
                    target.display()
                ),
            ],
            mounts,
        );
        let mut created = Vec::new();
        let mut child = spawn(&spec, &mut created).unwrap();
        assert!(child.wait().await.unwrap().success());
        let log = std::fs::read_to_string(dir.path().join("logs/c.log")).unwrap();
        assert!(log.starts_with("secret-file"), "log: {log}");
        assert!(log.contains("read-only"), "log: {log}");
        assert!(
            !target.join("f").exists(),
            "the host sees only the empty mount point"
        );
        let mnt = dir.path().join("mnt");
        assert_eq!(created, vec![mnt.clone(), mnt.join("at"), target.clone()]);
        remove_mount_points(&created);
        assert!(!mnt.exists(), "created mount points removed");
    }

    #[test]
    fn mount_points_are_created_and_removed_but_never_what_existed() {
        let dir = tempfile::tempdir().unwrap();
        let existing = dir.path().join("existing");
        std::fs::create_dir(&existing).unwrap();
        let created = ensure_mount_point(&existing.join("a/file"), false).unwrap();
        assert_eq!(created, vec![existing.join("a"), existing.join("a/file")]);
        assert!(existing.join("a/file").is_file());
        assert!(ensure_mount_point(&existing, true).unwrap().is_empty());
        std::fs::write(existing.join("a/other"), "keep").unwrap();
        remove_mount_points(&created);
        assert!(!existing.join("a/file").exists());
        assert!(
            existing.join("a/other").exists(),
            "a non-empty directory stays"
        );
        assert!(existing.exists());
    }

    #[test]
    fn program_resolution() {
        assert_eq!(program("/x/y", "/bin"), PathBuf::from("/x/y"));
        assert_eq!(
            program("sh", "/nonexistent:/bin:/usr/bin")
                .file_name()
                .unwrap(),
            "sh"
        );
    }
}
