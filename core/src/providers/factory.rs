//! Builds the configured provider: `build(&config, Purpose::Chat)` for
//! ask/agent, `Purpose::Completion` for inline completion (which may use a
//! different provider/model, see `[completion]` in the config).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::anthropic::AnthropicProvider;
use super::embedded::{self, EmbeddedProvider};
use super::http::RemoteOptions;
use super::ollama::OllamaProvider;
use super::openai::OpenAiProvider;
use super::{Provider, ProviderError};
use crate::config::{Config, ProviderKind, Purpose, ResolvedProvider, DEFAULT_OPENAI_URL};

/// The provider for `purpose` as configured.
pub fn build(config: &Config, purpose: Purpose) -> Result<Arc<dyn Provider>, ProviderError> {
    build_resolved(&config.resolve(purpose))
}

/// The provider for already-resolved settings.
pub fn build_resolved(resolved: &ResolvedProvider) -> Result<Arc<dyn Provider>, ProviderError> {
    let options = || RemoteOptions {
        model: resolved.model.clone(),
        base_url: resolved.base_url.clone(),
        api_key: resolved.api_key.as_ref().map(|k| k.expose().to_string()),
        temperature: resolved.temperature,
        max_tokens: resolved.max_tokens,
        stream: resolved.stream,
        fim_mode: resolved.fim_mode,
        fim_family: resolved.fim_template,
        http: resolved.http.clone(),
    };
    match resolved.kind {
        ProviderKind::OpenAi => {
            if resolved.api_key.is_none() && resolved.base_url.trim_end_matches('/') == DEFAULT_OPENAI_URL {
                return Err(ProviderError::Config(
                    "the openai provider needs an API key: set OPENAI_API_KEY (or `api_key` in the config), \
                     or point `base_url` at an OpenAI-compatible server that needs none"
                        .to_string(),
                ));
            }
            Ok(Arc::new(OpenAiProvider::new(options())?))
        }
        ProviderKind::Anthropic => {
            if resolved.api_key.is_none() {
                return Err(ProviderError::Config(
                    "the anthropic provider needs an API key: set ANTHROPIC_API_KEY (or `api_key` in the config)"
                        .to_string(),
                ));
            }
            Ok(Arc::new(AnthropicProvider::new(options())?))
        }
        ProviderKind::Ollama => Ok(Arc::new(OllamaProvider::new(options())?)),
        ProviderKind::Embedded => {
            // An explicit file wins over a model name (`model = "smollm2-135m"`).
            let path = match &resolved.embedded_model_path {
                Some(path) => path.clone(),
                None => embedded::resolve_model_path(&resolved.model)?,
            };
            Ok(Arc::new(load_embedded_shared(path)?))
        }
    }
}

/// The last loaded embedded model, so the chat and completion providers (and
/// a config reload that keeps the same file) share one copy in memory.
static LAST_EMBEDDED: Mutex<Option<(PathBuf, EmbeddedProvider)>> = Mutex::new(None);

fn load_embedded_shared(path: PathBuf) -> Result<EmbeddedProvider, ProviderError> {
    let mut cached = LAST_EMBEDDED.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((cached_path, provider)) = cached.as_ref() {
        if *cached_path == path && path.is_file() {
            return Ok(provider.clone());
        }
    }
    let provider = EmbeddedProvider::load(&path)?;
    *cached = Some((path, provider.clone()));
    Ok(provider)
}
