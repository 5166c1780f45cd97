"""Config values a step keeps as artifacts, loadable on Metaflow 2.15.

Metaflow before 2.16 pickles a `ConfigValue` (a Config's sub-dict a step keeps as an
artifact: `self.model = self.cfg.model`) in a form nothing can load back: the next task
fails with "ConfigValue is immutable" and the Client cannot read it. A compiled flow that
declares a Config gives `ConfigValue` the `__reduce__` later versions have; it is used
when the task pickles, so the artifact then loads anywhere. Guarded: on 2.16+ it does
nothing.
"""

from __future__ import annotations

import ast

import libcst as cst

from .namespace import MetaflowName, Namespace, Resolver

#: The shim's name: also how a flow that already has it is recognised.
SHIM_NAME = "decoflow_pickle_config_values"

CONFIG_PICKLING = f"""\
# Metaflow before 2.16 cannot load back a Config's sub-dict kept as an artifact: give
# ConfigValue the __reduce__ later versions have.
def {SHIM_NAME}():
    from metaflow.user_configs.config_parameters import ConfigValue

    if "__reduce__" not in vars(ConfigValue):
        ConfigValue.__reduce__ = lambda self: (type(self), (self.to_dict(),))


{SHIM_NAME}()
"""


def with_config_pickling(
    body: list[cst.BaseStatement], class_names: set[str]
) -> list[cst.BaseStatement]:
    """`body` with `CONFIG_PICKLING` after the flow class, before `if __name__ ==
    "__main__":` (not among the imports, where carried code goes); as is when there is no
    flow class or the module has the shim already. Pickling happens when a task ends, long
    after the module is loaded."""
    found = False
    for stmt in body:
        if SHIM_NAME in cst.Module(body=[stmt]).code:
            return body
        found = found or (isinstance(stmt, cst.ClassDef) and stmt.name.value in class_names)
    if not found:
        return body
    shim = list(cst.parse_module(CONFIG_PICKLING).body)
    blank = cst.EmptyLine(indent=False)
    comment = [cst.EmptyLine(comment=cst.Comment(c)) for c in CONFIG_PICKLING.splitlines()[:2]]
    shim[0] = shim[0].with_changes(leading_lines=[blank, blank, *comment])
    at = next((i for i, stmt in enumerate(body) if is_main_guard(stmt)), len(body))
    if at < len(body):
        body = list(body)
        body[at] = body[at].with_changes(leading_lines=[blank, blank])
    return body[:at] + shim + body[at:]


def is_main_guard(stmt: cst.BaseStatement) -> bool:
    """`if __name__ == "__main__":`."""
    if not isinstance(stmt, cst.If):
        return False
    code = cst.Module(body=[]).code_for_node(stmt.test).replace("'", '"')
    return code.replace(" ", "") == '__name__=="__main__"'


def config_vars(tree: ast.Module | None, resolver: Resolver, ns: Namespace) -> set[str]:
    """The class attributes the module declares with Metaflow's `Config(...)`."""
    out: set[str] = set()
    for node in ast.walk(tree) if tree is not None else ():
        if not (isinstance(node, ast.ClassDef)):
            continue
        for item in node.body:
            if not (isinstance(item, ast.Assign) and isinstance(item.value, ast.Call)):
                continue
            func = item.value.func
            is_config = (
                isinstance(func, ast.Name)
                and resolver.resolve(ns, func.id) == MetaflowName("Config")
            ) or (
                isinstance(func, ast.Attribute)
                and func.attr == "Config"
                and isinstance(func.value, ast.Name)
                and func.value.id == "metaflow"
            )
            if is_config:
                out |= {t.id for t in item.targets if isinstance(t, ast.Name)}
    return out


def keeps_config_value(tree: ast.Module | None, names: set[str]) -> bool:
    """Whether a method assigns to `self.<attr>` a value that reads `self.<config>` (it may
    keep a ConfigValue as an artifact)."""
    for node in ast.walk(tree) if tree is not None and names else ():
        if not isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            continue
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        if not any(_on_self(t) for t in targets) or node.value is None:
            continue
        for inner in ast.walk(node.value):
            if _on_self(inner) and inner.attr in names:
                return True
    return False


def _on_self(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "self"
    )


def add_config_pickling(text: str, class_names: set[str]) -> str:
    """`text` (a module) with `CONFIG_PICKLING` before its first flow class."""
    module = cst.parse_module(text)
    body = with_config_pickling(list(module.body), class_names)
    if len(body) == len(module.body):
        return text
    return module.with_changes(body=body).code
