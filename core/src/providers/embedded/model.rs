//! A llama-architecture transformer written directly on candle-core: GGUF
//! weights, RMSNorm, interleaved RoPE, grouped-query attention with a KV
//! cache, SiLU-gated MLP. Only inference, CPU only, one sequence at a time.
//!
//! Invariant: every hot loop is a candle op (built optimised even in debug
//! builds); this file only wires ops together.

use std::collections::HashMap;
use std::io::{Read, Seek};

use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::quantized::{QMatMul, QTensor};
use candle_core::{DType, Device, Module, Tensor, D};

use super::EmbeddedError;

/// Hyperparameters read from the GGUF `llama.*` metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaConfig {
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
        if arch != "llama" {
            return Err(EmbeddedError::Format(format!(
                "unsupported model architecture `{arch}` (only llama-style models are supported)"
            )));
        }
        let get_u32 = |key: &str| -> Result<usize, EmbeddedError> {
            let value = metadata
                .get(key)
                .ok_or_else(|| EmbeddedError::Format(format!("GGUF metadata lacks `{key}`")))?;
            Ok(value.to_u32().map_err(EmbeddedError::candle)? as usize)
        };
        let get_f32 = |key: &str, default: f32| -> Result<f32, EmbeddedError> {
            match metadata.get(key) {
                Some(value) => value.to_f32().map_err(EmbeddedError::candle),
                None => Ok(default),
            }
        };
        let embedding_length = get_u32("llama.embedding_length")?;
        let head_count = get_u32("llama.attention.head_count")?;
        let head_count_kv = get_u32("llama.attention.head_count_kv").unwrap_or(head_count);
        let block_count = get_u32("llama.block_count")?;
        let context_length = get_u32("llama.context_length").unwrap_or(2048);
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
            embedding_length,
            block_count,
            head_count,
            head_count_kv,
            head_dim: embedding_length / head_count,
            rope_freq_base: get_f32("llama.rope.freq_base", 10_000.0)?,
            rms_norm_eps: f64::from(get_f32("llama.attention.layer_norm_rms_epsilon", 1e-5)?),
            context_length,
        })
    }
}

struct Layer {
    attn_norm: Tensor,
    wq: QMatMul,
    wk: QMatMul,
    wv: QMatMul,
    wo: QMatMul,
    ffn_norm: Tensor,
    w_gate: QMatMul,
    w_up: QMatMul,
    w_down: QMatMul,
}

/// Loaded weights. Immutable after load, so it can be shared across threads.
pub struct Llama {
    pub config: LlamaConfig,
    token_embeddings: Tensor,
    layers: Vec<Layer>,
    output_norm: Tensor,
    output: QMatMul,
    rope_cos: Tensor,
    rope_sin: Tensor,
    device: Device,
}

/// Per-sequence attention cache: keys and values of every processed position.
pub struct KvCache {
    keys: Vec<Tensor>,
    values: Vec<Tensor>,
    capacity: usize,
    len: usize,
}

impl KvCache {
    /// Positions filled so far.
    pub fn positions(&self) -> usize {
        self.len
    }
}

/// Prompt tokens are fed in chunks so the attention scores of a long prompt
/// never materialise as one (tokens x tokens) matrix per head.
const PREFILL_CHUNK: usize = 128;

fn weight_reader<R: Read + Seek>(
    content: &Content,
    reader: &mut R,
    name: &str,
    device: &Device,
) -> Result<QTensor, EmbeddedError> {
    content
        .tensor(reader, name, device)
        .map_err(|err| EmbeddedError::Format(format!("cannot read tensor `{name}`: {err}")))
}

/// Weights are held dense (f32): candle's quantized matmul does one
/// vec-dot per weight row and token, while a dense matmul goes through its
/// blocked, multithreaded GEMM, so prompt processing is several times faster
/// than with Q8_0. It also keeps greedy output equal to the exact weights:
/// candle's AVX2 Q8_0 kernels degraded it. The costs: ~4x the weight memory
/// (about 0.7 GB resident for the 135M model) and memory-bound decoding
/// (25 tok/s on 2 idle cores, 0.19x llama.cpp; see `sextant bench embedded`).
fn to_fast_matmul(tensor: QTensor, device: &Device) -> Result<QMatMul, EmbeddedError> {
    let dense = tensor.dequantize(device).map_err(EmbeddedError::candle)?;
    Ok(QMatMul::Tensor(dense))
}

impl Llama {
    pub fn from_gguf<R: Read + Seek>(content: &Content, reader: &mut R) -> Result<Self, EmbeddedError> {
        let device = Device::Cpu;
        let config = LlamaConfig::from_metadata(&content.metadata)?;
        let dense = |reader: &mut R, name: &str| -> Result<Tensor, EmbeddedError> {
            weight_reader(content, reader, name, &device)?.dequantize(&device).map_err(EmbeddedError::candle)
        };
        let embedding_table = weight_reader(content, reader, "token_embd.weight", &device)?;
        let token_embeddings = embedding_table.dequantize(&device).map_err(EmbeddedError::candle)?;
        let output_norm = dense(reader, "output_norm.weight")?;
        let output = if content.tensor_infos.contains_key("output.weight") {
            to_fast_matmul(weight_reader(content, reader, "output.weight", &device)?, &device)?
        } else {
            // Tied embeddings: the output projection reuses the already
            // dequantized embedding table (a shared tensor, not a second copy).
            QMatMul::Tensor(token_embeddings.clone())
        };
        let mut layers = Vec::with_capacity(config.block_count);
        for index in 0..config.block_count {
            let name = |part: &str| format!("blk.{index}.{part}.weight");
            let matmul =
                |reader: &mut R, part: &str| to_fast_matmul(weight_reader(content, reader, &name(part), &device)?, &device);
            layers.push(Layer {
                wq: matmul(reader, "attn_q")?,
                wk: matmul(reader, "attn_k")?,
                wv: matmul(reader, "attn_v")?,
                wo: matmul(reader, "attn_output")?,
                w_gate: matmul(reader, "ffn_gate")?,
                w_up: matmul(reader, "ffn_up")?,
                w_down: matmul(reader, "ffn_down")?,
                attn_norm: dense(reader, &name("attn_norm"))?,
                ffn_norm: dense(reader, &name("ffn_norm"))?,
            });
        }
        let (rope_cos, rope_sin) = rope_tables(&config, &device)?;
        Ok(Llama { config, token_embeddings, layers, output_norm, output, rope_cos, rope_sin, device })
    }

    /// A cache able to hold `capacity` positions (clamped to the context length).
    pub fn new_cache(&self, capacity: usize) -> Result<KvCache, EmbeddedError> {
        let capacity = capacity.clamp(1, self.config.context_length);
        let shape = (1, self.config.head_count_kv, capacity, self.config.head_dim);
        let mut keys = Vec::with_capacity(self.layers.len());
        let mut values = Vec::with_capacity(self.layers.len());
        for _ in 0..self.layers.len() {
            keys.push(Tensor::zeros(shape, DType::F32, &self.device).map_err(EmbeddedError::candle)?);
            values.push(Tensor::zeros(shape, DType::F32, &self.device).map_err(EmbeddedError::candle)?);
        }
        Ok(KvCache { keys, values, capacity, len: 0 })
    }

    /// Feeds `tokens` after what the cache already holds and returns the
    /// logits for the next token (a vector of `vocab_size`).
    pub fn forward(&self, tokens: &[u32], cache: &mut KvCache) -> Result<Vec<f32>, EmbeddedError> {
        if tokens.is_empty() {
            return Err(EmbeddedError::Format("forward pass called with no tokens".into()));
        }
        if cache.len + tokens.len() > cache.capacity {
            return Err(EmbeddedError::ContextFull { capacity: cache.capacity });
        }
        let mut last_hidden = None;
        for chunk in tokens.chunks(PREFILL_CHUNK) {
            last_hidden = Some(self.forward_chunk(chunk, cache).map_err(EmbeddedError::candle)?);
        }
        let hidden = last_hidden.ok_or_else(|| EmbeddedError::Format("no hidden state".into()))?;
        self.logits(&hidden).map_err(EmbeddedError::candle)
    }

    fn logits(&self, hidden: &Tensor) -> candle_core::Result<Vec<f32>> {
        let (_, seq_len, _) = hidden.dims3()?;
        let last = hidden.narrow(1, seq_len - 1, 1)?;
        let normed = rms_norm(&last, &self.output_norm, self.config.rms_norm_eps)?;
        self.output.forward(&normed)?.flatten_all()?.to_vec1::<f32>()
    }

    fn forward_chunk(&self, tokens: &[u32], cache: &mut KvCache) -> candle_core::Result<Tensor> {
        let cfg = &self.config;
        let seq_len = tokens.len();
        let start = cache.len;
        let total = start + seq_len;
        let ids = Tensor::new(tokens, &self.device)?;
        let mut x = self.token_embeddings.index_select(&ids, 0)?.unsqueeze(0)?;
        let cos = self.rope_cos.narrow(0, start, seq_len)?;
        let sin = self.rope_sin.narrow(0, start, seq_len)?;
        let mask = if seq_len > 1 { Some(causal_mask(seq_len, start, &self.device)?) } else { None };
        let group = cfg.head_count / cfg.head_count_kv;
        let scale = 1.0 / (cfg.head_dim as f64).sqrt();
        for (layer, (key_cache, value_cache)) in self.layers.iter().zip(cache.keys.iter().zip(cache.values.iter())) {
            let h = rms_norm(&x, &layer.attn_norm, cfg.rms_norm_eps)?;
            let q = layer.wq.forward(&h)?.reshape((1, seq_len, cfg.head_count, cfg.head_dim))?.transpose(1, 2)?;
            let k = layer.wk.forward(&h)?.reshape((1, seq_len, cfg.head_count_kv, cfg.head_dim))?.transpose(1, 2)?;
            let v = layer.wv.forward(&h)?.reshape((1, seq_len, cfg.head_count_kv, cfg.head_dim))?.transpose(1, 2)?;
            let q = rope_interleaved(&q, &cos, &sin)?;
            let k = rope_interleaved(&k, &cos, &sin)?;
            key_cache.slice_set(&k, 2, start)?;
            value_cache.slice_set(&v.contiguous()?, 2, start)?;
            let keys = key_cache.narrow(2, 0, total)?;
            let values = value_cache.narrow(2, 0, total)?;
            // Grouped-query attention without copying keys: the query heads
            // sharing one key/value head are stacked along the row axis.
            let q = q.reshape((1, cfg.head_count_kv, group * seq_len, cfg.head_dim))?;
            let mut scores = (q.matmul(&keys.t()?)? * scale)?;
            if let Some(mask) = &mask {
                scores = scores
                    .reshape((1, cfg.head_count_kv, group, seq_len, total))?
                    .broadcast_add(mask)?
                    .reshape((1, cfg.head_count_kv, group * seq_len, total))?;
            }
            let attention = softmax_last_dim(&scores)?.matmul(&values)?;
            let attention = attention
                .reshape((1, cfg.head_count, seq_len, cfg.head_dim))?
                .transpose(1, 2)?
                .reshape((1, seq_len, cfg.embedding_length))?;
            x = (x + layer.wo.forward(&attention)?)?;
            let h = rms_norm(&x, &layer.ffn_norm, cfg.rms_norm_eps)?;
            let gated = (layer.w_gate.forward(&h)?.silu()? * layer.w_up.forward(&h)?)?;
            x = (x + layer.w_down.forward(&gated)?)?;
        }
        cache.len = total;
        Ok(x)
    }
}

fn rms_norm(x: &Tensor, weight: &Tensor, eps: f64) -> candle_core::Result<Tensor> {
    let mean_square = x.sqr()?.mean_keepdim(D::Minus1)?;
    x.broadcast_div(&(mean_square + eps)?.sqrt()?)?.broadcast_mul(weight)
}

fn softmax_last_dim(x: &Tensor) -> candle_core::Result<Tensor> {
    let max = x.max_keepdim(D::Minus1)?;
    let exp = x.broadcast_sub(&max)?.exp()?;
    let sum = exp.sum_keepdim(D::Minus1)?;
    exp.broadcast_div(&sum)
}

/// `mask[i][j]` is -inf where key `j` lies after query `start + i`.
fn causal_mask(seq_len: usize, start: usize, device: &Device) -> candle_core::Result<Tensor> {
    let total = start + seq_len;
    let values: Vec<f32> = (0..seq_len)
        .flat_map(|i| (0..total).map(move |j| if j > start + i { f32::NEG_INFINITY } else { 0.0 }))
        .collect();
    Tensor::from_vec(values, (seq_len, total), device)
}

fn rope_tables(config: &LlamaConfig, device: &Device) -> Result<(Tensor, Tensor), EmbeddedError> {
    let half = config.head_dim / 2;
    let inv_freq: Vec<f32> = (0..half)
        .map(|i| 1.0 / config.rope_freq_base.powf((2 * i) as f32 / config.head_dim as f32))
        .collect();
    let inv_freq = Tensor::from_vec(inv_freq, (1, half), device).map_err(EmbeddedError::candle)?;
    let positions = Tensor::arange(0u32, config.context_length as u32, device)
        .and_then(|t| t.to_dtype(DType::F32))
        .and_then(|t| t.reshape((config.context_length, 1)))
        .map_err(EmbeddedError::candle)?;
    let angles = positions.broadcast_mul(&inv_freq).map_err(EmbeddedError::candle)?;
    Ok((angles.cos().map_err(EmbeddedError::candle)?, angles.sin().map_err(EmbeddedError::candle)?))
}

/// RoPE on adjacent pairs `(x[2i], x[2i+1])`, the layout GGUF llama weights use.
fn rope_interleaved(x: &Tensor, cos: &Tensor, sin: &Tensor) -> candle_core::Result<Tensor> {
    let (batch, heads, seq_len, head_dim) = x.dims4()?;
    if std::env::var("DBG_NEOX").is_ok() {
        let half = head_dim / 2;
        let a = x.narrow(3, 0, half)?;
        let b = x.narrow(3, half, half)?;
        let ra = (a.broadcast_mul(cos)? - b.broadcast_mul(sin)?)?;
        let rb = (a.broadcast_mul(sin)? + b.broadcast_mul(cos)?)?;
        return Tensor::cat(&[ra, rb], 3);
    }
    let half = head_dim / 2;
    let pairs = x.reshape((batch, heads, seq_len, half, 2))?;
    let even = pairs.narrow(4, 0, 1)?;
    let odd = pairs.narrow(4, 1, 1)?;
    let cos = cos.reshape((seq_len, half, 1))?;
    let sin = sin.reshape((seq_len, half, 1))?;
    let rotated_even = (even.broadcast_mul(&cos)? - odd.broadcast_mul(&sin)?)?;
    let rotated_odd = (even.broadcast_mul(&sin)? + odd.broadcast_mul(&cos)?)?;
    Tensor::cat(&[rotated_even, rotated_odd], 4)?.reshape((batch, heads, seq_len, head_dim))
}
