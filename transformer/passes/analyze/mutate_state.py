"""What a class that is also a StepMutator keeps on its instance in `mutate`/`pre_mutate`.

Natively the same instance runs `mutate` in every task before `pre_step`, so state kept on
`self` there reaches the hooks; a compiled flow runs no mutator (DF207). Read from the text:
stores (`self.x = ...`, `setattr(self, ...)`), deletions, and any method call on an instance
attribute (which calls change their object cannot be told), in `mutate`/`pre_mutate` and in
the class's own methods they call.
"""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from ...support.names import child_nodes

#: Methods that only read their object (dict, list, str): calling them keeps no state.
READING_METHODS = frozenset(
    "get keys values items copy count index format startswith endswith split rsplit join "
    "lower upper strip lstrip rstrip replace find rfind isdigit isidentifier".split()
)


def methods_of(stmt: cst.ClassDef) -> dict[str, cst.FunctionDef]:
    """The methods a class body defines, by name."""
    out: dict[str, cst.FunctionDef] = {}
    for item in stmt.body.body:  # type: ignore[union-attr]
        if isinstance(item, cst.FunctionDef):
            out[item.name.value] = item
    return out


def _self_store(node: cst.CSTNode) -> str | None:
    """The attribute `node` sets on `self` (`self.x = ...`, `self.x += ...`,
    `setattr(self, ...)`), else None."""
    targets: list[cst.BaseExpression] = []
    if isinstance(node, cst.Assign):
        targets = [t.target for t in node.targets]
    elif isinstance(node, (cst.AugAssign, cst.AnnAssign)):
        targets = [node.target]
    elif (
        isinstance(node, cst.Call)
        and isinstance(node.func, cst.Name)
        and node.func.value in ("setattr", "vars")
        and node.args
        and isinstance(node.args[0].value, cst.Name)
        and node.args[0].value.value == "self"
    ):
        return "..."
    for target in targets:
        for inner in walk(target):
            if (
                isinstance(inner, cst.Attribute)
                and isinstance(inner.value, cst.Name)
                and inner.value.value == "self"
            ):
                return inner.attr.value
    return None


def _self_attribute(node: cst.CSTNode) -> str | None:
    """`x` when `node` is `self.x`."""
    if (
        isinstance(node, cst.Attribute)
        and isinstance(node.value, cst.Name)
        and node.value.value == "self"
    ):
        return node.attr.value
    return None


def _self_changed(node: cst.CSTNode, methods: dict[str, cst.FunctionDef]) -> str | None:
    """The instance attribute `node` may change in place (`self.x.append(...)`,
    `self.x[k].update(...)`, `del self.x`), else None. Any method call on an attribute counts
    but those of READING_METHODS: which calls change their object cannot be told."""
    if isinstance(node, cst.Del):
        for inner in walk(node.target):
            attr = _self_attribute(inner)
            if attr is not None:
                return attr
    if (
        isinstance(node, cst.Call)
        and isinstance(node.func, cst.Attribute)
        and node.func.attr.value not in READING_METHODS
    ):
        receiver = node.func.value
        while isinstance(receiver, (cst.Subscript, cst.Attribute)):
            attr = _self_attribute(receiver)
            if attr is not None:
                return None if attr in methods else attr
            receiver = receiver.value
    return None


def _walk_with_own_methods(func: cst.FunctionDef, methods: dict[str, cst.FunctionDef]):
    """The nodes of `func` and of the class's own methods it calls as `self.name(...)`, in
    turn: state set by a helper method is set all the same."""
    seen = {func.name.value}
    todo = [func]
    while todo:
        for node in walk(todo.pop().body):
            yield node
            if isinstance(node, cst.Call):
                called = _self_attribute(node.func)
                if called in methods and called not in seen:
                    seen.add(called)
                    todo.append(methods[called])


def walk(node: cst.CSTNode):
    """Every node below `node`, `node` included."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(child_nodes(current))


def state_kept(stmt: cst.ClassDef) -> Iterator[tuple[str, str, cst.CSTNode]]:
    """(mutator method, attribute, node) for each place `stmt`'s mutate/pre_mutate may keep
    state on the instance."""
    methods = methods_of(stmt)
    for name in ("pre_mutate", "mutate"):
        func = methods.get(name)
        if func is None:
            continue
        for node in _walk_with_own_methods(func, methods):
            stored = _self_store(node) or _self_changed(node, methods)
            if stored is not None:
                yield name, stored, node
