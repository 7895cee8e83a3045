#!/usr/bin/env python3
"""Independent greedy reference for the Qwen2.5-Coder GGUF: a numpy forward pass
(weights dequantized with the `gguf` package, NeoX RoPE, QKV biases, GQA) printing the
greedy next tokens. qwen_native_fim_completes_the_expression in core/tests/embedded.rs
pins the tokens it gives for the FIM prompt there:
    pip install gguf numpy
    python3 core/tests/reference/qwen_greedy.py MODEL.gguf "[151659, 750, 912, 2877, 11, 293, 982, 262, 470, 220, 151661, 198, 151660]" 7
"""
import sys, json, numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize
r = GGUFReader(sys.argv[1]); ids = json.loads(sys.argv[2]); steps = int(sys.argv[3])
T = {t.name: t for t in r.tensors}
cache = {}
def W(name):
    if name not in cache:
        t = T[name]; cache[name] = dequantize(t.data, t.tensor_type).astype(np.float32)
    return cache[name]
f = lambda k: r.fields[k].contents()
L = f('qwen2.block_count'); d = f('qwen2.embedding_length'); H = f('qwen2.attention.head_count'); KV = f('qwen2.attention.head_count_kv')
eps = f('qwen2.attention.layer_norm_rms_epsilon'); base = f('qwen2.rope.freq_base'); hd = d // H
def rms(x, w): return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w
inv = 1.0 / base ** (np.arange(0, hd, 2) / hd)
def forward(ids):
    n = len(ids); x = W('token_embd.weight')[ids]
    ang = np.arange(n)[:, None] * inv[None]; c, s = np.cos(ang)[:, None], np.sin(ang)[:, None]
    def rope(v):
        a, b = v[..., :hd//2], v[..., hd//2:]
        return np.concatenate([a * c - b * s, a * s + b * c], -1)
    mask = np.triu(np.full((n, n), -np.inf), 1)
    for l in range(L):
        p = f'blk.{l}.'
        h = rms(x, W(p + 'attn_norm.weight'))
        q = h @ W(p + 'attn_q.weight').T + W(p + 'attn_q.bias')
        k = h @ W(p + 'attn_k.weight').T + W(p + 'attn_k.bias')
        v = h @ W(p + 'attn_v.weight').T + W(p + 'attn_v.bias')
        q = rope(q.reshape(n, H, hd)); k = rope(k.reshape(n, KV, hd)); v = v.reshape(n, KV, hd)
        k = np.repeat(k, H // KV, 1); v = np.repeat(v, H // KV, 1)
        att = np.einsum('qhd,khd->hqk', q, k) / np.sqrt(hd) + mask
        att = np.exp(att - att.max(-1, keepdims=True)); att /= att.sum(-1, keepdims=True)
        x = x + np.einsum('hqk,khd->qhd', att, v).reshape(n, d) @ W(p + 'attn_output.weight').T
        h = rms(x, W(p + 'ffn_norm.weight'))
        g = h @ W(p + 'ffn_gate.weight').T; u = h @ W(p + 'ffn_up.weight').T
        x = x + ((g / (1 + np.exp(-g))) * u) @ W(p + 'ffn_down.weight').T
    return W('output.weight') @ rms(x[-1], W('output_norm.weight'))
out = []
for _ in range(steps):
    logits = forward(ids + out); top = np.argsort(-logits)[:3]
    print(json.dumps({"next": int(top[0]), "top3": top.tolist(), "logits": [round(float(logits[i]), 3) for i in top]}), flush=True)
    out.append(int(top[0]))
    if out[-1] in (151643, 151645, 151662, 151664): break
print(json.dumps(out))
