"""The house rules of the layout: which package may import which.

- the canonical contract (scoring.contract) is a leaf: importing a connector loads it, not the
  scoring engine;
- connectors/ and scoring/ never import dagster;
- nothing shipped (connectors/, scoring/, pipelines/) imports the sandbox; only tests, benchmarks
  and the sandbox itself (its demo included) do.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# What `import connectors.hubspot` may load from our own packages.
CONTRACT_ONLY = {"scoring", "scoring.contract"}


def _python_files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    """Every module `path` imports (absolute, resolved for relative imports), with its line."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = _module_name(path)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            yield node.lineno, base
            for alias in node.names:  # `from scoring import score` may name a submodule
                yield node.lineno, f"{base}.{alias.name}"


def _offenders(packages: tuple[str, ...], forbidden: str) -> list[str]:
    found = []
    for package in packages:
        for path in _python_files(package):
            for line, module in _imports(path):
                if module == forbidden or module.startswith(forbidden + "."):
                    found.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    return sorted(set(found))


def _loaded_after(statement: str) -> set[str]:
    """Modules in sys.modules after running `statement` in a fresh interpreter."""
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def _ours(modules: set[str]) -> set[str]:
    roots = ("scoring", "connectors", "pipelines", "sandbox", "benchmarks", "tests", "dagster")
    return {m for m in modules if m.split(".")[0] in roots}


@pytest.mark.parametrize("statement", ["import connectors.hubspot", "import connectors.base"])
def test_a_connector_loads_the_contract_not_the_scoring_engine(statement: str) -> None:
    loaded = _ours(_loaded_after(statement))
    scoring = {m for m in loaded if m.split(".")[0] == "scoring"}
    assert scoring <= CONTRACT_ONLY, f"{statement} loads the scoring engine: {sorted(scoring)}"
    assert not {m for m in loaded if m.split(".")[0] in ("dagster", "pipelines", "sandbox")}


def test_the_contract_imports_nothing_of_ours() -> None:
    assert _ours(_loaded_after("import scoring.contract")) == CONTRACT_ONLY
    ours = [m for _, m in _imports(ROOT / "scoring" / "contract.py")]
    assert not [m for m in ours if m.split(".")[0] in ("scoring", "connectors", "pipelines")]


def test_connectors_use_only_the_contract_from_scoring() -> None:
    found = [
        hit
        for hit in _offenders(("connectors",), "scoring")
        if not hit.endswith((" imports scoring", " imports scoring.contract"))
    ]
    assert found == []


def test_scoring_exports_resolve_lazily_to_their_modules() -> None:
    import importlib

    import scoring

    for name in scoring.__all__:
        value = getattr(scoring, name)
        module = scoring._EXPORTS[name]
        assert value is getattr(importlib.import_module(module), name), name
    with pytest.raises(AttributeError):
        _ = scoring.no_such_name


@pytest.mark.parametrize("package", ["connectors", "scoring"])
def test_no_dagster_in_connectors_or_scoring(package: str) -> None:
    assert _offenders((package,), "dagster") == []


@pytest.mark.parametrize("package", ["connectors", "scoring", "pipelines"])
def test_nothing_shipped_imports_the_sandbox(package: str) -> None:
    assert _offenders((package,), "sandbox") == []


def test_the_import_scan_sees_imports() -> None:
    """Guard the guard: the scan finds the imports it is meant to find."""
    hits = _offenders(("benchmarks",), "sandbox")
    assert any(h.startswith("benchmarks/hubspot_sync.py:") for h in hits), hits
    assert any("imports scoring.contract" in h for h in _offenders(("connectors",), "scoring"))


# The founding notes the project started from are not part of a clone: cite docs/ instead.
OUTSIDE_REFERENCE = re.compile(r"\bshared/(?:contract\.md|domain\.md|house\.md|reference/)")


def test_nothing_cites_a_path_outside_the_repository() -> None:
    assert OUTSIDE_REFERENCE.search("the method (../shared/" + "domain.md §2)")
    citing = set()
    for pattern in ("*.py", "*.md", "*.yaml", "*.toml"):
        for path in ROOT.rglob(pattern):
            relative = path.relative_to(ROOT)
            if relative.parts[0].startswith(".") or "site-packages" in relative.parts:
                continue
            if OUTSIDE_REFERENCE.search(path.read_text(errors="replace")):
                citing.add(relative.as_posix())
    assert sorted(citing) == []


def test_the_contract_document_names_every_column_and_value() -> None:
    from scoring import contract

    text = (ROOT / "docs" / "contract.md").read_text()
    names = {column for spec in contract.TABLES.values() for column in spec}
    for values in (
        contract.TEMPERATURES,
        contract.SEGMENTS,
        contract.TRENDS,
        contract.DEAL_STATUSES,
        contract.DIRECTIONS,
        contract.SOURCES,
        contract.ACTIVITY_TYPES,
        contract.CALL_OUTCOMES,
        contract.MEETING_OUTCOMES,
    ):
        names.update(values)
    missing = sorted(name for name in names if not re.search(rf"\b{re.escape(name)}\b", text))
    assert missing == [], f"docs/contract.md does not mention {missing}"
    assert (ROOT / "docs" / "domain.md").is_file()


# HubSpot's words that belong in connectors/hubspot/, not in the layer every CRM shares.
HUBSPOT_VOCABULARY = ("HubSpot", "TEN_SECONDLY", "SECONDLY", "correlationId", "policyName")
HUBSPOT_VOCABULARY += ("/oauth/v1", "access-tokens", "hapikey", "requiredScopes")


@pytest.mark.parametrize(
    "name", ["http.py", "errors.py", "pacing.py", "redaction.py", "__init__.py"]
)
def test_the_shared_connector_layer_speaks_no_crm(name: str) -> None:
    text = (ROOT / "connectors" / name).read_text()
    assert [word for word in HUBSPOT_VOCABULARY if word in text] == []
