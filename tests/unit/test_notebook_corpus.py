"""The notebook corpus (tests/notebook_corpus.py) against the converter: where every line of a v0 goes.

Two halves:
  * self-checks of the corpus (no converter needed): every case is a valid Colab-shaped notebook, its
    expectations name each line once and never split one statement, every pattern family is covered,
    and `score` computes what it says with stand-in converters;
  * the converter's checks, per case: `prebake.notebook.convert(...).statements` put each expected
    setup / user / kept line where it belongs, v1 is a valid notebook of the same version with one
    restore cell before the research and the research verbatim, and the report names every code cell.
"""

from __future__ import annotations

import copy
import re
from types import SimpleNamespace

import nbformat
import pytest

from tests.notebook_corpus import (
    ALL_PATTERNS,
    CASES,
    PATTERN_FAMILIES,
    Case,
    Line,
    find_statement,
    line_ok,
    problems,
    score,
    statement_ranges,
)

IDS = [case.name for case in CASES]
KINDS = {"setup", "definition", "research", "needs-user"}
RESTORE_TAG = "prebake-restore"


def _source(cell) -> str:
    src = cell.get("source", "")
    return src if isinstance(src, str) else "".join(src)


def _code_cell_lines(cells) -> list[str]:
    return [line.rstrip() for cell in cells for line in _source(cell).split("\n")]


def _is_subsequence(needles: list[str], haystack: list[str]) -> str | None:
    """None when `needles` appear in `haystack` in order, else the first one that does not."""
    it = iter(haystack)
    for needle in needles:
        if not any(needle == line for line in it):
            return needle
    return None


def _expected_statement(lines: list[Line]) -> tuple[bool, bool]:
    """(in_build, in_v1) that a statement holding these expected lines must have."""
    classes = {("kept_setup" if line.kept_setup else line.cls) for line in lines}
    if "setup" in classes:
        return True, False
    if "kept_setup" in classes:
        return True, True
    return False, True


# ---------------------------------------------------------------------------------------------------
# Self-checks: the corpus itself (these run without the converter).


def test_corpus_shape():
    assert len(CASES) >= 18
    assert len(set(IDS)) == len(IDS), "case names must be unique"
    for case in CASES:
        assert re.fullmatch(r"[a-z0-9]+(_[a-z0-9]+)*", case.name), case.name
    assert sum(case.nbformat_minor == 5 for case in CASES) >= 2, "a couple of cases use nbformat 4.5"
    assert sum(case.nbformat_minor == 4 for case in CASES) > len(CASES) // 2, "most cases are what Colab saves: 4.4"
    assert any(case.runnable for case in CASES)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_case_notebook_is_a_valid_colab_notebook(case: Case):
    nb = case.notebook()
    nbformat.validate(copy.deepcopy(nb))
    assert (nb.nbformat, nb.nbformat_minor) == (4, case.nbformat_minor)
    assert "colab" in nb.metadata and nb.metadata.kernelspec.name == "python3"
    assert len(nb.cells) == len(case.cells)
    for cell, src in zip(nb.cells, case.cells, strict=True):
        if case.nbformat_minor < 5:
            assert "id" not in cell and "id" not in cell.metadata
        else:
            assert cell["id"] and cell.metadata["id"] == cell["id"]
        if cell.cell_type == "code":
            assert cell.source == src
            assert (cell.metadata.get("cellView") == "form") == src.lstrip().startswith("#@title")
        else:
            assert cell.source == src.text
    # writes and reads back as the same notebook
    assert nbformat.reads(nbformat.writes(nb), as_version=4) == nb


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_case_expectations_are_well_formed(case: Case):
    assert problems(case) == []


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_case_expectations_never_split_a_statement(case: Case):
    """The lines of one top-level statement all go the same way (kept and user lines may share one)."""
    lines = case.lines()
    for number, src in enumerate(case.code_cells(), start=1):
        ranges = statement_ranges(src)
        mine = [line for line in lines if line.cell == number]
        for line in mine:
            assert any(a <= line.line <= b for a, b in ranges), f"cell {number} line {line.line} in no statement"
        for a, b in ranges:
            inside = {("kept_setup" if line.kept_setup else line.cls) for line in mine if a <= line.line <= b}
            assert len(inside) <= 1 or inside == {"kept", "user"}, (
                f"cell {number} lines {a}-{b} mix {sorted(inside)}"
            )


def test_every_pattern_family_is_covered():
    used = {tag for case in CASES for tag in case.patterns}
    assert used <= ALL_PATTERNS, f"unknown tags {sorted(used - ALL_PATTERNS)}"
    for family, tags in PATTERN_FAMILIES.items():
        missing = [tag for tag in tags if tag not in used]
        assert not missing, f"{family}: no case reproduces {missing}"
    for case in CASES:
        assert case.patterns, f"{case.name} names no pattern"


def _stand_in(rule):
    """A fake converter whose statements are the corpus's own, placed by `rule(expected lines)`."""

    def convert(nb, name, source_label):
        case = next(c for c in CASES if c.name == name)
        assert source_label == f"{name}.ipynb"
        lines = case.lines()
        statements = []
        for number, src in enumerate(case.code_cells(), start=1):
            for a, b in statement_ranges(src):
                inside = [line for line in lines if line.cell == number and a <= line.line <= b]
                in_build, in_v1 = rule(inside)
                statements.append(SimpleNamespace(
                    cell=number, first_line=a, last_line=b, kind="research", in_build=in_build, in_v1=in_v1,
                    conda=None, reason="stand-in",
                ))
        return SimpleNamespace(statements=statements, v1=nb, report=lambda: "")

    return convert


def test_score_with_stand_in_converters():
    all_lines = [line for case in CASES for line in case.lines()]
    n_setup = sum(line.cls == "setup" for line in all_lines)
    n_kept_setup = sum(line.cls == "setup" and line.kept_setup for line in all_lines)
    n_user = sum(line.cls == "user" for line in all_lines)

    perfect = score(CASES, _stand_in(_expected_statement))
    assert perfect["errors"] == []
    assert (perfect["setup_recall"], perfect["research_kept"], perfect["user_in_build"], perfect["v1_valid"]) == (
        1.0, 1.0, 0, 1.0,
    )
    assert perfect["cases"] == len(CASES) and perfect["setup_lines"] == n_setup and perfect["user_lines"] == n_user

    keep_all = score(CASES, _stand_in(lambda lines: (False, True)))
    assert (keep_all["setup_recall"], keep_all["research_kept"], keep_all["user_in_build"]) == (0.0, 1.0, 0)

    build_all = score(CASES, _stand_in(lambda lines: (True, False)))
    assert build_all["setup_recall"] == pytest.approx((n_setup - n_kept_setup) / n_setup)
    assert build_all["research_kept"] == 0.0 and build_all["user_in_build"] == n_user

    def broken(nb, name, source_label):
        raise RuntimeError("boom")

    failed = score(CASES, broken)
    assert failed["setup_recall"] == 0.0 and failed["research_kept"] == 0.0 and failed["v1_valid"] == 0.0
    assert len(failed["errors"]) == len(CASES)


# ---------------------------------------------------------------------------------------------------
# The converter, case by case (these fail until prebake.notebook offers convert(...).statements).


@pytest.fixture(scope="module")
def api():
    from prebake.notebook import Statement, convert

    return SimpleNamespace(convert=convert, Statement=Statement, cache={})


def _conversion(api, case: Case):
    if case.name not in api.cache:
        api.cache[case.name] = api.convert(case.notebook(), name=case.name, source_label=f"{case.name}.ipynb")
    return api.cache[case.name]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_statements_put_every_line_where_it_belongs(api, case: Case):
    conversion = _conversion(api, case)
    statements = list(conversion.statements)
    sources = case.code_cells()

    # shape: every top-level statement of every code cell, in order, each with a reason
    previous = (0, 0)
    for st in statements:
        assert isinstance(st, api.Statement)
        assert 1 <= st.cell <= len(sources), st
        n_lines = len(sources[st.cell - 1].split("\n"))
        assert 1 <= st.first_line <= st.last_line <= n_lines, st
        assert (st.cell, st.first_line) > previous, f"statements out of order or overlapping at {st}"
        previous = (st.cell, st.last_line)
        assert st.kind in KINDS, st
        assert isinstance(st.in_build, bool) and isinstance(st.in_v1, bool), st
        assert isinstance(st.reason, str) and st.reason.strip(), st

    wrong = []  # every classifiable line is in case.lines(): one missing from all statements shows up here
    for line in case.lines():
        st = find_statement(statements, line.cell, line.line)
        if st is None:
            wrong.append(f"cell {line.cell} line {line.line} {line.text.strip()!r}: in no statement")
        elif not line_ok(line, st):
            want = {
                "setup": "in_build or [conda], in_v1" if line.kept_setup else "in_build or [conda], not in_v1",
                "user": "not in_build, in_v1",
                "kept": "in_v1",
            }[line.cls]
            got = f"kind={st.kind} in_build={st.in_build} in_v1={st.in_v1} ({st.reason})"
            wrong.append(f"cell {line.cell} line {line.line} [{line.cls}: {want}] {line.text.strip()!r}: {got}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_v1_is_valid_and_keeps_the_research(api, case: Case):
    conversion = _conversion(api, case)
    v1 = conversion.v1
    nbformat.validate(copy.deepcopy(v1))
    assert (v1.nbformat, v1.nbformat_minor) == (4, case.nbformat_minor)
    if case.nbformat_minor < 5:
        assert all("id" not in cell for cell in v1.cells), "nbformat 4.4 cells carry no ids"

    v0 = case.notebook()
    # markdown cells kept, in order
    v0_md = [cell.source for cell in v0.cells if cell.cell_type == "markdown"]
    v1_md = [_source(cell) for cell in v1.cells if cell.cell_type == "markdown"]
    assert _is_subsequence(v0_md, v1_md) is None, "markdown cells lost or reordered"

    # exactly one restore cell, at or before the first code cell holding research
    code = [(i, cell) for i, cell in enumerate(v1.cells) if cell.cell_type == "code"]
    restore = [i for i, cell in code if RESTORE_TAG in cell.metadata.get("tags", [])]
    assert len(restore) == 1, f"{len(restore)} code cells tagged {RESTORE_TAG}"
    lines = case.lines()
    kept_texts = {line.text.rstrip() for line in lines if line.cls == "kept"}
    holding = [i for i, cell in code if kept_texts & {s.rstrip() for s in _source(cell).split("\n")}]
    assert holding, "no research line survived in v1"
    assert restore[0] <= min(holding), "the restore cell comes after research"

    # every kept and user line verbatim, in order
    wanted = [line.text.rstrip() for line in lines if line.cls in ("kept", "user")]
    missing = _is_subsequence(wanted, _code_cell_lines([cell for _, cell in code]))
    assert missing is None, f"not in v1 (or out of order): {missing!r}"

    # cells with nothing to build are kept whole, metadata included (cellView: form, Colab ids)
    v1_code = [cell for _, cell in code]
    v0_code = [cell for cell in v0.cells if cell.cell_type == "code"]
    for number, (cell, src) in enumerate(zip(v0_code, case.code_cells(), strict=True), 1):
        if any(line.cell == number and line.cls == "setup" for line in lines):
            continue
        same = [c for c in v1_code if _source(c) == src]
        assert same, f"code cell {number} (no setup) is not in v1 as it was"
        for key, value in cell.metadata.items():
            assert any(c.metadata.get(key) == value for c in same), f"code cell {number} lost metadata {key}"


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_report_names_every_code_cell(api, case: Case):
    report = _conversion(api, case).report()
    assert isinstance(report, str) and report.strip()
    for number in range(1, len(case.code_cells()) + 1):
        assert re.search(rf"(?<!\d){number}(?!\d)", report), f"report never mentions code cell {number}"
