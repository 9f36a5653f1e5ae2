"""engine.understanding: the Connector and UnderstandingBlock interface the engine and app rely on."""

import json

import pytest
import torch

from engine.understanding import Connector, UnderstandingBlock, lm_hidden_states, lm_input_ids, seq2seq_ids


def _block(tmp_path, arch="causal", readings=1):
    from training.stage_lm import make_lm
    from training.stage_text import build_tokenizer

    tok = build_tokenizer(["a big red circle moves left. gray checked background.", "the larger shape grows."])
    lm = make_lm(len(tok), layers=2, arch=arch, readings=readings)
    tok.save_pretrained(tmp_path / "lm")
    lm.save_pretrained(tmp_path / "lm", safe_serialization=True)
    Connector(lm.config.hidden_size, 24, num_queries=5).save_pretrained(tmp_path / "connector")
    return UnderstandingBlock.from_pretrained(tmp_path)


def test_connector_round_trip_and_masking(tmp_path):
    torch.manual_seed(0)
    c = Connector(lm_dim=16, text_dim=8, num_queries=3, hidden_dim=32, num_heads=2).eval()
    c.save_pretrained(tmp_path / "c")
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["config.json", "model.safetensors"]
    c2 = Connector.from_pretrained(tmp_path / "c")
    h = torch.randn(2, 7, 16)
    mask = torch.ones(2, 7, dtype=torch.long)
    mask[1, 4:] = 0
    out = c2(h, mask)
    assert out.shape == (2, 3, 8)
    torch.testing.assert_close(out, c(h, mask))
    # Padding is ignored: changing padded positions does not change the output.
    h2 = h.clone()
    h2[1, 4:] = 100.0
    torch.testing.assert_close(c2(h2, mask)[1], out[1])


@pytest.mark.parametrize("arch", ["causal", "seq2seq"])
def test_block_interface(tmp_path, arch):
    block = _block(tmp_path, arch)
    assert block.lm.config.is_encoder_decoder == (arch == "seq2seq")
    assert (block.num_queries, block.text_dim) == (5, 24)
    plan = block.plan("a big red circle moves left.")
    assert isinstance(plan, str) and plan == block.plan("a big red circle moves left.")  # greedy, deterministic
    assert block.plan("   ") == ""
    ctx = block.context("a big red circle moves left.", plan="a big red circle moves left.")
    assert ctx.shape == (1, 5, 24) and ctx.device == block.device
    assert not torch.allclose(ctx, block.context("a big red circle moves left.", plan="gray checked background."))
    torch.testing.assert_close(block.context(""), block.context("", ""))


def test_lm_input_layout(tmp_path):
    block = _block(tmp_path)
    tok = block.tokenizer
    ids = lm_input_ids(tok, "a big red circle", "gray checked background.")
    plan_id = tok.convert_tokens_to_ids("<plan>")
    assert ids.count(plan_id) == 1 and ids[-1] == tok.eos_token_id
    assert lm_input_ids(tok, "a big red circle", None)[-1] == plan_id


def test_an_lm_that_reads_twice_sees_the_instruction_twice_and_keeps_that_when_saved(tmp_path):
    """``instruction </s> instruction <plan> plan </s>``; the count travels in the LM's config, so the engine
    gives a loaded LM the layout it was trained on (a twice-reading LM fed one reading writes a different plan)."""
    from engine.understanding import instruction_readings
    from training.stage_lm import make_lm

    block = _block(tmp_path, readings=2)
    tok, lm = block.tokenizer, block.lm
    assert instruction_readings(lm) == 2
    once = lm_input_ids(tok, "a big red circle.", None)
    twice = lm_input_ids(tok, "a big red circle.", "gray checked background.", 2)
    words = once[:-1]
    assert twice[: 2 * len(words) + 2] == words + [tok.eos_token_id] + words + [once[-1]]
    assert twice.count(once[-1]) == 1 and twice[-1] == tok.eos_token_id
    assert lm_input_ids(tok, "", None, 2) == lm_input_ids(tok, "", None)  # nothing to read twice
    # The block's states follow the twice-read layout: one state per token of it.
    hidden, mask = lm_hidden_states(lm, tok, [("a big red circle.", "gray checked background.")])
    assert hidden.shape[1] == len(twice) and mask.sum() == len(twice)
    with pytest.raises(ValueError, match="once"):
        make_lm(len(tok), arch="seq2seq", readings=2)


def test_missing_parts_fail_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="connector"):
        (tmp_path / "lm").mkdir()
        UnderstandingBlock.from_pretrained(tmp_path)


def test_self_attending_connector_round_trips_and_ignores_padding(tmp_path):
    torch.manual_seed(0)
    c = Connector(lm_dim=16, text_dim=8, num_queries=3, hidden_dim=32, num_heads=2, self_layers=1).eval()
    c.save_pretrained(tmp_path / "c")
    c2 = Connector.from_pretrained(tmp_path / "c")
    assert c2.config["self_layers"] == 1
    h = torch.randn(2, 7, 16)
    mask = torch.ones(2, 7, dtype=torch.long)
    mask[1, 4:] = 0
    out = c2(h, mask)
    torch.testing.assert_close(out, c(h, mask))
    h2 = h.clone()
    h2[1, 4:] = 100.0
    torch.testing.assert_close(c2(h2, mask)[1], out[1])
    # A connector saved before the option (no "self_layers" in its config) loads without self-attention.
    Connector(lm_dim=16, text_dim=8, num_queries=3, hidden_dim=32, num_heads=2).save_pretrained(tmp_path / "old")
    cfg = json.loads((tmp_path / "old" / "config.json").read_text())
    cfg.pop("self_layers")
    (tmp_path / "old" / "config.json").write_text(json.dumps(cfg))
    assert Connector.from_pretrained(tmp_path / "old").encoder is None


def test_seq2seq_states_are_the_encoders_then_the_decoders_and_ignore_padding(tmp_path):
    """A seq2seq block hands the connector its encoder's states over ``instruction </s>`` followed by its decoder's
    over ``<start> plan </s>``; padding a row in a batch must not change its states."""
    block = _block(tmp_path, "seq2seq")
    lm, tok = block.lm, block.tokenizer
    short = ("the larger shape grows.", "gray checked background.")
    long = ("a big red circle moves left. the larger shape grows.", "a big red circle moves left. gray checked "
            "background.")
    hidden, mask = lm_hidden_states(lm, tok, [short, long])
    enc, dec = seq2seq_ids(tok, *short, lm.config.decoder_start_token_id)
    assert dec[0] == lm.config.decoder_start_token_id and enc[-1] == dec[-1] == tok.eos_token_id
    assert int(mask[0].sum()) == len(enc) + len(dec) and int(mask[1].sum()) == hidden.shape[1]
    with torch.no_grad():
        own = lm.get_encoder()(input_ids=torch.tensor([enc])).last_hidden_state[0]
    torch.testing.assert_close(hidden[0, : len(enc)], own)
    alone, _ = lm_hidden_states(lm, tok, [short])
    torch.testing.assert_close(hidden[0, : int(mask[0].sum())], alone[0], atol=1e-5, rtol=1e-5)
