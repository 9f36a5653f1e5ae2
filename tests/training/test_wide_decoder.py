"""stage_decoder with a wider decoder: the encoder (so every latent the generators learnt) carries over exactly, the
decoder is new and as wide as asked, and the crop phase pairs each latent crop with the pixels it decodes to."""

import numpy as np
import pytest
import torch

from engine.vae_widths import decoder_base_dim
from training.stage_decoder import CROP_BATCH, CROP_CELLS, crop_batch, with_decoder_width
from training.stage_vae import make_vae, to_tensor


@pytest.fixture(scope="module")
def base_vae():
    return make_vae(seed=3).eval()


def test_same_width_keeps_the_vae_itself(base_vae):
    assert with_decoder_width(base_vae, None) is base_vae
    assert with_decoder_width(base_vae, decoder_base_dim(base_vae.config)) is base_vae


def test_a_wider_decoder_keeps_the_encoder_and_its_latents_exactly(base_vae):
    wide = with_decoder_width(base_vae, decoder_base_dim(base_vae.config) + 16).eval()
    assert decoder_base_dim(wide.config) == decoder_base_dim(base_vae.config) + 16
    assert wide.config.base_dim == base_vae.config.base_dim
    clips = np.random.default_rng(0).integers(0, 255, (1, 17, 64, 64, 3), dtype=np.uint8)
    with torch.no_grad():
        z_base = base_vae.encode(to_tensor(clips)).latent_dist.mode()
        z_wide = wide.encode(to_tensor(clips)).latent_dist.mode()
        out = wide.decode(z_wide).sample
    assert torch.equal(z_base, z_wide)
    assert out.shape == (1, 3, 17, 64, 64)
    n_base = sum(p.numel() for n, p in base_vae.named_parameters() if n.startswith("decoder."))
    n_wide = sum(p.numel() for n, p in wide.named_parameters() if n.startswith("decoder."))
    assert n_wide > 1.5 * n_base


def test_crops_pair_latent_cells_with_the_pixels_they_decode_to():
    # latents and pixels that both say where they are: a latent cell (y, x) holds y * 10 + x, and its spatial × spatial
    # pixels hold the same number
    spatial, cells = 8, 8
    grid = np.add.outer(np.arange(cells) * 10, np.arange(cells)).astype(np.float32)
    lat = np.broadcast_to(grid, (5, 16, 5, cells, cells)).copy()
    pix = np.kron(grid, np.ones((spatial, spatial))).astype(np.uint8)
    clips = np.broadcast_to(pix[None, None, :, :, None], (5, 17, 64, 64, 3)).copy()
    z, x = crop_batch(lat, clips, np.random.default_rng(1), spatial)
    assert z.shape == (CROP_BATCH, 16, 5, CROP_CELLS, CROP_CELLS)
    assert x.shape == (CROP_BATCH, 3, 17, CROP_CELLS * spatial, CROP_CELLS * spatial)
    values = torch.round((x[:, 0, 0] + 1) * 127.5)  # back to the uint8 numbers
    for k in range(CROP_BATCH):
        down = values[k, ::spatial, ::spatial]
        assert torch.equal(down, z[k, 0, 0]), k
    assert len({float(z[k, 0, 0, 0, 0]) for k in range(CROP_BATCH)}) > 1  # crops are not all at one place
