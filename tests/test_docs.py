"""The docs hold to the tree, so each fact has one source and a page cannot quietly go stale.

- every test VALIDATION.md and docs/validation/ name exists. Test names are read from the test files with `ast`
  (nothing is collected or run). A name is `tests/<file>.py::<test>` (or `::<Class>::<test>`), or a whole file
  `tests/<file>.py`; `::<test>` right after a name in the same table cell means the same file; parametrized ids
  (`test_x[case]`) count as their function;
- the README's layout table and docs/architecture.md's package table list every top-level directory, and the
  decision index every decision file;
- the links and the code paths (`mm_capacity/store.py`, `tests/builders.ecs_task_stopped_event`) of the pages this
  project keeps current resolve (decision files keep the links and paths of their day);
- the fault kinds the docs name are ones `mm-processor local run --fault` takes.
"""

from __future__ import annotations

import ast
import re
import subprocess
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
VALIDATION = ROOT / "VALIDATION.md"
VALIDATION_PAGES = sorted((ROOT / "docs" / "validation").glob("*.md"))
ARCHITECTURE = ROOT / "docs" / "architecture.md"
DECISIONS = ROOT / "docs" / "decisions"
# the pages kept current: their links and code paths must resolve
CURRENT_PAGES = [
    README,
    VALIDATION,
    ARCHITECTURE,
    ROOT / "docs" / "operations.md",
    DECISIONS / "README.md",
    *VALIDATION_PAGES,
]

# `tests/x.py`, `tests/x.py::test_y`, `tests/x.py::Cls::test_y`, or `::test_y` (the previous file of the cell)
TEST_REF = re.compile(r"`(?P<path>tests/[\w/.-]+\.py)?(?P<names>(?:::[\w\[\]-]+)*)`")
FAULT_EXAMPLE = re.compile(r"--fault '?[^=\s`']+=(?P<kind>[a-z0-9-]+)")
# directories a checkout holds that are not the project's (built or installed)
NOT_PROJECT = {"node_modules", "build", "cdk.out", "reports", "__pycache__"}


@cache
def defined_tests(path: Path) -> frozenset[str]:
    """Module-level functions and classes of a test file, and `Class::method` for the methods of its classes."""
    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef):
            names.add(node.name)
            names.update(
                f"{node.name}::{member.name}"
                for member in node.body
                if isinstance(member, ast.FunctionDef | ast.AsyncFunctionDef)
            )
    return frozenset(names)


def named_tests(text: str) -> list[tuple[int, str, str]]:
    """(line, file, test name or "") for every test a markdown text names; a bare `::name` takes its cell's file."""
    found: list[tuple[int, str, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        for cell in line.split("|"):
            current: str | None = None
            for match in TEST_REF.finditer(cell):
                current = match.group("path") or current
                names = match.group("names")
                if current is None or not (match.group("path") or names):
                    continue
                name = re.sub(r"\[.*?\]", "", names.removeprefix("::"))
                found.append((number, current, name))
    return found


def missing_references(doc: Path) -> list[str]:
    """Every test or test file `doc` names that the tree does not hold, as `doc:line: tests/x.py::name`."""
    missing = []
    for number, file, name in named_tests(doc.read_text(encoding="utf-8")):
        path = ROOT / file
        if not path.is_file() or (name and name not in defined_tests(path)):
            where = f"{file}::{name}" if name else file
            missing.append(f"{doc.relative_to(ROOT)}:{number}: {where}")
    return missing


def test_validation_names_tests_for_every_guarantee() -> None:
    rows = [line for line in VALIDATION.read_text(encoding="utf-8").splitlines() if line.startswith("| **")]
    assert len(rows) >= 10
    for row in rows:
        assert named_tests(row), f"a guarantee without a test: {row[:80]}"


@pytest.mark.parametrize("doc", [VALIDATION, *VALIDATION_PAGES], ids=lambda doc: doc.name)
def test_every_test_a_validation_page_names_exists(doc: Path) -> None:
    missing = missing_references(doc)
    assert not missing, "named but not in the tree:\n" + "\n".join(missing)


def test_a_reference_to_a_moved_or_renamed_test_is_reported(tmp_path: Path) -> None:
    doc = tmp_path / "page.md"
    doc.write_text(
        "| g | `tests/test_docs.py::test_every_test_a_validation_page_names_exists`, `::no_such_test`;"
        " `tests/nowhere.py` |\n",
        encoding="utf-8",
    )
    found = [(file, name) for _, file, name in named_tests(doc.read_text(encoding="utf-8"))]
    assert found == [
        ("tests/test_docs.py", "test_every_test_a_validation_page_names_exists"),
        ("tests/test_docs.py", "no_such_test"),
        ("tests/nowhere.py", ""),
    ]
    assert "no_such_test" not in defined_tests(ROOT / "tests" / "test_docs.py")
    assert not (ROOT / "tests" / "nowhere.py").exists()


def readme_layout_paths() -> list[str]:
    """The first column of the README's "Repository layout" table."""
    section = README.read_text(encoding="utf-8").split("## Repository layout", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([^`]+)` \|", section, flags=re.MULTILINE)


def project_directories() -> set[str]:
    """Top-level directories a clone holds: tracked or about to be (not ignored), without dot-directories."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
        tops = {line.split("/", 1)[0] for line in listed if "/" in line}
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: the directories themselves
        tops = {path.name for path in ROOT.iterdir()}
    return {
        top
        for top in tops
        if (ROOT / top).is_dir() and not top.startswith(".") and top not in NOT_PROJECT and "egg-info" not in top
    }


def test_the_readme_layout_table_lists_every_top_level_directory_and_nothing_else() -> None:
    listed = {path.split("/", 1)[0] for path in readme_layout_paths() if not path.startswith(".")}
    directories = project_directories()
    assert sorted(directories - listed) == [], "directories missing from the README's layout table"
    assert sorted(listed - directories) == [], "layout rows naming directories that do not exist"


def test_every_path_in_the_readme_layout_table_exists() -> None:
    assert [path for path in readme_layout_paths() if not (ROOT / path).exists()] == []


def test_the_decision_index_lists_every_decision_and_only_those() -> None:
    index = (DECISIONS / "README.md").read_text(encoding="utf-8")
    indexed = re.findall(r"^- \[\d{3} — [^\n]*\]\((\d{3}-[\w-]+\.md)\)$", index, flags=re.MULTILINE)
    files = sorted(path.name for path in DECISIONS.glob("[0-9][0-9][0-9]-*.md"))
    assert sorted(set(indexed) - set(files)) == [], "index rows without a decision file"
    assert sorted(set(files) - set(indexed)) == [], "decision files missing from the index"
    assert indexed == sorted(indexed), "index rows out of number order"


def test_each_index_row_reads_as_its_decisions_heading() -> None:
    index = (DECISIONS / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^- \[(\d{3}) — ([^\n]*)\]\((\d{3}-[\w-]+\.md)\)$", index, flags=re.MULTILINE)
    differing = []
    for number, title, name in rows:
        path = DECISIONS / name
        heading = path.read_text(encoding="utf-8").split("\n", 1)[0] if path.is_file() else ""
        if re.sub(r"^# *\d{3} *(?:—|:|-) *", "", heading).strip() != title:
            differing.append(f"{number}: {title!r} vs the heading {heading!r}")
    assert not differing, "\n".join(differing)


@pytest.mark.parametrize("page", CURRENT_PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_of_a_page_resolves(page: Path) -> None:
    targets = re.findall(r"\]\(([^)\s#]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8"))
    local = [target for target in targets if "://" not in target and not target.startswith("mailto:")]
    broken = [target for target in local if not (page.parent / target).exists()]
    assert not broken, "links to nothing:\n" + "\n".join(broken)


def test_every_fault_kind_a_doc_names_is_one_the_command_takes() -> None:
    from fault_injection.kinds import FAULT_KIND_ALIASES, FaultKind

    known = {kind.value for kind in FaultKind} | set(FAULT_KIND_ALIASES)
    named = {
        f"{doc.relative_to(ROOT)}: {match.group('kind')}"
        for doc in [README, VALIDATION, *sorted((ROOT / "docs").rglob("*.md"))]
        for match in FAULT_EXAMPLE.finditer(doc.read_text(encoding="utf-8"))
        if match.group("kind") not in known | {"kind"}  # `ID=kind` is the grammar, not a kind
    }
    assert sorted(named) == []


def test_the_number_of_fault_kinds_the_readme_and_validation_quote_is_the_fault_layers() -> None:
    from fault_injection.kinds import FaultKind

    for doc in (README, VALIDATION):
        quoted = {int(n) for n in re.findall(r"\b(\d+) (?:fault )?kinds\b", doc.read_text(encoding="utf-8"))}
        assert quoted <= {len(FaultKind)}, doc.name


def code_paths(text: str) -> list[str]:
    """Backticked paths into a top-level directory of the repository, e.g. `mm_capacity/store.py`."""
    # Generated output (reports/ after `make bench`, cdk.out/ ...) is not the tree: README names paths in it.
    tops = "|".join(
        sorted(
            path.name
            for path in ROOT.iterdir()
            if path.is_dir() and not path.name.startswith(".") and path.name not in NOT_PROJECT
        )
    )
    pattern = re.compile(rf"`((?:{tops})/[\w/.-]*)(?:::[\w.]+)?`")
    return [path.rstrip("/") for path in pattern.findall(text) if "<" not in path]


def path_exists(path: str) -> bool:
    """The file or directory, or a module attribute written as `package/module.attribute`."""
    module, _, attribute = path.rpartition(".")
    return (ROOT / path).exists() or bool(attribute and "/" not in attribute and (ROOT / f"{module}.py").is_file())


@pytest.mark.parametrize("page", CURRENT_PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_code_path_a_page_names_exists(page: Path) -> None:
    missing = [path for path in code_paths(page.read_text(encoding="utf-8")) if not path_exists(path)]
    assert not missing, "paths not in the tree:\n" + "\n".join(missing)


def test_the_architecture_page_places_every_top_level_directory() -> None:
    page = ARCHITECTURE.read_text(encoding="utf-8")
    table = page.split("## The packages, bottom up", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|") for line in table.splitlines() if line.startswith("| ") and not line.startswith("| layer")]
    placed = {name for cells in rows for name in re.findall(r"`(\w+)/`", cells[2])}
    assert sorted(project_directories() - placed) == []


def dotted_names(text: str) -> list[str]:
    """Backticked dotted names into a package of the project, e.g. `sweeper_lambda.wiring.use_dependencies`."""
    packages = "|".join(sorted(path.parent.name for path in ROOT.glob("*/__init__.py")))
    return re.findall(rf"`((?:{packages})(?:\.\w+)+)", text)


@cache
def module_names(module: Path) -> frozenset[str]:
    """What a module defines or imports at its top level (and, for a package, its submodules)."""
    names: set[str] = set()
    for node in ast.parse(module.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(target.id for target in targets if isinstance(target, ast.Name))
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    if module.name == "__init__.py":
        names.update(path.stem for path in module.parent.iterdir() if path.suffix == ".py" or path.is_dir())
    return frozenset(names)


def dotted_name_exists(dotted: str) -> bool:
    """The longest prefix that is a module exists, and the next name is defined or imported in it."""
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        base = ROOT.joinpath(*parts[:end])
        module = base / "__init__.py" if (base / "__init__.py").is_file() else base.with_suffix(".py")
        if module.is_file():
            return end == len(parts) or parts[end] in module_names(module)
    return False


def test_a_module_that_moved_away_is_reported() -> None:
    assert dotted_name_exists("fault_injection.kinds.FaultKind")
    assert not dotted_name_exists("fault_injection.kinds.NoSuchKind")
    assert not dotted_name_exists("fault_injection.no_such_module")


@pytest.mark.parametrize("page", CURRENT_PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_module_a_page_names_exists(page: Path) -> None:
    missing = [name for name in dotted_names(page.read_text(encoding="utf-8")) if not dotted_name_exists(name)]
    assert not missing, "modules or names not in the tree:\n" + "\n".join(missing)
