//! Helpers every command uses: where the repository and cargo's output are, running programs with
//! their command line echoed, finding programs on PATH, and copying directory trees.

use anyhow::{bail, Context, Result};
use std::{
    env, fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Command,
};

/// The repository root: the workspace that holds this crate.
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask/ sits one level below the repository root")
        .to_path_buf()
}

/// Cargo's target directory: `CARGO_TARGET_DIR` when set, else `<root>/target`.
pub fn target_dir() -> PathBuf {
    match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => project_root().join(dir),
        None => project_root().join("target"),
    }
}

/// The cargo that started us (`cargo xtask` sets `CARGO`), so nested builds use the same
/// toolchain; plain `cargo` otherwise. Runs in the repository root.
pub fn cargo() -> Command {
    let mut cmd = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(project_root());
    cmd
}

/// A path made absolute against the directory `cargo xtask` was started in.
pub fn absolute(path: &Path) -> Result<PathBuf> {
    Ok(env::current_dir()
        .context("no current directory")?
        .join(path))
}

/// Runs `cmd` with the terminal as its stdio after echoing it; fails if it exits non-zero.
pub fn run(cmd: &mut Command) -> Result<()> {
    let line = describe(cmd);
    eprintln!("$ {line}");
    let status = cmd
        .status()
        .with_context(|| format!("cannot start `{line}`"))?;
    if !status.success() {
        bail!("`{line}` failed ({status})");
    }
    Ok(())
}

/// Runs `cmd` quietly and returns its stdout, or `None` when it cannot start or exits non-zero.
pub fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd.stdin(std::process::Stdio::null()).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `program arg arg…`, as echoed before a run and named in errors.
pub fn describe(cmd: &Command) -> String {
    let program = cmd.get_program();
    // `cargo()` runs the toolchain's cargo by its full path; echo it as plain `cargo`.
    let mut line = if env::var_os("CARGO").is_some_and(|cargo| cargo == program) {
        "cargo".to_string()
    } else {
        program.to_string_lossy().into_owned()
    };
    for arg in cmd.get_args() {
        line.push(' ');
        line.push_str(&arg.to_string_lossy());
    }
    line
}

/// The first executable file called `program` in a directory of PATH.
pub fn find_in_path(program: &str) -> Option<PathBuf> {
    env::split_paths(&env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|path| {
            fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// The Chromium the tests and benchmarks drive: `$CHROMIUM`, else `chromium` on PATH, else
/// Debian's path.
pub fn chromium() -> PathBuf {
    env::var_os("CHROMIUM").map(PathBuf::from).or_else(|| find_in_path("chromium")).unwrap_or_else(|| "/usr/bin/chromium".into())
}

/// Copies the tree `from` into `to` (created if needed). Refuses to overwrite a file, so that a
/// name clash between two sources is an error instead of one silently winning.
/// Returns the number of files copied.
pub fn copy_tree(from: &Path, to: &Path) -> Result<usize> {
    fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    let mut count = 0;
    let entries = fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))?;
    for entry in entries {
        let entry = entry?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type()?.is_dir() {
            count += copy_tree(&src, &dst)?;
        } else if dst.exists() {
            bail!("{} would overwrite {}", src.display(), dst.display());
        } else {
            fs::copy(&src, &dst)
                .with_context(|| format!("cannot copy {} to {}", src.display(), dst.display()))?;
            count += 1;
        }
    }
    Ok(count)
}
