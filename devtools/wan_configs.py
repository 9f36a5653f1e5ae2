"""The real Wan2.1 T2V configs (diffusers layout, as published in Wan-AI/Wan2.1-T2V-{1.3B,14B}-Diffusers), as dicts:
for sizing the real models without their weights (engine/memory_plan.py, its tests, bench/)."""

from __future__ import annotations

_TRANSFORMER = {
    "_class_name": "WanTransformer3DModel", "added_kv_proj_dim": None, "attention_head_dim": 128,
    "cross_attn_norm": True, "eps": 1e-06, "freq_dim": 256, "image_dim": None, "in_channels": 16,
    "out_channels": 16, "patch_size": [1, 2, 2], "qk_norm": "rms_norm_across_heads", "rope_max_seq_len": 1024,
    "text_dim": 4096,
}
WAN21_1_3B_TRANSFORMER = {**_TRANSFORMER, "num_attention_heads": 12, "num_layers": 30, "ffn_dim": 8960}
WAN21_14B_TRANSFORMER = {**_TRANSFORMER, "num_attention_heads": 40, "num_layers": 40, "ffn_dim": 13824}
UMT5_XXL_ENCODER = {
    "_class_name": "UMT5EncoderModel", "model_type": "umt5", "d_ff": 10240, "d_kv": 64, "d_model": 4096,
    "dense_act_fn": "gelu_new", "feed_forward_proj": "gated-gelu", "is_gated_act": True, "num_heads": 64,
    "num_layers": 24, "relative_attention_max_distance": 128, "relative_attention_num_buckets": 32,
    "tie_word_embeddings": False, "vocab_size": 256384, "layer_norm_epsilon": 1e-06,
}
WAN_VAE = {
    "_class_name": "AutoencoderKLWan", "attn_scales": [], "base_dim": 96, "dim_mult": [1, 2, 4, 4], "dropout": 0.0,
    "num_res_blocks": 2, "temperal_downsample": [False, True, True], "z_dim": 16,
    "latents_mean": [-0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508,
                     0.4134, -0.0715, 0.5517, -0.3632, -0.1922, -0.9497, 0.2503, -0.2921],
    "latents_std": [2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743,
                    3.2687, 2.1526, 2.8652, 1.5579, 1.6382, 1.1253, 2.8251, 1.916],
}
