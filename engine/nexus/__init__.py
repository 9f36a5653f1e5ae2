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


def check_family(name: str | None) -> None:
    """ModelError unless `name` is a model family the engine knows (None: a plain light + heavy pair)."""
    from ..errors import ModelError

    if name is not None and name not in FAMILIES:
        raise ModelError(f"unknown model family {str(name)[:40]!r}; known: {', '.join(FAMILIES)}")
