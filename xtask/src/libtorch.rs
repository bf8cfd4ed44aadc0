//! libtorch for tch 0.24: the PyPI `torch` 2.11.0 wheel, installed once per user into a virtual environment.
//!
//! Layout (`DEPT_HOME`, else `$XDG_CACHE_HOME/dept`, else `~/.cache/dept`):
//!   torch-2.11.0/                     complete install (a venv); only ever created by a rename
//!   torch-2.11.0.partial-<pid>/       an install in progress (or killed: removed by the next run)
//!   torch-2.11.0.lock                 held by the process installing
//! The checkout's `.libtorch` link points at `torch-2.11.0/lib/python3.X/site-packages/torch`, which
//! `.cargo/config.toml` hands to torch-sys as `LIBTORCH`.
//!
//! A machine that already has PyTorch 2.11 needs none of this: `LIBTORCH` pointed at that `torch` folder wins, is
//! checked (files and version) and nothing is installed.

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::process::{output, run, Failure};

/// The torch release whose libtorch tch 0.24 is written against (rust-bert reaches it through crates/tch-compat).
pub const TORCH_VERSION: &str = "2.11.0";
/// torch 2.11.0 publishes Linux wheels for CPython 3.10 to 3.14.
const PYTHON_MINORS: std::ops::RangeInclusive<u32> = 10..=14;

/// Makes sure libtorch is installed and linked into this checkout; returns the libtorch folder in use.
pub fn ensure(repo_root: &Path) -> Result<PathBuf, Failure> {
    let link = repo_root.join(".libtorch");
    if let Some(user_dir) = user_provided(&link) {
        check_libtorch_dir(&user_dir)
            .and_then(|()| check_version(&user_dir))
            .map_err(|why| {
                Failure::new(format!(
                    "LIBTORCH is set to {} but {why}; point it at a libtorch {TORCH_VERSION} (e.g. the `torch` \
                     folder of a PyTorch {TORCH_VERSION} install) or unset it to let xtask install one",
                    user_dir.display()
                ))
            })?;
        eprintln!(
            "xtask: using your LIBTORCH={} (libtorch {TORCH_VERSION}; nothing installed)",
            user_dir.display()
        );
        return Ok(user_dir);
    }

    let home = install_home()?;
    let install = home.join(format!("torch-{TORCH_VERSION}"));
    let torch_dir = match find_torch_dir(&install) {
        Some(dir) => dir,
        None => {
            install_into(&home, &install)?;
            find_torch_dir(&install).ok_or_else(|| {
                Failure::new(format!(
                    "installed {} but found no torch/lib/libtorch_cpu.so in it",
                    install.display()
                ))
            })?
        }
    };
    point_link_at(&link, &torch_dir)?;
    Ok(torch_dir)
}

/// Whether the libtorch in use is one the user brought (`LIBTORCH`), not xtask's install.
pub fn users_own(repo_root: &Path) -> bool {
    user_provided(&repo_root.join(".libtorch")).is_some()
}

/// A `LIBTORCH` the user set themselves (cargo sets ours, pointing at `.libtorch`, when it runs xtask).
fn user_provided(our_link: &Path) -> Option<PathBuf> {
    let value = std::env::var_os("LIBTORCH").filter(|v| !v.is_empty())?;
    let path = PathBuf::from(value);
    (path != our_link).then_some(path)
}

/// Why a folder is not a libtorch this workspace can build against. Worded to follow "LIBTORCH is set to DIR
/// but …".
#[derive(Debug, Clone, PartialEq, Eq)]
enum Unusable {
    /// This `lib/` folder has neither `libtorch_cpu.so` nor `libtorch_cpu.dylib`.
    NoCpuLibrary(PathBuf),
    /// This libtorch folder has no `include/` (torch-sys compiles against the headers).
    NoHeaders(PathBuf),
    /// A libtorch of another release (its version string).
    OtherRelease(String),
    /// This libtorch folder says nowhere which release it is.
    UnknownRelease(PathBuf),
}

impl fmt::Display for Unusable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unusable::NoCpuLibrary(lib) => {
                write!(f, "{} has no libtorch_cpu library", lib.display())
            }
            Unusable::NoHeaders(dir) => write!(f, "{} has no include/ folder", dir.display()),
            Unusable::OtherRelease(version) => write!(
                f,
                "it is libtorch {version}, and this workspace's tch 0.24 needs {TORCH_VERSION}"
            ),
            Unusable::UnknownRelease(dir) => write!(
                f,
                "its version cannot be read (no build-version or version.py beside {}/lib)",
                dir.display()
            ),
        }
    }
}

fn check_libtorch_dir(dir: &Path) -> Result<(), Unusable> {
    let lib = dir.join("lib");
    if !lib.join("libtorch_cpu.so").exists() && !lib.join("libtorch_cpu.dylib").exists() {
        return Err(Unusable::NoCpuLibrary(lib));
    }
    if !dir.join("include").is_dir() {
        return Err(Unusable::NoHeaders(dir.to_path_buf()));
    }
    Ok(())
}

/// tch 0.24 is generated from libtorch 2.11's operator list: another release fails to link or, worse, at run time.
fn check_version(dir: &Path) -> Result<(), Unusable> {
    match libtorch_version(dir) {
        Some(version) if release_of(&version) == TORCH_VERSION => Ok(()),
        Some(version) => Err(Unusable::OtherRelease(version)),
        None => Err(Unusable::UnknownRelease(dir.to_path_buf())),
    }
}

/// `2.11.0+cu130` -> `2.11.0`.
fn release_of(version: &str) -> &str {
    version.split('+').next().unwrap_or(version).trim()
}

/// The version of a libtorch folder: `build-version` in pytorch.org archives, `version.py` in PyPI wheels.
pub fn libtorch_version(dir: &Path) -> Option<String> {
    if let Ok(v) = fs::read_to_string(dir.join("build-version")) {
        return Some(v.trim().to_string());
    }
    let py = fs::read_to_string(dir.join("version.py")).ok()?;
    py.lines()
        .find_map(|l| l.strip_prefix("__version__"))
        .map(|rest| {
            rest.trim_start_matches([' ', '=', ':'])
                .trim_start_matches("str")
                .trim_start_matches([' ', '='])
                .trim()
                .trim_matches('\'')
                .trim_matches('"')
                .to_string()
        })
}

fn install_home() -> Result<PathBuf, Failure> {
    if let Some(dir) = std::env::var_os("DEPT_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(dir).join("dept"));
    }
    match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        Some(home) => Ok(PathBuf::from(home).join(".cache").join("dept")),
        None => Err(Failure::new(
            "neither DEPT_HOME, XDG_CACHE_HOME nor HOME is set: cannot choose where to install libtorch",
        )),
    }
}

/// `<venv>/lib/python3.X/site-packages/torch` when it holds a usable libtorch.
fn find_torch_dir(venv: &Path) -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = fs::read_dir(venv.join("lib"))
        .ok()?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .map(|p| p.join("site-packages").join("torch"))
        .collect();
    candidates.sort();
    candidates
        .into_iter()
        .find(|dir| check_libtorch_dir(dir).is_ok())
}

fn install_into(home: &Path, install: &Path) -> Result<(), Failure> {
    let python = check_prerequisites()?;
    fs::create_dir_all(home)
        .map_err(|e| Failure::new(format!("cannot create {}: {e}", home.display())))?;
    let _lock = InstallLock::acquire(home)?;
    // Another process may have finished the install while we waited for nothing: re-check under the lock.
    if find_torch_dir(install).is_some() {
        return Ok(());
    }
    remove_stale_partials(home);

    let partial = home.join(format!(
        "torch-{TORCH_VERSION}.partial-{}",
        std::process::id()
    ));
    eprintln!(
        "xtask: installing libtorch {TORCH_VERSION} (PyPI torch wheel with its CUDA 13 libraries, ~3 GB download, \
         ~5 GB on disk) into {}; this happens once per user",
        install.display()
    );
    let partial_str = partial.to_string_lossy().to_string();
    run(home, &python, &["-m", "venv", &partial_str]).map_err(|e| {
        Failure::new(format!(
            "{e}\ncreating a Python virtual environment failed: install the venv module \
             (Debian/Ubuntu: `apt-get install python3-venv`)"
        ))
    })?;
    let pip = partial.join("bin").join("pip");
    let torch_req = format!("torch=={TORCH_VERSION}");
    run(
        home,
        &pip.to_string_lossy(),
        &[
            "install",
            "--disable-pip-version-check",
            "--no-input",
            &torch_req,
        ],
    )
    .map_err(|e| {
        Failure::new(format!(
            "{e}\npip could not install {torch_req}; check that PyPI is reachable (pip honours \
             PIP_INDEX_URL for a mirror). The partial install {} is removed by the next run.",
            partial.display()
        ))
    })?;
    if find_torch_dir(&partial).is_none() {
        return Err(Failure::new(format!(
            "pip finished but {} holds no torch/lib/libtorch_cpu.so",
            partial.display()
        )));
    }
    fs::rename(&partial, install).map_err(|e| {
        Failure::new(format!(
            "cannot rename {} to {}: {e}",
            partial.display(),
            install.display()
        ))
    })?;
    eprintln!("xtask: libtorch {TORCH_VERSION} installed");
    Ok(())
}

/// Checks python3 (a version torch 2.11.0 has wheels for) and a C++ compiler; returns the python to use.
fn check_prerequisites() -> Result<String, Failure> {
    let python = std::env::var("DEPT_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let version = output(
        &python,
        &[
            "-c",
            "import sys; print(sys.version_info[0], sys.version_info[1])",
        ],
    )
    .ok_or_else(|| {
        Failure::new(format!(
            "`{python}` was not found; libtorch comes from the PyPI torch wheel, which needs Python 3.10-3.14 \
             (Debian/Ubuntu: `apt-get install python3 python3-venv`; or set DEPT_PYTHON to a python)"
        ))
    })?;
    let minor = match version.split_whitespace().collect::<Vec<_>>().as_slice() {
        ["3", minor] => minor.parse::<u32>().ok(),
        _ => None,
    };
    if !minor.is_some_and(|m| PYTHON_MINORS.contains(&m)) {
        return Err(Failure::new(format!(
            "`{python}` is Python {}, but torch {TORCH_VERSION} has wheels only for Python 3.10-3.14; \
             set DEPT_PYTHON to such a python",
            version.replace(' ', ".")
        )));
    }
    if output("c++", &["--version"]).is_none() && output("g++", &["--version"]).is_none() {
        return Err(Failure::new(
            "no C++ compiler (`c++`/`g++`) found; torch-sys compiles a C++ shim against libtorch \
             (Debian/Ubuntu: `apt-get install g++`)",
        ));
    }
    Ok(python)
}

/// Removes partial installs whose installing process is gone (killed or interrupted).
fn remove_stale_partials(home: &Path) {
    let prefix = format!("torch-{TORCH_VERSION}.partial-");
    let Ok(entries) = fs::read_dir(home) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(pid) = name.strip_prefix(&prefix) else {
            continue;
        };
        if pid.parse::<u32>().is_ok_and(process_alive) {
            continue;
        }
        eprintln!(
            "xtask: removing unfinished install {}",
            entry.path().display()
        );
        let _ = fs::remove_dir_all(entry.path());
    }
}

fn process_alive(pid: u32) -> bool {
    Command::new("kill")
        .args(["-0", &pid.to_string()])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Atomically (re)points `.libtorch` at the install, so a build never sees a missing link.
fn point_link_at(link: &Path, target: &Path) -> Result<(), Failure> {
    if fs::read_link(link).is_ok_and(|current| current == target) {
        return Ok(());
    }
    let tmp = link.with_extension(format!("tmp-{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    symlink(target, &tmp)
        .and_then(|()| fs::rename(&tmp, link))
        .map_err(|e| {
            Failure::new(format!(
                "cannot link {} -> {}: {e}",
                link.display(),
                target.display()
            ))
        })?;
    eprintln!("xtask: {} -> {}", link.display(), target.display());
    Ok(())
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

#[cfg(not(unix))]
fn symlink(_target: &Path, _link: &Path) -> std::io::Result<()> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "only Linux and macOS are supported",
    ))
}

/// An exclusive lock file holding the installer's pid; a lock left by a dead process is taken over.
struct InstallLock(PathBuf);

impl InstallLock {
    fn acquire(home: &Path) -> Result<Self, Failure> {
        let path = home.join(format!("torch-{TORCH_VERSION}.lock"));
        for _ in 0..2 {
            match fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut file) => {
                    let _ = write!(file, "{}", std::process::id());
                    return Ok(InstallLock(path));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder = fs::read_to_string(&path).unwrap_or_default();
                    match holder.trim().parse::<u32>() {
                        Ok(pid) if process_alive(pid) => {
                            return Err(Failure::new(format!(
                                "another install (pid {pid}) holds {}; wait for it to finish and run again",
                                path.display()
                            )))
                        }
                        _ => {
                            let _ = fs::remove_file(&path);
                        }
                    }
                }
                Err(e) => {
                    return Err(Failure::new(format!(
                        "cannot create {}: {e}",
                        path.display()
                    )))
                }
            }
        }
        Err(Failure::new(format!(
            "cannot take the install lock {}",
            path.display()
        )))
    }
}

impl Drop for InstallLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_libtorch_of_another_release_is_refused_by_version() {
        let dir = std::env::temp_dir().join(format!("xtask-version-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("version.py"), "__version__ = '2.11.0+cu130'\n").unwrap();
        assert_eq!(libtorch_version(&dir).as_deref(), Some("2.11.0+cu130"));
        assert!(check_version(&dir).is_ok());
        fs::write(dir.join("version.py"), "__version__: str = '2.4.1'\n").unwrap();
        let err = check_version(&dir).unwrap_err().to_string();
        assert!(
            err.contains("2.4.1") && err.contains(TORCH_VERSION),
            "{err}"
        );
        // A pytorch.org archive says it in build-version.
        fs::write(dir.join("build-version"), "2.11.0+cpu\n").unwrap();
        assert!(check_version(&dir).is_ok());
        fs::remove_dir_all(&dir).unwrap();
        assert!(check_version(&dir)
            .unwrap_err()
            .to_string()
            .contains("cannot be read"));
    }
}
