"""Deployable output (issue 5, part 8): a compiled flow deploys as the same Argo workflow.

For each flow, Argo Workflows specs are generated offline from the original flow and from
its compiled form with `python FLOW.py --no-pylint --datastore=s3 argo-workflows create
--only-json`, Metaflow's S3 datastore pointing at moto's S3 server on loopback (started
once per test session, on a free port). The specs must have the same DAG templates (every
`spec.templates[*].dag.tasks`: names, dependencies, and the rest of each task), and, once
the values that differ between any two deployments are masked (code package URL and hash,
timestamps, random file names), the same spec altogether.

Metaflow, moto, boto3 and the Kubernetes client live in their own virtual environment,
`.venv-argo` (`make venv-argo`): the project's venv stays free of moto's dependencies.
When it is missing, these tests fail and say how to create it.

The original flow runs from a copy of its folder, next to its decorator modules (which
are on `PYTHONPATH`); the compiled flow runs alone in an empty folder with no
`PYTHONPATH`, as it would be deployed.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from decoflow.transformer import compile_file

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent
FIXTURES = REPO_ROOT / "fixtures"
ARGO_FLOWS = TESTS_DIR / "argo_flows"

#: The interpreter of the Argo virtual environment (see the Makefile's `venv-argo`).
ARGO_PYTHON = REPO_ROOT / ".venv-argo" / "bin" / "python"

#: The bucket created in the S3 stand-in; Metaflow's S3 datastore root lives in it.
BUCKET = "decoflow-argo"

#: How long generating one spec (or starting moto) may take.
TIMEOUT_S = 300


@dataclass(frozen=True)
class ArgoCase:
    """A flow file whose folder holds the decorator modules it imports."""

    id: str
    flow: Path


CASES = [
    ArgoCase("seed_waiter", FIXTURES / "seed_waiter" / "waiterflow.py"),
    ArgoCase("graphs-linear", FIXTURES / "graphs" / "linearflow.py"),
    ArgoCase("graphs-branch", FIXTURES / "graphs" / "branchflow.py"),
    ArgoCase("graphs-foreach", FIXTURES / "graphs" / "foreachflow.py"),
    ArgoCase("graphs-switch", FIXTURES / "graphs" / "switchflow.py"),
    # Skips: `yield {}`, `yield USER_SKIP_STEP`, `yield {"foreach": ...}`, in branches.
    ArgoCase("skipping", ARGO_FLOWS / "skippingflow.py"),
    # Replacements: `yield function` in a plain step, a foreach body and a join.
    ArgoCase("replacing", ARGO_FLOWS / "replacingflow.py"),
    # A switch into a nested foreach and a split, with @retry and @resources.
    ArgoCase("routing", ARGO_FLOWS / "routingflow.py"),
]


@dataclass(frozen=True)
class S3StandIn:
    """moto's S3 server on loopback, with `BUCKET` created."""

    endpoint: str
    bucket: str


# --------------------------------------------------------------------------------------
# The Argo environment and the S3 stand-in


def require_argo_python() -> Path:
    """The Argo venv's interpreter; fails the test (never skips) when it is missing."""
    if not ARGO_PYTHON.exists():
        pytest.fail(
            f"{ARGO_PYTHON} not found: run `make venv-argo` to create the Argo Workflows "
            "environment (Metaflow, moto, boto3, kubernetes) these tests need",
            pytrace=False,
        )
    return ARGO_PYTHON


def _free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_listening(proc: subprocess.Popen[bytes], port: int, deadline: float) -> bool:
    """Wait until `proc` accepts connections on `port`; False if it exits or times out."""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate a process we started (and only it), killing it if it lingers."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _base_env(metaflow_home: Path) -> dict[str, str]:
    """The environment of every subprocess: ours, minus Metaflow and Python path settings."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("METAFLOW_", "AWS_")) and key not in ("PYTHONPATH", "PYTHONHOME")
    }
    env.update(
        USERNAME="tester",
        METAFLOW_HOME=str(metaflow_home),  # an empty config folder: no ~/.metaflowconfig
        AWS_ACCESS_KEY_ID="x",
        AWS_SECRET_ACCESS_KEY="x",
        AWS_DEFAULT_REGION="us-east-1",
    )
    return env


class MotoServer:
    """moto's S3 server on a free loopback port, started on first use, with `BUCKET`.

    Started lazily so that a missing Argo venv or a server that does not come up fails
    the tests themselves (with the reason), not their setup.
    """

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None
        self.s3: S3StandIn | None = None
        self.error: str | None = None

    def start(self, python: Path) -> S3StandIn:
        """The running stand-in; starts it (once) with `python`'s moto."""
        if self.s3 is not None:
            return self.s3
        if self.error is None:
            try:
                self.s3 = self._start(python)
                return self.s3
            except Exception as err:  # reported by every test that needs it
                self.stop()
                self.error = f"{type(err).__name__}: {err}"
        pytest.fail(f"moto's S3 server is not available: {self.error}", pytrace=False)

    def _start(self, python: Path) -> S3StandIn:
        env = _base_env(self.workdir)
        log_path = self.workdir / "moto.log"
        port = 0
        for _attempt in range(5):  # another process may take the free port before moto
            port = _free_port()
            with log_path.open("ab") as log:
                self.proc = subprocess.Popen(
                    [str(python), "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                    cwd=self.workdir,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            if _wait_listening(self.proc, port, time.monotonic() + 60):
                break
            self.stop()
        if self.proc is None:
            raise RuntimeError(f"it did not start; its log:\n{log_path.read_text()}")
        endpoint = f"http://127.0.0.1:{port}"
        created = subprocess.run(
            [
                str(python),
                "-c",
                "import sys, boto3; "
                "boto3.client('s3', endpoint_url=sys.argv[1]).create_bucket(Bucket=sys.argv[2])",
                endpoint,
                BUCKET,
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )
        if created.returncode != 0:
            raise RuntimeError(
                f"could not create bucket {BUCKET} (is {python}'s venv complete? "
                f"`rm -rf .venv-argo && make venv-argo`):\n{created.stderr}"
            )
        return S3StandIn(endpoint=endpoint, bucket=BUCKET)

    def stop(self) -> None:
        """Stop the server if we started it."""
        if self.proc is not None:
            _stop(self.proc)
            self.proc = None
        self.s3 = None


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """One S3 stand-in per test session (per xdist worker); stopped at the end."""
    server = MotoServer(tmp_path_factory.mktemp("moto"))
    try:
        yield server
    finally:
        server.stop()


# --------------------------------------------------------------------------------------
# Generating and reading specs


def generate_spec(
    python: Path, flow_file: Path, s3: S3StandIn, pythonpath: Path | None, home: Path
) -> dict[str, Any]:
    """`python FLOW --no-pylint --datastore=s3 argo-workflows create --only-json`, parsed.

    Runs in the flow's folder; `pythonpath` (the folder of the decorator modules) goes on
    `PYTHONPATH` when given. Fails the test with Metaflow's output when it does not work.
    """
    env = _base_env(home)
    env.update(
        METAFLOW_S3_ENDPOINT_URL=s3.endpoint,
        METAFLOW_DEFAULT_DATASTORE="s3",
        METAFLOW_DATASTORE_SYSROOT_S3=f"s3://{s3.bucket}/metaflow",
        METAFLOW_KUBERNETES_NAMESPACE="default",
    )
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    command = [
        str(python),
        flow_file.name,
        "--no-pylint",
        "--datastore=s3",
        "argo-workflows",
        "create",
        "--only-json",
    ]
    result = subprocess.run(
        command,
        cwd=flow_file.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    if result.returncode != 0:
        pytest.fail(
            f"`{' '.join(command)}` in {flow_file.parent} exited with {result.returncode}:\n"
            f"{result.stderr[-4000:]}\n{result.stdout[-2000:]}",
            pytrace=False,
        )
    text = result.stdout
    if not text.startswith("{") and "\n{" in text:  # what mutators print comes first
        text = text[text.index("\n{") + 1 :]
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        pytest.fail(
            f"{flow_file}: argo-workflows create printed no JSON ({err}):\n{result.stdout[:2000]}",
            pytrace=False,
        )


def dag_tasks(spec: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Every DAG template's tasks, by template name."""
    return {
        template["name"]: template["dag"].get("tasks", [])
        for template in spec["spec"]["templates"]
        if "dag" in template
    }


def dag_summary(spec: dict[str, Any]) -> dict[str, list[tuple[str, str]]]:
    """Each DAG template as (task name, its dependencies) pairs: the deployment graph."""
    return {
        name: [
            (
                task["name"],
                task.get("depends") or " && ".join(task.get("dependencies") or []),
            )
            for task in tasks
        ]
        for name, tasks in dag_tasks(spec).items()
    }


_SHA = re.compile(r"\b[0-9a-f]{40}\b")
_CODE_URL = re.compile(r"(/data/)[0-9a-f]{2}/@@SHA@@")
_SET_PARAMETERS = re.compile(r"(metaflow\.plugins\.argo\.set_parameters |`pwd`/)[a-z]{10}\b")
_TIMESTAMP_KEY = "metaflow/deployment_timestamp"


def normalized_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec with what differs between any two deployments of one flow masked.

    Masked: the code package's hash and its place in the datastore, the deployment
    timestamp, and the random name of the parameters file of the start step.
    """
    text = json.dumps(spec, sort_keys=True)
    text = _SHA.sub("@@SHA@@", text)
    text = _CODE_URL.sub(r"\1@@/@@SHA@@", text)
    text = _SET_PARAMETERS.sub(r"\1@@PARAMS@@", text)

    def drop_timestamps(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: drop_timestamps(v) for k, v in node.items() if k != _TIMESTAMP_KEY}
        if isinstance(node, list):
            return [drop_timestamps(v) for v in node]
        return node

    return drop_timestamps(json.loads(text))


def _diff(expected: Any, actual: Any) -> str:
    """A unified diff of two JSON-able values, original first."""
    return "".join(
        difflib.unified_diff(
            json.dumps(expected, indent=1, sort_keys=True).splitlines(keepends=True),
            json.dumps(actual, indent=1, sort_keys=True).splitlines(keepends=True),
            "original",
            "compiled",
        )
    )


@dataclass(frozen=True)
class SpecPair:
    """The Argo specs of a flow and of its compiled form."""

    original: dict[str, Any]
    compiled: dict[str, Any]
    compiled_source: str


def _copy_flow_folder(flow: Path, dest: Path) -> Path:
    """Copy the flow's folder (the flow and its decorator modules) to `dest`."""
    shutil.copytree(flow.parent, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dest / flow.name


def spec_pair(case: ArgoCase, python: Path, s3: S3StandIn, root: Path) -> SpecPair:
    """Compile the case's flow and generate both specs, side by side, under `root`."""
    original = _copy_flow_folder(case.flow, root / "original")
    code = compile_file(case.flow)
    compiled = root / "compiled" / case.flow.name
    compiled.parent.mkdir()
    compiled.write_text(code, encoding="utf-8")
    home = root / "metaflow-home"
    home.mkdir()
    with ThreadPoolExecutor(max_workers=2) as pool:
        from_original = pool.submit(generate_spec, python, original, s3, original.parent, home)
        from_compiled = pool.submit(generate_spec, python, compiled, s3, None, home)
        return SpecPair(from_original.result(), from_compiled.result(), code)


# --------------------------------------------------------------------------------------
# Tests


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_compiled_flow_deploys_the_same_argo_workflow(
    case: ArgoCase, moto_server: MotoServer, tmp_path: Path
) -> None:
    """The DAG templates of both specs are equal: task names and dependencies, then the
    whole tasks; then the whole spec, once per-deployment values are masked (the same
    step templates, retries, resources, parameters and annotations)."""
    python = require_argo_python()
    pair = spec_pair(case, python, moto_server.start(python), tmp_path)
    original, compiled = dag_summary(pair.original), dag_summary(pair.compiled)
    assert original, f"{case.flow}: the original flow's spec has no DAG template"
    assert sum(len(tasks) for tasks in original.values()) >= 3
    assert compiled == original, (
        f"{case.flow}: the compiled flow's Argo DAG differs (task, dependencies):\n"
        + _diff(original, compiled)
    )
    assert dag_tasks(pair.compiled) == dag_tasks(pair.original), (
        f"{case.flow}: the compiled flow's Argo DAG tasks differ:\n"
        + _diff(dag_tasks(pair.original), dag_tasks(pair.compiled))
    )
    full_original, full_compiled = normalized_spec(pair.original), normalized_spec(pair.compiled)
    assert full_compiled == full_original, (
        f"{case.flow}: the DAGs are equal but the rest of the Argo spec differs:\n"
        + _diff(full_original, full_compiled)
    )


def test_the_dag_comparison_sees_a_changed_graph(moto_server: MotoServer, tmp_path: Path) -> None:
    """Control: a compiled flow whose transitions were reordered gives a different DAG."""
    argo_python = require_argo_python()
    s3_stand_in = moto_server.start(argo_python)
    flow = FIXTURES / "graphs" / "linearflow.py"
    code = compile_file(flow)
    # start -> double -> add -> end  becomes  start -> add -> double -> end
    moves = {"double": "add", "add": "end", "end": "double"}
    swapped = code
    for target in moves:
        assert code.count(f"self.next(self.{target})") == 1
        swapped = swapped.replace(f"self.next(self.{target})", f"@@{target}@@")
    for target, new_target in moves.items():
        swapped = swapped.replace(f"@@{target}@@", f"self.next(self.{new_target})")
    assert swapped != code
    home = tmp_path / "home"
    home.mkdir()
    (tmp_path / "good").mkdir()
    (tmp_path / "bad").mkdir()
    good_file = tmp_path / "good" / flow.name
    bad_file = tmp_path / "bad" / flow.name
    good_file.write_text(code, encoding="utf-8")
    bad_file.write_text(swapped, encoding="utf-8")
    good = dag_summary(generate_spec(argo_python, good_file, s3_stand_in, None, home))
    bad = dag_summary(generate_spec(argo_python, bad_file, s3_stand_in, None, home))
    assert good != bad
    assert ("add", "start.Succeeded") in bad["LinearFlow"]


# --------------------------------------------------------------------------------------
# Flows built by mutators and configs (issue 12): deploy-time equivalence

MUTATOR_FLOWS = TESTS_DIR / "mutator_flows"


def _resources_and_retries(spec: dict[str, Any]) -> dict[str, Any]:
    """Per step template: its container's resources and its retry limit."""
    out = {}
    for template in spec["spec"]["templates"]:
        if "container" not in template:
            continue
        out[template["name"]] = (
            template["container"].get("resources"),
            (template.get("retryStrategy") or {}).get("limit"),
        )
    return out


@pytest.mark.parametrize(
    "flow",
    [MUTATOR_FLOWS / "robust" / "robustflow.py", MUTATOR_FLOWS / "linter" / "hungryflow.py",
     MUTATOR_FLOWS / "base" / "teamflow.py"],
    ids=["flow-mutator-retry", "config-overrides-resources", "base-class"],
)
def test_mutator_flow_deploys_the_same_dag_resources_and_retries(
    flow: Path, moto_server: MotoServer, tmp_path: Path
) -> None:
    """Metaflow evaluating the mutators at deploy time (the original) and the compiled flow
    (mutators baked, running alone) give the same DAG, container resources and retries."""
    python = require_argo_python()
    pair = spec_pair(ArgoCase(flow.stem, flow), python, moto_server.start(python), tmp_path)
    assert dag_summary(pair.compiled) == dag_summary(pair.original)
    original = _resources_and_retries(pair.original)
    assert original and any(limit for _, limit in original.values()) or "linter" in str(flow)
    assert _resources_and_retries(pair.compiled) == original, _diff(
        original, _resources_and_retries(pair.compiled)
    )


def test_flow_decorators_of_a_flattened_base_deploy_the_same(
    moto_server: MotoServer, tmp_path: Path
) -> None:
    """@project on a base class in another module (flattened into the compiled flow) and
    @schedule on the flow: the same Argo spec (the project's names and labels, the cron
    schedule), once per-deployment values are masked."""
    flow = MUTATOR_FLOWS / "flowdecos" / "scheduledflow.py"
    python = require_argo_python()
    pair = spec_pair(ArgoCase(flow.stem, flow), python, moto_server.start(python), tmp_path)
    assert dag_summary(pair.compiled) == dag_summary(pair.original)
    original, compiled = normalized_spec(pair.original), normalized_spec(pair.compiled)
    text = json.dumps(original)
    assert "baseproj" in text and '"metaflow/cron"' in text, text[:2000]
    assert compiled == original, _diff(original, compiled)
