"""The window's models room: which models and LoRAs load (the settings, Models ▸ Choose models…), what the status
bar says about them, and the LoRAs of a take restored from an MP4.

A mixin of MainWindow (app.main_window). A restored take's LoRAs are looked up on the helper thread (each file's
sha256 is read) with engine.api.find_recorded_lora: by file name among the LoRAs already chosen, else next to the MP4.
One that is missing or differs is named in the banner with a button to locate it; the take's other settings are
restored either way. Once all are found they are loaded with the models, and "Render it" renders with them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from PySide6.QtWidgets import QFileDialog

from engine.api import LumosError, ModelError, ModelSpec, RenderRequest, family_info, find_recorded_lora

from .settings import summarize
from .take_origin import MadeWith, describe, switch_spec
from .widgets.dialogs import ModelPickerDialog

ROLES = ("light", "heavy")


def short_model_name(source: str) -> str:
    """'/home/me/models/wan-1.3b' → 'models/wan-1.3b' for the status bar (the tooltip has the whole path)."""
    parts = Path(str(source)).parts
    return "/".join(parts[-2:]) if len(parts) > 2 else str(source)


def lora_entries(saved) -> tuple[tuple[str, float], ...]:
    """Settings entries [[file, strength], ...] (checked by app.schema) → ModelSpec's ((file, strength), ...)."""
    return tuple((str(path), float(scale)) for path, scale in saved)


def loaded_family(summary: dict) -> dict:
    """engine.api.family_info of the family the loaded models are ({} for a plain pair or an unknown name)."""
    try:
        return family_info(summary.get("family") or None)
    except LumosError:
        return {}


def heavy_reads_words(summary: dict) -> str:
    return "the plan" if summary.get("heavy_reads") == "plan" else "the instruction as typed"


def count_loras(n: int) -> str:
    return f"{n} LoRA" if n == 1 else f"{n} LoRAs"


def describe_loras(records) -> list[str]:
    """'name × strength' for each LoRA record ({"name", "scale"}) or (path, strength) entry."""
    out = []
    for r in records if isinstance(records, (list, tuple)) else ():
        name, scale = (r.get("name"), r.get("scale", 1.0)) if isinstance(r, dict) else (Path(r[0]).name, r[1])
        out.append(f"{name} × {scale:g}" if isinstance(scale, (int, float)) else str(name))
    return out


@dataclass
class LoraLookup:
    """What find_take_loras found: each role's (file, strength) entries, and the records it could not find."""

    found: dict
    missing: list  # (role, index in the role's records, record, why)


def find_take_loras(records: dict, given: dict, located: dict, take_file: str) -> LoraLookup:
    """Find the LoRAs a take recorded ({role: [{"name", "sha256", "scale"}]}): each among `given` ({role: [file]},
    the LoRAs chosen now) by its file name, else next to `take_file`; a file the user located for it (`located`,
    {(role, index): file}) is used whatever its name. Every file must have the recorded sha256. No Qt: runs on the
    helper thread."""
    found, missing = {role: [] for role in ROLES}, []
    for role in ROLES:
        for index, record in enumerate(records.get(role) or ()):
            picked = located.get((role, index))
            try:
                if picked:  # asked under its own name, so that only this file is looked at
                    path = find_recorded_lora(dict(record, name=Path(picked).name), role, [picked], take_file)
                else:
                    path = find_recorded_lora(record, role, list(given.get(role) or ()), take_file)
            except ModelError as exc:
                missing.append((role, index, record, app_wording(str(exc))))
            except OSError as exc:
                missing.append((role, index, record, f"{picked or record.get('name')} cannot be read: "
                                                      f"{exc.strerror or exc}"))
            else:
                found[role].append((str(path), float(record.get("scale", 1.0))))
    return LoraLookup({role: tuple(v) for role, v in found.items()}, missing)


def app_wording(message: str) -> str:
    """The engine's lookup message without its command-line advice."""
    head, cli, _ = message.partition(": pass --lora-")
    return head + (" (nor among the LoRAs chosen in Models ▸ Choose models…)" if cli else "")


@dataclass
class LoraRestore:
    """A restored take whose LoRAs are being looked up."""

    take_file: str
    records: dict  # {role: [record]}
    problems: list  # records that could not be read (left out)
    text: str  # what the banner says about the restored settings
    request: RenderRequest  # what "Render it" renders
    located: dict = field(default_factory=dict)  # {(role, index): file the user chose}
    token: int = 0
    made: MadeWith = field(default_factory=MadeWith)  # the family / planner that made it (app.take_origin)


class ModelsRoom:
    """MainWindow's models, LoRAs and restored-take LoRA methods."""

    _lora_restore: LoraRestore | None = None
    _lora_token = 0
    _pending_render: RenderRequest | None = None  # "Render it" pressed while the models (re)load

    def current_spec(self) -> ModelSpec:
        s = self.settings
        return ModelSpec(light=s.model_light or None, heavy=s.model_heavy or None,
                         understanding=s.model_understanding or None, device=s.model_device, offload=s.model_offload,
                         memory=s.model_memory, lora_light=lora_entries(s.model_lora_light),
                         lora_heavy=lora_entries(s.model_lora_heavy), family=s.model_family or None,
                         # a plain pair's planner (the families have their own understanding block)
                         planner=None if s.model_family else s.model_planner or None,
                         heavy_reads=s.model_heavy_reads if s.model_planner and not s.model_family else "instruction")

    def choose_models(self) -> None:
        dlg = ModelPickerDialog(self.current_spec(), self.tasks, self)
        if dlg.exec():
            self.apply_model_spec(dlg.spec())

    def apply_model_spec(self, spec: ModelSpec) -> None:
        s = self.settings
        s.model_light, s.model_heavy = spec.light or "", spec.heavy or ""
        s.model_family = spec.family or ""
        s.model_planner = "" if spec.family else spec.planner or ""
        s.model_heavy_reads = spec.heavy_reads if s.model_planner else "instruction"
        s.model_device, s.model_offload, s.model_memory = spec.device, spec.offload, spec.memory
        s.model_lora_light = [[str(p), float(scale)] for p, scale in spec.lora_light]
        s.model_lora_heavy = [[str(p), float(scale)] for p, scale in spec.lora_heavy]
        self._store_settings()
        self.session.summary = None
        self._models_pending = True
        self.gate.timesteps.clear()
        if self.engine is None:
            self.start_engine()
            return
        self.model_label.setText("Models: loading…")
        self.load_bar.setVisible(True)
        self.load_bar.setValue(0)
        self.session.track(self.engine.load(spec), "load", "Load models")

    def use_memory_plan(self, plan: str) -> None:
        """Reload the same models under another GPU memory plan (after an out-of-memory, or from the picker)."""
        self.apply_model_spec(replace(self.current_spec(), memory=plan))
        self.statusBar().showMessage(f"Reloading the models with the {plan} memory plan; then render again.", 8000)

    def _show_models(self, summary: dict) -> None:
        """The status bar's models: "Models: light (+2 LoRAs) + heavy", each LoRA and its strength in the tooltip."""
        loras = summary.get("loras") if isinstance(summary.get("loras"), dict) else {}
        names, tips = [], []
        for role in ROLES:
            source = summary.get(role, "?")
            listed = describe_loras(loras.get(role))
            names.append(short_model_name(source) + (f" (+{count_loras(len(listed))})" if listed else ""))
            tips.append(f"{role.capitalize()}: {source}" + "".join(f"\n    LoRA {x}" for x in listed))
        info = loaded_family(summary)
        if info:  # a released system: its name first, its two folders after
            tips.insert(0, info["title"])
        planner = summary.get("planner") if isinstance(summary.get("planner"), str) else None
        if planner:  # a plain pair's planner writes the plan (app.window_plan)
            tips.append(f"Planner: {planner} (the heavy generator reads {heavy_reads_words(summary)})")
        self.model_label.setText("Models: " + (f"{info['label']} · " if info else "") + " + ".join(names)
                                 + (f" · planner {short_model_name(planner)}" if planner else ""))
        self.model_label.setToolTip("\n".join(tips))
        self.prompt.set_negative_unused(None if info.get("uses_negative_prompt", True) else info.get("negative_note"))

    def render_when_loaded(self, req: RenderRequest) -> bool:
        """Keep `req` for when the models being loaded are ready (True), so that it renders with them."""
        if self.session.summary is None and self._models_pending:
            self._pending_render = req
            self.statusBar().showMessage("The models are loading; the take renders as soon as they are ready.")
            return True
        return False

    def _render_pending(self) -> None:
        req, self._pending_render = self._pending_render, None
        if req is not None:
            self.render_request(req)

    # ------------------------------------------------------------------ a restored take's LoRAs
    def restore_loras(self, take_file, restored, text: str) -> None:
        """After a take's settings were restored from `take_file`: find its LoRAs and load them with the models, or
        say which one is missing and offer to locate it. `text` is what the banner says about the settings."""
        self._lora_restore = LoraRestore(str(take_file), restored.loras, list(restored.lora_problems), text,
                                         restored.request, made=getattr(restored, "made", MadeWith()))
        if not any(restored.loras.values()):
            has = [role for role in ROLES if getattr(self.current_spec(), f"lora_{role}")]
            note = (f" The models carry LoRAs ({' and '.join(has)}) that this take was made without: remove them in "
                    "Models ▸ Choose models… to render it as it was." if has else "")
            self._tell_restored(note)
            return
        self.banner.show_message(f"{text} Looking for its LoRAs…", "info")
        self._look_up_loras()

    def _look_up_loras(self) -> None:
        st = self._lora_restore
        self._lora_token += 1
        st.token = token = self._lora_token
        spec = self.current_spec()
        given = {role: [path for path, _ in getattr(spec, f"lora_{role}")] for role in ROLES}
        self.tasks.run(find_take_loras, st.records, given, dict(st.located), st.take_file,
                       on_done=lambda found: self._loras_looked_up(token, found),
                       on_error=lambda exc: self._loras_looked_up(token, LoraLookup({}, [
                           ("light", -1, {}, f"its LoRAs could not be looked up ({type(exc).__name__}: {exc})")])))

    def _loras_looked_up(self, token: int, lookup: LoraLookup) -> None:
        st = self._lora_restore
        if st is None or st.token != token:
            return  # another take was restored meanwhile
        if lookup.missing:
            role, index, record, why = lookup.missing[0]
            if index < 0:  # the lookup itself failed
                self.banner.show_message(f"{st.text} But {why}; the take's other settings are restored.", "warning")
                return
            name = record.get("name") or "?"
            more = f" ({len(lookup.missing) - 1} more LoRA(s) missing too.)" if len(lookup.missing) > 1 else ""
            text = (f"{st.text} Its {role} LoRA “{name}” is needed to render it as it was: {why}.{more} "
                    "The take's other settings are restored.")
            self.banner.show_message(text, "warning", f"Locate {name}…", lambda: self.locate_lora(token, role, index))
            return
        spec = self.current_spec()
        wanted = replace(spec, lora_light=lookup.found["light"], lora_heavy=lookup.found["heavy"])
        listed = "; ".join(f"{role}: {', '.join(describe_loras(lookup.found[role]))}" for role in ROLES
                           if lookup.found[role])
        if (wanted.lora_light, wanted.lora_heavy) != (spec.lora_light, spec.lora_heavy):
            self.apply_model_spec(wanted)
            self._tell_restored(f" Its LoRAs ({listed}) are loading with the models.")
        else:
            self._tell_restored(f" Its LoRAs ({listed}) are already loaded.")

    def locate_lora(self, token: int, role: str, index: int) -> None:
        """The banner's "Locate …": choose the file of a restored take's LoRA, then look them up again."""
        st = self._lora_restore
        if st is None or st.token != token:
            return
        name = st.records[role][index].get("name", "")
        path, _ = QFileDialog.getOpenFileName(self, f"Locate the {role} LoRA {name}", str(Path(st.take_file).parent),
                                              "LoRA (*.safetensors)")
        if path:
            st.located[(role, index)] = path
        self._look_up_loras()  # also re-tells what is missing when the dialog was cancelled

    def _tell_restored(self, note: str) -> None:
        st = self._lora_restore
        if st.problems:
            note += f" Some of its LoRA records could not be read and were left out: {summarize(st.problems)}."
        req = st.request
        if st.made.problems:
            note += f" Some of its model records could not be read: {summarize(list(st.made.problems))}."
        s = self.session.summary
        target = switch_spec(st.made, self.current_spec(), (s.get("light"), s.get("heavy")) if s else None)
        if target is not None:  # made by another family or planner: one click loads those, then "Render it"
            words, button = describe(st.made, target)
            self.banner.show_message(f"{st.text}{note} {words}", "info", button,
                                     lambda: self.switch_to_take_models(target, req))
            return
        self.banner.show_message(st.text + note, "info", "Render it", lambda: self.render_request(req))

    def switch_to_take_models(self, target: ModelSpec, req: RenderRequest) -> None:
        """Load the family / planner a restored take was made with. A family's folders that are not here: the
        picker opens on them, to point it at the downloads."""
        folders = [p for p in (target.light, target.heavy) if p]
        if target.family and (len(folders) < 2 or not all(Path(p).expanduser().is_dir() for p in folders)):
            dlg = ModelPickerDialog(target, self.tasks, self)
            if not dlg.exec():
                return
            target = dlg.spec()
        self.apply_model_spec(target)
        self.banner.show_message("Loading the models the take was made with; “Render it” renders it with them "
                                 "once they are ready.", "info", "Render it", lambda: self.render_request(req))
