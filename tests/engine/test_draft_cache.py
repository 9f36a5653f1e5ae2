"""Light lead: a prefix that does not depend on the hand-off, resumed exactly from the draft cache."""

import torch

from engine.api import StepEvent, UPFBParams
from engine.cache import ByteLRU


def test_light_lead_prefix_is_independent_of_gamma_w(runtime, small_request):
    from engine.sampler import SamplerSettings, denoise
    from engine.schedulers import make_scheduler

    k0 = 3
    captured = {}
    for gamma_w in (0.1, 0.3, 2.0):
        sched = make_scheduler("unipc", runtime.resolve(small_request).flow_shift, runtime.models.scheduler_config)
        sched.set_timesteps(small_request.steps)
        sched.set_begin_index(0)
        cond = runtime.conditioning(small_request, None)
        settings = SamplerSettings("upfb", gamma_w=gamma_w, light_lead=k0, guidance_light=5.0, guidance_heavy=4.0)
        states = []
        x = torch.randn(1, 16, 2, 4, 4, generator=torch.Generator().manual_seed(0))
        denoise(runtime.models.light, runtime.models.heavy, cond, settings, sched, x,
                before_step=lambda i, p, lat, v, s: states.append((p.phase, lat.clone())))
        assert [p for p, _ in states[:k0]] == ["light lead"] * k0
        assert states[k0][0] == "bridging"
        captured[gamma_w] = states[k0][1]
    first = captured[0.1]
    assert all(torch.equal(first, other) for other in captured.values())


def test_resumed_refine_equals_full_recompute(runtime, small_request):
    runtime.draft_cache.clear()
    runtime.takes_cache.clear()
    draft = small_request.replace(mode="upfb", handoff=0.0)
    runtime.render(draft)
    assert len(runtime.draft_cache) == 1
    refine = small_request.replace(mode="upfb", handoff=0.6, upfb=UPFBParams(light_lead=3))
    events = []
    resumed = runtime.sample(refine, emit=events.append)
    cached_steps = [e.step for e in events if isinstance(e, StepEvent) and e.from_cache]
    assert cached_steps == [1, 2, 3]
    assert [e.phase for e in events[3:]] == ["bridging"] * (small_request.steps - 3)
    # a lead past the kept share of the draft (max_lead_fraction) is recomputed, not resumed
    events.clear()
    runtime.sample(refine.replace(upfb=UPFBParams(light_lead=4)), emit=events.append)
    assert not any(e.from_cache for e in events) and len(events) == small_request.steps
    runtime.draft_cache.clear()
    events.clear()
    scratch = runtime.sample(refine, emit=events.append)
    assert not any(e.from_cache for e in events)
    assert (resumed - scratch).abs().max().item() <= 1e-5


def test_refine_differs_from_draft_and_repeats_come_from_takes_cache(runtime, small_request):
    draft = runtime.render(small_request.replace(mode="upfb", handoff=0.0))
    refine_req = small_request.replace(mode="upfb", handoff=0.7)
    refine = runtime.render(refine_req)
    assert not refine.from_cache
    assert abs(refine.frames.astype(int) - draft.frames.astype(int)).max() > 0
    again = runtime.render(refine_req)
    assert again.from_cache and (again.frames == refine.frames).all()


def test_byte_lru_respects_bound_and_recency():
    lru = ByteLRU(100)
    for i in range(10):
        assert lru.put(f"k{i}", i, 30)
        assert lru.nbytes <= 100
    assert len(lru) == 3 and "k9" in lru and "k6" not in lru
    lru.get("k7")  # k7 becomes most recent: k8 goes next
    lru.put("new", "x", 30)
    assert "k7" in lru and "k8" not in lru
    assert not lru.put("huge", "y", 101) and "huge" not in lru


def test_draft_cache_eviction_respects_byte_bound(tiny_spec, runtime, small_request):
    from engine.runtime import Runtime

    runtime.draft_cache.clear()
    runtime.takes_cache.clear()
    runtime.render(small_request.replace(seed=99, mode="light", steps=4))
    one_record = runtime.draft_cache.nbytes
    assert one_record > 0
    rt = Runtime(cache_bytes=int(one_record * 2.5 * 4 / 3))  # the draft cache gets 3/4: room for two records
    rt.load(tiny_spec)
    for seed in range(5):
        rt.render(small_request.replace(seed=seed, mode="light", steps=4))
        assert rt.draft_cache.nbytes <= rt.draft_cache.max_bytes
    assert len(rt.draft_cache) == 2


def test_refine_without_draft_seeds_the_cache_for_the_next_slider_value(runtime, small_request):
    runtime.draft_cache.clear()
    first = small_request.replace(mode="upfb", handoff=0.4, upfb=UPFBParams(light_lead=2), seed=41)
    events = []
    runtime.sample(first, emit=events.append)
    assert not any(e.from_cache for e in events)
    second = first.replace(handoff=0.8)
    events.clear()
    resumed = runtime.sample(second, emit=events.append)
    assert [e.step for e in events if e.from_cache] == [1, 2]
    assert torch.equal(resumed, runtime.sample(second))  # resuming leaves the record untouched
    runtime.draft_cache.clear()
    assert (resumed - runtime.sample(second)).abs().max().item() <= 1e-5
