"""Diagnostics: located, coded messages (`path:line:col: DFxxx message`), like ruff and mypy.

Every problem the compiler finds in its input becomes a `Diagnostic`; a compile that finds
any raises `CompileError` carrying them all, and writes nothing. A compile that succeeds may
still warn (`CompileWarning`, codes DF6xx): the output is written, the warning printed.

Every code is declared once, in the registry at the end of this module (`CODES`): its
number, its title and its section of `docs/diagnostics.md`. A pass reports a problem by
calling the code, e.g. `YIELD_FROM(message, location)`; the tests check that the
documentation has a section with the same title for every code, and no other.
"""

from __future__ import annotations

from .records import frozen


@frozen
class Location:
    """A place in a source file; `path` is as the user should read it (relative where possible)."""

    path: str
    line: int = 1
    column: int = 1

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}"


@frozen
class Diagnostic:
    """One problem: a code (`DF101`), a message, where it is, and related places (`note`s)."""

    code: str
    message: str
    location: Location
    notes: tuple[tuple[Location, str], ...] = ()

    def format(self) -> str:
        lines = [f"{self.location}: {self.code} {self.message}"]
        lines.extend(f"{where}: note: {text}" for where, text in self.notes)
        return "\n".join(lines)


class CompileError(Exception):
    """Raised when a flow cannot be compiled; carries every diagnostic found."""

    def __init__(self, diagnostics: list[Diagnostic] | tuple[Diagnostic, ...]) -> None:
        self.diagnostics = tuple(diagnostics)
        super().__init__("\n".join(d.format() for d in self.diagnostics))


class CompileWarning(UserWarning):
    """Issued (with `warnings.warn`) when a flow compiles but something in it may behave
    differently from the original; `diagnostic` says what and where (`DF6xx`)."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        self.diagnostic = diagnostic
        super().__init__(diagnostic.format())


@frozen
class Code:
    """A diagnostic code: `DF` and three digits, a title, and where it is documented.

    The hundreds say where the problem is: 0 reading source, 1 using a decorator, 2 finding
    it, 3 its generator, 4 a `--with` spec, 5 evaluating mutators and configs; 6 is a warning
    (the flow compiles)."""

    code: str
    title: str

    @property
    def anchor(self) -> str:
        """The section of the documentation that explains this code."""
        return f"docs/diagnostics.md#{self.code.lower()}"

    def __call__(
        self,
        message: str,
        location: Location,
        notes: tuple[tuple[Location, str], ...] = (),
    ) -> Diagnostic:
        """A diagnostic of this code."""
        return Diagnostic(self.code, message, location, notes)


# -- the registry: every code the compiler reports --------------------------------------------

# Reading source (DF0xx)
SYNTAX_ERROR = Code("DF001", "Syntax error, or undecodable source")
UNREADABLE_FILE = Code("DF002", "A file cannot be read")
TOO_DEEP = Code("DF003", "Code nested too deeply to analyse")
# Using a decorator (DF1xx)
POSITIONAL_ARGUMENTS = Code("DF101", "Positional arguments")
ARGUMENTS_WITHOUT_ATTRIBUTES = Code("DF102", "Arguments to a decorator that takes 3 parameters")
NON_LITERAL_ARGUMENT = Code("DF103", "An argument value decoflow cannot carry")
# Finding a decorator (DF2xx)
MODULE_NOT_FOUND = Code("DF201", "The decorator's module cannot be found")
UNRESOLVED_DECORATOR = Code("DF202", "The decorator's name cannot be followed")
CLASS_OR_MUTATOR = Code("DF203", "A step mutator or a flow mutator")
BUILT_AT_RUN_TIME = Code("DF204", "A decorator built at run time")
CLASS_NOT_FOLLOWED = Code("DF205", "A class-based decorator decoflow cannot follow")
MACHINERY_OVERRIDDEN = Code(
    "DF206", "A class-based decorator that overrides or reads Metaflow's machinery"
)
ALSO_A_STEP_MUTATOR = Code("DF207", "A class-based decorator that is also a `StepMutator`")
# The decorator's generator (DF3xx)
NEVER_YIELDS = Code("DF301", "The decorator never yields")
YIELD_IN_EXPRESSION = Code("DF302", "A yield inside an expression")
YIELD_FROM = Code("DF303", "`yield from`")
YIELD_IN_LOOP = Code("DF304", "A yield inside a loop")
ASYNC_DECORATOR = Code("DF305", "Async")
BAD_PARAMETERS = Code("DF306", "Not 3 or 4 positional parameters")
RETURNS_VALUE = Code("DF307", "`return` with a value")
YIELDS_TWICE = Code("DF308", "Two yields on one path")
# `--with` specs (DF4xx)
MALFORMED_SPEC = Code("DF401", "A malformed spec")
WITH_NOT_FOUND = Code("DF402", "The `--with` target cannot be found")
WITH_NOT_A_DECORATOR = Code(
    "DF403", "The `--with` target is not a `@user_step_decorator` generator"
)
WITH_UNKNOWN_NAME = Code(
    "DF404",
    "A name that is no Metaflow decorator, or a Metaflow decorator written with its module",
)
# Evaluating mutators and configs with Metaflow (DF5xx, issue 12: passes/expand, expansion/)
NO_METAFLOW = Code("DF501", "No Metaflow that can evaluate mutators")
MUTATOR_FAILED = Code("DF502", "A mutator (or what it calls) raised, or called `sys.exit`")
EXPANSION_TIMEOUT = Code("DF503", "Evaluating the flow did not finish in time")
NOT_IMPORTABLE = Code("DF504", "The flow cannot be imported")
BAD_CONFIG = Code("DF505", "A bad configuration")
NOT_WRITABLE = Code("DF506", "An expanded flow that cannot be written as a plain flow")
NOT_FLATTENED = Code("DF507", "A base flow class that cannot be carried into the flow class")
# Warnings (DF6xx): the flow compiles, but may behave differently
INSPECT_READS_COMPILED = Code(
    "DF601",
    "`inspect` asks where a compiled step's code is, and decoflow cannot answer it with the "
    "original",
)
NEEDS_NEWER_METAFLOW = Code(
    "DF602",
    "The compiled flow still imports a module of the project, or a name of Metaflow, that "
    "needs Metaflow 2.16+",
)

CODES: tuple[Code, ...] = (
    SYNTAX_ERROR,
    UNREADABLE_FILE,
    TOO_DEEP,
    POSITIONAL_ARGUMENTS,
    ARGUMENTS_WITHOUT_ATTRIBUTES,
    NON_LITERAL_ARGUMENT,
    MODULE_NOT_FOUND,
    UNRESOLVED_DECORATOR,
    CLASS_OR_MUTATOR,
    BUILT_AT_RUN_TIME,
    CLASS_NOT_FOLLOWED,
    MACHINERY_OVERRIDDEN,
    ALSO_A_STEP_MUTATOR,
    NEVER_YIELDS,
    YIELD_IN_EXPRESSION,
    YIELD_FROM,
    YIELD_IN_LOOP,
    ASYNC_DECORATOR,
    BAD_PARAMETERS,
    RETURNS_VALUE,
    YIELDS_TWICE,
    MALFORMED_SPEC,
    WITH_NOT_FOUND,
    WITH_NOT_A_DECORATOR,
    WITH_UNKNOWN_NAME,
    NO_METAFLOW,
    MUTATOR_FAILED,
    EXPANSION_TIMEOUT,
    NOT_IMPORTABLE,
    BAD_CONFIG,
    NOT_WRITABLE,
    NOT_FLATTENED,
    INSPECT_READS_COMPILED,
    NEEDS_NEWER_METAFLOW,
)
