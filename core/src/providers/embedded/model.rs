//! A llama-family transformer: GGUF weights, RMSNorm, RoPE, grouped-query
//! attention with a KV cache, SiLU-gated MLP. Only inference, CPU only, one
//! sequence at a time. Two architectures:
//! - `llama` (SmolLM2): no attention biases; GGUF llama weights are stored
//!   permuted for RoPE on adjacent pairs `(x[2i], x[2i+1])`.
//! - `qwen2` (Qwen2.5-Coder): query/key/value biases, and RoPE in the
//!   "NeoX" layout, rotating `(x[i], x[i + d/2])` (llama.cpp's
//!   `LLAMA_ROPE_TYPE_NEOX`; the weights are stored as trained).
//!
//! Activations are plain `Vec<f32>` laid out token after token; the weight
//! products and per-layer steps live in the `sextant-kernels` crate
//! (block-quantized weights, f32 activations).
//! Invariant: a forward pass either fails before touching the cache or
//! advances it by exactly the tokens it was given; `KvCache::truncate` only
//! forgets positions (the attention never reads past the cache length, so
//! stale keys beyond it are never seen).

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};

use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::Device;
use sextant_kernels::{
    add_in_place, causal_attention, rms_norm, rope_table, rotate_pairs, silu_gate, AttentionShape, BlockFormat,
    KvLayer, QMatrix,
};

use super::EmbeddedError;

/// The architectures this forward pass runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    Llama,
    Qwen2,
}

impl Architecture {
    /// The GGUF `general.architecture` name, also the metadata key prefix.
    pub fn gguf_name(self) -> &'static str {
        match self {
            Architecture::Llama => "llama",
            Architecture::Qwen2 => "qwen2",
        }
    }
}

/// Hyperparameters read from the GGUF `<arch>.*` metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaConfig {
    pub architecture: Architecture,
    pub embedding_length: usize,
    pub block_count: usize,
    pub head_count: usize,
    pub head_count_kv: usize,
    pub head_dim: usize,
    pub rope_freq_base: f32,
    pub rms_norm_eps: f64,
    pub context_length: usize,
}

impl LlamaConfig {
    pub fn from_metadata(metadata: &HashMap<String, Value>) -> Result<Self, EmbeddedError> {
        let arch = match metadata.get("general.architecture") {
            Some(value) => value.to_string().map_err(EmbeddedError::candle)?.clone(),
            None => "llama".to_string(),
        };
        let architecture = match arch.as_str() {
            "llama" => Architecture::Llama,
            "qwen2" => Architecture::Qwen2,
            _ => {
                return Err(EmbeddedError::Format(format!(
                    "unsupported model architecture `{arch}` (supported: llama, qwen2)"
                )))
            }
        };
        let key = |name: &str| format!("{arch}.{name}");
        let get_u32 = |key: &str| -> Result<usize, EmbeddedError> {
            let value =
                metadata.get(key).ok_or_else(|| EmbeddedError::Format(format!("GGUF metadata lacks `{key}`")))?;
            Ok(value.to_u32().map_err(EmbeddedError::candle)? as usize)
        };
        let get_f32 = |key: &str, default: f32| -> Result<f32, EmbeddedError> {
            match metadata.get(key) {
                Some(value) => value.to_f32().map_err(EmbeddedError::candle),
                None => Ok(default),
            }
        };
        let embedding_length = get_u32(&key("embedding_length"))?;
        let head_count = get_u32(&key("attention.head_count"))?;
        let head_count_kv = get_u32(&key("attention.head_count_kv")).unwrap_or(head_count);
        let block_count = get_u32(&key("block_count"))?;
        let context_length = get_u32(&key("context_length")).unwrap_or(2048);
        if head_count == 0 || head_count_kv == 0 || head_count % head_count_kv != 0 {
            return Err(EmbeddedError::Format(format!(
                "bad head counts: {head_count} query heads, {head_count_kv} key/value heads"
            )));
        }
        if embedding_length % head_count != 0 || (embedding_length / head_count) % 2 != 0 {
            return Err(EmbeddedError::Format(format!(
                "embedding length {embedding_length} does not split into {head_count} even-sized heads"
            )));
        }
        Ok(LlamaConfig {
            architecture,
            embedding_length,
            block_count,
            head_count,
            head_count_kv,
            head_dim: embedding_length / head_count,
            rope_freq_base: get_f32(&key("rope.freq_base"), 10_000.0)?,
            rms_norm_eps: f64::from(get_f32(&key("attention.layer_norm_rms_epsilon"), 1e-5)?),
            context_length,
        })
    }
}

/// Weight matrices applied to the same input, their outputs side by side
/// per token. Stacked into one matrix (one product) when their formats
/// agree; kept apart when not, since stacking would re-quantize them all to
/// Q8_0 (Qwen2.5's Q5_0 query/key beside a Q8_0 value).
enum Projection {
    Stacked(QMatrix),
    Parts { parts: Vec<QMatrix>, rows: usize },
}

impl Projection {
    fn new(parts: Vec<QMatrix>) -> Result<Projection, sextant_kernels::ShapeError> {
        if parts.windows(2).all(|pair| pair[0].format() == pair[1].format()) {
            return Ok(Projection::Stacked(QMatrix::stack(parts)?));
        }
        if parts.windows(2).any(|pair| pair[0].cols() != pair[1].cols()) {
            return Err(sextant_kernels::ShapeError("stacked matrices differ in width".into()));
        }
        let rows = parts.iter().map(QMatrix::rows).sum();
        Ok(Projection::Parts { parts, rows })
    }

    /// `out` (tokens x all rows) = `xs` (tokens x cols) times each part.
    fn matmul(&self, xs: &[f32], tokens: usize, out: &mut [f32], products: Products) {
        match self {
            Projection::Stacked(matrix) => products.apply(matrix, xs, tokens, out),
            Projection::Parts { parts, rows } => {
                let mut offset = 0;
                for part in parts {
                    let height = part.rows();
                    let mut part_out = vec![0f32; tokens * height];
                    products.apply(part, xs, tokens, &mut part_out);
                    for (row, piece) in out.chunks_exact_mut(*rows).zip(part_out.chunks_exact(height)) {
                        row[offset..offset + height].copy_from_slice(piece);
                    }
                    offset += height;
                }
            }
        }
    }
}

/// How a chunk's weight products are computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Products {
    /// Expand rows to f32 once and run a GEMM with every token (prefill).
    Matmul,
    /// The decoding kernel for each token, weights read once for all of them:
    /// bit-identical to forwarding the tokens one at a time (speculative
    /// verification must give exactly what plain decoding gives).
    PerToken,
}

/// Below this many tokens a GEMM costs more than the decoding kernel run
/// per token: it first expands every weight row to f32, which costs about
/// as much as 6-7 single-token passes (measured on the 0.5B).
const GEMM_MIN_TOKENS: usize = 8;

impl Products {
    fn apply(self, matrix: &QMatrix, xs: &[f32], tokens: usize, out: &mut [f32]) {
        match self {
            Products::Matmul if tokens >= GEMM_MIN_TOKENS => matrix.matmul(xs, tokens, out),
            Products::Matmul | Products::PerToken => matrix.matvec_batch(xs, tokens, out),
        }
    }
}

struct Layer {
    attn_norm: Vec<f32>,
    /// Query, key and value projections, stacked where possible.
    qkv: Projection,
    /// Query, key and value biases in the same order (qwen2 only).
    qkv_bias: Option<Vec<f32>>,
    wo: QMatrix,
    ffn_norm: Vec<f32>,
    /// Gate and up projections, gate rows first.
    gate_up: Projection,
    w_down: QMatrix,
}

/// Loaded weights. Immutable after load, so it can be shared across threads.
pub struct Llama {
    pub config: LlamaConfig,
    token_embeddings: QMatrix,
    layers: Vec<Layer>,
    output_norm: Vec<f32>,
    /// `None`: tied embeddings, the output projection is the embedding table.
    output: Option<QMatrix>,
    /// RoPE frequency of each rotated pair within a head.
    inverse_frequencies: Vec<f32>,
    feed_forward_length: usize,
}

/// Per-sequence attention cache: keys and values of every processed
/// position, one `KvLayer` per layer.
pub struct KvCache {
    layers: Vec<KvLayer>,
    capacity: usize,
    len: usize,
}

impl KvCache {
    /// Positions filled so far.
    pub fn positions(&self) -> usize {
        self.len
    }

    /// Positions the cache can hold.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Forgets every position from `len` on (no-op when it holds fewer), so
    /// the next forward pass continues after position `len - 1`.
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }
}

/// Prompt tokens are processed in chunks so activations stay cache-sized.
const PREFILL_CHUNK: usize = 128;

fn read_tensor<R: Read + Seek>(content: &Content, reader: &mut R, name: &str) -> Result<QTensor, EmbeddedError> {
    content
        .tensor(reader, name, &Device::Cpu)
        .map_err(|err| EmbeddedError::Format(format!("cannot read tensor `{name}`: {err}")))
}

fn read_matrix<R: Read + Seek>(
    content: &Content,
    reader: &mut R,
    name: &str,
    rows: Option<usize>,
    cols: usize,
) -> Result<QMatrix, EmbeddedError> {
    let matrix = matrix_from_gguf(content, reader, name)?;
    if matrix.cols() != cols || rows.is_some_and(|rows| matrix.rows() != rows) {
        return Err(EmbeddedError::Format(format!(
            "tensor `{name}` is {}x{}, expected {}x{cols}",
            matrix.rows(),
            matrix.cols(),
            rows.map_or_else(|| "?".to_string(), |rows| rows.to_string()),
        )));
    }
    Ok(matrix)
}

/// Weights in a format the kernels run (Q4_1, Q8_0, Q5_0, Q4_K, Q6_K) are
/// read straight into their blocks; any other type goes through candle's
/// dequantization and is re-quantized to Q8_0.
fn matrix_from_gguf<R: Read + Seek>(content: &Content, reader: &mut R, name: &str) -> Result<QMatrix, EmbeddedError> {
    let bad = |why: String| EmbeddedError::Format(format!("tensor `{name}`: {why}"));
    let info = content
        .tensor_infos
        .get(name)
        .ok_or_else(|| EmbeddedError::Format(format!("GGUF file lacks tensor `{name}`")))?;
    let (rows, cols) = info.shape.dims2().map_err(|err| bad(format!("not a matrix: {err}")))?;
    let format = match info.ggml_dtype {
        GgmlDType::Q4_1 => BlockFormat::Q4_1,
        GgmlDType::Q8_0 => BlockFormat::Q8_0,
        GgmlDType::Q5_0 => BlockFormat::Q5_0,
        GgmlDType::Q4K => BlockFormat::Q4K,
        GgmlDType::Q6K => BlockFormat::Q6K,
        _ => {
            let dense = read_tensor(content, reader, name)?
                .dequantize(&Device::Cpu)
                .and_then(|t| t.flatten_all())
                .and_then(|t| t.to_vec1::<f32>())
                .map_err(EmbeddedError::candle)?;
            return QMatrix::from_dense(&dense, rows, cols).map_err(|err| bad(err.to_string()));
        }
    };
    let size = format.matrix_bytes(rows, cols).map_err(|err| bad(err.to_string()))?;
    let mut data = vec![0u8; size];
    reader
        .seek(SeekFrom::Start(content.tensor_data_offset + info.offset))
        .and_then(|_| reader.read_exact(&mut data))
        .map_err(|err| bad(format!("cannot read {size} bytes: {err}")))?;
    QMatrix::from_blocks(format, rows, cols, data).map_err(|err| bad(err.to_string()))
}

fn read_vector<R: Read + Seek>(
    content: &Content,
    reader: &mut R,
    name: &str,
    len: usize,
) -> Result<Vec<f32>, EmbeddedError> {
    let values = read_tensor(content, reader, name)?
        .dequantize(&Device::Cpu)
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1::<f32>())
        .map_err(EmbeddedError::candle)?;
    if values.len() != len {
        return Err(EmbeddedError::Format(format!("tensor `{name}` has {} values, expected {len}", values.len())));
    }
    Ok(values)
}

impl Llama {
    pub fn from_gguf<R: Read + Seek>(content: &Content, reader: &mut R) -> Result<Self, EmbeddedError> {
        let config = LlamaConfig::from_metadata(&content.metadata)?;
        let width = config.embedding_length;
        let kv_width = config.head_count_kv * config.head_dim;
        let token_embeddings = read_matrix(content, reader, "token_embd.weight", None, width)?;
        let output_norm = read_vector(content, reader, "output_norm.weight", width)?;
        let output = if content.tensor_infos.contains_key("output.weight") {
            Some(read_matrix(content, reader, "output.weight", Some(token_embeddings.rows()), width)?)
        } else {
            None
        };
        let feed_forward_length = content
            .tensor_infos
            .get("blk.0.ffn_gate.weight")
            .and_then(|info| info.shape.dims2().ok())
            .map(|(rows, _)| rows)
            .ok_or_else(|| EmbeddedError::Format("GGUF file lacks a usable `blk.0.ffn_gate.weight`".into()))?;
        let mut layers = Vec::with_capacity(config.block_count);
        for index in 0..config.block_count {
            let name = |part: &str| format!("blk.{index}.{part}.weight");
            let qkv_bias = match config.architecture {
                Architecture::Llama => None,
                Architecture::Qwen2 => {
                    let mut bias =
                        |part: &str, len: usize| read_vector(content, reader, &format!("blk.{index}.{part}.bias"), len);
                    let mut stacked = bias("attn_q", width)?;
                    stacked.extend(bias("attn_k", kv_width)?);
                    stacked.extend(bias("attn_v", kv_width)?);
                    Some(stacked)
                }
            };
            let mut matrix =
                |part: &str, rows: usize, cols: usize| read_matrix(content, reader, &name(part), Some(rows), cols);
            let qkv = Projection::new(vec![
                matrix("attn_q", width, width)?,
                matrix("attn_k", kv_width, width)?,
                matrix("attn_v", kv_width, width)?,
            ])
            .map_err(|err| EmbeddedError::Format(format!("layer {index}: {err}")))?;
            let wo = matrix("attn_output", width, width)?;
            let gate_up = Projection::new(vec![
                matrix("ffn_gate", feed_forward_length, width)?,
                matrix("ffn_up", feed_forward_length, width)?,
            ])
            .map_err(|err| EmbeddedError::Format(format!("layer {index}: {err}")))?;
            let w_down = matrix("ffn_down", width, feed_forward_length)?;
            layers.push(Layer {
                attn_norm: read_vector(content, reader, &name("attn_norm"), width)?,
                qkv,
                qkv_bias,
                wo,
                ffn_norm: read_vector(content, reader, &name("ffn_norm"), width)?,
                gate_up,
                w_down,
            });
        }
        let half = config.head_dim / 2;
        let inverse_frequencies =
            (0..half).map(|i| 1.0 / config.rope_freq_base.powf((2 * i) as f32 / config.head_dim as f32)).collect();
        Ok(Llama { config, token_embeddings, layers, output_norm, output, inverse_frequencies, feed_forward_length })
    }

    /// A cache able to hold `capacity` positions (clamped to the context length).
    pub fn new_cache(&self, capacity: usize) -> Result<KvCache, EmbeddedError> {
        let capacity = capacity.clamp(1, self.config.context_length);
        let layers = (0..self.layers.len()).map(|_| KvLayer::new(self.attention_shape(), capacity)).collect();
        Ok(KvCache { layers, capacity, len: 0 })
    }

    fn attention_shape(&self) -> AttentionShape {
        AttentionShape {
            heads: self.config.head_count,
            kv_heads: self.config.head_count_kv,
            head_dim: self.config.head_dim,
        }
    }

    /// Feeds `tokens` after what the cache already holds and returns the
    /// logits for the next token (a vector of `vocab_size`).
    pub fn forward(&self, tokens: &[u32], cache: &mut KvCache) -> Result<Vec<f32>, EmbeddedError> {
        self.check(tokens, cache)?;
        // Run on a pool thread: a parallel loop started from outside the
        // pool parks the caller until it ends (~120 loops per token), while
        // inside it the caller takes a share of the work and sleeps nowhere.
        rayon::scope(|_| {
            let mut hidden = Vec::new();
            for chunk in tokens.chunks(PREFILL_CHUNK) {
                hidden = self.forward_chunk(chunk, cache, Products::Matmul);
            }
            let last = hidden.split_off(hidden.len() - self.config.embedding_length);
            Ok(self.logits(&last, 1, Products::PerToken))
        })
    }

    /// [`Llama::forward`] that can be interrupted: `keep_going` is asked
    /// before every layer, given the tokens fully forwarded so far. When
    /// it says no, the chunk in progress is dropped (the cache length never
    /// moved for it) and `None` is returned; the cache keeps every chunk
    /// completed before.
    pub fn forward_interruptible(
        &self,
        tokens: &[u32],
        cache: &mut KvCache,
        keep_going: &mut (dyn FnMut(usize) -> bool + Send),
    ) -> Result<Option<Vec<f32>>, EmbeddedError> {
        self.check(tokens, cache)?;
        rayon::scope(|_| {
            let mut hidden = Vec::new();
            for (index, chunk) in tokens.chunks(PREFILL_CHUNK).enumerate() {
                let done = index * PREFILL_CHUNK;
                match self.forward_chunk_checked(chunk, cache, Products::Matmul, &mut || keep_going(done)) {
                    Some(chunk_hidden) => hidden = chunk_hidden,
                    None => return Ok(None),
                }
            }
            let last = hidden.split_off(hidden.len() - self.config.embedding_length);
            Ok(Some(self.logits(&last, 1, Products::PerToken)))
        })
    }

    /// Feeds a few `tokens` and returns the logits after each of them
    /// (`tokens x vocab_size`), every value exactly what forwarding the
    /// tokens one at a time with [`Llama::forward`] gives, at about the cost
    /// of one token (decoding is memory-bound): speculative verification.
    pub fn forward_each(&self, tokens: &[u32], cache: &mut KvCache) -> Result<Vec<f32>, EmbeddedError> {
        self.check(tokens, cache)?;
        rayon::scope(|_| {
            let hidden = self.forward_chunk(tokens, cache, Products::PerToken);
            Ok(self.logits(&hidden, tokens.len(), Products::PerToken))
        })
    }

    fn check(&self, tokens: &[u32], cache: &KvCache) -> Result<(), EmbeddedError> {
        if tokens.is_empty() {
            return Err(EmbeddedError::Format("forward pass called with no tokens".into()));
        }
        if cache.len + tokens.len() > cache.capacity {
            return Err(EmbeddedError::ContextFull { capacity: cache.capacity });
        }
        let vocab = self.token_embeddings.rows();
        if let Some(bad) = tokens.iter().find(|&&token| token as usize >= vocab) {
            return Err(EmbeddedError::Format(format!("token id {bad} is outside the {vocab}-token vocabulary")));
        }
        Ok(())
    }

    /// Logits of `count` hidden states (`count x width`), one after another;
    /// each computed by the decoding kernel, as for a single token.
    fn logits(&self, hidden: &[f32], count: usize, products: Products) -> Vec<f32> {
        let width = self.config.embedding_length;
        let mut normed = vec![0f32; hidden.len()];
        for (row, out) in hidden.chunks_exact(width).zip(normed.chunks_exact_mut(width)) {
            rms_norm(row, &self.output_norm, self.config.rms_norm_eps as f32, out);
        }
        let output = self.output.as_ref().unwrap_or(&self.token_embeddings);
        let mut logits = vec![0f32; count * output.rows()];
        products.apply(output, &normed, count, &mut logits);
        logits
    }

    /// Runs `tokens` (already checked against the vocabulary and the cache
    /// capacity) through every layer; returns every token's hidden state
    /// (`tokens x width`).
    fn forward_chunk(&self, tokens: &[u32], cache: &mut KvCache, products: Products) -> Vec<f32> {
        let hidden = self.forward_chunk_checked(tokens, cache, products, &mut || true);
        hidden.unwrap_or_default()
    }

    /// [`Llama::forward_chunk`], asking `keep_going` before each layer; on
    /// a no it returns `None` and leaves the cache length unchanged (keys
    /// and values stored past it are never read).
    fn forward_chunk_checked(
        &self,
        tokens: &[u32],
        cache: &mut KvCache,
        products: Products,
        keep_going: &mut dyn FnMut() -> bool,
    ) -> Option<Vec<f32>> {
        let cfg = &self.config;
        let (count, width, start) = (tokens.len(), cfg.embedding_length, cache.len);
        let kv_width = cfg.head_count_kv * cfg.head_dim;
        let qkv_width = width + 2 * kv_width;
        let ffn = self.feed_forward_length;
        let eps = cfg.rms_norm_eps as f32;

        let mut x = vec![0f32; count * width];
        for (&token, row) in tokens.iter().zip(x.chunks_exact_mut(width)) {
            self.token_embeddings.dequantize_row(token as usize, row);
        }
        let rotations = rope_table(&self.inverse_frequencies, start, count);
        let mut normed = vec![0f32; count * width];
        let mut qkv = vec![0f32; count * qkv_width];
        let mut attended = vec![0f32; count * width];
        let mut projected = vec![0f32; count * width];
        let mut gate_up = vec![0f32; count * 2 * ffn];
        let mut activated = vec![0f32; count * ffn];
        for (layer, layer_cache) in self.layers.iter().zip(cache.layers.iter_mut()) {
            if !keep_going() {
                return None;
            }
            for (row, out) in x.chunks_exact(width).zip(normed.chunks_exact_mut(width)) {
                rms_norm(row, &layer.attn_norm, eps, out);
            }
            layer.qkv.matmul(&normed, count, &mut qkv, products);
            let rotate: fn(&mut [f32], &[f32]) = match cfg.architecture {
                Architecture::Llama => rotate_pairs,
                Architecture::Qwen2 => rotate_halves,
            };
            for (t, row) in qkv.chunks_exact_mut(qkv_width).enumerate() {
                if let Some(bias) = &layer.qkv_bias {
                    add_in_place(row, bias);
                }
                let (query, rest) = row.split_at_mut(width);
                let (key, value) = rest.split_at_mut(kv_width);
                let rotation = &rotations[t * cfg.head_dim..(t + 1) * cfg.head_dim];
                query.chunks_exact_mut(cfg.head_dim).for_each(|head| rotate(head, rotation));
                key.chunks_exact_mut(cfg.head_dim).for_each(|head| rotate(head, rotation));
                layer_cache.store(start + t, key, value);
            }
            causal_attention(&qkv, qkv_width, layer_cache, start, count, &mut attended);
            products.apply(&layer.wo, &attended, count, &mut projected);
            add_in_place(&mut x, &projected);
            for (row, out) in x.chunks_exact(width).zip(normed.chunks_exact_mut(width)) {
                rms_norm(row, &layer.ffn_norm, eps, out);
            }
            layer.gate_up.matmul(&normed, count, &mut gate_up, products);
            for (both, out) in gate_up.chunks_exact(2 * ffn).zip(activated.chunks_exact_mut(ffn)) {
                let (gate, up) = both.split_at(ffn);
                silu_gate(gate, up, out);
            }
            products.apply(&layer.w_down, &activated, count, &mut projected);
            add_in_place(&mut x, &projected);
        }
        cache.len = start + count;
        Some(x)
    }
}

/// RoPE in the NeoX layout: pair `i` is `(x[i], x[i + d/2])`, rotated by the
/// same angle as adjacent pair `i` in [`rotate_pairs`] (`rotation` is one
/// position's row of [`rope_table`]).
fn rotate_halves(head: &mut [f32], rotation: &[f32]) {
    let half = head.len() / 2;
    let (first, second) = head.split_at_mut(half);
    for ((x, y), cos_sin) in first.iter_mut().zip(second.iter_mut()).zip(rotation.chunks_exact(2)) {
        let (a, b, cos, sin) = (*x, *y, cos_sin[0], cos_sin[1]);
        *x = a * cos - b * sin;
        *y = a * sin + b * cos;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The NeoX rotation is the adjacent-pair one on a permuted head: the
    /// first half's element `i` paired with the second half's element `i`.
    #[test]
    fn halves_rotation_matches_pairs_on_interleaved_layout() {
        let head: Vec<f32> = (0..8).map(|i| i as f32 + 1.0).collect();
        let rotation = rope_table(&[1.0, 0.1, 0.01, 0.001], 3, 1);
        let mut halves = head.clone();
        rotate_halves(&mut halves, &rotation);
        let mut interleaved: Vec<f32> = (0..4).flat_map(|i| [head[i], head[i + 4]]).collect();
        rotate_pairs(&mut interleaved, &rotation);
        let back: Vec<f32> =
            (0..8).map(|j| if j < 4 { interleaved[2 * j] } else { interleaved[2 * (j - 4) + 1] }).collect();
        assert_eq!(halves, back);
        assert_ne!(halves, head, "position 3 must rotate");
    }
}
