"""The training scripts run end to end on a tiny budget, resume from checkpoints, and write a loadable family."""

import json
import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from training.train_all import main

    root = tmp_path_factory.mktemp("train")
    # --heavy-steps 4 (the tiny budget says 3): the heavy stage trains in a child process, which must get it too
    main(["--tiny", "--run", str(root / "run"), "--out", str(root / "family"), "--eval", "0", "--heavy-steps", "4"])
    return root


def test_every_stage_finishes_and_records_wall_time(tiny_run):
    for stage in ("text", "lm", "vae", "latents", "decoder", "light", "heavy", "heavy_refine", "heavy_detail"):
        info = json.loads((tiny_run / "run" / stage / "done.json").read_text())
        assert info["wall_s"] > 0
    metrics = json.loads((tiny_run / "run" / "metrics.json").read_text())
    assert metrics["wall_s_total"] > 0


def test_budget_flags_reach_the_stage_trained_beside(tiny_run):
    heavy = json.loads((tiny_run / "run" / "heavy" / "done.json").read_text())
    light = json.loads((tiny_run / "run" / "light" / "done.json").read_text())
    assert heavy["steps"] == 4 and light["steps"] == 3


def test_handoff_stage_rebuilds_the_generators_of_a_family(tiny_run, tmp_path):
    """stage_handoff: a new light generator from scratch (LIGHT size) and the heavy one continued (in a child process
    beside it), written into a copy of the family; the LM, text encoder and VAE stay; a rerun resumes (nothing redone)."""
    import torch
    from safetensors.torch import load_file

    from training import stage_handoff
    from training.stage_gen import HEAVY, LIGHT

    src, out = tiny_run / "family", tmp_path / "family"
    args = ["--tiny", "--run", str(tmp_path / "run"), "--from", str(src), "--out", str(out)]
    stage_handoff.main(args)
    light = json.loads((out / "light" / "transformer" / "config.json").read_text())
    assert {k: light[k] for k in LIGHT} == LIGHT
    heavy = json.loads((out / "heavy" / "transformer" / "config.json").read_text())
    assert {k: heavy[k] for k in HEAVY} == HEAVY
    weights = "heavy/transformer/diffusion_pytorch_model.safetensors"
    before, after = load_file(src / weights), load_file(out / weights)
    assert any(not torch.equal(before[k], after[k]) for k in before), "heavy was not trained further"
    for same in ("understanding/lm/model.safetensors", "light/vae/diffusion_pytorch_model.safetensors"):
        assert (src / same).read_bytes() == (out / same).read_bytes(), same
    metrics = json.loads((out / "training_metrics.json").read_text())
    assert metrics["heavy_refine"]["steps"] == 2 and metrics["light"]["params"] < metrics["heavy_refine"]["params"]
    assert metrics["heavy_detail"]["steps"] == 2
    stamps = {s: (tmp_path / "run" / s / "done.json").stat().st_mtime for s in ("heavy_refine", "heavy_detail")}
    stage_handoff.main(args)
    assert {s: (tmp_path / "run" / s / "done.json").stat().st_mtime for s in stamps} == stamps


def test_the_heavy_detail_trial_continues_a_familys_heavy_with_its_recipe_changes(tiny_run, tmp_path):
    """--only heavy_detail: the family's heavy is taken as refined and continued alone, with --detail-recipe's
    changes recorded in the stage's record; the light generator is not trained."""
    import torch
    from safetensors.torch import load_file

    from training import stage_handoff

    src, run, out = tiny_run / "family", tmp_path / "run", tmp_path / "candidate"
    stage_handoff.main(["--tiny", "--run", str(run), "--from", str(src), "--only", "heavy_detail",
                        "--detail-steps", "3", "--detail-recipe", "shape_weight=9", "--detail-recipe",
                        "low_noise_from=0", "--out", str(out)])
    done = json.loads((run / "heavy_detail" / "done.json").read_text())
    assert done["steps"] == 3
    assert done["recipe"]["shape_weight"] == 9.0 and done["recipe"]["low_noise_from"] == 0
    assert json.loads((run / "heavy_refine" / "done.json").read_text())["seeded_from"] == str(src)
    assert not (run / "light" / "done.json").exists()
    weights = "heavy/transformer/diffusion_pytorch_model.safetensors"
    before, after = load_file(src / weights), load_file(out / weights)
    assert any(not torch.equal(before[k], after[k]) for k in before), "heavy was not trained further"
    # the candidate family keeps every other part and the records of the stages it did not redo
    for same in ("light/transformer/diffusion_pytorch_model.safetensors", "understanding/connector/config.json"):
        assert (src / same).read_bytes() == (out / same).read_bytes(), same
    old, new = (json.loads((f / "training_metrics.json").read_text()) for f in (src, out))
    assert new["heavy_detail"]["steps"] == 3
    assert all(new[s] == old[s] for s in ("light", "light_phrasing", "heavy", "heavy_refine"))


@pytest.mark.parametrize("bad", ["shape_weight", "shape_weight=lots", "=3", "shap_weight=9"])
def test_a_malformed_detail_recipe_change_is_refused_before_anything_runs(tmp_path, bad, capsys):
    from training import stage_handoff

    with pytest.raises(SystemExit):
        stage_handoff.main(["--tiny", "--run", str(tmp_path / "run"), "--only", "heavy_detail",
                            "--detail-recipe", bad])
    assert "key=number" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("light_done", [True, False])
def test_heavy_takes_both_cores_once_light_is_done(tiny_run, tmp_path, light_done):
    """In train_all heavy trains on one core beside light; when light is done it uses `threads_when_alone`."""
    import shutil

    import torch

    from training import stage_gen
    from training.common import Budget, Run

    run = Run(root=tmp_path / "run", budget=Budget.tiny(), name="tiny")
    shutil.copytree(tiny_run / "run", run.root)
    shutil.rmtree(run.root / "heavy")
    if not light_done:
        (run.root / "light" / "done.json").unlink()
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        stage_gen.train(run, "heavy", threads_when_alone=2)
        assert torch.get_num_threads() == (2 if light_done else 1)
    finally:
        torch.set_num_threads(before)


def test_family_layout_and_defaults(tiny_run):
    fam = tiny_run / "family"
    for p in ("light/model_index.json", "light/scheduler", "light/text_encoder/model.safetensors",
              "light/tokenizer/tokenizer.json", "light/transformer/diffusion_pytorch_model.safetensors",
              "light/vae/diffusion_pytorch_model.safetensors",
              "heavy/transformer/diffusion_pytorch_model.safetensors",
              "understanding/lm/model.safetensors", "understanding/connector/model.safetensors", "lumos.json"):
        assert (fam / p).exists(), p
    assert not list(fam.rglob("*.bin")) and not list(fam.rglob("*.pt")), "safetensors only"
    cfg = json.loads((fam / "lumos.json").read_text())
    assert cfg["name"] == "lumos-mini" and (cfg["width"], cfg["height"], cfg["num_frames"]) == (64, 64, 17)
    assert cfg["light_text"] == "plan"  # the default light recipe trains on the plan's text tokens
    card = (fam / "MODEL_CARD.md").read_text()
    assert "crops around shapes with shape pixels weighted 8× (2 steps) and whole clips again (1 steps)" in card


def test_shipped_vae_has_the_tuned_decoder_and_the_original_encoder(tiny_run):
    """stage_decoder changes only what decodes a latent, so the generators' latent space is the VAE stage's."""
    import torch
    from diffusers import AutoencoderKLWan

    base = AutoencoderKLWan.from_pretrained(tiny_run / "run" / "export" / "vae").state_dict()
    shipped = AutoencoderKLWan.from_pretrained(tiny_run / "family" / "light" / "vae").state_dict()
    encoder = [k for k in base if k.startswith(("encoder.", "quant_conv."))]
    decoder = [k for k in base if k.startswith(("decoder.", "post_quant_conv."))]
    assert encoder and decoder and len(encoder) + len(decoder) == len(base)
    assert all(torch.equal(base[k], shipped[k]) for k in encoder)
    assert not all(torch.equal(base[k], shipped[k]) for k in decoder)


def test_the_tiny_recipe_trains_the_wide_decoder(tiny_run):
    """The budget's decoder_base_dim reaches the shipped VAE: a decoder wider than the encoder, crops first."""
    from training.common import Budget

    done = json.loads((tiny_run / "run" / "decoder" / "done.json").read_text())
    config = json.loads((tiny_run / "family" / "light" / "vae" / "config.json").read_text())
    b = Budget.tiny()
    assert config["decoder_base_dim"] == b.decoder_base_dim > config["base_dim"]
    assert done["crop_steps"] == b.decoder_crop_steps and done["steps"] == b.decoder_crop_steps + b.decoder_steps


def test_a_decoder_goes_into_a_family_only_over_its_own_encoder(tiny_run, tmp_path):
    """stage_decoder --into: the run's decoder replaces a family's VAE decoder (the card and metrics follow); a family
    whose encoder is another one is refused, since its generators learnt other latents."""
    import shutil

    import torch
    from diffusers import AutoencoderKLWan

    from training.common import Budget, Run
    from training.stage_decoder import TUNED, install
    from training.stage_vae import make_vae

    run = Run(root=tiny_run / "run", budget=Budget.tiny(), name="tiny")
    family = tmp_path / "family"
    shutil.copytree(tiny_run / "family", family)
    shutil.rmtree(family / "light" / "vae")
    shutil.copytree(tiny_run / "run" / "export" / "vae", family / "light" / "vae")  # the VAE stage's own decoder
    metrics = json.loads((family / "training_metrics.json").read_text())
    metrics.pop("decoder")
    (family / "training_metrics.json").write_text(json.dumps(metrics))
    install(run, family)
    got = AutoencoderKLWan.from_pretrained(family / "light" / "vae").state_dict()
    want = AutoencoderKLWan.from_pretrained(tiny_run / "run" / "export" / TUNED).state_dict()
    assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in want)
    assert json.loads((family / "training_metrics.json").read_text())["decoder"]["crop_steps"] == 2
    assert "a fresh decoder 48 wide" in (family / "MODEL_CARD.md").read_text()

    other = tmp_path / "other"
    shutil.copytree(family, other)
    make_vae(seed=11).save_pretrained(other / "light" / "vae")
    with pytest.raises(SystemExit, match="another encoder"):
        install(run, other)
    assert not (other.parent / "other.tmp").exists()


def test_decoder_loss_weighs_frame_zero():
    import torch

    from training.stage_decoder import FRAME0_WEIGHT, loss_fn

    x = torch.zeros(1, 3, 5, 8, 8)  # gray: no shape pixels
    first, later = x.clone(), x.clone()
    first[:, :, 0] += 0.5
    later[:, :, 3] += 0.5
    assert loss_fn(first, x).item() == pytest.approx(FRAME0_WEIGHT * loss_fn(later, x).item())


def test_vae_phases_run_in_order_with_their_own_schedules_and_weights():
    from training.common import Budget
    from training.stage_vae import SHAPE_WEIGHT, TEXTURE_SHAPE_WEIGHT, phase_at

    b = Budget(vae_texture_steps=2400, vae_settle_steps=500)
    base = b.vae_steps + b.vae_full_steps
    seen = [phase_at(s, b) for s in range(base + b.vae_texture_steps + b.vae_settle_steps)]
    names = [p.name for p in seen]
    assert names.index("texture") == base and names.index("settle") == base + b.vae_texture_steps
    assert [p.batch for p in seen[:base]] == ["crop"] * b.vae_steps + ["full"] * b.vae_full_steps
    texture, settle = seen[base: base + b.vae_texture_steps], seen[base + b.vae_texture_steps:]
    assert {p.batch for p in texture} == {"shape_crop"} and {p.batch for p in settle} == {"full"}
    assert {p.shape_weight for p in texture} == {TEXTURE_SHAPE_WEIGHT} and TEXTURE_SHAPE_WEIGHT > SHAPE_WEIGHT
    assert {p.shape_weight for p in settle} == {SHAPE_WEIGHT}
    # Each later phase is a fine-tune: it warms up again from a small rate and decays to a tenth of its peak.
    for phase in (texture, settle):
        peak = max(p.lr for p in phase)
        assert phase[0].lr < 0.1 * peak and phase[-1].lr < 0.11 * peak
    assert max(p.lr for p in texture) < max(p.lr for p in seen[:base])


def test_vae_phases_are_set_by_flags_and_kept_across_a_resume(tmp_path):
    """The flags set the VAE's phases (0 and 0: the base recipe alone); a resumed VAE stage keeps the
    phases its checkpoint started with, whatever the resuming command asks."""
    import argparse

    from training import stage_vae
    from training.common import add_common_args, load_ckpt, run_from_args

    p = argparse.ArgumentParser()
    add_common_args(p)
    old = run_from_args(p.parse_args(["--tiny", "--run", str(tmp_path / "old"), "--vae-texture-steps", "0",
                                      "--vae-settle-steps", "0"]))
    assert (old.budget.vae_texture_steps, old.budget.vae_settle_steps) == (0, 0)
    assert stage_vae.train(old)["phases"] == {"base": 4, "texture": 0, "settle": 0}

    run = run_from_args(p.parse_args(["--tiny", "--run", str(tmp_path / "new")]))
    info = stage_vae.train(run)
    assert info["phases"] == {"base": 4, "texture": 2, "settle": 1} and info["steps"] == 7
    (run.root / "vae" / "done.json").unlink()
    longer = run_from_args(p.parse_args(["--tiny", "--run", str(tmp_path / "new"), "--vae-texture-steps", "50"]))
    again = stage_vae.train(longer)
    assert again["phases"] == info["phases"] and load_ckpt(run.root / "vae" / "ckpt.pt")["step"] == 7


def test_vae_texture_crops_are_centred_on_shapes():
    """The texture phase's crops hold more shape pixels than random crops of the same clips, and none holds few."""
    import numpy as np

    from miniworld import render
    from training.data import eval_scenes
    from training.stage_vae import _crop_batch, _shape_crop_batch, saturated, to_tensor

    clips = np.stack([render(s) for s in eval_scenes(8)])
    share = lambda crops: saturated(to_tensor(crops)).float().mean((1, 2, 3, 4)).numpy()
    centred = share(_shape_crop_batch(clips, np.random.default_rng(0), 64))
    anywhere = share(_crop_batch(clips, np.random.default_rng(0), 64, 17, 32))
    assert centred.mean() > 1.15 * anywhere.mean() and centred.min() > 1.5 * anywhere.min()
    plain = np.full_like(clips[:1], 128)  # no shape at all: still a crop of the right size
    assert _shape_crop_batch(plain, np.random.default_rng(0), 2).shape == (2, 17, 32, 32, 3)


def test_light_text_follows_the_light_recipe():
    from training.export import light_text

    assert light_text({"lr": 1e-3, "text": "plan"}) == "plan"
    assert light_text({"lr": 1e-3, "text": "instruction"}) == "prompt"
    assert light_text({"lr": 1e-3}) == "prompt"  # recipes from before the key trained on the instruction
    assert light_text(None) == "plan"  # a snapshot: today's recipe


def test_tiny_family_loads_offline_and_runs(tiny_run):
    import numpy as np
    import torch
    from diffusers import WanPipeline

    from engine.positional_transformer import PositionalWanTransformer3DModel, load_transformer
    from engine.understanding import UnderstandingBlock

    fam = tiny_run / "family"
    cfg = json.loads((fam / "lumos.json").read_text())
    # The mini generators are Wan's transformer with absolute positions: stock diffusers loads the rest of the
    # pipeline folder and takes the transformer from load_transformer.
    transformer = load_transformer(fam / "light" / "transformer")
    pipe = WanPipeline.from_pretrained(fam / "light", transformer=transformer, local_files_only=True)
    heavy = load_transformer(fam / "heavy" / "transformer")
    assert isinstance(heavy, PositionalWanTransformer3DModel) and isinstance(transformer, PositionalWanTransformer3DModel)
    light = pipe.transformer.config
    for k in ("in_channels", "out_channels", "text_dim", "patch_size"):
        assert heavy.config[k] == light[k], k
    assert sum(p.numel() for p in heavy.parameters()) > 3 * sum(p.numel() for p in pipe.transformer.parameters())
    und = UnderstandingBlock.from_pretrained(fam / "understanding")
    ctx = und.context("a small red plain circle at the left moves right. gray checked background.", plan="")
    assert ctx.shape == (1, und.num_queries, und.text_dim) and und.text_dim == light["text_dim"]
    # The whole pipeline runs with the family's conditioning length (text only: the heavy path).
    out = pipe("a big blue plain square in the center grows. gray checked background.", num_frames=5, height=64,
               width=64, num_inference_steps=2, max_sequence_length=cfg["max_sequence_length"], output_type="np",
               generator=torch.Generator().manual_seed(0))
    assert out.frames.shape == (1, 5, 64, 64, 3) and np.isfinite(out.frames).all()


def test_stage_resumes_from_checkpoint(tmp_path):
    """A stage interrupted after its first checkpoint continues from it instead of starting over."""
    from training import stage_text
    from training.common import Budget, Run, load_ckpt, setup

    run = Run(root=tmp_path / "run", budget=Budget.tiny())
    setup(run)
    run.budget.text_steps = 2
    stage_text.train(run)
    assert load_ckpt(run.root / "text" / "ckpt.pt")["step"] == 2
    (run.root / "text" / "done.json").unlink()
    run.budget.text_steps = 4
    info = stage_text.train(run)
    assert info["steps"] == 4 and load_ckpt(run.root / "text" / "ckpt.pt")["step"] == 4
    assert stage_text.train(run) == info  # done stages are skipped


def test_world_tokenizer_round_trips_and_lowercases(tiny_run):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_run / "family" / "light" / "tokenizer", local_files_only=True)
    text = "a big red striped circle at the top left moves right. gray checked background."
    ids = tok(text).input_ids
    assert ids[-1] == tok.eos_token_id and tok.unk_token_id not in ids
    assert tok.decode(ids, skip_special_tokens=True) == text
    assert tok("A BIG Red").input_ids == tok("a big red").input_ids
    assert tok.unk_token_id not in tok("an unknown zebra").input_ids  # spelled out with single letters


def test_snapshot_exports_a_generator_that_is_still_training(tiny_run, tmp_path):
    """export --snapshot ships the EMA weights of the last checkpoint of an unfinished stage, marked partial."""
    import shutil

    from safetensors.torch import load_file

    from training.common import Budget, Run, load_ckpt
    from training.export import export

    run = Run(root=tmp_path / "run", budget=Budget.tiny(), name="tiny")
    shutil.copytree(tiny_run / "run", run.root)
    (run.root / "light" / "done.json").unlink()  # as if light were still training at its last checkpoint
    shutil.rmtree(run.root / "export" / "light")
    metrics = export(run, tmp_path / "family", eval_per_category=0, snapshot=True)
    assert metrics["light"]["partial"] and metrics["light"]["steps"] == 3 and metrics["light"]["of_steps"] == 3
    assert not metrics["heavy"].get("partial")
    ck = load_ckpt(run.root / "light" / "ckpt.pt")
    shipped = load_file(tmp_path / "family" / "light" / "transformer" / "diffusion_pytorch_model.safetensors")
    k = next(iter(shipped))
    assert (shipped[k] == ck["ema"][k]).all()
    assert "snapshot, still training" in (tmp_path / "family" / "MODEL_CARD.md").read_text()


@pytest.mark.parametrize("stage", ["heavy_refine", "heavy_detail"])
def test_snapshot_exports_a_heavy_continuation_that_is_still_training(tiny_run, tmp_path, stage):
    """An unfinished heavy continuation ships from its checkpoint, over the weights of the finished stage before it,
    marked partial with its own step budget."""
    import shutil

    from safetensors.torch import load_file

    from training.common import Budget, Run, load_ckpt
    from training.export import export

    run = Run(root=tmp_path / "run", budget=Budget.tiny(), name="tiny")
    shutil.copytree(tiny_run / "run", run.root)
    (run.root / stage / "done.json").unlink()
    if stage == "heavy_refine":  # the stage after it has not started yet
        shutil.rmtree(run.root / "heavy_detail")
        (run.root / "heavy_detail").mkdir()
    shutil.rmtree(run.root / "export" / "heavy" / "transformer")  # a continuation's checkpoint not yet written out
    metrics = export(run, tmp_path / "family", eval_per_category=0, snapshot=True)
    continued = metrics[stage]
    assert continued["partial"] and continued["of_steps"] == getattr(run.budget, f"{stage}_steps")
    assert not metrics["heavy"].get("partial")
    ck = load_ckpt(run.root / stage / "ckpt.pt")
    shipped = load_file(tmp_path / "family" / "heavy" / "transformer" / "diffusion_pytorch_model.safetensors")
    assert all((shipped[k] == ck["ema"][k]).all() for k in shipped)


def test_reexport_keeps_the_tuned_defaults_and_their_tuning_log(tiny_run, tmp_path):
    import shutil

    from training.common import Budget, Run
    from training.export import assemble

    run = Run(root=tiny_run / "run", budget=Budget.tiny(), name="tiny")
    fam = tmp_path / "family"
    shutil.copytree(tiny_run / "family", fam)
    cfg = json.loads((fam / "lumos.json").read_text())
    (fam / "lumos.json").write_text(json.dumps({**cfg, "guidance_light": 4.0, "handoff": 0.2}))
    (fam / "guidance_tuning.json").write_text('{"light": {"best": 4.0}}')
    assemble(run, fam)
    cfg = json.loads((fam / "lumos.json").read_text())
    assert cfg["guidance_light"] == 4.0 and cfg["handoff"] == 0.2
    assert json.loads((fam / "guidance_tuning.json").read_text()) == {"light": {"best": 4.0}}


def test_lm_trial_depth_survives_a_resume(tiny_run, tmp_path):
    """An LM trial started with --layers resumes at that depth even when the flag is left off."""
    import shutil

    from training import stage_lm
    from training.common import Budget, Run, setup

    run = Run(root=tmp_path / "run", budget=Budget.tiny(), name="tiny")
    shutil.copytree(tiny_run / "run", run.root)
    shutil.rmtree(run.root / "lm")
    setup(run)
    run.budget.lm_steps = 2
    stage_lm.train(run, layers=2)
    (run.root / "lm" / "done.json").unlink()
    run.budget.lm_steps = 4
    info = stage_lm.train(run)  # default depth asked for; the checkpoint's wins
    cfg = json.loads((run.root / "export" / "understanding" / "lm" / "config.json").read_text())
    assert info["steps"] == 4 and info["layers"] == 2 and cfg["num_hidden_layers"] == 2


def test_lm_steps_flag_sets_the_trial_length(tiny_run, tmp_path):
    """``stage_lm --steps N --dim D`` trains N steps at width D whatever the budget says (trials)."""
    import shutil

    from training import stage_lm

    root = tmp_path / "run"
    shutil.copytree(tiny_run / "run", root)
    shutil.rmtree(root / "lm")
    stage_lm.main(["--tiny", "--run", str(root), "--steps", "3", "--layers", "1", "--dim", "64"])
    done = json.loads((root / "lm" / "done.json").read_text())
    cfg = json.loads((root / "export" / "understanding" / "lm" / "config.json").read_text())
    assert (done["steps"], done["layers"], done["dim"], cfg["hidden_size"]) == (3, 1, 64, 64)


def test_lm_reading_count_survives_a_resume_and_reaches_the_engine(tiny_run, tmp_path):
    """The family's LM reads the instruction twice (the recipe's default); ``stage_lm --readings 1`` trains one that
    reads it once, the checkpoint keeps that count across a resume, and the exported config carries it."""
    import shutil

    from engine.understanding import instruction_readings, load_lm
    from training import stage_lm

    root = tmp_path / "run"
    shutil.copytree(tiny_run / "run", root)
    shutil.rmtree(root / "lm")
    assert instruction_readings(load_lm(tiny_run / "run" / "export" / "understanding" / "lm")) == 2
    stage_lm.main(["--tiny", "--run", str(root), "--steps", "2", "--layers", "1", "--readings", "1"])
    (root / "lm" / "done.json").unlink()
    stage_lm.main(["--tiny", "--run", str(root), "--steps", "3"])  # default asked for; the checkpoint's wins
    done = json.loads((root / "lm" / "done.json").read_text())
    assert (done["steps"], done["readings"]) == (3, 1)
    assert instruction_readings(load_lm(root / "export" / "understanding" / "lm")) == 1


def test_lm_category_weights_shift_the_sampled_rows_and_survive_a_resume(tiny_run, tmp_path):
    """``stage_lm --category-weight negation=4`` samples negation rows four times as often (a curriculum trial),
    keeps that weighting across a resume, and names a category that has no rows instead of training on nothing."""
    import shutil

    import pytest
    import torch

    from training import stage_lm

    rows = [{"category": c} for c in ["explicit"] * 50 + ["negation"] * 50]
    w = stage_lm.row_weights(rows, {"negation": 4})
    drawn = torch.multinomial(w, 4000, replacement=True, generator=torch.Generator().manual_seed(0))
    share = (drawn >= 50).float().mean().item()
    assert 0.77 < share < 0.83  # 4 / 5 of the draws are negation rows
    assert stage_lm.row_weights(rows, None) is None
    with pytest.raises(ValueError, match="negaton"):
        stage_lm.row_weights(rows, {"negaton": 2})

    root = tmp_path / "run"
    shutil.copytree(tiny_run / "run", root)
    shutil.rmtree(root / "lm")
    stage_lm.main(["--tiny", "--run", str(root), "--steps", "2", "--layers", "1", "--category-weight", "negation=4"])
    (root / "lm" / "done.json").unlink()
    stage_lm.main(["--tiny", "--run", str(root), "--steps", "3"])  # no flag; the checkpoint's weighting wins
    assert json.loads((root / "lm" / "done.json").read_text())["category_weight"] == {"negation": 4.0}
    with pytest.raises(SystemExit):
        stage_lm.main(["--tiny", "--run", str(tmp_path / "other"), "--category-weight", "negation"])


def test_lm_binding_labels_name_each_shape_from_its_place_words_on(tiny_run):
    """The binding objective's labels line up with the LM's ids in either reading layout, and a token is labelled
    with its own sentence's shape only once a left-to-right reader has read that shape's words."""
    from transformers import AutoTokenizer

    from engine.understanding import lm_input_ids
    from training.clause_labels import ATTRIBUTES, IGNORE
    from training.stage_lm import BINDING_ATTRIBUTES, binding_labels

    tok = AutoTokenizer.from_pretrained(tiny_run / "run" / "export" / "tokenizer", local_files_only=True)
    instruction = ("a big red plain triangle at the top left. a small blue dotted square at the right. "
                   "sand striped background. every shape that is not blue shrinks.")
    plan = ("a big red plain triangle at the top left shrinks. a small blue dotted square at the right stays still. "
            "sand striped background.")
    for readings in (1, 2):
        ids = lm_input_ids(tok, instruction, plan, readings)
        labels = binding_labels(tok, instruction, plan, readings)
        assert set(labels) == set(BINDING_ATTRIBUTES) and all(len(v) == len(ids) for v in labels.values())
    words = tok.convert_ids_to_tokens(ids)
    colour = [ATTRIBUTES["colour"][c] if c != IGNORE else None for c in labels["colour"]]
    kind = [ATTRIBUTES["kind"][c] if c != IGNORE else None for c in labels["kind"]]
    at = [i for i, w in enumerate(words) if w.strip("▁") == "at"]
    assert len(at) == 3 * 2  # layout twice (two readings) and the plan
    for i in at:  # "at" starts the place: from there to the full stop every word names the sentence's shape
        expected = ("red", "triangle") if words[i - 1] == "▁triangle" else ("blue", "square")
        assert (colour[i], kind[i]) == expected and (colour[i + 2], kind[i + 2]) == expected
        assert colour[i - 1] is None and colour[i - 3] is None  # the shape's own words, before the place
    assert colour[words.index("▁stays")] == "blue"
    plan_start = ids.index(tok.convert_tokens_to_ids("<plan>"))
    assert colour[plan_start] is None and colour[-1] is None  # separators and </s>
    rule = [i for i, w in enumerate(words) if w == "▁every"]
    assert all(colour[i] is None for i in rule)  # a rule names no shape of its own
    assert "motion" not in labels

    # --binding-motion: the resolved motion, where a reader can know it (the plan, and a second reading after the
    # rule); the first reading, before the rule, gets none
    labels = binding_labels(tok, instruction, plan, 2, motion=True)
    motion = [ATTRIBUTES["motion"][c] if c != IGNORE else None for c in labels["motion"]]
    by_place = [(words[i - 1], motion[i]) for i in at]
    assert by_place == [("▁triangle", None), ("▁square", None), ("▁triangle", "shrinks"), ("▁square", "still"),
                        ("▁triangle", "shrinks"), ("▁square", "still")]
    assert labels["colour"] == binding_labels(tok, instruction, plan, 2)["colour"]


def test_lm_binding_objective_trains_resumes_and_is_refused_for_seq2seq(tiny_run, tmp_path):
    """The family's LM is trained with the binding objective, motions included (the recipe's default);
    ``stage_lm --binding-weight W`` keeps W and the heads across a resume, exports a plain LM (the heads are for
    training only), and an encoder-decoder LM refuses it."""
    import shutil

    import pytest
    import torch

    from engine.understanding import load_lm
    from training import stage_lm

    family = json.loads((tiny_run / "run" / "lm" / "done.json").read_text())
    assert (family["binding_weight"], family["binding_motion"], family["readings"]) == (1.0, True, 2)

    root = tmp_path / "run"
    shutil.copytree(tiny_run / "run", root)
    shutil.rmtree(root / "lm")
    stage_lm.main(["--tiny", "--run", str(root), "--steps", "2", "--layers", "2", "--binding-weight", "0.5",
                   "--no-binding-motion"])
    ck = torch.load(root / "lm" / "ckpt.pt", weights_only=False)
    assert ck["binding_weight"] == 0.5 and set(ck["binding"]) >= {"heads.colour.weight", "heads.kind.weight"}
    assert not ck["binding_motion"] and "heads.motion.weight" not in ck["binding"]
    (root / "lm" / "done.json").unlink()
    stage_lm.main(["--tiny", "--run", str(root), "--steps", "3"])  # no flag; the checkpoint's weight wins
    done = json.loads((root / "lm" / "done.json").read_text())
    assert done["steps"] == 3 and done["binding_weight"] == 0.5 and done["binding_loss"] > 0
    assert done["binding_motion"] is False
    resumed = torch.load(root / "lm" / "ckpt.pt", weights_only=False)
    assert not torch.equal(resumed["binding"]["heads.colour.weight"], ck["binding"]["heads.colour.weight"])
    lm = load_lm(root / "export" / "understanding" / "lm")
    assert not any("binding" in k or "heads" in k for k in lm.state_dict())
    third = tmp_path / "third"
    shutil.copytree(tiny_run / "run", third)
    shutil.rmtree(third / "lm")
    stage_lm.main(["--tiny", "--run", str(third), "--readings", "2", "--binding-weight", "1", "--binding-motion",
                   "--steps", "1", "--layers", "2"])
    ck = torch.load(third / "lm" / "ckpt.pt", weights_only=False)
    assert ck["binding_motion"] and "heads.motion.weight" in ck["binding"]

    other = tmp_path / "other"
    shutil.copytree(tiny_run / "run", other)
    shutil.rmtree(other / "lm")
    with pytest.raises(ValueError, match="causal"):
        stage_lm.main(["--tiny", "--run", str(other), "--steps", "2", "--arch", "seq2seq", "--binding-weight", "1"])


def test_seq2seq_lm_trains_resumes_and_conditions_the_light_stage(tiny_run, tmp_path):
    """``stage_lm --arch seq2seq`` trains an encoder-decoder LM, a resume keeps that kind, and what it exports is
    what the light stage and the engine load: plans decode and the connector gets states."""
    import shutil

    import torch
    from transformers import AutoTokenizer

    from engine.understanding import decode_plan, load_lm
    from training import stage_lm
    from training.common import Budget, Run, setup
    from training.stage_gen import LightCond

    run = Run(root=tmp_path / "run", budget=Budget.tiny(), name="tiny")
    shutil.copytree(tiny_run / "run", run.root)
    shutil.rmtree(run.root / "lm")
    setup(run)
    run.budget.lm_steps = 2
    stage_lm.train(run, layers=1, arch="seq2seq")
    (run.root / "lm" / "done.json").unlink()
    run.budget.lm_steps = 3
    info = stage_lm.train(run)  # the default kind asked for; the checkpoint's wins
    assert (info["steps"], info["arch"], info["layers"]) == (3, "seq2seq", 1)
    lm = load_lm(run.export / "understanding" / "lm")
    assert lm.config.is_encoder_decoder and lm.config.num_layers == 1
    tok = AutoTokenizer.from_pretrained(run.export / "understanding" / "lm")
    assert isinstance(decode_plan(lm, tok, "a big red plain circle at the left moves right."), str)
    ctx = LightCond(run).context([("a big red plain circle at the left moves right.", "gray checked background.")])
    assert ctx.shape[0] == 1 and torch.isfinite(ctx).all()


def test_cached_lm_states_give_the_batch_context(tiny_run):
    """The light stage runs the frozen LM once over all pairs (padded to the longest); the connector's output must
    equal running the LM per batch, so the cache changes speed only."""
    import torch

    from training.common import Budget, Run
    from training.stage_gen import LightCond

    cond = LightCond(Run(root=tiny_run / "run", budget=Budget.tiny()))
    short = ("a small red plain circle at the left moves right. gray checked background.",
             "a small red plain circle at the left moves right. gray checked background.")
    long = ("a big blue dotted star at the top. a small green plain square at the bottom right. sand striped "
            "background. the shape that is not blue grows.", "a big blue dotted star at the top stays still. a "
            "small green plain square at the bottom right grows. sand striped background.")
    batch = [short, ("", "")]
    direct = cond.context(batch)
    cond.precompute([long] + batch)
    assert set(cond._cache) == {short, long, ("", "")}
    cached = cond.context(batch)
    assert cached.shape == direct.shape
    torch.testing.assert_close(cached, direct, atol=2e-2, rtol=2e-2)  # states are cached in fp16


def test_the_vae_takes_more_latent_channels_when_asked(tmp_path):
    """stage_vae --z-dim: the detail-room trial of issue 18 (latent tokens stay the same, channels grow)."""
    import torch

    from training.latent_layout import SPATIAL
    from training.stage_vae import main, make_vae

    vae = make_vae(0, 24)
    x = torch.zeros(1, 3, 5, 32, 32)
    assert vae.encode(x).latent_dist.mode().shape == (1, 24, 2, 32 // SPATIAL, 32 // SPATIAL)
    assert make_vae(0).config.z_dim == 16
    main(["--tiny", "--run", str(tmp_path / "run"), "--z-dim", "24", "--vae-texture-steps", "0",
          "--vae-settle-steps", "0"])
    import json

    assert json.loads((tmp_path / "run" / "run.json").read_text())["budget"]["vae_z_dim"] == 24
    saved = json.loads((tmp_path / "run" / "export" / "vae" / "config.json").read_text())
    assert saved["z_dim"] == 24 and len(saved["latents_mean"]) == 24


def test_the_4x_vae_layout_trains_and_a_trained_vae_continues(tmp_path):
    """stage_vae --spatial 4: the layout on trial in issue 18 (16×16 latents of a 64×64 frame); --init continues a
    saved VAE of the same layout with the run's schedule instead of fresh weights."""
    import json

    import torch
    from diffusers import AutoencoderKLWan

    from training.latent_layout import patch_for
    from training.stage_vae import main, make_vae

    vae = make_vae(0, spatial=4)
    assert vae.encode(torch.zeros(1, 3, 5, 64, 64)).latent_dist.mode().shape == (1, 16, 2, 16, 16)
    assert patch_for(4) == (1, 4, 4) and patch_for(8) == (1, 2, 2)  # a token covers 16×16 pixels either way
    with pytest.raises(ValueError, match="spatial factor 3"):
        make_vae(0, spatial=3)
    first, second = tmp_path / "first", tmp_path / "second"
    steps = ["--vae-texture-steps", "0", "--vae-settle-steps", "0"]
    main(["--tiny", "--run", str(first), "--spatial", "4", *steps])
    saved = AutoencoderKLWan.from_pretrained(first / "export" / "vae")
    assert saved.config.scale_factor_spatial == 4
    # another seed, so that without --init its weights would be another random draw
    main(["--tiny", "--run", str(second), "--seed", "3", "--spatial", "4", "--init", str(first / "export" / "vae"),
          *steps])
    assert json.loads((second / "run.json").read_text())["budget"]["vae_spatial"] == 4
    went_on = AutoencoderKLWan.from_pretrained(second / "export" / "vae")
    fresh = make_vae(7, spatial=4)  # another seed: the first run itself started from seed 0's weights
    # the continued VAE is nearer the one it continued than a fresh one is (a few tiny steps move it a little)
    with torch.no_grad():
        near = sum(float((a - b).abs().sum()) for a, b in zip(went_on.parameters(), saved.parameters()))
        far = sum(float((a - b).abs().sum()) for a, b in zip(fresh.parameters(), saved.parameters()))
    assert near < 0.5 * far


def test_the_2x_temporal_vae_keeps_nine_latent_frames_of_seventeen():
    """stage_vae --temporal 2 (issue 18's trial for moving textures): only the second downsample halves time."""
    import torch

    from training.stage_vae import make_vae

    vae = make_vae(0, temporal=2)
    z = vae.encode(torch.zeros(1, 3, 17, 64, 64)).latent_dist.mode()
    assert z.shape == (1, 16, 9, 8, 8) and vae.config.scale_factor_temporal == 2
    assert vae.decode(z).sample.shape == (1, 3, 17, 64, 64)
    with pytest.raises(ValueError, match="temporal factor 3"):
        make_vae(0, temporal=3)


def test_refine_draws_low_noise_only_from_its_step_on():
    """heavy_refine's recipe: from "low_noise_from" on, "low_noise_share" of the σ are uniform below LOW_NOISE_MAX;
    before it (and without the recipe keys) the draw is the base one, the same random stream."""
    import torch

    from training.stage_gen import LOW_NOISE_MAX, draw_sigmas, sample_sigmas

    recipe = {"low_noise_share": 0.5, "low_noise_from": 100}
    base = sample_sigmas(4000, torch.Generator().manual_seed(0))
    assert torch.equal(draw_sigmas(4000, torch.Generator().manual_seed(0), recipe, 99), base)
    assert torch.equal(draw_sigmas(4000, torch.Generator().manual_seed(0), {}, 500), base)
    late = draw_sigmas(4000, torch.Generator().manual_seed(0), recipe, 100)
    share_low = float((late < 0.3).float().mean())
    assert abs(float((base < 0.3).float().mean()) - 0.176) < 0.03  # the shifted draw: ~18 % below 0.3
    assert abs(share_low - (0.5 * 0.3 / LOW_NOISE_MAX + 0.5 * 0.176)) < 0.03
    assert bool(((late >= 0) & (late <= 1)).all())


def test_the_light_generators_size_is_a_budget_flag(tiny_run, tmp_path):
    """--light-heads / --light-layers set the light transformer the recipe trains (issue 18: light as small as it can
    be); a checkpoint of another size is not resumed; a light narrower than a token's latent values is refused with
    the reason, before any training."""
    from training import stage_handoff

    args = ["--tiny", "--run", str(tmp_path / "run"), "--from", str(tiny_run / "family"), "--only", "light"]
    stage_handoff.main(args + ["--light-heads", "2", "--light-head-dim", "40", "--light-layers", "2"])
    light = json.loads((tmp_path / "run" / "export" / "light" / "transformer" / "config.json").read_text())
    assert (light["num_attention_heads"], light["attention_head_dim"], light["num_layers"], light["ffn_dim"]) == (
        2, 40, 2, 320)
    (tmp_path / "run" / "light" / "done.json").unlink()  # its checkpoint stays: resuming at another size is refused
    assert (tmp_path / "run" / "light" / "ckpt.pt").exists()
    with pytest.raises(SystemExit, match="--light-heads"):
        stage_handoff.main(args + ["--light-heads", "2", "--light-layers", "2"])  # 64 wide, not 80
    with pytest.raises(ValueError, match="needs a width of at least 64"):
        stage_handoff.main(["--tiny", "--run", str(tmp_path / "narrow"), "--from", str(tiny_run / "family"),
                            "--only", "light", "--light-heads", "1"])


def test_a_generator_reads_and_writes_the_vaes_latent_channels():
    """make_transformer follows the run's VAE (Budget.vae_z_dim), not Wan2.1's 16 channels: its patch embedding and
    output carry that many channels, and the width check counts them."""
    import torch

    from training.stage_gen import LIGHT, make_transformer

    model = make_transformer(LIGHT, channels=8, patch=(1, 2, 2)).eval()
    assert model.config.in_channels == model.config.out_channels == 8
    latent = torch.randn(1, 8, 5, 8, 8)
    with torch.no_grad():
        out = model(latent, timestep=torch.tensor([500]), encoder_hidden_states=torch.randn(1, 4, model.config.text_dim),
                    return_dict=False)[0]
    assert out.shape == latent.shape
    with pytest.raises(ValueError, match="at least 128"):  # 32 channels × 2 × 2 = 128 values a token, LIGHT is 96 wide
        make_transformer(LIGHT, channels=32, patch=(1, 2, 2))
