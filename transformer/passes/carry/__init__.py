"""Pass 5: carry the module-level helpers a decorator needs into the output.

Starting from the module-level names a decorator's code reads, this pass follows each one to
its definition (a function, class, constant, or import), then what that definition reads in
turn, and emits only those, in dependency order. Definitions from the user's own modules
(next to the flow, on the search path, or in the decorator's own package) are copied;
imports of other modules (the standard library, Metaflow, third parties) are re-emitted as
imports. Names that would collide with anything in the flow module are renamed
(`<module>_<name>`), everywhere they are used. Metaflow 2.16+-only names are never emitted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from types import MappingProxyType

import libcst as cst

from ...support.locate import Locator
from ...support.namespace import Namespace, Resolver
from ...support.records import frozen
from ..analyze import Analyses, ClassInfo, GeneratorInfo
from ..discover import DecoratorUse, StepSite
from .carrier import CarriedCode, Carrier
from .classes import ClassCode, ClassOutput
from .flow_imports import carry_flow_imports, flow_reads
from .sources import StepSources, read_only_in

__all__ = ["CarriedCode", "Carrier", "ClassCode", "Layer", "carry", "flow_reads"]


@frozen
class Layer:
    """One decorator use on a step, with its analysis, at `level` (1 = outermost), and the
    names the output gives the module-level names its code reads."""

    use: DecoratorUse
    info: GeneratorInfo | ClassInfo
    level: int
    globals: Mapping[str, str]  # module-level name -> output name
    # its `inspect.getsource(<a step>)` calls -> the constants holding those sources
    sources: tuple[tuple[cst.CSTNode, str], ...] = ()
    instance: str = ""  # a class-based decorator: the module-level name of its instance


def carry(
    resolver: Resolver,
    flow_ns: Namespace,
    reserved: set[str],
    sites: Sequence[StepSite],
    infos: Analyses,
    locator: Locator,
    read_by_flow: tuple[set[str], Mapping[str, set[str]]],
) -> tuple[tuple[tuple[Layer, ...], ...], CarriedCode]:
    """The layers of each step (in the order of `sites`), and the carried code they need.

    `reserved`: names the output must not use for carried code (the flow's own words);
    `read_by_flow`: the names the flow reads itself, and the attributes it reads of each
    (see `flow_imports.flow_reads`)."""
    carrier = Carrier(resolver, flow_ns, reserved)
    used, attributes = read_by_flow
    own, aliases = carry_flow_imports(carrier, resolver, flow_ns, used, attributes)
    sources = StepSources(flow_ns.source, locator, carrier.alloc)
    classes = ClassOutput(resolver, carrier, sites)
    layers = []
    for site in sites:
        step_layers = []
        for level, use in enumerate(site.uses, start=1):
            info = infos[use.definition.key]
            if isinstance(info, ClassInfo):  # its instance is named below
                step_layers.append(Layer(use, info, level, MappingProxyType({})))
                continue
            attrs = info.names.attribute_uses
            replaced = sources.for_use(site, use, info) if info.inspect_uses else ()
            gone = read_only_in(info, {node for node, _ in replaced}) if replaced else set()
            read = (info.names.global_names | info.names.declared_globals) - gone
            globals_ = {
                name: carrier.output_name(use.definition.namespace, name, attrs.get(name))
                for name in sorted(read)
            }
            layer = Layer(use, info, level, MappingProxyType(globals_), replaced)
            step_layers.append(layer)
        layers.append(tuple(step_layers))
    classes.claim_instances()
    if classes.uses:
        layers = [
            _with_instances(step, classes.instances_of(site)) for site, step in zip(sites, layers)
        ]
    origin = f"{flow_ns.source.display} (what it imported from them)"
    more = sources.definitions()
    more += [(origin, cst.parse_statement(f"{n} = {out}")) for n, out in aliases]
    own_imports = frozenset(own) | classes.mutator_imports()
    carried = carrier.finish(more, sources.warnings, own_imports, classes.carried)
    return tuple(layers), replace(carried, classes=classes.code())


def _with_instances(layers: tuple[Layer, ...], instances: Mapping[int, str]) -> tuple[Layer, ...]:
    return tuple(
        replace(layer, instance=instances[layer.level]) if layer.level in instances else layer
        for layer in layers
    )
