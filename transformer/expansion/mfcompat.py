"""Every touch of Metaflow's internals that expansion needs, in one place (runs in the child).

decoflow evaluates configs and mutators with Metaflow's own code, in the order `metaflow/cli.py:
start()` uses (configs, flow mutators' `external_init`, `_process_config_decorators` =
pre_mutate + parameters, flow decorators' `external_init`, `--with` attached,
`_init_step_decorators` = mutate), but without the parts of `start()` that need a datastore,
metadata or an environment: built-in decorators' `step_init` is not called (it is where
`@pypi` demands `--environment=pypi`; it never changes the stack).

Private names used here, all checked against each supported version by
tests/test_expansion_compat.py (2.16.0 and 2.19.39):
  FlowSpec._process_config_decorators, ._get_parameters, ._init_graph, ._flow_state,
  ._steps; flowspec.FlowStateItems (2.17+) / _FlowState + FlowSpec._flow_decorators (2.16);
  decorators._attach_decorators, ._init_step_decorators; step functions' .decorators,
  .wrappers, .config_decorators; user_configs.config_options.config_options_with_config_input
  (the code `Runner` uses to make the --config options exist); parameters.flow_context.
Importing this module imports nothing from Metaflow: `check()` does, after the version test.
"""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
import linecache
import os
import sys
import types

MIN_VERSION = (2, 16, 0)


class Unsupported(Exception):
    """This interpreter's Metaflow cannot evaluate mutators (missing or older than 2.16)."""


def metaflow_version() -> str:
    try:
        from importlib.metadata import version

        return version("metaflow")
    except Exception:  # noqa: BLE001 - any failure means 'not installed as a distribution'
        return ""


def _parse(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def check() -> str:
    """The Metaflow version, after checking that it is one this module supports."""
    found = metaflow_version()
    if not found:
        if importlib.util.find_spec("metaflow") is None:
            raise Unsupported(f"metaflow is not installed in {sys.executable}")
        import metaflow

        found = getattr(metaflow, "__version__", "") or "0"
    if _parse(found) < MIN_VERSION:
        raise Unsupported(
            f"metaflow {found} in {sys.executable} is older than 2.16 "
            "(mutators and configs need 2.16+)"
        )
    import metaflow  # noqa: F401 - once, before any flow's clock starts
    import metaflow.decorators  # noqa: F401

    return found


# --- the flow class ---------------------------------------------------------------------


def load_flow(path: str, module_name: str, source: str | None = None):
    """Import the flow file as `module_name` (not __main__: its `Flow()` must not run).

    `source`: the text decoflow compiles (read from stdin, or the file as it was read), run in
    place of what is on disk at `path`, which may differ or not exist. linecache holds it, so
    tracebacks and `inspect` read the same text."""
    from metaflow import FlowMutator, FlowSpec

    if source is None:
        spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    else:
        module = types.ModuleType(module_name)
        module.__file__ = path
        sys.modules[module_name] = module
        linecache.cache[path] = (len(source), None, source.splitlines(True), path)
        exec(compile(source, path, "exec"), module.__dict__)
    found = []
    for _, obj in inspect.getmembers(module):
        if isinstance(obj, FlowMutator):
            obj = obj._flow_cls
        if (
            inspect.isclass(obj)
            and obj is not FlowSpec
            and issubclass(obj, FlowSpec)
            and obj.__module__ == module_name
            and obj not in found
        ):
            found.append(obj)
    return module, found


def _new_state() -> bool:
    import metaflow.flowspec as fs

    return hasattr(fs, "FlowStateItems")


def flow_mutators(cls) -> list:
    import metaflow.flowspec as fs

    if _new_state():
        return list(cls._flow_state[fs.FlowStateItems.FLOW_MUTATORS] or [])
    return list(cls._flow_state.get(fs._FlowState.CONFIG_DECORATORS, []) or [])


def flow_decorators(cls) -> list:
    """Flow decorators in the order Metaflow keeps them (by name, then as added)."""
    import metaflow.flowspec as fs

    if _new_state():
        table = cls._flow_state[fs.FlowStateItems.FLOW_DECORATORS]
    else:
        table = cls._flow_decorators
    return [deco for decos in table.values() for deco in decos]


def config_values(cls) -> dict:
    """name -> resolved value (a plain dict/str/None) of each Config, as the flow will see it."""
    import metaflow.flowspec as fs

    if _new_state():
        raw = cls._flow_state[fs.FlowStateItems.CONFIGS]
        return {name: pair[0] for name, pair in raw.items()}
    return dict(cls._flow_state.get(fs._FlowState.CONFIGS, {}) or {})


def parameters(cls) -> list:
    """(attribute name, Parameter or Config) pairs, as Metaflow lists them."""
    return list(cls._get_parameters())


def steps(flow) -> list:
    """The step functions of a flow instance (after mutate: the class's current ones)."""
    return [getattr(flow.__class__, step.__name__) for step in flow]


def static_steps(cls) -> list:
    return list(cls._steps)


def step_parts(step):
    """(built-in decorators, user step decorators innermost first, step mutators)."""
    return (
        list(step.decorators),
        list(getattr(step, "wrappers", None) or []),
        list(getattr(step, "config_decorators", None) or []),
    )


def wrapper_generator(wrapper):
    """The generator function a `@user_step_decorator` wrapper runs, else None (a class)."""
    gen = getattr(wrapper, "_generator", None)
    return gen if inspect.isfunction(gen) else None


def delayed_text(value) -> str | None:
    """How a not-yet-resolved Config value (a `DelayEvaluator`: `config_expr("a.b")`, or
    `cfg.b` written in a decorator's arguments) reads in the source; None for any other."""
    if type(value).__name__ != "DelayEvaluator":
        return None
    state = vars(value)
    expr = state.get("_config_expr")
    if not isinstance(expr, str):
        return None
    access = state.get("_access")
    if access is None:
        return f"config_expr({expr!r})"
    return ".".join([expr, *(str(a) for a in access)])


# --- the stages of start() ----------------------------------------------------------------


def flow_context(cls):
    """The context every stage runs in (as `FlowSpec(use_cli=True)` runs the CLI in it)."""
    from metaflow.parameters import flow_context as context

    return context(cls)


class _Obj:
    def __init__(self, name):
        self.flow = type("F", (), {"name": name})()
        self.delayed_config_exception = None


def resolve_configs(cls, config_files, config_values_):
    """Run Metaflow's own --config / --config-value processing (defaults, files, parsers)."""
    from metaflow._vendor import click
    from metaflow.parameters import flow_context
    from metaflow.user_configs.config_options import config_options_with_config_input

    with flow_context(cls):
        command = click.Command(
            "decoflow-configs",
            params=[
                click.Option(["--quiet"], is_flag=True, default=True, is_eager=True),
                click.Option(["--datastore"], default="local", is_eager=True),
            ],
            callback=lambda **kwargs: kwargs,
        )
        command, config_input = config_options_with_config_input(command)
        if not config_input:
            return None
        args = []
        for name, path in config_files:
            args += ["--config", name, path]
        for name, value in config_values_:
            args += ["--config-value", name, value]
        obj = _Obj(cls.__name__)
        # Only what decoflow was given counts (the environment's METAFLOW_FLOW_CONFIG* not).
        names = [k for k in os.environ if k.startswith("METAFLOW_FLOW_CONFIG")]
        env = {k: os.environ.pop(k) for k in names}
        try:
            result = command.main(args=args, standalone_mode=False, obj=obj, prog_name="flow.py")
        finally:
            os.environ.update(env)
        if obj.delayed_config_exception is not None:
            raise obj.delayed_config_exception
    return result.get("config") or result.get("config_value")


def pre_mutate(cls, config_options):
    """Flow mutators' external_init, then pre_mutate and parameters; a new flow instance."""
    for mutator in flow_mutators(cls):
        mutator.external_init()
    new_cls = cls._process_config_decorators(config_options or {})
    return (new_cls or cls)(use_cli=False)


def init_flow_decorators(flow) -> None:
    """Resolve flow decorators' attributes (config_expr) where start() does.

    2.16 calls `decorators._init(flow)` (every decorator's and step mutator's external_init);
    later versions start `_init_flow_decorators` with the flow decorators' external_init.
    """
    from metaflow import decorators

    if hasattr(decorators, "_init"):
        decorators._init(flow)
        return
    for deco in flow_decorators(flow.__class__):
        deco.external_init()


def attach_with(flow, specs) -> None:
    """`--with` specs, attached as `run --with` does: before mutate."""
    from metaflow import decorators

    if specs:
        decorators._attach_decorators(flow, list(specs))
        if hasattr(decorators, "_init"):  # 2.16
            decorators._init(flow)
        flow.__class__._init_graph()


@contextlib.contextmanager
def _no_step_init():
    """Built-ins' step_init (and 2.19's step_init_ctx) do nothing while mutate runs."""
    from metaflow.decorators import StepDecorator

    saved = []
    todo = [StepDecorator]
    seen = set()
    while todo:
        klass = todo.pop()
        if klass in seen:
            continue
        seen.add(klass)
        todo.extend(klass.__subclasses__())
        if "step_init" in klass.__dict__:
            saved.append((klass, "step_init", klass.__dict__["step_init"]))
            klass.step_init = lambda self, *args, **kwargs: None
        if klass.__dict__.get("step_init_ctx") is not None:
            saved.append((klass, "step_init_ctx", klass.__dict__["step_init_ctx"]))
            klass.step_init_ctx = None
    try:
        yield
    finally:
        for klass, name, value in saved:
            setattr(klass, name, value)


# --- what each mutator does ------------------------------------------------------------------


def mutable_target(mutable):
    """(flow class, step function or None) that a MutableFlow / MutableStep stands for."""
    container = getattr(mutable, "_mutable_container", mutable)
    return container._flow_cls, getattr(mutable, "_my_step", None)


def mutator_classes() -> list:
    """Every FlowMutator / StepMutator class defined so far (Metaflow's bases included)."""
    from metaflow import FlowMutator, StepMutator

    found, todo = [], [FlowMutator, StepMutator]
    while todo:
        klass = todo.pop()
        if klass in found:
            continue
        found.append(klass)
        todo.extend(klass.__subclasses__())
    return found


@contextlib.contextmanager
def watch_mutators(around):
    """Route every mutator's `pre_mutate` and `mutate` through `around(mutator, hook, mutable,
    call)`, which must return `call()`: Metaflow still runs them itself, in its own order
    (a mutator added by another one included). A method reached again through `super()`
    from the same mutator's hook runs unobserved (the outer call observes it)."""
    active: set = set()
    saved = []

    def wrap(method, hook):
        def observed(self, mutable, *args, **kwargs):
            key = (id(self), hook)
            if key in active:
                return method(self, mutable, *args, **kwargs)
            active.add(key)
            try:
                return around(self, hook, mutable, lambda: method(self, mutable, *args, **kwargs))
            finally:
                active.discard(key)

        observed.__wrapped__ = method
        return observed

    for klass in mutator_classes():
        for hook in ("pre_mutate", "mutate"):
            method = klass.__dict__.get(hook)
            if inspect.isfunction(method):
                saved.append((klass, hook, method))
                setattr(klass, hook, wrap(method, hook))
    try:
        yield
    finally:
        for klass, hook, method in saved:
            setattr(klass, hook, method)


def mutate(flow) -> None:
    """Flow mutators' and step mutators' mutate, then every decorator's external_init."""
    from metaflow import decorators

    def logger(*args, **kwargs):
        print(*args, file=sys.stderr)

    with _no_step_init():
        decorators._init_step_decorators(flow, flow._graph, None, None, logger)
    cls = flow.__class__
    cls._init_graph()
    for deco in flow_decorators(cls):
        deco.external_init()
    for step in steps(flow):
        built, wrappers, _ = step_parts(step)
        for deco in built + wrappers:
            deco.external_init()
