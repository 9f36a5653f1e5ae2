"""Every value derived once (issue 20): the request checked once, gamma_w resolved once per render, one take identity,
one seed range, and the gate the app plots read from the same `Resolved` the sampler uses."""

import math

import pytest

from engine.api import (
    MAX_SEED,
    RenderRequest,
    RequestError,
    UPFBParams,
    check_request,
    gate_schedule,
    is_checked,
    resolve_request,
    take_identity,
)


def test_gamma_w_is_computed_once_per_render(runtime, small_request, monkeypatch):
    import engine.handoff

    calls = []
    real = engine.handoff.handoff_to_gamma_w
    monkeypatch.setattr(engine.handoff, "handoff_to_gamma_w", lambda *a, **k: calls.append(a) or real(*a, **k))
    runtime.takes_cache.clear()
    take = runtime.render(small_request.replace(mode="upfb", handoff=0.6, seed=11))
    assert len(calls) == 1
    assert take.metadata["gamma_w"] == pytest.approx(real(0.6, take.metadata["flow_shift"]))


def test_a_checked_request_is_checked_once_from_the_door_to_the_sampler(runtime, small_request, monkeypatch):
    import engine.request

    calls = []
    real = engine.request._validate
    monkeypatch.setattr(engine.request, "_validate", lambda *a: calls.append(a[0]) or real(*a))
    runtime.takes_cache.clear()
    req = check_request(small_request.replace(mode="light", seed=12), limits=runtime.limits)  # Engine.submit
    check_request(req)  # the app checking again costs nothing
    runtime.render(req)
    assert len(calls) == 1


def test_only_check_request_output_is_trusted(small_request):
    checked = check_request(small_request)
    assert is_checked(checked) and not is_checked(small_request.replace(seed=1))
    assert not is_checked(checked.replace(seed=1))  # any change needs a new check
    assert not is_checked(RenderRequest.from_dict(checked.to_dict()))  # data from a file is untrusted
    assert "_checked_against" not in checked.to_dict() and checked == small_request
    with pytest.raises(RequestError, match="steps"):
        check_request(checked.replace(steps=0))


def test_checked_without_limits_is_checked_again_against_limits(runtime, small_request):
    checked = check_request(small_request.replace(width=4096 - 2048))
    assert is_checked(checked) and not is_checked(checked, runtime.limits)
    with pytest.raises(RequestError, match="renders at most"):
        check_request(checked, limits=runtime.limits)


def test_take_identity_is_every_field_of_the_checked_request(small_request):
    key = take_identity(small_request)
    assert take_identity(small_request.replace()) == key
    assert take_identity(small_request.replace(num_frames=6)) == take_identity(small_request)  # repaired to 5
    for change in ({"seed": 8}, {"handoff": 0.5}, {"upfb": UPFBParams(light_lead=1)}, {"prompt": "a blue square"},
                   {"flow_shift": 3.0}, {"plan": "x"}):
        assert take_identity(small_request.replace(**change)) != key, change
    with pytest.raises(RequestError):
        take_identity(small_request.replace(prompt=""))


def test_one_seed_range(small_request):
    assert MAX_SEED == 2**31 - 1
    assert check_request(small_request.replace(seed=MAX_SEED)).seed == MAX_SEED
    with pytest.raises(RequestError, match="seed"):
        check_request(small_request.replace(seed=MAX_SEED + 1))


def test_resolved_is_what_the_gate_plot_and_the_sampler_use(runtime, small_request):
    req = small_request.replace(mode="upfb", handoff=0.6, upfb=UPFBParams(light_lead=2))
    resolved = runtime.resolve(req)
    assert resolved == resolve_request(req, runtime.model_flow_shift)
    assert resolved.flow_shift == float(runtime.models.scheduler_config["flow_shift"])
    assert resolved.timesteps == tuple(float(t) for t in runtime._scheduler(req, resolved).timesteps)
    gate = resolved.gate()
    assert gate == gate_schedule(req.steps, 0.6, flow_shift=resolved.flow_shift, light_lead=2)
    assert gate.w[:2] == (1.0, 1.0) and gate.gamma_w == resolved.gamma_w == resolved.recorded_gamma_w
    assert resolve_request(req.replace(flow_shift=3.0), runtime.model_flow_shift).flow_shift == 3.0
    assert resolve_request(req.replace(flow_shift=None)).flow_shift == 5.0  # no models: Wan's


@pytest.mark.parametrize("mode, gamma_w, recorded", [("light", math.inf, None), ("heavy", 0.0, None),
                                                     ("switch", 0.0, None)])
def test_resolved_gamma_w_per_mode(small_request, mode, gamma_w, recorded):
    r = resolve_request(small_request.replace(mode=mode, switch_step=2), 3.0)
    assert (r.gamma_w, r.recorded_gamma_w, r.light_lead) == (gamma_w, recorded, 0)


def test_official_settings_lead_18_of_50_through_resolve(small_request):
    from engine.api import OFFICIAL_GAMMA_W

    r = resolve_request(small_request.replace(steps=50, gamma_w=OFFICIAL_GAMMA_W, flow_shift=5.0))
    assert r.gate().light_leading_steps == 18 and "18 of 50" in r.gate().describe()
