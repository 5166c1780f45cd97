"""Pass 6: rewrite each step, its custom decorators' code inlined around its body.

First `plan` decides, then the builders assemble:

* `plan`: every name the step claims and what each part does (a frozen `StepPlan`), with
  the `setting_up` rule in `setup`;
* `step`: the step, layer around layer; `decorator`: one decorator's code, renamed, its
  yields marked and its guards built (`guards`); `yields`: what each yield does.

The rules that keep Metaflow's meaning:

* names: a decorator's locals keep their names unless that would capture or shadow
  anything (then `<decorator>_<name>`); its `flow` parameter reads as the step's `self`
  where that is safe; `step_name`, `inputs` and `attributes` become plain assignments;
* `return`: only leaves the decorator's (or the body's) block (see `support/returns`);
* yields: what each yield says (run, skip, skip with `self.next` arguments, replace,
  decided at run time) is written out, with the runtime helpers for transitions; a
  decorator whose yields reach the body from several places calls one local function
  instead of copying it;
* failure routing: an inner decorator's before-code failing must fail the task without
  reaching the outer decorators' `except`/`finally` (Metaflow does not throw it into
  them): when that can happen, a `setting_up` marker says whose before-code runs, and
  the outer handlers step aside for it;
* run-time checks where Metaflow has them: a second yield, or none, fails the task.
"""

from __future__ import annotations

from collections.abc import Sequence

import libcst as cst

from ...support.code import statements_of
from ...support.names import names_in
from ...support.returns import contains_return
from ...support.step_facts import StepFacts
from ..carry import Layer
from ..discover import StepSite
from .plan import StepPlan, plan_step
from .step import build_step

__all__ = ["StepPlan", "plan_step", "build_step", "rewrite_step"]


def rewrite_step(
    site: StepSite,
    layers: Sequence[Layer],
    module_names: set[str],
    facts: StepFacts | None = None,
) -> tuple[cst.FunctionDef, StepPlan]:
    """The compiled step, and its plan (which names the runtime helpers it calls).

    `facts`: what the step's own code uses, read with Python's parser (None: read here)."""
    if facts is None:
        body = statements_of(site.func.body)
        facts = StepFacts(
            frozenset(names_in(site.func.body)), any(contains_return(s) for s in body)
        )
    plan = plan_step(site, layers, module_names, facts)
    return build_step(plan), plan
