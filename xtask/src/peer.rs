//! Peers the benchmarks compare against, built from pinned sources on this
//! machine (`cargo xtask peer <name>`). Not part of `setup`: building
//! llama.cpp takes over 25 minutes on 2 cores.
//!
//! `llama-cpp`: llama.cpp's `llama-bench` and `llama-server` from the
//! `vendor/llama.cpp` tree of a pinned `llama-cpp-python` source package
//! (Debian 12 has no llama.cpp, and the registry's prebuilt wheels need a
//! newer glibc). Layout, all under target/tools/llama.cpp/:
//! - `download/`: the sdist, checked against a pinned SHA-256;
//! - `src/`: its `vendor/llama.cpp`, with a marker naming the version;
//! - `build/`: the cmake build tree (kept, so a rebuild is incremental);
//! - `bin/`: the two binaries and a stamp recording what they were built from.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use crate::run;

/// The pinned source package; its sdist carries llama.cpp in `vendor/llama.cpp`
/// (ggml 0.25.3).
const LLAMA_CPP_PYTHON_VERSION: &str = "0.3.36";
const LLAMA_CPP_PYTHON_SHA256: &str = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e";

/// The binaries built and installed into `bin/`.
const TARGETS: &[&str] = &["llama-bench", "llama-server"];

/// Written next to the binaries once they are installed; its content names
/// everything that decides the build, so changing any of it rebuilds.
const STAMP: &str = ".sextant-built-for";
/// Written into `src/` once extraction finished (a half-extracted tree has none).
const SOURCE_MARKER: &str = ".sextant-source";

pub fn main(root: &Path, args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        Some("llama-cpp") => llama_cpp(root),
        _ => bail!("usage: cargo xtask peer llama-cpp"),
    }
}

pub fn llama_cpp_dir(root: &Path) -> PathBuf {
    crate::setup::tools_dir(root).join("llama.cpp")
}

fn llama_cpp(root: &Path) -> Result<()> {
    let dir = llama_cpp_dir(root);
    let bin = dir.join("bin");
    let options = cmake_options();
    let stamp = format!("llama-cpp-python {LLAMA_CPP_PYTHON_VERSION}\n{}\n", options.join("\n"));
    let installed = TARGETS.iter().all(|name| bin.join(name).is_file());
    if installed && std::fs::read_to_string(bin.join(STAMP)).is_ok_and(|found| found == stamp) {
        eprintln!("xtask: llama.cpp {LLAMA_CPP_PYTHON_VERSION} already built in {}", bin.display());
        return Ok(());
    }
    check_build_tools()?;
    let sdist = download_sdist(&dir)?;
    let src = extract_vendor_tree(&dir, &sdist)?;
    let build = dir.join("build");

    let mut configure = niced("cmake");
    configure.arg("-S").arg(&src).arg("-B").arg(&build).args(&options);
    run(&mut configure)?;
    let jobs = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let mut compile = niced("cmake");
    compile.arg("--build").arg(&build).args(["--config", "Release", "-j", &jobs.to_string(), "--target"]);
    compile.args(TARGETS);
    run(&mut compile)?;

    std::fs::create_dir_all(&bin).with_context(|| format!("cannot create {}", bin.display()))?;
    // The old stamp goes first: a failure between here and the end leaves
    // none, so the next run redoes the installation.
    let _ = std::fs::remove_file(bin.join(STAMP));
    for name in TARGETS {
        let built = build.join("bin").join(name);
        let partial = bin.join(format!("{name}.partial"));
        std::fs::copy(&built, &partial).with_context(|| format!("cannot copy {}", built.display()))?;
        std::fs::rename(&partial, bin.join(name)).with_context(|| format!("cannot install {name}"))?;
    }
    sanity_check(&bin)?;
    std::fs::write(bin.join(STAMP), stamp).context("cannot write the build stamp")?;
    eprintln!("xtask: installed {} into {}", TARGETS.join(" and "), bin.display());
    Ok(())
}

/// The cmake cache options: a native CPU-only release build without
/// networking (no curl, no OpenSSL, no web UI fetched at build time).
fn cmake_options() -> Vec<String> {
    let mut options: Vec<String> = [
        "-DCMAKE_BUILD_TYPE=Release",
        "-DGGML_NATIVE=ON",
        "-DLLAMA_CURL=OFF",
        "-DLLAMA_OPENSSL=OFF",
        "-DLLAMA_USE_PREBUILT_UI=OFF",
        // Self-contained binaries: bin/ holds no libllama/libggml beside them.
        "-DBUILD_SHARED_LIBS=OFF",
        "-DLLAMA_BUILD_TESTS=OFF",
        "-DLLAMA_BUILD_EXAMPLES=OFF",
    ]
    .map(String::from)
    .to_vec();
    if cfg!(target_arch = "x86_64") {
        // Cloud VMs advertise AMX in CPUID without the kernel granting the
        // tile state, so -march=native enables ggml's AMX kernels and the
        // binary dies with SIGILL. GCC keeps an explicit -mno-* over what
        // -march=native turns on, whatever the order. Sextant has no AMX
        // kernels either, so the comparison stays like with like.
        let no_amx = "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16";
        options.push(format!("-DCMAKE_C_FLAGS={no_amx}"));
        options.push(format!("-DCMAKE_CXX_FLAGS={no_amx}"));
    }
    options
}

/// Lowest CPU priority: other builds on the machine keep theirs.
fn niced(program: &str) -> Command {
    if Command::new("nice").arg("true").status().is_ok_and(|status| status.success()) {
        let mut command = Command::new("nice");
        command.args(["-n", "19", program]);
        command
    } else {
        Command::new(program)
    }
}

/// Fails early, naming the Debian packages, when a build tool is missing.
fn check_build_tools() -> Result<()> {
    let runs = |program: &str, arg: &str| Command::new(program).arg(arg).output().is_ok_and(|out| out.status.success());
    let mut missing = Vec::new();
    if !runs("cmake", "--version") {
        missing.push(("cmake", "cmake"));
    }
    if !(runs("cc", "--version") || runs("gcc", "--version")) {
        missing.push(("a C compiler (cc)", "build-essential"));
    }
    if !(runs("c++", "--version") || runs("g++", "--version")) {
        missing.push(("a C++ compiler (c++)", "build-essential"));
    }
    if !(runs("make", "--version") || runs("ninja", "--version")) {
        missing.push(("make", "build-essential"));
    }
    if !Command::new("python3").args(["-m", "pip", "--version"]).output().is_ok_and(|out| out.status.success()) {
        missing.push(("pip (python3 -m pip)", "python3-pip"));
    }
    if missing.is_empty() {
        return Ok(());
    }
    let tools: Vec<&str> = missing.iter().map(|(tool, _)| *tool).collect();
    let mut packages: Vec<&str> = missing.iter().map(|(_, package)| *package).collect();
    packages.dedup();
    bail!(
        "building llama.cpp needs {} (missing); on Debian/Ubuntu: apt-get install -y {}",
        tools.join(", "),
        packages.join(" ")
    )
}

/// The pinned sdist, downloaded once and checked against its SHA-256.
fn download_sdist(dir: &Path) -> Result<PathBuf> {
    let download = dir.join("download");
    let sdist = download.join(format!("llama_cpp_python-{LLAMA_CPP_PYTHON_VERSION}.tar.gz"));
    if sdist.is_file() && sha256_of(&sdist)? == LLAMA_CPP_PYTHON_SHA256 {
        return Ok(sdist);
    }
    std::fs::create_dir_all(&download).with_context(|| format!("cannot create {}", download.display()))?;
    let _ = std::fs::remove_file(&sdist);
    let requirement = format!("llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION}");
    run(Command::new("python3")
        .args(["-m", "pip", "download", "--no-deps", "--no-binary", ":all:", &requirement, "-d"])
        .arg(&download))
    .context("cannot download the llama-cpp-python source package")?;
    let digest = sha256_of(&sdist)?;
    if digest != LLAMA_CPP_PYTHON_SHA256 {
        let _ = std::fs::remove_file(&sdist);
        bail!(
            "{} has SHA-256 {digest}, expected {LLAMA_CPP_PYTHON_SHA256}: the download is not the pinned source",
            sdist.display()
        );
    }
    Ok(sdist)
}

fn sha256_of(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(hasher.finalize().iter().map(|byte| format!("{byte:02x}")).collect())
}

/// `vendor/llama.cpp` of the sdist as `src/`, extracted into a scratch
/// directory first so an interrupted extraction never looks finished.
fn extract_vendor_tree(dir: &Path, sdist: &Path) -> Result<PathBuf> {
    let src = dir.join("src");
    let marker = format!("llama-cpp-python {LLAMA_CPP_PYTHON_VERSION}\n");
    if std::fs::read_to_string(src.join(SOURCE_MARKER)).is_ok_and(|found| found == marker) {
        return Ok(src);
    }
    let partial = dir.join("src.partial");
    remove_dir_if_present(&partial)?;
    std::fs::create_dir_all(&partial).with_context(|| format!("cannot create {}", partial.display()))?;
    let inner = format!("llama_cpp_python-{LLAMA_CPP_PYTHON_VERSION}/vendor/llama.cpp");
    // tar keeps the archive's modification times, so re-extracting the same
    // version leaves an existing build tree up to date.
    run(Command::new("tar").arg("-xzf").arg(sdist).arg("-C").arg(&partial).args(["--strip-components=3", &inner]))
        .context("cannot extract vendor/llama.cpp from the source package")?;
    if !partial.join("CMakeLists.txt").is_file() {
        bail!("{} has no vendor/llama.cpp/CMakeLists.txt", sdist.display());
    }
    // The sdist's `.git` names its parent's submodule directory, which does
    // not exist here; without it llama.cpp's build-info stops looking for git.
    let _ = std::fs::remove_file(partial.join(".git"));
    std::fs::write(partial.join(SOURCE_MARKER), marker).context("cannot mark the extracted source")?;
    remove_dir_if_present(&src)?;
    std::fs::rename(&partial, &src).with_context(|| format!("cannot move the source to {}", src.display()))?;
    Ok(src)
}

/// Removes a directory of ours under target/tools (never anything else).
fn remove_dir_if_present(path: &Path) -> Result<()> {
    match std::fs::remove_dir_all(path) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
            Err(error).with_context(|| format!("cannot remove {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// The installed binaries start on this CPU, and `llama-bench` computes on
/// an installed embedded model (the SIGILL of a wrong instruction set shows
/// up only once the kernels run, not in `--help`).
fn sanity_check(bin: &Path) -> Result<()> {
    for name in TARGETS {
        let binary = bin.join(name);
        let output =
            Command::new(&binary).arg("--help").output().with_context(|| format!("cannot run {}", binary.display()))?;
        if !output.status.success() {
            bail!("{} --help failed ({}): the build does not run on this machine", binary.display(), output.status);
        }
    }
    let models = crate::setup::models_dir();
    let mut installed = crate::setup::EMBEDDED_MODELS.iter().filter_map(|(_, file)| Some(models.as_ref()?.join(file)));
    let Some(model) = installed.find(|path| path.is_file()) else {
        eprintln!("xtask: no embedded model installed, so llama-bench was not tried on one");
        return Ok(());
    };
    let llama_bench = bin.join("llama-bench");
    let output = Command::new(&llama_bench)
        .arg("-m")
        .arg(&model)
        .args(["-p", "16", "-n", "4", "-r", "1", "-o", "json"])
        .output()
        .with_context(|| format!("cannot run {}", llama_bench.display()))?;
    if !output.status.success() {
        bail!(
            "{} on {} failed ({}): {}",
            llama_bench.display(),
            model.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).lines().last().unwrap_or("")
        );
    }
    eprintln!("xtask: llama-bench ran on {}", model.display());
    Ok(())
}
