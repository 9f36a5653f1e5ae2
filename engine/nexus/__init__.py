"""The authors' released Lumos-Nexus system (Omni-Video bundle + original-format Wan2.1-T2V-14B) as a model family.

One concept per module: `layout` (which files, checked), `weights` (reading them: safetensors, or pickles with
torch.load(weights_only=True) only), `convert` (the one command that turns the release's plain pickles into
safetensors), `vision_head` and `adapter` (the release's torch modules, our code, their state-dict keys),
`wan_format` (original Wan transformer / T5 / VAE checkpoints to diffusers and transformers classes), `llm` (VILA's
language model and its prompt), `context` (the light and heavy generators' contexts), `block` (the run-time
understanding block), `memory` (sizing), `loading` (everything together into engine.loading.LoadedModels).
docs/nexus_release.md says how to point the app at the downloads.
"""

FAMILY = "lumos-nexus"
FAMILIES = (FAMILY,)
# What a window or the CLI says about each family, without loading it. uses_negative_prompt: False where the family's
# unconditional branch is its own stored context, so a typed negative prompt is not used (engine/nexus/block.py);
# writes_plan: False where its understanding block writes no readable plan (the app shows no plan to edit).
FAMILY_INFO = {
    FAMILY: {"label": "Lumos-Nexus release",
             "title": "Lumos-Nexus release (authors' bundle + Wan2.1-T2V-14B original format)",
             "light": "the Omni-Video bundle (howellyoung1/OmniVideo11B)",
             "heavy": "Wan2.1-T2V-14B (original format)",
             "uses_negative_prompt": False,
             # its understanding block writes no readable plan (engine/nexus/block.py: plan() is None)
             "writes_plan": False,
             "negative_note": "The Lumos-Nexus release does not use a negative prompt: its unconditional branch is "
                              "the release's stored unconditional context (the take's metadata says so)."},
}


def check_family(name: str | None) -> None:
    """ModelError unless `name` is a model family the engine knows (None: a plain light + heavy pair)."""
    from ..errors import ModelError

    if name is not None and name not in FAMILIES:
        raise ModelError(f"unknown model family {str(name)[:40]!r}; known: {', '.join(FAMILIES)}")


def family_info(name: str | None) -> dict:
    """What `name` is, for a window or the CLI (FAMILY_INFO): {} for a plain light + heavy pair (None)."""
    check_family(name)
    return dict(FAMILY_INFO[name]) if name is not None else {}


def family_folder_problems(name: str, light, heavy) -> dict:
    """{"light": why, "heavy": why} for the family's two folders (file presence only, nothing read): {} when both
    hold every file the family needs."""
    from .layout import folder_problems

    check_family(name)
    return folder_problems(light, heavy)


def family_of_folders(light, heavy=None) -> str | None:
    """The family whose folders these look like (file presence only): "lumos-nexus" when `light` is an Omni-Video
    bundle, else None (a plain light + heavy pair, or the embedded family when both are None)."""
    from .layout import looks_like_bundle

    return FAMILY if looks_like_bundle(light) else None
