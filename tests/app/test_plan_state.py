"""app.plan_state: whose plan is shown and whether a render may use it (Qt-free)."""

from app.plan_state import EDITED, EMPTY, STALE, WRITTEN, PlanState, same_instruction


def test_written_plan_is_never_sent_but_belongs_to_its_instruction():
    s = PlanState()
    assert s.status("a red circle moves left") == EMPTY
    s.written("a red circle moves left", "1. red circle\n2. moves left")
    assert s.status("a red circle moves left") == WRITTEN
    # the block writes the same plan again for the same instruction: sending None keeps the take's identity
    assert s.plan_for_request("a red circle moves left") is None
    assert s.status("a green square moves up") == STALE
    assert s.plan_for_request("a green square moves up") is None


def test_hand_edit_is_sent_only_for_its_instruction_and_survives_a_written_plan():
    s = PlanState()
    s.edit("a red circle moves left", "1. my plan")
    assert s.status("a red circle moves left") == EDITED
    assert s.plan_for_request("  a red circle   moves left ") == "1. my plan"  # whitespace only
    s.written("a red circle moves left", "1. the block's plan")
    assert s.text == "1. my plan"  # a draft's plan does not overwrite the user's edit
    assert s.plan_for_request("a red circle moves right") is None
    s.written("a red circle moves right", "1. the block's plan")
    assert s.status("a red circle moves right") == WRITTEN and s.text == "1. the block's plan"
    s.edit("x", "   ")
    assert s.status("x") == EMPTY and not s.edited


def test_round_trip_and_unknown_owner_is_stale():
    s = PlanState("1. plan", "an instruction", True)
    assert PlanState.from_dict(s.to_dict()) == s
    old = PlanState.from_dict({"plan": "1. plan"})  # written before plans knew their instruction
    assert old.status("an instruction") == STALE
    bad = PlanState.from_dict({"plan": 5, "plan_instruction": ["x"], "plan_edited": "yes"})
    assert bad == PlanState()
    assert same_instruction("a  b", "a b\n") and not same_instruction("a b", "a c") and not same_instruction(None, "a")
