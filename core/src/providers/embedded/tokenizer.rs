//! The model's byte-level BPE tokenizer, rebuilt from the vocabulary and
//! merges stored in the GGUF file (no tokenizer.json needed). The
//! pre-tokenizer follows `tokenizer.ggml.pre`: `qwen2` gets Qwen2's split
//! regex and NFC normalization (as its tokenizer.json), anything else the
//! GPT-2 byte-level split with single digits (SmolLM2).
//!
//! Invariant: control tokens (`<|im_start|>`, `<|im_end|>`, `<|fim_prefix|>`,
//! ...) are added as special tokens, so a ChatML or FIM prompt written as
//! text tokenizes to the same ids the model was trained on; decoding drops
//! them. User-defined tokens (Qwen's `<tool_call>`) are matched whole too,
//! but decoded as text, so a tool call survives into the reply.

use std::collections::HashMap;

use candle_core::quantized::gguf_file::Value;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::BPE;
use tokenizers::normalizers::unicode::NFC;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{AddedToken, SplitDelimiterBehavior, Tokenizer};

use super::EmbeddedError;

/// GGUF `tokenizer.ggml.token_type` values for tokens that must never be
/// split by BPE: 3 = control, 4 = user-defined.
const TOKEN_TYPE_CONTROL: i32 = 3;
const TOKEN_TYPE_USER_DEFINED: i32 = 4;

/// Qwen2's pre-tokenizer split (its tokenizer.json `Split` pattern): words
/// with one leading non-letter, single digits, punctuation runs with their
/// newlines, and whitespace runs.
const QWEN2_SPLIT: &str =
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

pub struct TextTokenizer {
    inner: Tokenizer,
    /// Token ids that end a turn (`<|im_end|>`, `<|endoftext|>`, the GGUF eos).
    pub end_of_turn: Vec<u32>,
}

fn string_array<'a>(metadata: &'a HashMap<String, Value>, key: &str) -> Result<Vec<&'a str>, EmbeddedError> {
    let values = metadata
        .get(key)
        .ok_or_else(|| EmbeddedError::Format(format!("GGUF metadata lacks `{key}`")))?
        .to_vec()
        .map_err(EmbeddedError::candle)?;
    values.iter().map(|value| value.to_string().map(String::as_str).map_err(EmbeddedError::candle)).collect()
}

impl TextTokenizer {
    pub fn from_gguf_metadata(metadata: &HashMap<String, Value>) -> Result<Self, EmbeddedError> {
        if let Some(model) = metadata.get("tokenizer.ggml.model") {
            let model = model.to_string().map_err(EmbeddedError::candle)?;
            if model != "gpt2" {
                return Err(EmbeddedError::Format(format!(
                    "unsupported tokenizer `{model}` (only byte-level BPE, `gpt2`, is supported)"
                )));
            }
        }
        let tokens = string_array(metadata, "tokenizer.ggml.tokens")?;
        let merges = string_array(metadata, "tokenizer.ggml.merges")?;
        let token_types: Vec<i32> = match metadata.get("tokenizer.ggml.token_type") {
            Some(value) => value
                .to_vec()
                .map_err(EmbeddedError::candle)?
                .iter()
                .map(|v| v.to_i32().map_err(EmbeddedError::candle))
                .collect::<Result<_, _>>()?,
            None => Vec::new(),
        };

        let vocab: tokenizers::models::bpe::Vocab =
            tokens.iter().enumerate().map(|(id, token)| (token.to_string(), id as u32)).collect();
        let merges = merges
            .iter()
            .map(|merge| {
                merge
                    .split_once(' ')
                    .map(|(left, right)| (left.to_string(), right.to_string()))
                    .ok_or_else(|| EmbeddedError::Format(format!("malformed BPE merge `{merge}`")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .build()
            .map_err(|err| EmbeddedError::Format(format!("cannot build the BPE tokenizer: {err}")))?;

        let mut inner = Tokenizer::new(bpe);
        let pre = match metadata.get("tokenizer.ggml.pre") {
            Some(value) => value.to_string().map_err(EmbeddedError::candle)?.as_str(),
            None => "default",
        };
        if pre == "qwen2" {
            let split = Split::new(SplitPattern::Regex(QWEN2_SPLIT.into()), SplitDelimiterBehavior::Isolated, false)
                .map_err(|err| EmbeddedError::Tokenizer(err.to_string()))?;
            inner.with_normalizer(Some(NFC));
            inner.with_pre_tokenizer(Some(Sequence::new(vec![
                split.into(),
                ByteLevel::new(false, false, false).into(),
            ])));
        } else {
            inner.with_pre_tokenizer(Some(Sequence::new(vec![
                Digits::new(true).into(),
                ByteLevel::new(false, true, true).into(),
            ])));
        }
        inner.with_decoder(Some(ByteLevelDecoder::default()));

        let added = |kind: i32, special: bool| -> Vec<AddedToken> {
            tokens
                .iter()
                .zip(token_types.iter())
                .filter(|(_, &token_kind)| token_kind == kind)
                .map(|(token, _)| AddedToken::from(token.to_string(), special).normalized(false))
                .collect()
        };
        inner.add_special_tokens(&added(TOKEN_TYPE_CONTROL, true));
        inner.add_tokens(&added(TOKEN_TYPE_USER_DEFINED, false));

        let mut end_of_turn: Vec<u32> =
            ["<|im_end|>", "<|endoftext|>"].iter().filter_map(|token| inner.token_to_id(token)).collect();
        if let Some(eos) = metadata.get("tokenizer.ggml.eos_token_id").and_then(|v| v.to_u32().ok()) {
            if !end_of_turn.contains(&eos) {
                end_of_turn.push(eos);
            }
        }
        Ok(TextTokenizer { inner, end_of_turn })
    }

    /// The id of a whole token such as `<|fim_prefix|>`, if the vocabulary has it.
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Token ids of `text`; special-token markup in `text` becomes its id.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, EmbeddedError> {
        let encoding = self.inner.encode_fast(text, false).map_err(|err| EmbeddedError::Tokenizer(err.to_string()))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Text of `ids`, special tokens left out.
    pub fn decode(&self, ids: &[u32]) -> Result<String, EmbeddedError> {
        self.inner.decode(ids, true).map_err(|err| EmbeddedError::Tokenizer(err.to_string()))
    }
}
