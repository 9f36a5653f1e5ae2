"""The Fast preset of the settings panel: the engine's FAST_PRESET (few-step sampler, 4 steps, no CFG)."""

from engine.api import FAST_PRESET, RenderRequest, check_request


def test_fast_preset_sets_the_few_step_settings(qtbot):
    from app.widgets.controls import SettingsPanel

    panel = SettingsPanel()
    qtbot.addWidget(panel)
    panel.set_values({"upfb": {"light_lead": 10}})
    with qtbot.waitSignal(panel.changed, timeout=1000):
        panel.fast.click()
    fields = panel.request_fields()
    assert {k: fields[k] for k in FAST_PRESET} == FAST_PRESET
    assert fields["upfb"].light_lead <= FAST_PRESET["steps"]
    check_request(RenderRequest(prompt="a cat", **fields))  # a valid request
    # the sampler choice round-trips through stored values
    panel.set_values({"scheduler": "unipc"})
    assert panel.values()["scheduler"] == "unipc"
    panel.set_values({"scheduler": "fewstep"})
    assert panel.values()["scheduler"] == "fewstep"
