"""Pass 5, inline: return elimination (a `return` leaves only its inlined block) and the
names a step's inlined code claims.
"""

from __future__ import annotations

from pathlib import Path

import libcst as cst
import pytest
from decoflow.transformer.passes.inline.dead_handlers import HandlerFolder
from decoflow.transformer.passes.inline.layout import laid_out
from decoflow.transformer.support.names import NameAllocator
from decoflow.transformer.support.returns import ReturnEliminator
from pass_helpers import STEP_NAMED, compile_text, dedent, one_decorated_step, with_body_line

# --- return elimination ------------------------------------------------------------------

RETURNS = [
    (
        "return in if, rest guarded",
        """
        a()
        if x:
            return
        b()
        """,
        """
        a()
        if x:
            done = True
        if not done:
            b()
        """,
    ),
    (
        "return in a loop breaks, rest guarded after the loop",
        """
        for i in y:
            if i:
                return
            c(i)
        d()
        """,
        """
        for i in y:
            if i:
                done = True
                break
            c(i)
        if not done:
            d()
        """,
    ),
    (
        "nested loops propagate the break",
        """
        for i in y:
            for j in i:
                return
            e()
        """,
        """
        for i in y:
            for j in i:
                done = True
                break
            if done:
                break
            e()
        """,
    ),
    (
        "try/else is skipped after a return in the body",
        """
        try:
            return
        except E:
            pass
        else:
            f()
        """,
        """
        try:
            done = True
        except E:
            pass
        else:
            if not done:
                f()
        """,
    ),
    (
        "a returned value is still evaluated",
        """
        return compute()
        """,
        """
        compute()
        done = True
        """,
    ),
    (
        "nested functions keep their returns",
        """
        def g():
            return 1
        h()
        """,
        """
        def g():
            return 1
        h()
        """,
    ),
]


@pytest.mark.parametrize("name,before,after", RETURNS, ids=[r[0] for r in RETURNS])
def test_return_elimination(name: str, before: str, after: str) -> None:
    module = cst.parse_module(dedent(before))
    out = ReturnEliminator("done").statements(list(module.body))
    assert cst.Module(body=out).code == dedent(after)


# --- handlers of a try whose body cannot raise ------------------------------------------

FOLDS = [
    (
        "else and finally stay, in order",
        """
        try:
            pass
        except KeyError as err:
            log(err)
        else:
            ok()
        finally:
            done()
        """,
        """
        try:
            ok()
        finally:
            done()
        """,
    ),
    (
        "without finally the else runs in place",
        """
        try:
            flag = True
        except Exception:
            handle()
        else:
            ok()
        """,
        """
        flag = True
        ok()
        """,
    ),
    (
        "a name bound only by a handler and read elsewhere keeps the handler",
        """
        try:
            pass
        except Exception as err:
            message = str(err)
        print(message)
        """,
        None,
    ),
    (
        "a name bound elsewhere too is local either way",
        """
        message = ""
        try:
            pass
        except Exception as err:
            message = str(err)
        print(message)
        """,
        """
        message = ""
        print(message)
        """,
    ),
    (
        "a body that may raise keeps its handlers",
        """
        try:
            flag = compute()
        except Exception:
            handle()
        """,
        None,
    ),
]


@pytest.mark.parametrize("name,before,after", FOLDS, ids=[f[0] for f in FOLDS])
def test_handlers_that_cannot_run_are_dropped(name: str, before: str, after: str | None) -> None:
    module = cst.parse_module(dedent(before))
    folder = HandlerFolder(module.body, frozenset())
    out: list[cst.BaseStatement] = []
    for stmt in module.body:
        folded = folder.fold(stmt) if isinstance(stmt, cst.Try) else None
        out.extend([stmt] if folded is None else folded)
    assert cst.Module(body=out).code == dedent(after or before)


def test_class_layer_around_an_empty_step_has_no_try(tmp_path: Path) -> None:
    """Nothing below a class-based decorator can fail: no `try: pass` with a handler."""
    decos = dedent(
        """
        from metaflow import UserStepDecorator

        class Trace(UserStepDecorator):
            def post_step(self, step_name, flow, exception=None):
                print("post", step_name, exception)
        """
    )
    out = compile_text(tmp_path, one_decorated_step("Trace"), decos)
    assert "trace_failure" not in out  # the handler of a try around the step
    post = 'trace_error = decoflow_post_step(start_trace, "start", self, None, True)'
    assert f"# @Trace: post_step\n        {post}\n" in out  # given None: no temporary
    assert "trace_error = None" not in out


# --- the compiler's long lines -----------------------------------------------------------

LAYOUTS = [
    (
        "a helper's call puts its arguments on the next line",
        "if c:\n"
        '    some_error = decoflow_post_step(an_instance, "a_step", self, some_error, True)\n',
        "if c:\n"
        "    some_error = decoflow_post_step(\n"
        '        an_instance, "a_step", self, some_error, True\n'
        "    )\n",
    ),
    (
        "the compiler's note goes above the line",
        'decoflow_next_with(self, {"foreach": "other_items"})  # @maybe_skip skips the step\n',
        '# @maybe_skip skips the step\ndecoflow_next_with(self, {"foreach": "other_items"})\n',
    ),
    (
        "the user's code stays as written",
        "user_function(argument_one, argument_two, argument_three)  # @todo: the user's note\n",
        None,
    ),
]


@pytest.mark.parametrize("name,before,after", LAYOUTS, ids=[x[0] for x in LAYOUTS])
def test_long_lines_of_the_compiler_are_laid_out(name: str, before: str, after: str | None) -> None:
    module = cst.parse_module(before)
    out = laid_out(list(module.body), depth=6)  # 24 columns in
    assert cst.Module(body=out).code == (after or before)


# --- names -------------------------------------------------------------------------------


def test_allocator_prefers_the_name_then_prefix_then_number() -> None:
    alloc = NameAllocator({"start", "deco_start"})
    assert alloc.claim("duration", prefix="deco") == "duration"
    assert alloc.claim("start", prefix="deco") == "deco_start_2"
    assert alloc.claim("class", prefix="deco") == "deco_class"


# --- names equal to a step's own name (issue 14, item 1) -----------------------------------


def test_decorator_local_renamed_when_the_step_uses_its_own_name(tmp_path: Path) -> None:
    """The names a step uses include its own name where the body uses it (`start = ...` in
    step `start`): the decorator's `start` must not be the body's."""
    flow = with_body_line(one_decorated_step("timer"), 'start = "the body\'s"')
    out = compile_text(tmp_path, flow, STEP_NAMED)
    assert "timer_start = time.time()" in out
    assert "self.took = time.time() - timer_start" in out
    assert 'start = "the body\'s"' in out
