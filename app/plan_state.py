"""The plan shown beside an instruction, and whether it still belongs to it. No Qt here.

A plan is written by the understanding block for one instruction, or edited by hand for one instruction. Once the
instruction changes, that plan is stale: it is never sent with a render (the block writes a fresh one), and the
window says so. A hand-edited plan is sent only while its instruction is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

EMPTY, WRITTEN, EDITED, STALE = "empty", "written", "edited", "stale"


def same_instruction(a: str | None, b: str | None) -> bool:
    """Whitespace does not change what an instruction says; anything else does."""
    if a is None or b is None:
        return False
    return " ".join(a.split()) == " ".join(b.split())


@dataclass
class PlanState:
    text: str = ""
    instruction: str | None = None  # what the plan was written or edited for; None = unknown (treated as stale)
    edited: bool = False  # changed by hand

    def status(self, instruction: str) -> str:
        if not self.text.strip():
            return EMPTY
        if not same_instruction(self.instruction, instruction):
            return STALE
        return EDITED if self.edited else WRITTEN

    def plan_for_request(self, instruction: str) -> str | None:
        """The plan a render of `instruction` must use: only a hand edit made for it. None lets the understanding
        block write the plan (the same text it wrote before, so a repeated draft is recognised as the same take)."""
        return self.text.strip() if self.status(instruction) == EDITED else None

    def written(self, instruction: str, text: str) -> None:
        """The understanding block wrote `text` for `instruction` (a hand edit for that instruction wins)."""
        if self.status(instruction) == EDITED:
            return
        self.text, self.instruction, self.edited = text, instruction, False

    def edit(self, instruction: str, text: str) -> None:
        """The user typed in the plan while `instruction` was shown."""
        self.text, self.instruction, self.edited = text, instruction, bool(text.strip())

    def describe(self, instruction: str, who: str = "the understanding block") -> str:
        """One line for the panel: whose plan this is (`who` writes them: the block, or a pair's planner) and
        whether the next draft uses it."""
        return {
            EMPTY: f"{who[:1].upper()}{who[1:]} writes a plan when you draft (or press Write plan).",
            WRITTEN: f"Written by {who} for this instruction.",
            EDITED: "Edited by you for this instruction: drafts use your plan.",
            STALE: "Written for an earlier instruction: a new plan is written when you draft.",
        }[self.status(instruction)]

    def to_dict(self) -> dict:
        return {"plan": self.text, "plan_instruction": self.instruction, "plan_edited": self.edited}

    @classmethod
    def from_dict(cls, data: dict) -> "PlanState":
        text = data.get("plan") if isinstance(data.get("plan"), str) else ""
        instruction = data.get("plan_instruction") if isinstance(data.get("plan_instruction"), str) else None
        edited = data.get("plan_edited") is True
        return cls(text, instruction, edited)
