"""Tiny Wan models built from configs and saved in the real diffusers layout (no hub, seconds on CPU).

Used by tests and benchmarks: `build_tiny_family(root)` writes
    root/light/   a full WanPipeline folder (model_index.json, transformer/, vae/, text_encoder/, tokenizer/, scheduler/)
    root/heavy/transformer/   a bare, wider WanTransformer3DModel sharing the latent space
"""

from __future__ import annotations

from pathlib import Path

import torch

WORDS = (
    "a the small large red green blue yellow circle square triangle star striped checked dotted moves left right "
    "up down toward away from bounces grows shrinks stays still every shape that is not larger smaller ball pushed "
    "rolls and of to on background"
).split()
TEXT_DIM = 32


def make_tokenizer():
    from transformers import T5Tokenizer

    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)] + [("\u2581" + w, -float(i + 1)) for i, w in enumerate(WORDS)]
    return T5Tokenizer(vocab=vocab, extra_ids=0)


def make_text_encoder(seed: int = 0):
    from transformers import UMT5Config, UMT5EncoderModel

    torch.manual_seed(seed)
    cfg = UMT5Config(vocab_size=len(WORDS) + 3, d_model=TEXT_DIM, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
                     relative_attention_num_buckets=8, relative_attention_max_distance=16, pad_token_id=0,
                     eos_token_id=1, decoder_start_token_id=0)
    return UMT5EncoderModel(cfg).eval()


def make_vae(seed: int = 0):
    from diffusers import AutoencoderKLWan

    torch.manual_seed(seed)
    return AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                            temperal_downsample=[False, True, True]).eval()


def make_transformer(seed: int = 0, heads: int = 2, head_dim: int = 12, layers: int = 2, ffn: int = 32):
    from diffusers import WanTransformer3DModel

    torch.manual_seed(seed)
    return WanTransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=heads, attention_head_dim=head_dim,
                                 in_channels=16, out_channels=16, text_dim=TEXT_DIM, freq_dim=32, ffn_dim=ffn,
                                 num_layers=layers, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
                                 rope_max_seq_len=32).eval()


def make_scheduler(shift: float = 3.0):
    from diffusers import UniPCMultistepScheduler

    return UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, num_train_timesteps=1000,
                                   flow_shift=shift)


def build_tiny_family(root: str | Path, *, heavy_heads: int = 4, seed: int = 0) -> Path:
    """Save a tiny light pipeline and a wider heavy transformer under `root`; returns root."""
    from diffusers import WanPipeline

    root = Path(root)
    pipe = WanPipeline(tokenizer=make_tokenizer(), text_encoder=make_text_encoder(seed), vae=make_vae(seed),
                       transformer=make_transformer(seed + 1), scheduler=make_scheduler())
    pipe.save_pretrained(root / "light", safe_serialization=True)
    make_transformer(seed + 2, heads=heavy_heads, layers=3, ffn=64).save_pretrained(
        root / "heavy" / "transformer", safe_serialization=True)
    return root


PLANNER_SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
# Qwen2.5's chat layout, without its tool-calling branches
PLANNER_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def make_planner_tokenizer():
    """A byte-level BPE like Qwen2.5's (so transformers' Qwen2Tokenizer reads it back), trained here on WORDS in a
    moment, with Qwen's special tokens and chat template: built locally, nothing downloaded."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=list(PLANNER_SPECIALS), show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    core.train_from_iterator([" ".join(WORDS)] * 4, trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=core, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    tok.chat_template = PLANNER_CHAT_TEMPLATE
    return tok


def build_tiny_planner(folder: str | Path, seed: int = 0) -> Path:
    """A random-init, tiny Qwen2ForCausalLM + its tokenizer saved as an instruct model's folder (config.json,
    model.safetensors, tokenizer files with the chat template, generation_config.json). Its output is nonsense."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    folder = Path(folder)
    tok = make_planner_tokenizer()
    torch.manual_seed(seed)
    cfg = Qwen2Config(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                      eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, tie_word_embeddings=True)
    model = Qwen2ForCausalLM(cfg).eval()
    # tied embeddings: the logits of special and blank tokens are 0, below the best word's, so it writes words
    blank = [i for i in range(len(tok)) if not tok.decode([i], skip_special_tokens=True).strip()]
    with torch.no_grad():
        model.model.embed_tokens.weight[blank] = 0.0
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(folder, safe_serialization=True)
    tok.save_pretrained(folder)
    return folder
