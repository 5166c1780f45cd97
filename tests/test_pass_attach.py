"""Pass 2, attach: `--with` specs, read exactly as Metaflow reads them."""

from __future__ import annotations

import pytest
from decoflow.transformer.support.withspec import SpecError, parse_spec


@pytest.mark.parametrize(
    "raw,name,attrs",
    [
        ("mod.deco", "mod.deco", {}),
        ("retry:times=2", "retry", {"times": 2}),
        (
            'm.d:cfg={"k": [1, 2]},x=1.5,s=hello,t=true',
            "m.d",
            {"cfg": {"k": [1, 2]}, "x": 1.5, "s": "hello", "t": True},
        ),
        ("m.d:label=a,b", "m.d", {"label": "a,b"}),
    ],
)
def test_with_spec_values_parse_as_metaflow_parses_them(raw: str, name: str, attrs: dict) -> None:
    spec = parse_spec(raw)
    assert (spec.name, spec.attributes) == (name, attrs)


@pytest.mark.parametrize("raw", ["", ":x=1", "m.d:novalue", "1bad.name"])
def test_malformed_with_specs_are_rejected(raw: str) -> None:
    with pytest.raises(SpecError):
        parse_spec(raw)
