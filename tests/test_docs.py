"""The docs tell the truth about the code (issue 19, item 10): every CLI command documented with
its exit codes and overwrite rule, every package in the README's layout, every benchmark script
in benchmarks/README.md, and docs/results.md naming the one schema implementation and every kind
of result it stamps."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _commands() -> list[str]:
    """Every leaf command of the typer app, as typed after ``varstruct`` (``measure dataset``)."""
    import typer

    import varstruct.cli.app  # noqa: F401  (registers every command)
    from varstruct.cli.common import app

    def walk(cmd, path):
        subs = getattr(cmd, "commands", None)
        if subs:
            for name, sub in subs.items():
                yield from walk(sub, path + [name])
        else:
            yield " ".join(path)

    return sorted(walk(typer.main.get_command(app), []))


def _sections(text: str, level: str = "## ") -> dict[str, str]:
    """Heading line -> the text up to the next heading of the same level."""
    parts = re.split(rf"^(?={re.escape(level)})", text, flags=re.M)
    return {p.splitlines()[0]: p for p in parts if p.startswith(level)}


def test_every_command_is_found():
    cmds = _commands()
    assert {"train", "measure dataset", "measure model", "import dlib", "sweep"} <= set(cmds), cmds
    assert len(cmds) >= 9, cmds


def test_every_command_has_a_section_with_exit_codes_and_overwrite_rule():
    text = (ROOT / "docs" / "cli.md").read_text()
    synopsis = text.split("```", 2)[1]
    sections = _sections(text)
    for cmd in _commands():
        assert f"varstruct {cmd} " in synopsis or f"varstruct {cmd}\n" in synopsis, f"{cmd}: not in the synopsis"
        heads = [h for h in sections if re.match(rf"## `varstruct {re.escape(cmd)}( |`)", h)]
        assert len(heads) == 1, f"{cmd}: {len(heads)} sections in docs/cli.md"
        body = sections[heads[0]]
        assert "**Exit codes:**" in body, f"{cmd}: no exit codes in its section"
        assert "**Overwrite:**" in body, f"{cmd}: no overwrite rule in its section"
        codes = re.search(r"\*\*Exit codes:\*\*(.*?)(\*\*Overwrite|\Z)", body, flags=re.S).group(1)
        assert re.search(r"\b0\b", codes) and re.search(r"\b2\b", codes), f"{cmd}: exit codes 0 and 2 not named"


def test_every_documented_option_exists():
    """A `--flag` in a command's option table is an option of that command."""
    import typer

    import varstruct.cli.app  # noqa: F401  (registers every command)
    from varstruct.cli.common import app

    root = typer.main.get_command(app)
    sections = _sections((ROOT / "docs" / "cli.md").read_text())
    for cmd in _commands():
        node = root
        for part in cmd.split():
            node = node.commands[part]
        flags = {o for p in node.params for o in getattr(p, "opts", []) + getattr(p, "secondary_opts", [])}
        body = next(b for h, b in sections.items() if re.match(rf"## `varstruct {re.escape(cmd)}( |`)", h))
        rows = [line for line in body.splitlines() if line.startswith("| `-")]
        for row in rows:
            for flag in re.findall(r"`(--?[a-z][a-z0-9-]*)", row.split("|")[1]):
                assert flag in flags, f"{cmd}: {flag} documented but not an option"


def test_readme_layout_lists_every_package():
    text = (ROOT / "README.md").read_text()
    layout = text[text.index("## Layout"):]
    for init in sorted((ROOT / "varstruct").glob("*/__init__.py")):
        name = init.parent.name
        assert f"`{name}/" in layout, f"varstruct/{name}/ missing from the README's layout"


def test_benchmarks_readme_has_a_section_per_script():
    text = (ROOT / "benchmarks" / "README.md").read_text()
    sections = _sections(text)
    for script in sorted((ROOT / "benchmarks").glob("*.py")):
        owners = [h for h, b in sections.items() if b.lstrip("#").split("\n", 2)[-1].lstrip().startswith(f"`{script.name}`")]
        assert len(owners) == 1, f"{script.name}: {len(owners)} sections start with it"
        assert f"python benchmarks/{script.name}" in sections[owners[0]], f"{script.name}: no command"
        assert "**Last figures**" in sections[owners[0]], f"{script.name}: no last figures"


def test_results_doc_names_the_schema_and_every_kind():
    from varstruct.schema import TITLES

    text = (ROOT / "docs" / "results.md").read_text()
    assert "`varstruct.schema` is its one" in text
    for title in TITLES.values():
        assert f"`{title}`" in text, f"{title!r} not in docs/results.md"


def _anchors(markdown: str) -> set[str]:
    """The anchors GitHub makes of a page's headings (code blocks skipped)."""
    out, fenced = set(), False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        m = None if fenced else re.match(r"^#{1,6}\s+(.*?)\s*$", line)
        if m:
            out.add(re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-"))
    return out


def test_links_between_the_pages_resolve():
    """Every relative link of these pages names an existing file and, with #anchor, a heading of it."""
    pages = ["README.md", "docs/cli.md", "docs/results.md", "docs/studies.md", "benchmarks/README.md"]
    for page in pages:
        path = ROOT / page
        for target in re.findall(r"\]\(([^)\s]+)\)", path.read_text()):
            if re.match(r"[a-z]+:", target):
                continue
            file, _, anchor = target.partition("#")
            dest = (path.parent / file).resolve() if file else path
            assert dest.exists(), f"{page}: link to {target}: no such file"
            if anchor and dest.suffix == ".md":
                assert anchor in _anchors(dest.read_text()), f"{page}: link to {target}: no such heading"


@pytest.mark.parametrize("script", sorted(p.name for p in (ROOT / "benchmarks").glob("*.py")))
def test_benchmark_scripts_start(script):
    """Every benchmark at least imports and parses its options (a renamed library function once
    broke one silently: benchmarks are not run by the suite)."""
    import subprocess
    import sys

    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), "--help"], capture_output=True,
                       text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0 and "usage" in r.stdout.lower(), r.stderr[-2000:]
