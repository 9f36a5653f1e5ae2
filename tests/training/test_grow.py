"""Growing a trained generator (training/grow.py): the grown transformer computes exactly what the trained one did,
its new capacity trains, and it refuses to shrink."""

import pytest
import torch

from training.grow import grown
from training.stage_gen import make_transformer, size_in

SIZE = dict(num_attention_heads=2, attention_head_dim=32, ffn_dim=96, num_layers=3)


def _trained():
    """A generator with non-trivial weights everywhere (a fresh one zeroes nothing, but its gates are small)."""
    model = make_transformer(SIZE, seed=5)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    return model.eval()


def _velocity(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 16, 5, 8, 8, generator=g)
    text = torch.randn(2, 7, 64, generator=g)
    with torch.no_grad():
        return model(hidden_states=x, timestep=torch.tensor([700.0, 60.0]), encoder_hidden_states=text,
                     return_dict=False)[0]


@pytest.mark.parametrize("layers,ffn", [(3, 192), (5, 96), (7, 160), (6, 96)])
def test_grown_generator_draws_the_same_velocity(layers, ffn):
    trained = _trained()
    big = grown(trained, layers, ffn).eval()
    assert size_in(big.config) == {**SIZE, "num_layers": layers, "ffn_dim": ffn}
    assert sum(p.numel() for p in big.parameters()) > sum(p.numel() for p in trained.parameters())
    torch.testing.assert_close(_velocity(big), _velocity(trained), rtol=0, atol=1e-6)


def test_grown_capacity_trains():
    """The zeroed output layers get gradients at once: one step moves the velocity away from the trained one."""
    trained = _trained()
    big = grown(trained, 4, 128)
    g = torch.Generator().manual_seed(1)
    x, text = torch.randn(2, 16, 5, 8, 8, generator=g), torch.randn(2, 7, 64, generator=g)
    v = big(hidden_states=x, timestep=torch.tensor([500.0, 500.0]), encoder_hidden_states=text, return_dict=False)[0]
    v.pow(2).mean().backward()
    new_block = big.blocks[1]  # 3 trained blocks into 4: the new one follows the first
    assert torch.count_nonzero(new_block.ffn.net[2].weight) == 0
    assert new_block.ffn.net[2].weight.grad.abs().sum() > 0
    assert new_block.attn1.to_out[0].weight.grad.abs().sum() > 0
    assert big.blocks[0].ffn.net[2].weight.grad[:, 96:].abs().sum() > 0  # the new hidden units of a trained block


def test_growing_refuses_to_shrink():
    trained = _trained()
    with pytest.raises(ValueError, match="cannot grow"):
        grown(trained, 2, 96)
    with pytest.raises(ValueError, match="cannot shrink"):
        grown(trained, 3, 64)
